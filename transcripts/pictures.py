"""Pictures of a run drawn from its transcript: who spoke when, and what each agent cost.

``timeline_svg`` draws one row per speaker (the person's row included), a bar per committed
turn placed by time (or by turn order when the times do not spread), the person's messages
after the question (interjections) marked across every row, and prunes as marks on the pruned
speaker's row.
``costs_svg`` draws the cost ledger: tokens in and out, seconds, and dollars when priced, a bar
per speaker in each group, each group scaled to its own largest value.

Hand-written SVG for the reasons ``evaluation.chart`` gives (no dependency, a self-contained
picture any browser shows). Names and contents come from a transcript, which may be hostile:
every text is XML-escaped and cut short, and the number of bars is bounded. Owns only the
drawing; where the pictures are shown is the UI's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from roundtable.transcripts.events import HUMAN, Event, Header, MessageEvent, PruneEvent
from roundtable.transcripts.records import LedgerRow

__all__ = ["MAX_BARS", "MAX_ROWS", "TIP_CHARS", "costs_svg", "timeline_svg"]

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
HUMAN_COLOUR, PRUNE_COLOUR = "#555555", "#d62728"
WIDTH, LABEL, ROW, TOP = 760, 130, 22, 34
MAX_BARS = 200
"""At most this many turns are drawn: the latest ones."""
MAX_ROWS = 17
"""At most this many speakers' rows (a header has at most 16 roles, plus the person)."""
LABEL_CHARS = 18
TIP_CHARS = 120
"""A bar's tooltip shows at most this many characters of its turn."""


def svg_text(value: str, limit: int = LABEL_CHARS) -> str:
    """``value`` on one line, cut to ``limit`` characters, escaped for text and attributes."""
    flat = " ".join(value.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return escape(flat, {'"': "&quot;", "'": "&apos;"})


def svg_frame(height: int, title: str, body: Iterable[str]) -> str:
    """An SVG picture ``height`` high, ``title`` written at its top, around ``body`` (shared by
    every picture of a run: ``plan_graph`` too)."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">'
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>'
        f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>'
    )
    return "\n".join([head, *body, "</svg>"]) + "\n"


# -- the timeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """Where a mark sits on the time axis, as fractions of the plot's width."""

    start: float
    end: float


def _speakers(header: Header, messages: Sequence[MessageEvent]) -> list[str]:
    """The rows: the header's roles in order, then anyone else who spoke, the person last."""
    names = [role.name for role in header.roles if role.name != HUMAN]
    for message in messages:
        if message.speaker not in names and message.speaker != HUMAN:
            names.append(message.speaker)
    return [*names[: MAX_ROWS - 1], HUMAN]


def _placer(messages: Sequence[MessageEvent]) -> tuple[bool, float, float]:
    """(by time, origin, span in seconds); by turn order when the times do not spread."""
    starts = [m.at.timestamp() - m.latency_s for m in messages]
    ends = [m.at.timestamp() for m in messages]
    if not messages:
        return False, 0.0, 1.0
    origin, span = min(starts), max(ends) - min(starts)
    return span > 0.001 * len(messages), origin, span


def _spans(messages: Sequence[MessageEvent]) -> list[_Span]:
    by_time, origin, span = _placer(messages)
    if not by_time:
        slot = 1.0 / max(len(messages), 1)
        return [_Span(i * slot, (i + 0.85) * slot) for i in range(len(messages))]
    return [
        _Span((m.at.timestamp() - m.latency_s - origin) / span, (m.at.timestamp() - origin) / span)
        for m in messages
    ]


def _prune_at(prune: PruneEvent, messages: Sequence[MessageEvent], spans: list[_Span]) -> float:
    """A prune happens before its speaker's reply: at the start of the next reply after it."""
    for message, span in zip(messages, spans, strict=True):
        if message.seq > prune.seq:
            return span.start
    return spans[-1].end if spans else 0.0


def _asked(message: MessageEvent) -> bool:
    """The question that opens the run (turn 0): the person's, but no interjection."""
    return message.speaker == HUMAN and message.turn == 0


def _bar(message: MessageEvent, span: _Span, y: int, colour: str) -> str:
    plot = WIDTH - LABEL - 16
    x = LABEL + span.start * plot
    width = max((span.end - span.start) * plot, 2.0)
    kind = "turn" if message.speaker != HUMAN else "question" if _asked(message) else "interjection"
    tip = f"{message.speaker} · turn {message.turn}: {message.content}"
    return (
        f'<rect class="{kind}" x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 6}" '
        f'fill="{colour}"><title>{svg_text(tip, TIP_CHARS)}</title></rect>'
    )


def _interjection_line(span: _Span, height: int) -> str:
    x = LABEL + span.start * (WIDTH - LABEL - 16)
    return (
        f'<line class="interjection-line" x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" '
        f'y2="{height}" stroke="{HUMAN_COLOUR}" stroke-dasharray="3,3"/>'
    )


def _prune_mark(prune: PruneEvent, fraction: float, y: int) -> str:
    x = LABEL + fraction * (WIDTH - LABEL - 16)
    tip = f"pruned {prune.speaker}: dropped {prune.dropped} turn(s), kept {prune.kept}"
    points = f"{x:.1f},{y + 2} {x - 5:.1f},{y - 6} {x + 5:.1f},{y - 6}"
    return (
        f'<polygon class="prune" points="{points}" fill="{PRUNE_COLOUR}">'
        f"<title>{svg_text(tip, TIP_CHARS)}</title></polygon>"
    )


def _legend(y: int, by_time: bool) -> list[str]:
    axis = "bars placed by time" if by_time else "bars placed by turn order"
    return [
        f'<rect x="8" y="{y}" width="12" height="10" fill="{COLOURS[0]}"/>'
        f'<text x="24" y="{y + 9}">agent turn</text>',
        f'<rect x="100" y="{y}" width="12" height="10" fill="{HUMAN_COLOUR}"/>'
        f'<text x="116" y="{y + 9}">interjection (you)</text>',
        f'<polygon points="236,{y + 10} 231,{y} 241,{y}" fill="{PRUNE_COLOUR}"/>'
        f'<text x="248" y="{y + 9}">prune</text>',
        f'<text x="300" y="{y + 9}" fill="#666666">{axis}</text>',
    ]


def timeline_svg(header: Header, events: Iterable[Event]) -> str:
    """Who spoke when in the run of ``header``, from its ``events`` (see the module docstring)."""
    seen = list(events)
    messages = [e for e in seen if isinstance(e, MessageEvent)][-MAX_BARS:]
    first = messages[0].seq if messages else 0
    prunes = [e for e in seen if isinstance(e, PruneEvent) and e.seq >= first][-MAX_BARS:]
    rows = _speakers(header, messages)
    spans = _spans(messages)
    height = TOP + ROW * len(rows) + 30
    body: list[str] = []
    for index, name in enumerate(rows):
        y = TOP + index * ROW
        label = "you" if name == HUMAN else name
        body.append(f'<text x="8" y="{y + ROW - 9}">{svg_text(label)}</text>')
        body.append(
            f'<line x1="{LABEL}" y1="{y + ROW - 2}" x2="{WIDTH - 16}" y2="{y + ROW - 2}" '
            'stroke="#eeeeee"/>'
        )
    for message, span in zip(messages, spans, strict=True):
        if message.speaker not in rows:
            continue  # a speaker past the row bound
        row = rows.index(message.speaker)
        colour = HUMAN_COLOUR if message.speaker == HUMAN else COLOURS[row % len(COLOURS)]
        if message.speaker == HUMAN and not _asked(message):
            body.append(_interjection_line(span, TOP + ROW * len(rows)))
        body.append(_bar(message, span, TOP + row * ROW + 2, colour))
    for prune in prunes:
        if prune.speaker in rows:
            y = TOP + rows.index(prune.speaker) * ROW + 2
            body.append(_prune_mark(prune, _prune_at(prune, messages, spans), y))
    body.extend(_legend(height - 22, _placer(messages)[0]))
    turns = sum(1 for m in messages if m.speaker != HUMAN)
    return svg_frame(height, f"Who spoke when: {turns} turn(s)", body)


# -- the costs ------------------------------------------------------------------------------


def _metrics(ledger: Sequence[LedgerRow]) -> list[tuple[str, str, list[float]]]:
    """(class, title, one value per row) for each group drawn."""
    groups: list[tuple[str, str, list[float]]] = [
        ("tokens-in", "tokens in", [float(r.prompt_tokens) for r in ledger]),
        ("tokens-out", "tokens out", [float(r.completion_tokens) for r in ledger]),
        ("seconds", "seconds", [r.seconds for r in ledger]),
    ]
    if any(r.cost_usd is not None for r in ledger):
        groups.append(("usd", "USD", [r.cost_usd or 0.0 for r in ledger]))
    return groups


def _shown(metric: str, value: float) -> str:
    if metric == "usd":
        return f"${value:.4f}"
    if metric == "seconds":
        return f"{value:.3g} s"
    return f"{value:,.0f}"


def costs_svg(ledger: Sequence[LedgerRow], roles: Sequence[str] = ()) -> str:
    """Tokens in and out, seconds and (when priced) dollars per speaker of ``ledger``.

    ``roles``: the header's role names in order, so each agent has its timeline colour."""
    rows = list(ledger)[:MAX_ROWS]
    others = [row.speaker for row in rows if row.speaker not in roles]
    order = [*roles, *others]
    bar, gap = 14, 12
    groups = _metrics(rows)
    height = TOP + len(groups) * (18 + len(rows) * bar + gap) + 10
    body: list[str] = []
    y = TOP
    for metric, title, values in groups:
        top = max(values, default=0.0) or 1.0
        body.append(f'<text x="8" y="{y + 11}" font-weight="bold">{title}</text>')
        y += 18
        for row, value in zip(rows, values, strict=True):
            length = value / top * (WIDTH - LABEL - 110)
            colour = COLOURS[order.index(row.speaker) % len(COLOURS)]
            body.append(
                f'<text x="16" y="{y + bar - 3}">{svg_text(row.speaker)}</text>'
                f'<rect class="cost {metric}" data-value="{value:g}" x="{LABEL}" y="{y}" '
                f'width="{length:.1f}" height="{bar - 2}" fill="{colour}"/>'
                f'<text x="{LABEL + length + 4:.1f}" y="{y + bar - 3}">'
                f"{_shown(metric, value)}</text>"
            )
            y += bar
        y += gap
    return svg_frame(height, "What each agent cost", body)
