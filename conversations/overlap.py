"""How much of a reply repeats text seen before: word n-gram containment.

One measure serves two callers: the copy guard, which refuses to commit a reply that mostly
repeats an earlier turn or its own instructions, and the quality report, which scores how much
each committed turn adds (distinctness). Both must agree on what "a copy" is, so the
tokenisation and the measure live here once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

N = 3
"""Word trigrams: short enough to catch a paraphrase that keeps phrases, long enough that
common pairs ("of the", "it is") do not count as copying."""

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")


def words(text: str) -> list[str]:
    """Lower-cased words, punctuation and markup dropped."""
    return [w.lower() for w in _WORD.findall(text)]


def ngrams(text: str, n: int = N) -> set[tuple[str, ...]]:
    """The set of word n-grams of ``text``; a text shorter than ``n`` words is one n-gram of
    all its words, so a one-word reply can still be a copy of that word."""
    tokens = words(text)
    if not tokens:
        return set()
    if len(tokens) < n:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def containment(text: str, earlier: Iterable[str], n: int = N) -> float:
    """The share of ``text``'s n-grams found in any of ``earlier`` (0.0 for an empty text).

    Containment, not Jaccard similarity: a reply that copies half of a long turn and adds
    nothing is a copy even though the long turn has many n-grams the reply lacks.
    """
    seen: set[tuple[str, ...]] = set()
    for other in earlier:
        seen |= ngrams(other, n)
    return contained(ngrams(text, n), seen)


def contained(mine: set[tuple[str, ...]], seen: set[tuple[str, ...]]) -> float:
    """``containment`` of n-gram sets already made (0.0 for none): for a caller measuring
    each turn of a long run against the growing set of the turns before it."""
    return len(mine & seen) / len(mine) if mine else 0.0


def distinctness(text: str, earlier: Iterable[str], n: int = N) -> float | None:
    """The share of ``text``'s n-grams that are new; None for a text without words."""
    if not ngrams(text, n):
        return None
    return 1.0 - containment(text, earlier, n)
