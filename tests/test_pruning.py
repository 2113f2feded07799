"""The pruning rule (``conversations.pruning``): whole results on small cases, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roundtable.conversations.pruning import ELLIPSIS, PruneResult, prune, shrink


def words(text: str) -> int:
    return len(text.split())


def test_everything_fits_keeps_everything() -> None:
    result = prune([3, 4, 5], budget=12, pinned={0})
    assert result == PruneResult(
        kept=(0, 1, 2), size=3, tokens_before=12, tokens_after=12, budget=12
    )
    assert result.dropped == ()
    assert result.dropped_count == 0


def test_keeps_pinned_then_the_newest_that_fit_and_charges_the_note() -> None:
    result = prune([5, 10, 10, 10, 10, 4], budget=30, pinned={0, 5}, marker=2)
    # pinned 9 + note 2 leaves 19: only index 4 fits (10), index 3 would make 20.
    assert result == PruneResult(
        kept=(0, 4, 5), size=6, tokens_before=49, tokens_after=21, budget=30, marker=2
    )
    assert result.dropped == (1, 2, 3)


def test_stops_at_the_first_turn_that_does_not_fit() -> None:
    # index 2 (50) does not fit; the small index 1 behind it is not picked: no holes.
    result = prune([1, 1, 50, 5, 5], budget=20, pinned={4})
    assert result.kept == (3, 4)
    assert result.dropped == (0, 1, 2)
    assert result.tokens_after == 10


def test_a_pinned_message_inside_the_dropped_range_is_kept() -> None:
    result = prune([2, 9, 9, 3, 9, 9, 2], budget=20, pinned={0, 3, 6})
    assert result.kept == (0, 3, 5, 6)
    assert result.dropped == (1, 2, 4)
    assert result.tokens_after == 16


def test_the_note_can_be_what_makes_it_overflow() -> None:
    # Everything is 10 <= 10 without a note; with one more token nothing fits unless dropped.
    assert prune([5, 5], budget=10, pinned={1}, marker=3).kept == (0, 1)
    result = prune([5, 6], budget=10, pinned={1}, marker=3)
    assert result.kept == (1,)
    assert result.tokens_after == 9


def test_pinned_messages_alone_too_long_cut_the_longest_first() -> None:
    result = prune([40, 5, 30, 8], budget=50, pinned={0, 2, 3}, marker=4, floor=3)
    # pinned 78 + note 4 = 82: 32 over, all taken from the longest (index 0).
    assert result == PruneResult(
        kept=(0, 2, 3),
        size=4,
        tokens_before=83,
        tokens_after=50,
        budget=50,
        marker=4,
        truncated=((0, 8),),
    )


def test_cutting_moves_on_to_the_next_longest_when_the_longest_reaches_its_floor() -> None:
    result = prune([40, 30, 8], budget=20, pinned={0, 1, 2}, floor=5)
    assert result.truncated == ((0, 5), (1, 7))
    assert result.tokens_after == 20
    assert result.marker == 0  # nothing dropped: no note


def test_impossible_budgets_and_bad_pins_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold 2 pinned messages even cut to 5 tokens"):
        prune([40, 30], budget=9, pinned={0, 1}, floor=5)
    with pytest.raises(ValueError, match=r"pinned indices \(3,\) out of range for 3 messages"):
        prune([1, 2, 3], budget=9, pinned={3})


def test_total_given_by_the_caller_is_trusted() -> None:
    assert prune([5, 5, 5], budget=20, pinned={2}, total=15).kept == (0, 1, 2)
    assert prune([5, 5, 5], budget=20, pinned={2}, total=15).tokens_before == 15


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(1, 60), min_size=1, max_size=80),
    budget=st.integers(40, 600),
    marker=st.integers(0, 10),
    data=st.data(),
)
def test_property_fits_keeps_pins_and_is_maximal(
    counts: list[int], budget: int, marker: int, data: st.DataObject
) -> None:
    size = len(counts)
    pins = data.draw(st.sets(st.integers(0, size - 1), max_size=3)) | {size - 1}
    result = prune(counts, budget=budget, pinned=pins, marker=marker, floor=1)
    cut = dict(result.truncated)
    sent = sum(cut.get(i, counts[i]) for i in result.kept)
    note = marker if result.dropped_count else 0
    assert sent + note == result.tokens_after <= budget
    assert pins <= set(result.kept)
    assert set(result.kept) | set(result.dropped) == set(range(size))
    assert result.tokens_before == sum(counts)
    if result.truncated:  # only pinned messages are ever cut, and then nothing else is kept
        assert set(result.kept) == pins
        return
    unpinned = [i for i in result.kept if i not in pins]
    if unpinned:  # one unbroken run up to the newest
        assert unpinned == [i for i in range(unpinned[0], size) if i not in pins]
    older = [i for i in result.dropped if i < (unpinned[0] if unpinned else size)]
    if older:  # the next one back would not have fitted
        assert result.tokens_after + counts[older[-1]] + (0 if note else marker) > budget


# --- shrink ---


def test_shrink_keeps_the_start_or_the_end_and_marks_the_cut() -> None:
    text = "one two three four five six"
    assert shrink(text, 3, words) == f"one two three{ELLIPSIS}"
    assert shrink(text, 3, words, keep="end") == f"{ELLIPSIS}four five six"  # "…four" is a word
    assert shrink(text, 6, words) == text
    assert shrink(text, 0, words) == ""


def test_shrink_unicode_with_a_character_counter() -> None:
    text = "汉字🙂ünï" * 10

    def chars(value: str) -> int:
        return len(value)

    short = shrink(text, 12, chars)
    assert short == text[:11] + ELLIPSIS
    assert shrink(text, 12, chars, keep="end") == ELLIPSIS + text[-11:]


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=400), limit=st.integers(0, 80))
def test_property_shrink_always_fits(text: str, limit: int) -> None:
    def tokens(value: str) -> int:  # deliberately not monotonic in length
        return len(value.encode()) // 3 + value.count("a")

    short = shrink(text, limit, tokens)
    assert tokens(short) <= limit or short == ""
    assert short == text or short.endswith(ELLIPSIS) or short == ""


def test_blocks_keep_the_previous_start_while_it_fits_then_free_the_slack() -> None:
    counts = [5] + [10] * 10  # the question, then ten turns
    first = prune(counts, budget=80, pinned={0, 10}, marker=3, slack=30)
    # 80 - 3 - 15 pinned = 62; less the slack, 32: three turns (7, 8, 9) beside the newest.
    assert first.kept == (0, 7, 8, 9, 10)
    start = 7
    for size in (12, 13, 14):  # three more turns: the run still fits from 7
        again = prune(
            [*counts, *([10] * (size - 11))],
            budget=80,
            pinned={0, size - 1},
            marker=3,
            start=start,
            slack=30,
        )
        assert again.kept[:2] == (0, 7)
    moved = prune([*counts, *([10] * 4)], budget=80, pinned={0, 14}, marker=3, start=7, slack=30)
    assert moved.kept == (0, 11, 12, 13, 14)  # moved once, far enough for three more turns
    assert moved.tokens_after <= 80


@given(
    st.lists(st.integers(1, 40), min_size=2, max_size=60),
    st.integers(60, 400),
    st.integers(0, 100),
)
@settings(max_examples=200, deadline=None)
def test_property_blocks_never_overflow_and_never_move_back(
    counts: list[int], budget: int, slack: int
) -> None:
    start = 0
    for size in range(2, len(counts) + 1):
        part = counts[:size]
        pins = {0, size - 1}
        try:
            result = prune(
                part, budget=budget, pinned=pins, marker=5, floor=1, start=start, slack=slack
            )
        except ValueError:
            return  # pinned messages that cannot fit: refused, as without blocks
        assert result.tokens_after <= budget
        if result.dropped_count and not result.truncated:
            run = [i for i in result.kept if i not in pins]
            new_start = run[0] if run else size - 1
            assert new_start >= start
            start = new_start
