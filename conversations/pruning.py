"""Which messages a prompt keeps: a pure function of token counts, pinned indices and a budget.

Owns the pruning rule and ``shrink`` (cut one text to a token count with any counter).
The rule: keep every pinned message; then, walking back from the newest, keep messages while
they fit and stop at the first that does not, so the kept turns are the pinned ones plus one
unbroken run of the latest turns (no holes in the recent conversation). When anything is
dropped, the caller's one-line note about it is charged too. When the pinned messages alone
overflow, the longest is cut down (then the next longest...) instead of overflowing.

Pruning in blocks: with ``start`` (where the previous call's run began) the run never starts
earlier, and stays where it was while it still fits; when it must move, it moves far enough to
leave ``slack`` tokens free. The prompt's beginning is then the same from one prune to the
next, so a model server (or llama.cpp) reuses what it read last time instead of re-reading a
conversation that slides by one turn each call.

Does not own: counting (the caller passes per-message counts it has cached, overhead
included), message types, the note's wording, shared memory. With ``total`` given, a call
costs O(kept), whatever the length of the conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

ELLIPSIS = "…"
"""Marks where ``shrink`` cut a text."""


@dataclass(frozen=True)
class PruneResult:
    """What to send: indices into the counts, ascending, and the tokens they take."""

    kept: tuple[int, ...]
    size: int
    """How many messages there were."""
    tokens_before: int
    """All messages, nothing pruned."""
    tokens_after: int
    """Kept messages (cut ones at their allowance) plus the note when anything was dropped."""
    budget: int
    marker: int = 0
    """Tokens charged for the note about dropped messages: 0 when nothing was dropped."""
    truncated: tuple[tuple[int, int], ...] = ()
    """(index, allowance): pinned messages the caller must cut to that many tokens."""

    @property
    def dropped_count(self) -> int:
        return self.size - len(self.kept)

    @property
    def run_start(self) -> int:
        """Where the newest run of kept messages starts: everything unpinned before it is
        dropped (the ``start`` of the next prune in blocks)."""
        start = self.size
        for index in reversed(self.kept):
            if index != start - 1:
                break
            start = index
        return start

    @cached_property
    def dropped(self) -> tuple[int, ...]:
        """Indices left out, ascending. Built on first use: it is O(conversation length)."""
        kept = frozenset(self.kept)
        return tuple(i for i in range(self.size) if i not in kept)


def prune(
    counts: Sequence[int],
    *,
    budget: int,
    pinned: Collection[int],
    marker: int = 0,
    floor: int = 0,
    total: int | None = None,
    start: int = 0,
    slack: int = 0,
) -> PruneResult:
    """Keep the pinned messages, then the newest that fit in ``budget`` tokens.

    ``marker`` is the cost of the note that replaces dropped messages (charged only when
    something is dropped); ``floor`` the fewest tokens a pinned message can be cut to;
    ``total`` the sum of ``counts`` when the caller keeps it (else it is summed here, O(n));
    ``start`` and ``slack`` prune in blocks (see the module docstring).
    Raises ValueError for a pinned index out of range, or when even the pinned messages cut
    to ``floor`` cannot fit.
    """
    size = len(counts)
    pins = _check_pins(pinned, size)
    before = sum(counts) if total is None else total
    start = min(max(start, 0), size)
    if before <= budget and start == 0:
        return PruneResult(tuple(range(size)), size, before, before, budget)
    pinned_tokens = sum(counts[i] for i in pins)
    if pinned_tokens + marker > budget:
        return _truncate(counts, pins, budget=budget, marker=marker, floor=floor, before=before)
    # Something is dropped: the note is always charged here.
    room = budget - marker - pinned_tokens
    unpinned = frozenset(pins)
    held = sum(counts[i] for i in range(start, size) if i not in unpinned)
    if start and held <= room:  # the previous run still fits: keep its beginning
        used = held
    else:
        start, used = _newest_run(counts, unpinned, room=max(room - slack, 0), first=start)
        if used == 0 and room > 0:  # nothing fit inside the slack: use the whole room
            start, used = _newest_run(counts, unpinned, room=room, first=start)
    kept = tuple(i for i in pins if i < start) + tuple(range(start, size))
    return PruneResult(kept, size, before, pinned_tokens + used + marker, budget, marker)


def _check_pins(pinned: Collection[int], size: int) -> tuple[int, ...]:
    pins = tuple(sorted(set(pinned)))
    if pins and (pins[0] < 0 or pins[-1] >= size):
        raise ValueError(f"pinned indices {pins} out of range for {size} messages")
    return pins


def _newest_run(
    counts: Sequence[int], pins: Collection[int], *, room: int, first: int = 0
) -> tuple[int, int]:
    """Where the unbroken run of newest unpinned messages that fit in ``room`` starts (never
    before ``first``)."""
    used = 0
    start = len(counts)
    while start > first:
        index = start - 1
        if index not in pins:
            if used + counts[index] > room:
                break
            used += counts[index]
        start = index
    return start, used


def _truncate(
    counts: Sequence[int],
    pins: tuple[int, ...],
    *,
    budget: int,
    marker: int,
    floor: int,
    before: int,
) -> PruneResult:
    """Only the pinned messages, the longest cut down first until they fit."""
    size = len(counts)
    charge = marker if len(pins) < size else 0
    allowance = {i: counts[i] for i in pins}
    excess = sum(allowance.values()) + charge - budget
    for index in sorted(pins, key=lambda i: (-counts[i], i)):
        if excess <= 0:
            break
        cut = min(excess, max(0, allowance[index] - floor))
        allowance[index] -= cut
        excess -= cut
    if excess > 0:
        raise ValueError(
            f"budget of {budget} tokens cannot hold {len(pins)} pinned messages even cut to "
            f"{floor} tokens each (plus {charge} for the note)"
        )
    truncated = tuple((i, allowance[i]) for i in pins if allowance[i] < counts[i])
    after = sum(allowance.values()) + charge
    return PruneResult(pins, size, before, after, budget, charge, truncated)


def shrink(
    text: str,
    max_tokens: int,
    counter: Callable[[str], int],
    *,
    keep: Literal["start", "end"] = "start",
) -> str:
    """``text`` cut so that ``counter`` gives at most ``max_tokens``, marked with an ellipsis.

    ``keep="start"`` keeps the beginning (``"abc…"``), ``"end"`` the end (``"…xyz"``).
    Binary search on characters, O(log len) counts; the result is always checked with
    ``counter``, so it fits even where a longer piece would count fewer tokens. Returns the
    text unchanged when it fits, and ``""`` when not even the ellipsis fits.
    """
    if counter(text) <= max_tokens:
        return text

    def piece(length: int) -> str:
        if keep == "start":
            return text[:length] + ELLIPSIS
        return ELLIPSIS + text[len(text) - length :]

    if counter(piece(0)) > max_tokens:
        return ""
    low, high = 0, len(text) - 1  # piece(low) fits; piece(len(text)) does not matter
    while low < high:
        middle = (low + high + 1) // 2
        if counter(piece(middle)) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return piece(low)
