"""Scoping memory by owner: where each owner's entries live, what every write stamps and
every read filters on.

Owns: the ``owner`` metadata key, the name of each owner's archive and documents collection,
the Chroma ``where`` filters that restrict a read to one owner, the upgrade that stamps entries
written before owners existed (they belong to the local user), and the owner-qualified id of a
document passage. Does not own: the queries themselves (store.py, turns.py, shelf.py).

Two walls. Every entry carries its owner and every read keeps only that owner's: a ``where``
filter on the reads that are not on a turn's path (listing, removing, building the BM25 index,
a conversation's own small collection), a check of each hit's owner on the large ones. And the
large collections are per owner: each user has an archive (past conversations, for
``include_past``) and a documents collection of their own, so those searches need no ``where``
filter, which costs what the filtered set costs (measured: 2.6 ms unfiltered, 126 ms filtered
at 50k entries). The local user's are the collections from before owners, so its entries stay
where they were; an old collection is upgraded once (its metadata records
``roundtable-owners`` when every entry has an owner).
"""

from __future__ import annotations

import hashlib
from typing import Any

from chromadb.api.models.Collection import Collection

from roundtable.common.owners import LOCAL_USER, owner_key
from roundtable.memory.backend import infra

DOCUMENTS = "roundtable-documents"
ARCHIVE = "roundtable-archive"
OWNER = "owner"
MARK = "roundtable-owners"
"""Collection metadata key: set once every entry of the collection carries an owner."""
MARK_VERSION = 1
PAGE = 5_000

Where = dict[str, Any]


def archive_of(owner: str | None) -> str:
    """The collection of ``owner``'s messages and pruned turns of every conversation."""
    return _named(ARCHIVE, owner)


def documents_of(owner: str | None) -> str:
    """The collection of ``owner``'s document passages."""
    return _named(DOCUMENTS, owner)


def _named(base: str, owner: str | None) -> str:
    key = owner_key(owner)
    if key == LOCAL_USER:
        return base
    return f"{base}-u-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def is_owners(metadata: Any, owner: str | None) -> bool:
    """Whether a stored entry's metadata names ``owner`` (the check on every hit)."""
    return isinstance(metadata, dict) and metadata.get(OWNER) == owner_key(owner)


def where(owner: str | None, **equal: str) -> Where:
    """A filter for ``owner``'s entries, and each ``key == value`` of ``equal`` too."""
    clauses: list[Where] = [{OWNER: owner_key(owner)}]
    clauses.extend({key: value} for key, value in equal.items())
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def stamp(metadata: dict[str, Any], owner: str | None) -> dict[str, Any]:
    """``metadata`` with its owner set (every write goes through here)."""
    return {**metadata, OWNER: owner_key(owner)}


def document_id(owner: str | None, source: str, sha256: str, position: int) -> str:
    """A passage's id: its owner, file, that file's content and its place. The local user's
    ids are those from before owners (its stored passages keep theirs)."""
    key = owner_key(owner)
    named = source if key == LOCAL_USER else f"{key}\x00{source}"
    return f"doc:{hashlib.sha256(named.encode()).hexdigest()[:16]}:{sha256[:12]}:{position}"


def upgrade(collection: Collection) -> None:
    """Give every entry without an owner the local user's (once per collection).

    Entries written before owners existed are the local user's, as transcripts without an
    owner are. A collection made now is marked at once; an old one is read a page at a time.
    """
    if (collection.metadata or {}).get(MARK) == MARK_VERSION:
        return
    offset = 0
    while True:
        with infra(f"upgrading {collection.name}"):
            page = collection.get(include=["metadatas"], limit=PAGE, offset=offset)
        ids = page["ids"]
        if not ids:
            break
        metadatas = page["metadatas"] or []
        missing = [i for i, meta in zip(ids, metadatas, strict=True) if OWNER not in (meta or {})]
        if missing:
            with infra(f"upgrading {collection.name}"):
                collection.update(ids=missing, metadatas=[{OWNER: LOCAL_USER}] * len(missing))
        offset += len(ids)
    with infra(f"upgrading {collection.name}"):
        collection.modify(metadata={**(collection.metadata or {}), MARK: MARK_VERSION})
