"""A saved transcript as a downloadable document: Markdown for people, JSON for programs.

Pure functions of a loaded ``Transcript``: the browser wraps the bytes in a download, the MCP
server returns the Markdown as a tool result and a resource. A
pipeline's or panel's plan, its branches and the comparison (disagreements, missing branches)
are in both; a branch's answer is headed with the branch it answers.
Everything a person or an agent wrote is quoted as text: Markdown control characters in it are
escaped, so an exported transcript cannot smuggle links, images or HTML into a viewer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from roundtable.transcripts.events import (
    HUMAN,
    AggregateEvent,
    BranchEvent,
    ErrorEvent,
    Event,
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
from roundtable.transcripts.summary import quality_lines

_MARKED = {"failed": "**failed**", "timeout": "**timed out**"}
"""Branch endings that stand out in the export."""
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def escape_md(text: str) -> str:
    """``text`` with Markdown (and inline HTML) control characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_markdown(transcript: Transcript) -> str:
    """The whole run, one section per turn, with the manager's choices or the plan, its
    branches and comparison, and the stop."""
    header = transcript.header
    lines = [
        f"# {escape_md(header.question)}",
        "",
        f"- conversation: `{header.conversation_id}`",
        f"- started: {header.created_at:%Y-%m-%d %H:%M} UTC",
        f"- roles: {', '.join(role.name for role in header.roles)}",
        f"- max turns: {header.max_turns}",
    ]
    if header.parent is not None:
        lines.append(
            f"- forked from `{header.parent.conversation_id}` at turn {header.parent.turn}"
        )
    lines.append("")
    answers = {
        e.message_seq: e.branch
        for e in transcript.events
        if isinstance(e, BranchEvent) and e.message_seq is not None
    }
    for event in transcript.events:
        lines.extend(_event_lines(event, answers.get(event.seq)))
    lines.extend(_source_lines(transcript.events))
    return "\n".join(lines).rstrip() + "\n"


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
        f"- [{n}] turn {event.turn}, {event.speaker}: {escape_md(hit.source)}: "
        + escape_md(" ".join(hit.text.split())[:300])
        for n, event, hit in cited(events)
    ]
    return ["## Sources", "", *lines, ""] if lines else []


def _event_lines(event: Event, branch: str | None = None) -> list[str]:
    if isinstance(event, MessageEvent):
        who = "You" if event.speaker == HUMAN else event.speaker.capitalize()
        where = f" ({branch})" if branch else ""
        note = " *(cut short)*" if event.interrupted else ""
        return [f"## Turn {event.turn}: {who}{where}{note}", "", escape_md(event.content), ""]
    if isinstance(event, PlanEvent | BranchEvent | AggregateEvent):
        return _work_lines(event)
    if isinstance(event, SelectionEvent):
        return [
            f"> manager picks **{event.speaker}** ({event.method}): {escape_md(event.reason)}",
            "",
        ]
    if isinstance(event, ErrorEvent):
        who = f" ({event.speaker})" if event.speaker else ""
        return [f"> error, {event.family}{who}: {escape_md(event.message)}", ""]
    if isinstance(event, MemoryEvent):
        return [f"> memory: {len(event.hits)} passage(s) for {event.speaker}", ""]
    if isinstance(event, PruneEvent):
        return [f"> pruned {event.dropped} turn(s) for {event.speaker}", ""]
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
            after = f", after {', '.join(step.depends_on)}" if step.depends_on else ""
            lines.append(
                f"- **{step.id}** {step.role} ({escape_md(step.needs)}{after}): "
                f"{escape_md(step.question)}"
            )
        return [*lines, ""] if event.steps else lines
    if isinstance(event, BranchEvent):
        head = f"> branch {event.branch} ({event.role})"
        if event.phase == "start":
            return [f"{head} started: {escape_md(event.question)}", ""]
        status = _MARKED.get(event.status, event.status)
        took = "" if event.status == "skipped" else f" after {event.latency_s:.1f} s"
        why = f": {escape_md(event.error)}" if event.error else ""
        return [f"{head} {status}{took}{why}", ""]
    lines = ["## Comparison", "", f"- answered: {', '.join(event.answered) or 'none'}"]
    if not event.compared:
        lines.append("- the comparison could not be used")
    lines.extend(
        f"- disagreement, {escape_md(c.topic)} [{', '.join(c.branches)}]: {escape_md(c.detail)}"
        for c in event.conflicts
    )
    lines.extend(
        f"- missing, {m.branch} ({m.role}, {m.status}): {escape_md(m.reason)}"
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
