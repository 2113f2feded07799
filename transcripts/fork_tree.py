"""Forks as a tree of transcripts: which conversation was forked from which, at which turn.

``family`` finds the tree that holds one transcript (its first ancestor, and every fork below
it); ``forest`` lays out every transcript of a list, each tree under its root. Both take the
summaries of *one person's* transcripts (``catalogue.owned``) and never look further: a parent
that is not in the list (another user's, deleted, unreadable) is dropped, and its child becomes
a root, so another user's transcript never appears, not even its question. Headers come from
files that may be hostile: a self-parent or a cycle of parents is broken by a visited set (each
transcript is placed once), the walk is iterative (a chain of thousands of forks cannot overflow
the stack), and at most ``MAX_NODES`` are placed.

``fork_svg`` draws a family as an indented tree, one row per transcript (its question cut
short, or for a fork what the person said where it branched off; its turns, its stop, the turn
it was forked at), the current one outlined and said to be "this one". Hand-written SVG like
``pictures``: every text XML-escaped and cut short. Owns only the shape and the drawing; where
it is shown is the UI's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from roundtable.transcripts.catalogue import TranscriptSummary
from roundtable.transcripts.pictures import svg_frame, svg_text

__all__ = ["MAX_NODES", "ForkNode", "family", "forest", "fork_svg"]

MAX_NODES = 60
"""At most this many transcripts are placed in one tree or forest."""
ROW, TOP, INDENT, MAX_INDENT = 34, 34, 22, 12
"""Row height, top margin, the indent per level and the deepest level drawn further right."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ForkNode:
    """One placed transcript: how deep it is in its tree, and the row it was forked from."""

    summary: TranscriptSummary
    depth: int
    parent: int | None
    """Index in the list of the transcript it was forked from (None: a root)."""


def _links(
    summaries: Sequence[TranscriptSummary],
) -> tuple[dict[str, TranscriptSummary], dict[str, str], dict[str, list[str]]]:
    """(each transcript by id, each one's parent when listed, each one's children)."""
    by_id: dict[str, TranscriptSummary] = {}
    for summary in summaries:
        if summary.problem is None and summary.conversation_id:
            by_id.setdefault(summary.conversation_id, summary)
    parents = {
        cid: s.parent
        for cid, s in by_id.items()
        if s.parent is not None and s.parent in by_id and s.parent != cid
    }
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    for kids in children.values():  # the order they were forked in
        kids.sort(key=lambda cid: (by_id[cid].created_at is None, by_id[cid].created_at or _EPOCH))
    return by_id, parents, children


def _walk(
    root: str,
    by_id: dict[str, TranscriptSummary],
    children: dict[str, list[str]],
    seen: set[str],
    placed: list[ForkNode],
    limit: int,
) -> None:
    """Place ``root`` and its forks, depth first, each transcript once, up to ``limit``."""
    stack: list[tuple[str, int, int | None]] = [(root, 0, None)]
    while stack and len(placed) < limit:
        cid, depth, parent = stack.pop()
        if cid in seen:
            continue  # a cycle: already placed
        seen.add(cid)
        placed.append(ForkNode(by_id[cid], depth, parent))
        here = len(placed) - 1
        stack.extend((kid, depth + 1, here) for kid in reversed(children.get(cid, [])))


def family(
    summaries: Sequence[TranscriptSummary], current: str, limit: int = MAX_NODES
) -> list[ForkNode]:
    """The tree that holds ``current``, from its first listed ancestor down; [] when
    ``current`` is not in ``summaries``."""
    by_id, parents, children = _links(summaries)
    if current not in by_id:
        return []
    root, climbed = current, {current}
    while root in parents and parents[root] not in climbed:  # a cycle ends the climb
        root = parents[root]
        climbed.add(root)
    placed: list[ForkNode] = []
    _walk(root, by_id, children, set(), placed, limit)
    return placed


def forest(summaries: Sequence[TranscriptSummary], limit: int | None = None) -> list[ForkNode]:
    """Every listed transcript once, each fork under the one it was forked from, the trees in
    the order of their roots in ``summaries`` (a cycle with no root: from its first member)."""
    by_id, parents, children = _links(summaries)
    cap = len(by_id) if limit is None else limit
    placed: list[ForkNode] = []
    seen: set[str] = set()
    roots = [cid for cid in by_id if cid not in parents]
    for cid in [*roots, *by_id]:  # then what only a cycle reaches
        if cid not in seen:
            _walk(cid, by_id, children, seen, placed, cap)
    return placed


def fork_svg(branches: Sequence[ForkNode], current: str) -> str:
    """``branches`` (``family``) as an indented tree, ``current`` outlined."""
    body: list[str] = []
    for row, branch in enumerate(branches):
        body.append(_node(branch, row, branch.summary.conversation_id == current))
    for row, branch in enumerate(branches):
        if branch.parent is not None:
            body.append(_edge(branches[branch.parent], branch.parent, branch, row))
    height = TOP + len(branches) * ROW + 12
    forks = sum(1 for b in branches if b.parent is not None)
    return svg_frame(height, f"Forks: {len(branches)} transcript(s), {forks} fork(s)", body)


def _x(branch: ForkNode) -> int:
    return 8 + min(branch.depth, MAX_INDENT) * INDENT


def _node(branch: ForkNode, row: int, mark: bool) -> str:
    s = branch.summary
    x, y = _x(branch), TOP + row * ROW
    width = 760 - 8 - x
    forked = f"forked at turn {s.fork_turn} · " if branch.parent is not None else ""
    said = s.fork_text if branch.parent is not None and s.fork_text else s.question
    facts = f"{forked}{s.turns} turn(s) · {s.stop}"
    this = " (this one)" if mark else ""
    stroke = 'stroke="#d62728" stroke-width="2.5"' if mark else 'stroke="#333333"'
    return (
        f'<g class="fork{" current" if mark else ""}" '
        f'data-conversation="{svg_text(s.conversation_id, 80)}">'
        f"<title>{svg_text(said, 200)}</title>"
        f'<rect x="{x}" y="{y}" width="{width}" height="{ROW - 6}" rx="5" '
        f'fill="{"#fdecea" if mark else "#f5f8fc"}" {stroke}/>'
        f'<text x="{x + 6}" y="{y + 12}" font-weight="bold">'
        f"{svg_text(said, max(20, width // 7 - 12))}{this}</text>"
        f'<text x="{x + 6}" y="{y + 24}" fill="#555555">{svg_text(facts, width // 6)}</text></g>'
    )


def _edge(parent: ForkNode, parent_row: int, child: ForkNode, row: int) -> str:
    """An elbow from under the parent's box to the child's left side."""
    x = _x(parent) + INDENT // 2
    y1, y2 = TOP + parent_row * ROW + ROW - 6, TOP + row * ROW + (ROW - 6) // 2
    return (
        f'<path class="forked-from" d="M{x},{y1} V{y2} H{_x(child)}" fill="none" stroke="#333333"/>'
    )
