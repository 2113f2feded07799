"""Scoping memory by owner: what every write stamps and every read filters on.

Owns: the ``owner`` metadata key, the Chroma ``where`` filters that restrict a read to one
owner, the upgrade that stamps entries written before owners existed (they belong to the local
user), and the owner-qualified id of a document passage. Does not own: the collections nor the
queries themselves (store.py, shelf.py).

Why a ``where`` filter and not a collection per owner: every entry also carries its owner, so
one filter is the single rule for messages, pruned turns and passages alike, including the
archive that ``include_past`` searches. A collection opened by this process is upgraded once:
its metadata records ``roundtable-owners`` after every entry has an owner.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chromadb.api.models.Collection import Collection

from roundtable.common.owners import LOCAL_USER, owner_key
from roundtable.memory.backend import infra

OWNER = "owner"
MARK = "roundtable-owners"
"""Collection metadata key: set once every entry of the collection carries an owner."""
MARK_VERSION = 1
PAGE = 5_000

Where = dict[str, Any]


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
