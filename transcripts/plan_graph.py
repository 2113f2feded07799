"""The panel's plan as a graph: a node per branch, an arrow per "waits for", coloured by state.

``plan_svg`` draws each step of a ``PlanEvent`` as a box (its id, the role taking it, the start
of its sub-question) placed in a column by how deep its dependencies go, and an arrow from each
step it waits for. Each box is filled by its branch's latest state (from the ``BranchEvent``s
seen so far): planned, running, done, failed, timed out, skipped, cancelled. The state is also
written in words inside the box and in the legend, so colour is never the only sign.

Same approach as ``pictures``: hand-written SVG, every text from the transcript XML-escaped and
cut short, at most 16 steps (the plan's own bound). Dependencies on unknown steps and cycles
(a hostile transcript) are drawn without looping. Owns only the drawing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from roundtable.transcripts.events import BranchEvent, Event, PlanEvent
from roundtable.transcripts.pictures import svg_frame, svg_text
from roundtable.transcripts.records import PlanStep

__all__ = ["STATES", "plan_svg", "states_of"]

STATES: dict[str, tuple[str, str]] = {
    "planned": ("planned, waiting", "#d9d9d9"),
    "running": ("running", "#f2c14e"),
    "ok": ("done", "#59a14f"),
    "failed": ("failed", "#e15759"),
    "timeout": ("timed out", "#b07aa1"),
    "skipped": ("skipped", "#bab0ac"),
    "cancelled": ("cancelled", "#9c755f"),
}
"""Each branch state: (its words, its fill)."""
BOX_W, BOX_H, GAP_X, GAP_Y, TOP = 160, 54, 30, 14, 34


def states_of(events: Iterable[Event]) -> dict[str, str]:
    """Each branch's latest state, by step id, from the branch events seen so far."""
    states: dict[str, str] = {}
    for event in events:
        if isinstance(event, BranchEvent):
            states[event.branch] = event.status
    return states


def _depths(steps: Sequence[PlanStep]) -> dict[str, int]:
    """Each step's column: one past its deepest known dependency; a cycle stops the count."""
    known = {step.id: step for step in steps}
    depths: dict[str, int] = {}

    def depth(name: str, path: frozenset[str]) -> int:
        if name in depths:
            return depths[name]
        waits = [d for d in known[name].depends_on if d in known and d not in path]
        value = 1 + max((depth(d, path | {d}) for d in waits), default=-1)
        depths[name] = value
        return value

    for step in steps:
        depth(step.id, frozenset({step.id}))
    return depths


def _places(steps: Sequence[PlanStep]) -> dict[str, tuple[int, int]]:
    """Each step's box corner (x, y): columns by depth, rows in plan order."""
    depths = _depths(steps)
    rows: dict[int, int] = {}
    places: dict[str, tuple[int, int]] = {}
    for step in steps:
        column = min(depths[step.id], 3)  # four columns fit the width; deeper steps share the last
        row = rows.get(column, 0)
        rows[column] = row + 1
        places[step.id] = (8 + column * (BOX_W + GAP_X), TOP + row * (BOX_H + GAP_Y))
    return places


def _node(step: PlanStep, state: str, x: int, y: int) -> str:
    words, fill = STATES.get(state, STATES["planned"])
    tip = f"{step.id} ({step.role}): {step.question}"
    return (
        f'<g class="branch {svg_text(state)}" data-branch="{svg_text(step.id)}" '
        f'data-state="{svg_text(state)}">'
        f"<title>{svg_text(tip, 160)}</title>"
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
        f'stroke="#333333"/>'
        f'<text x="{x + 6}" y="{y + 14}" font-weight="bold">'
        f"{svg_text(step.id, 8)} · {svg_text(step.role)}</text>"
        f'<text x="{x + 6}" y="{y + 30}">{svg_text(step.question, 28)}</text>'
        f'<text class="state" x="{x + 6}" y="{y + 46}" font-style="italic">{words}</text></g>'
    )


def _edge(start: tuple[int, int], end: tuple[int, int]) -> str:
    x1, y1 = start[0] + BOX_W, start[1] + BOX_H // 2
    x2, y2 = end[0], end[1] + BOX_H // 2
    if x2 <= x1:  # same or earlier column (a cycle or the last column): go round underneath
        x1, y1, x2, y2 = start[0] + BOX_W // 2, start[1] + BOX_H, end[0] + BOX_W // 2, end[1]
    return (
        f'<line class="waits-for" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333333" '
        'marker-end="url(#arrow)"/>'
    )


def _legend(y: int) -> list[str]:
    body, x = [], 8
    for state, (words, fill) in STATES.items():
        body.append(
            f'<rect class="legend {state}" x="{x}" y="{y}" width="12" height="10" fill="{fill}" '
            f'stroke="#333333"/><text x="{x + 16}" y="{y + 9}">{words}</text>'
        )
        x += 22 + 6 * len(words)
    body.append(f'<text x="{x + 8}" y="{y + 9}" fill="#666666">arrow: waits for</text>')
    return body


def plan_svg(plan: PlanEvent, events: Iterable[Event] = ()) -> str:
    """The graph of ``plan``, each branch coloured by its state in ``events``."""
    steps = list(plan.steps)[:16]
    states = states_of(events)
    places = _places(steps)
    lowest = max((y for _, y in places.values()), default=TOP - BOX_H - GAP_Y)
    height = lowest + BOX_H + GAP_Y + 34
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333333"/>'
        "</marker></defs>"
    ]
    for step in steps:
        for needed in step.depends_on:
            if needed in places and needed != step.id:
                body.append(_edge(places[needed], places[step.id]))
    for step in steps:
        x, y = places[step.id]
        body.append(_node(step, states.get(step.id, "planned"), x, y))
    body.extend(_legend(height - 22))
    failed = sum(1 for s in steps if states.get(s.id) in ("failed", "timeout"))
    title = f"The {plan.mode}'s plan: {len(steps)} branch(es), {failed} failed or timed out"
    return svg_frame(height, title, body)
