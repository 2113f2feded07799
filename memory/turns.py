"""A conversation's turns as memory entries: what each carries, how it is written, how found.

Owns: the checks on a turn's ids, the metadata of a message and of a pruned turn (a pruned
turn keeps its message's time: it is the same entry, marked pruned), writing one turn to the
collections it belongs in, and querying collections for turns, each hit checked to be the
owner's, merged by score. Kept apart from ``store`` so the store is about which collections
there are and when each is used, and this about what a turn is in them.

Does not own: which collections a turn is written to or searched in, opening or caching them,
nor embedding a text (store.py); the owner rule (scope.py); a conversation's own collection
(conversation.py); the shape and ranking of hits (hits.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from chromadb.api.models.Collection import Collection
from chromadb.api.types import Embeddings, Metadata

from roundtable.memory import scope
from roundtable.memory.backend import infra
from roundtable.memory.hits import Hit, hits_of, merge_hits


def check_turn(conversation_id: str, message_id: str, turn: int) -> None:
    """Refuse a turn without a conversation id or a message id, or with a negative number."""
    if not conversation_id or not message_id:
        raise ValueError("conversation_id and message_id must not be empty")
    if turn < 0:
        raise ValueError(f"turn must be >= 0, got {turn}")


def message_metadata(
    conversation_id: str, speaker: str, turn: int, at: datetime, owner: str | None
) -> dict[str, object]:
    """What a committed message's entry carries, stamped with its owner."""
    metadata: dict[str, object] = {
        "kind": "message",
        "conversation_id": conversation_id,
        "speaker": speaker,
        "turn": turn,
        "at": at.isoformat(),
    }
    return scope.stamp(metadata, owner)


def pruned_metadata(
    collection: Collection,
    conversation_id: str,
    speaker: str,
    turn: int,
    message_id: str,
    owner: str | None,
) -> dict[str, object]:
    """What a pruned turn's entry carries: its message's time, when ``collection`` holds the
    message, is kept."""
    metadata: dict[str, object] = {
        "kind": "pruned",
        "conversation_id": conversation_id,
        "speaker": speaker,
        "turn": turn,
    }
    with infra("reading a message"):
        existing = collection.get(ids=[message_id], where=scope.where(owner), include=["metadatas"])
    for old in existing["metadatas"] or []:
        at = (old or {}).get("at")
        if isinstance(at, str):
            metadata["at"] = at
    return scope.stamp(metadata, owner)


def write(
    collections: Sequence[Collection],
    lock: threading.Lock,
    message_id: str,
    text: str,
    embeddings: Embeddings,
    metadata: dict[str, object],
) -> None:
    """Write one turn (idempotent by id) to each of ``collections``, holding ``lock``."""
    with lock, infra(f"writing message {message_id}"):
        for collection in collections:
            collection.upsert(
                ids=[message_id],
                embeddings=embeddings,
                documents=[text],
                metadatas=[cast(Metadata, metadata)],
            )


def query(
    searched: Sequence[tuple[Collection, scope.Where | None]],
    vector: Embeddings,
    *,
    k: int,
    min_score: float,
    excluded: frozenset[str],
    owner: str | None,
) -> list[Hit]:
    """The ``k`` turns of ``owner`` nearest ``vector`` in ``searched`` (each collection with
    its filter), at cosine >= ``min_score``, none in ``excluded``."""
    turns: list[Hit] = []
    for collection, where in searched:
        with infra(f"searching {collection.name}"):
            result = collection.query(
                query_embeddings=vector,
                n_results=k + len(excluded),  # excluded ids take at most that many places
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        turns.extend(hits_of(result, keep=lambda meta: scope.is_owners(meta, owner)))
    return merge_hits(turns, k=k, min_score=min_score, exclude_ids=excluded)
