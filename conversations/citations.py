"""Citations: the ``[n]`` in a reply, checked against the notes numbered in its prompt.

Owns: reading ``[n]`` markers from a reply and matching each to the memory hit that carried
that number in the speaker's prompt. A number with no such hit is kept as an invalid citation
(flagged, never shown as a source). Does not own: numbering the notes (recall.py) nor showing
citations (the UI, the export).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from roundtable.transcripts.events import Citation, MemoryHit

_CITE = re.compile(r"\[(\d{1,3})\]")
MAX_CITATIONS = 100


def find_citations(content: str, hits: Sequence[MemoryHit]) -> list[Citation]:
    """Each distinct ``[n]`` of ``content`` in order, valid when note ``n`` was in the prompt."""
    numbered = {hit.n: hit for hit in hits if hit.n is not None}
    citations: list[Citation] = []
    seen: set[int] = set()
    for match in _CITE.finditer(content):
        n = int(match.group(1))
        if n < 1 or n in seen or len(citations) >= MAX_CITATIONS:
            continue
        seen.add(n)
        hit = numbered.get(n)
        citations.append(Citation(n=n, hit_id=hit.id if hit else None, valid=hit is not None))
    return citations


def cited_hits(citations: Sequence[Citation], hits: Sequence[MemoryHit]) -> list[MemoryHit]:
    """The hits the valid citations point to, in citation order."""
    by_id = {hit.id: hit for hit in hits}
    return [by_id[c.hit_id] for c in citations if c.valid and c.hit_id in by_id]
