"""What a memory search returns, and how results from several collections are merged.

Owns: the `Hit` record (the one shape a search result has outside this package), the `Kind` of
entry, and `merge_hits`, the pure ranking step that joins per-collection results. Does not own:
querying ChromaDB or turning its distances into scores (store.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

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
