"""Lexical ranking of document passages: BM25 over words, and reciprocal rank fusion.

Owns: the in-memory BM25 index of the documents collection (built from the stored passages on
the first search after a write) and ``rrf``, the fusion of several rankings. Does not own:
reading the collection (store.py) nor dense scores.

Why our own BM25 rather than a package or Chroma's: embedded Chroma 1.5 offers full-text search
only as a ``$contains`` filter (no ranking; its sparse and BM25 search is a Chroma Cloud API), and
the index needed is small (words of the documents' passages, never the debate's turns), about
sixty lines with no new dependency. A name, a number or a rare term that MiniLM blurs ranks
first here; fused by rank, neither score's scale has to be trusted.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"\w+")
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "their",
        "there",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    }
)
CONFIDENT_SHARE = 0.5
RRF_K = 60
"""The usual constant of reciprocal rank fusion (Cormack et al., 2009)."""


def words(text: str) -> list[str]:
    """Lower-case word stems: stop words dropped, a plural ``s`` cut from longer words."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        out.append(word[:-1] if len(word) > 4 and word.endswith("s") else word)
    return out


class Bm25:
    """Okapi BM25 over a fixed set of passages (rebuilt, not updated, when they change)."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], k1: float = 1.2, b: float = 0.75):
        self._ids = list(ids)
        self._k1, self._b = k1, b
        self._lengths: list[int] = []
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, text in enumerate(texts):
            counts = Counter(words(text))
            self._lengths.append(sum(counts.values()))
            for word, count in counts.items():
                self._postings[word].append((index, count))
        self._average = sum(self._lengths) / len(self._lengths) if self._lengths else 0.0

    def __len__(self) -> int:
        return len(self._ids)

    def confident(self, query: str, n: int, share: float = CONFIDENT_SHARE) -> list[str]:
        """Ids of the ``n`` best hits whose score is at least ``share`` of the query's best
        possible (every query word matched once in a passage of average length)."""
        ceiling = sum(self._idf(word) for word in set(words(query)))
        return [id_ for id_, score in self.search(query, n) if score >= share * ceiling]

    def _idf(self, word: str) -> float:
        matches = len(self._postings.get(word, ()))
        return math.log(1 + (len(self._ids) - matches + 0.5) / (matches + 0.5))

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """The ``n`` best (id, score) with a positive score, best first."""
        scores: dict[int, float] = defaultdict(float)
        total = len(self._ids)
        for word in set(words(query)):
            postings = self._postings.get(word, [])
            if not postings:
                continue
            idf = math.log(1 + (total - len(postings) + 0.5) / (len(postings) + 0.5))
            for index, count in postings:
                norm = 1 - self._b + self._b * self._lengths[index] / (self._average or 1)
                scores[index] += idf * count * (self._k1 + 1) / (count + self._k1 * norm)
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:n]
        return [(self._ids[index], score) for index, score in best]


def rrf(rankings: Iterable[tuple[float, Sequence[str]]]) -> list[str]:
    """Ids ordered by weighted reciprocal rank fusion of (weight, ranking) pairs (ties by id)."""
    fused: dict[str, float] = defaultdict(float)
    for weight, ranking in rankings:
        for rank, id_ in enumerate(ranking, start=1):
            fused[id_] += weight / (RRF_K + rank)
    return sorted(fused, key=lambda id_: (-fused[id_], id_))
