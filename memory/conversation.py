"""A conversation's own collection: its name, when it is made, and what it starts with.

Every message and pruned turn goes to its owner's archive; a conversation gets a collection of
its own only once one of its turns is pruned, because Chroma keeps the index of every
collection it has opened in memory (about 2.5 MB each, released only past its file-handle
limit / 5 of them): one collection per conversation grew a long-running server by that much
per run, for good. Made, it starts with the conversation's entries so far, copied from the
archive (one filtered read, once), and is written alongside the archive from then on. Until
then, a search of the conversation reads the archive with a filter (the debate never does: it
searches its conversation only once a turn was pruned from the speaker's prompt).

Owns: the naming and the seeding. Does not own: when entries are written or searched
(store.py, turns.py), nor the owner rule (scope.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from chromadb.api.models.Collection import Collection

from roundtable.memory import scope

PREFIX = "roundtable-conv-"


def collection_name(conversation_id: str) -> str:
    """The collection of one conversation (hashed: ids may hold characters Chroma refuses)."""
    return PREFIX + hashlib.sha256(conversation_id.encode()).hexdigest()[:32]


def seed(made: Collection, archive: Collection, conversation_id: str, owner: str | None) -> None:
    """Copy the conversation's entries so far from ``archive`` into its new collection."""
    so_far = archive.get(
        where=scope.where(owner, conversation_id=conversation_id),
        include=["embeddings", "documents", "metadatas"],
    )
    if so_far["ids"]:
        made.upsert(
            ids=so_far["ids"],
            embeddings=so_far["embeddings"],
            documents=so_far["documents"],
            metadatas=so_far["metadatas"],
        )


def count(archives: Iterable[Collection]) -> int:
    """How many conversations have entries in ``archives`` (a full read: not per turn)."""
    found = {
        (metadata or {}).get("conversation_id")
        for archive in archives
        for metadata in archive.get(include=["metadatas"])["metadatas"] or []
    }
    return len(found - {None})
