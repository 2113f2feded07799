"""A saved transcript as a downloadable document: Markdown for people, JSON for programs.

Pure functions of a loaded ``Transcript``: the browser wraps the bytes in a download, the MCP
server returns the Markdown as a tool result and a resource. The Markdown starts with the answer
(who wrote it, who accepted it, what the critic still disputes), the stop and the cost ledger,
like the HTML page; then every turn. A pipeline's or panel's plan, its branches and the
comparison (disagreements, missing branches) are in both; a branch's answer is headed with the
branch it answers.

Everything a person or an agent wrote is quoted as text, escaped only where Markdown must be
(``escape_md``): it reads as written ("20-40%. Then fell." stays so), yet a hostile transcript
cannot open a heading, list, quote, table, code block or link, nor bring HTML into a viewer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from roundtable.transcripts.events import (
    HUMAN,
    AggregateEvent,
    BranchEvent,
    Conflict,
    ErrorEvent,
    Event,
    Header,
    LedgerRow,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
    PlanEvent,
    PruneEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
)
from roundtable.transcripts.store import Transcript
from roundtable.transcripts.summary import Answer, quality_lines

_MARKED = {"failed": "**failed**", "timeout": "**timed out**"}
"""Branch endings that stand out in the export."""
_INLINE = re.compile(r"\\(?=[!-/:-@\[-`{-~])|[`<\[|]")
"""Anywhere in a line: a backslash that would escape what follows, a backtick (code), ``<``
(HTML, autolinks), ``[`` (links, images, footnotes, reference definitions), ``|`` (tables)."""
_BLOCK = re.compile(
    r"^( {0,3})(?:([#>])|([-+*])(?=[ \t]|$)|(\d{1,9})([.)])(?=[ \t]|$)|([-*_=~])(?=[-*_=~ \t]*$))"
)
"""At a line's start: a heading, a quote, a list item (bulleted or numbered), or a line of
``-*_=~`` only (a rule, a heading's underline, a ``~~~`` code fence)."""


def escape_md(text: str) -> str:
    """``text`` as Markdown that shows it as written: only what would start a block at a line's
    start, and backticks, ``<``, ``[``, ``|`` and a backslash before punctuation anywhere, are
    backslash-escaped (a viewer shows them as the plain characters)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")  # a lone CR ends a line too
    inline = _INLINE.sub(lambda m: "\\" + m.group(0), lines)
    return "\n".join(_BLOCK.sub(_block, line, count=1) for line in inline.split("\n"))


def _block(match: re.Match[str]) -> str:
    indent, mark, bullet, number, dot, rule = match.groups()
    if number is not None:
        return f"{indent}{number}\\{dot}"
    return f"{indent}\\{mark or bullet or rule}"


def to_markdown(transcript: Transcript) -> str:
    """The whole run, one section per turn, with the manager's choices or the plan, its
    branches and comparison, and the stop."""
    header = transcript.header
    lines = [
        f"# {escape_md(' '.join(header.question.split()))}",
        "",
        f"- conversation: {escape_md(header.conversation_id)}",
        f"- started: {header.created_at:%Y-%m-%d %H:%M} UTC",
        f"- roles: {escape_md(', '.join(role.name for role in header.roles))}",
        f"- max turns: {header.max_turns}",
    ]
    if header.parent is not None:
        lines.append(
            f"- forked from {escape_md(header.parent.conversation_id)} at turn {header.parent.turn}"
        )
    lines.append("")
    stop = next((e for e in reversed(transcript.events) if isinstance(e, StopEvent)), None)
    lines.extend(_answer_lines(header, transcript.events))
    lines.extend(
        _event_lines(stop) if stop is not None else ["*The run did not record its end.*", ""]
    )
    lines.extend(_ledger_lines(stop.ledger if stop is not None else []))
    answers = {
        e.message_seq: e.branch
        for e in transcript.events
        if isinstance(e, BranchEvent) and e.message_seq is not None
    }
    for event in transcript.events:
        lines.extend(_event_lines(event, answers.get(event.seq)))
    lines.extend(_source_lines(transcript.events))
    return "\n".join(lines).rstrip() + "\n"


def _answer_lines(header: Header, events: Sequence[Event]) -> list[str]:
    """The answer first: its text, who wrote and who accepted it, and what the critic still
    disputes (its last review, when it asked for a revision the answer did not get; a panel's
    disagreements between branches)."""
    answer = Answer(header)
    for event in events:
        answer.see(event)
    message = answer.message
    if message is None:
        return ["## No answer", "", "No agent replied.", ""]
    lines = [f"## {answer.title}", "", escape_md(message.content), ""]
    lines += [f"*{escape_md(answer.byline())}*", ""]
    review = answer.disputed
    if review is not None:
        lines += [f"### Still disputed by the {escape_md(review.speaker)} (turn {review.turn})", ""]
        lines += [escape_md(review.content), ""]
    compared = next((e for e in reversed(events) if isinstance(e, AggregateEvent)), None)
    if compared is not None and compared.conflicts:
        lines += ["### Still disputed between branches", ""]
        lines += [f"- {_conflict(c)}" for c in compared.conflicts] + [""]
    return lines


def _ledger_lines(rows: Sequence[LedgerRow]) -> list[str]:
    """The cost ledger as a table: a row per speaker, a total when there are several."""
    if not rows:
        return []
    priced = any(row.cost_usd is not None for row in rows)
    lines = [
        "## Cost ledger",
        "",
        "| speaker | calls | tokens in | tokens out | seconds |" + (" USD |" if priced else ""),
        "|---|--:|--:|--:|--:|" + ("--:|" if priced else ""),
    ]
    for row in with_total(rows):
        cost = "" if not priced else f" {'-' if row.cost_usd is None else f'${row.cost_usd:.4f}'} |"
        lines.append(
            f"| {escape_md(row.speaker)} | {row.calls} | {row.prompt_tokens:,} "
            f"| {row.completion_tokens:,} | {row.seconds:.1f} |{cost}"
        )
    return [*lines, ""]


def with_total(rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    """The ledger's rows, and a total row when there are several (dollars if any is priced)."""
    if len(rows) < 2:
        return list(rows)
    priced = any(row.cost_usd is not None for row in rows)
    total = LedgerRow(
        speaker="total",
        calls=sum(r.calls for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        seconds=sum(r.seconds for r in rows),
        cost_usd=sum(r.cost_usd or 0.0 for r in rows) if priced else None,
    )
    return [*rows, total]


def _conflict(conflict: Conflict) -> str:
    return (
        f"{escape_md(conflict.topic)} [{escape_md(', '.join(conflict.branches))}]: "
        f"{escape_md(conflict.detail)}"
    )


def cited(events: Sequence[Event]) -> list[tuple[int, MessageEvent, MemoryHit]]:
    """The passages the replies cite, once each, in order: (number, citing reply, passage).

    Only valid citations count: a number the speaker never saw is no source.
    """
    hits = {hit.id: hit for e in events if isinstance(e, MemoryEvent) for hit in e.hits}
    found: list[tuple[int, MessageEvent, MemoryHit]] = []
    seen: set[str] = set()
    for event in events:
        if not isinstance(event, MessageEvent):
            continue
        for citation in event.citations:
            hit = hits.get(citation.hit_id or "")
            if citation.valid and hit is not None and hit.id not in seen:
                seen.add(hit.id)
                found.append((citation.n, event, hit))
    return found


def _source_lines(events: Sequence[Event]) -> list[str]:
    """The cited passages (``cited``): a Sources section at the end (or nothing)."""
    lines = [
        f"- [{n}] turn {event.turn}, {escape_md(event.speaker)}: {escape_md(hit.source)}: "
        + escape_md(" ".join(hit.text.split())[:300])
        for n, event, hit in cited(events)
    ]
    return ["## Sources", "", *lines, ""] if lines else []


def _event_lines(event: Event, branch: str | None = None) -> list[str]:
    if isinstance(event, MessageEvent):
        who = "You" if event.speaker == HUMAN else escape_md(event.speaker.capitalize())
        where = f" ({escape_md(branch)})" if branch else ""
        note = " *(cut short)*" if event.interrupted else ""
        return [f"## Turn {event.turn}: {who}{where}{note}", "", escape_md(event.content), ""]
    if isinstance(event, PlanEvent | BranchEvent | AggregateEvent):
        return _work_lines(event)
    if isinstance(event, SelectionEvent):
        return [
            f"> manager picks **{escape_md(event.speaker)}** ({event.method}): "
            + escape_md(event.reason),
            "",
        ]
    if isinstance(event, ErrorEvent):
        who = f" ({escape_md(event.speaker)})" if event.speaker else ""
        return [f"> error, {event.family}{who}: {escape_md(event.message)}", ""]
    if isinstance(event, MemoryEvent):
        return [f"> memory: {len(event.hits)} passage(s) for {escape_md(event.speaker)}", ""]
    if isinstance(event, PruneEvent):
        return [f"> pruned {event.dropped} turn(s) for {escape_md(event.speaker)}", ""]
    if isinstance(event, StopEvent):
        return [f"**Stopped ({event.code}):** {escape_md(event.reason)}", ""]
    if isinstance(event, QualityEvent):
        return ["## Quality", "", *(f"- {line}" for line in quality_lines(event.report)), ""]
    return []


def _work_lines(event: PlanEvent | BranchEvent | AggregateEvent) -> list[str]:
    """A plan with one line per sub-question, a branch's start or end, the comparison."""
    if isinstance(event, PlanEvent):
        title = "Plan" if event.accepted else "Plan refused"
        lines = [f"## {title} ({event.mode})", "", escape_md(event.reason), ""]
        for step in event.steps:
            after = f", after {escape_md(', '.join(step.depends_on))}" if step.depends_on else ""
            who = f"**{escape_md(step.id)}** {escape_md(step.role)}"
            lines.append(f"- {who} ({escape_md(step.needs)}{after}): {escape_md(step.question)}")
        return [*lines, ""] if event.steps else lines
    if isinstance(event, BranchEvent):
        head = f"> branch {escape_md(event.branch)} ({escape_md(event.role)})"
        if event.phase == "start":
            return [f"{head} started: {escape_md(event.question)}", ""]
        status = _MARKED.get(event.status, event.status)
        took = "" if event.status == "skipped" else f" after {event.latency_s:.1f} s"
        why = f": {escape_md(event.error)}" if event.error else ""
        return [f"{head} {status}{took}{why}", ""]
    answered = escape_md(", ".join(event.answered)) or "none"
    lines = ["## Comparison", "", f"- answered: {answered}"]
    if not event.compared:
        lines.append("- the comparison could not be used")
    lines.extend(f"- disagreement, {_conflict(c)}" for c in event.conflicts)
    lines.extend(
        f"- missing, {escape_md(m.branch)} ({escape_md(m.role)}, {m.status}): "
        + escape_md(m.reason)
        for m in event.missing
    )
    return [*lines, ""]


def to_json(transcript: Transcript) -> str:
    """``{"header": ..., "events": [...]}``: the same records as the JSONL file."""
    document = {
        "header": transcript.header.model_dump(mode="json"),
        "events": [event.model_dump(mode="json") for event in transcript.events],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def file_name(transcript: Transcript, fmt: str) -> str:
    """``<conversation id>.md``, ``.json`` or ``.html``."""
    return f"{transcript.header.conversation_id}.{fmt}"
