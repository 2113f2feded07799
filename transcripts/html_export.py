"""A saved transcript as one self-contained HTML page: the answer first, then the pictures, the
cost ledger, every turn with its speaker and the manager's reason, and the sources.

A pure function of a loaded ``Transcript``, like the Markdown and JSON exports (``export``):
the browser serves it as a download, and the file opens anywhere, offline, on its own. So the
page makes no request at all: its CSS is inline, the pictures (``pictures``) are inline SVG,
and it has no script, link, image or font. Everything a transcript holds (the question, the
replies, the names, the manager's reasons) is hostile: each piece is HTML-escaped here, and
the page's Content-Security-Policy forbids scripts and every fetch besides, so even markup that
slipped through could neither run nor call out.

Owns the page's layout and wording. Which reply is the answer is ``summary``'s; the drawings
are ``pictures``'.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from html import escape

from roundtable.transcripts.events import (
    HUMAN,
    AggregateEvent,
    BranchEvent,
    ErrorEvent,
    Event,
    Header,
    MemoryEvent,
    MessageEvent,
    PlanEvent,
    PruneEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
)
from roundtable.transcripts.export import cited, with_total
from roundtable.transcripts.pictures import costs_svg, timeline_svg
from roundtable.transcripts.records import LedgerRow
from roundtable.transcripts.store import Transcript
from roundtable.transcripts.summary import Answer, quality_lines, why_line

__all__ = ["HTML_CSP", "to_html"]

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:820px;margin:2em auto;padding:0 1em;
color:#1d1d1f;background:#fff}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}#answer h2{margin-top:.6em}
.meta,.note,.why,.byline{color:#555}.note{font-size:.9em;margin:.4em 0}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
#answer{border:2px solid #4e79a7;border-radius:8px;padding:0 1em 1em;background:#f5f8fc}
.turn{border-left:3px solid #ddd;padding-left:.8em;margin:1.2em 0}
.turn h3{margin:.2em 0}.why{font-style:italic;margin:0}
.stop{font-weight:bold}.mark{color:#b00}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px}
td.n{text-align:right}svg{max-width:100%;height:auto;display:block;margin:1em 0}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HTML_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'"
)
"""Only the page's own stylesheet applies; no script runs and nothing is fetched."""


def _e(text: str) -> str:
    """``text`` escaped for HTML text and quoted attribute values alike."""
    return escape(text, quote=True)


def _who(speaker: str) -> str:
    return "You" if speaker == HUMAN else speaker.capitalize()


def to_html(transcript: Transcript) -> str:
    """The whole run as one page (see the module docstring)."""
    header, events = transcript.header, transcript.events
    stop = next((e for e in reversed(events) if isinstance(e, StopEvent)), None)
    ledger = stop.ledger if stop is not None else []
    body = [
        f"<h1>{_e(header.question)}</h1>",
        _meta(header),
        _answer(header, events),
        _stop_line(stop),
        _pictures(header, events, ledger),
        _ledger(ledger),
        _quality(events),
        _turns(events),
        _sources(events),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{HTML_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(header.question[:200])}</title>\n<style>{STYLE}</style>\n</head>\n"
        "<body>\n" + "\n".join(part for part in body if part) + "\n</body>\n</html>\n"
    )


def _meta(header: Header) -> str:
    """Which run: its id, when, the team and the models each role ran on."""
    roles = ", ".join(f"{_e(r.name)} ({_e(r.model)})" for r in header.roles)
    items = [
        f"conversation <code>{_e(header.conversation_id)}</code>",
        f"started {header.created_at:%Y-%m-%d %H:%M} UTC",
        f"roles: {roles}",
        f"at most {header.max_turns} turns",
    ]
    if header.parent is not None:
        parent = header.parent
        items.append(f"forked from <code>{_e(parent.conversation_id)}</code> at turn {parent.turn}")
    return '<ul class="meta">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _answer(header: Header, events: Iterable[Event]) -> str:
    """The answer first, in a box of its own, with who wrote and who accepted it."""
    answer = Answer(header)
    for event in events:
        answer.see(event)
    message = answer.message
    if message is None:
        return '<section id="answer"><h2>No answer</h2><p>No agent replied.</p></section>'
    return (
        f'<section id="answer"><h2>{_e(answer.title)}</h2>'
        f'<div class="text">{_e(message.content)}</div>'
        f'<p class="byline">{_e(answer.byline())}</p>{_disputed(answer)}</section>'
    )


def _disputed(answer: Answer) -> str:
    """What the verdict-giver still disputes, under the answer (nothing when it does not)."""
    review = answer.disputed
    if review is None:
        return ""
    return (
        f"<h3>Still disputed by the {_e(review.speaker)} (turn {review.turn})</h3>"
        f'<div class="text">{_e(review.content)}</div>'
    )


def _stop_line(stop: StopEvent | None) -> str:
    if stop is None:
        return '<p class="stop">The run did not record its end.</p>'
    return f'<p class="stop">{_e(_stopped(stop))}</p>'


def _stopped(stop: StopEvent) -> str:
    ended = "Finished" if stop.code in ("completed", "partial") else "Stopped"
    return f"{ended} ({stop.code}): {stop.reason}"


def _pictures(header: Header, events: Sequence[Event], ledger: Sequence[LedgerRow]) -> str:
    """Who spoke when, and what each agent cost (the SVG escapes its own texts)."""
    pictures = [timeline_svg(header, events)]
    if ledger:
        pictures.append(costs_svg(ledger, [role.name for role in header.roles]))
    return '<section id="pictures"><h2>Pictures</h2>' + "".join(pictures) + "</section>"


def _ledger(rows: Sequence[LedgerRow]) -> str:
    """The cost ledger: a row per speaker, a total when there are several, dollars if priced."""
    if not rows:
        return ""
    priced = any(row.cost_usd is not None for row in rows)
    head = "<th>speaker</th><th>calls</th><th>tokens in</th><th>tokens out</th><th>seconds</th>"
    lines = [f"<tr>{head}{'<th>USD</th>' if priced else ''}</tr>"]
    lines.extend(_ledger_row(row, priced) for row in with_total(rows))
    return (
        '<section id="ledger"><h2>Cost ledger</h2><table>' + "".join(lines) + "</table></section>"
    )


def _ledger_row(row: LedgerRow, priced: bool) -> str:
    cells = [f"{row.calls}", f"{row.prompt_tokens:,}", f"{row.completion_tokens:,}"]
    cells.append(f"{row.seconds:.1f}")
    if priced:
        cells.append("-" if row.cost_usd is None else f"${row.cost_usd:.4f}")
    numbers = "".join(f'<td class="n">{cell}</td>' for cell in cells)
    return f"<tr><td>{_e(row.speaker)}</td>{numbers}</tr>"


def _quality(events: Iterable[Event]) -> str:
    report = next((e.report for e in events if isinstance(e, QualityEvent)), None)
    if report is None:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in quality_lines(report))
    return f'<section id="quality"><h2>Quality</h2><ul>{items}</ul></section>'


def _turns(events: Sequence[Event]) -> str:
    """Every turn in order, each with why its speaker speaks; the rest as short notes."""
    answers = {
        e.message_seq: e.branch
        for e in events
        if isinstance(e, BranchEvent) and e.message_seq is not None
    }
    why: dict[str, SelectionEvent] = {}
    parts: list[str] = []
    for event in events:
        if isinstance(event, SelectionEvent):
            why[event.speaker] = event  # shown on the reply it chose
        elif isinstance(event, MessageEvent):
            parts.append(_turn(event, why.pop(event.speaker, None), answers.get(event.seq)))
        else:
            parts.append(_note(event))
    return '<section id="turns"><h2>Turn by turn</h2>' + "".join(parts) + "</section>"


def _turn(event: MessageEvent, why: SelectionEvent | None, branch: str | None) -> str:
    where = f" · {_e(branch)}" if branch else ""
    reason = f'<p class="why">{_e(why_line(why))}</p>' if why is not None else ""
    marks = [
        text
        for flag, text in ((event.interrupted, "cut short"), (event.truncated, "cut at its cap"))
        if flag
    ]
    mark = f'<p class="mark">({", ".join(marks)})</p>' if marks else ""
    return (
        f'<article class="turn"><h3>Turn {event.turn} · {_e(_who(event.speaker))}{where}</h3>'
        f'{reason}<div class="text">{_e(event.content)}</div>{mark}</article>'
    )


def _note(event: Event) -> str:
    """A one-line note for what is not a reply (and nothing for what a reader needs not see)."""
    text: str | None = None
    if isinstance(event, ErrorEvent):
        who = f" ({event.speaker})" if event.speaker else ""
        text = f"error, {event.family}{who}: {event.message}"
    elif isinstance(event, MemoryEvent) and event.hits:
        text = f"memory gave {event.speaker} {len(event.hits)} passage(s)"
    elif isinstance(event, StopEvent):
        text = _stopped(event)
    elif isinstance(event, PruneEvent):
        text = f"pruned {event.dropped} turn(s) for {event.speaker}"
    elif isinstance(event, PlanEvent | BranchEvent | AggregateEvent):
        return _work(event)
    return f'<p class="note">{_e(text)}</p>' if text is not None else ""


def _work(event: PlanEvent | BranchEvent | AggregateEvent) -> str:
    """A plan with its sub-questions, a branch's start or end, the comparison of branches."""
    if isinstance(event, PlanEvent):
        title = "Plan" if event.accepted else "Plan refused"
        steps = "".join(
            f"<li><b>{_e(s.id)}</b> {_e(s.role)} ({_e(s.needs)}): {_e(s.question)}</li>"
            for s in event.steps
        )
        return f"<h3>{title} ({_e(event.mode)})</h3><p>{_e(event.reason)}</p><ul>{steps}</ul>"
    if isinstance(event, BranchEvent):
        said = f"started: {event.question}" if event.phase == "start" else event.status
        why = f": {event.error}" if event.phase == "end" and event.error else ""
        return f'<p class="note">branch {_e(event.branch)} ({_e(event.role)}) {_e(said + why)}</p>'
    found = [f"answered: {', '.join(event.answered) or 'none'}"]
    found += [
        f"disagreement, {c.topic} [{', '.join(c.branches)}]: {c.detail}" for c in event.conflicts
    ]
    found += [f"missing, {m.branch} ({m.role}, {m.status}): {m.reason}" for m in event.missing]
    items = "".join(f"<li>{_e(line)}</li>" for line in found)
    return f"<h3>Comparison</h3><ul>{items}</ul>"


def _sources(events: Sequence[Event]) -> str:
    """The passages the replies cite validly, once each (``export.cited``)."""
    items = [
        f"<li>{_e(f'[{n}] turn {event.turn}, {event.speaker}: {hit.source}')}: "
        f"{_e(' '.join(hit.text.split())[:300])}</li>"
        for n, event, hit in cited(events)
    ]
    if not items:
        return ""
    return '<section id="sources"><h2>Sources</h2><ul>' + "".join(items) + "</ul></section>"
