"""What a memory search returns, and how results from several collections are merged.

Owns: the `Hit` record (the one shape a search result has outside this package), the `Kind` of
entry, `merge_hits`, the pure ranking step that joins per-collection results, and ``hits_of``,
which reads Chroma's answer into hits (score = cosine = 1 - distance). Does not own: querying
ChromaDB (store.py, shelf.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["message", "document", "pruned"]
"""A committed debate message, a passage of a user's document, or a turn pruned from a prompt."""


class Hit(BaseModel):
    """One retrieved entry.

    ``score`` is the cosine similarity between the query and the entry, clamped to [0, 1].
    Message and pruned hits carry ``conversation_id``, ``speaker`` and ``turn``; document hits
    carry ``source`` (the file's path) and ``position`` (the passage's ordinal in that file).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    text: str
    kind: Kind
    score: float = Field(ge=0.0, le=1.0)
    source: str | None = None
    position: int | None = None
    page: int | None = None
    heading: str | None = None
    line: int | None = None
    conversation_id: str | None = None
    speaker: str | None = None
    turn: int | None = None
    at: datetime | None = None


class DocumentEntry(BaseModel):
    """A document in the store: its source path, content hash and number of passages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    sha256: str
    passages: int


class MemoryStats(BaseModel):
    """How many entries the store holds, by kind, and in how many conversations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: int
    document: int
    pruned: int
    conversations: int


def merge_hits(
    candidates: Iterable[Hit],
    *,
    k: int,
    min_score: float,
    exclude_ids: Iterable[str] = (),
) -> list[Hit]:
    """The best ``k`` distinct hits at or above ``min_score`` that are not in ``exclude_ids``.

    The same id may come from two collections (a conversation's own and the archive): the
    higher-scored copy wins. Ties are broken by id so the order is deterministic.
    """
    excluded = set(exclude_ids)
    best: dict[str, Hit] = {}
    for hit in candidates:
        if hit.id in excluded or hit.score < min_score:
            continue
        kept = best.get(hit.id)
        if kept is None or hit.score > kept.score:
            best[hit.id] = hit
    ranked = sorted(best.values(), key=lambda h: (-h.score, h.id))
    return ranked[:k]


def interleave(first: Sequence[Hit], second: Sequence[Hit], k: int) -> list[Hit]:
    """Up to ``k`` hits taking from the two ranked lists in turn, the higher-scored head first.

    Neither list can fill every place while the other has hits: documents keep about half
    the places however many turns resemble the question.
    """
    queues = [list(first), list(second)]
    if queues[0] and queues[1] and queues[1][0].score > queues[0][0].score:
        queues.reverse()
    out: list[Hit] = []
    seen: set[str] = set()
    turn = 0
    while len(out) < k and (queues[0] or queues[1]):
        queue = queues[turn % 2] or queues[(turn + 1) % 2]
        hit = queue.pop(0)
        if hit.id not in seen:
            seen.add(hit.id)
            out.append(hit)
        turn += 1
    return out


def hits_of(result: Any, row: int = 0, keep: Callable[[Any], bool] | None = None) -> list[Hit]:
    """Chroma's answer to query ``row`` as hits; score = cosine similarity = 1 - distance.
    ``keep``: which entries' metadata may become hits (the rest are left out)."""
    ids: Sequence[str] = result["ids"][row]
    texts = (result.get("documents") or [[]])[row]
    metadatas = (result.get("metadatas") or [[]])[row]
    distances = (result.get("distances") or [[]])[row]
    return [
        hit_of(id_, text, meta, 1.0 - float(distance))
        for id_, text, meta, distance in zip(ids, texts, metadatas, distances, strict=True)
        if keep is None or keep(meta)
    ]


def hit_of(id_: str, text: str | None, meta: Any, cosine: float) -> Hit:
    """One stored entry (its text and metadata) as a hit of score ``cosine``, clamped."""
    meta = meta or {}
    kind: Kind = meta.get("kind", "message")
    at = meta.get("at")
    return Hit(
        id=id_,
        text=text or "",
        kind=kind,
        score=min(1.0, max(0.0, cosine)),
        source=meta.get("source"),
        position=meta.get("position"),
        page=meta.get("page"),
        heading=meta.get("heading"),
        line=meta.get("line"),
        conversation_id=meta.get("conversation_id"),
        speaker=meta.get("speaker"),
        turn=meta.get("turn"),
        at=datetime.fromisoformat(at) if isinstance(at, str) else None,
    )
