"""A user's documents collection: the passages, written, listed, removed and searched.

Owns: writing a converted file's passages (replacing an earlier version, all or nothing),
listing and removing documents, and the document half of a search (dense and BM25 rankings
fused by rank), all scoped to one owner. Does not own: reading files into passages
(passages.py), the owner rule itself (scope.py), the debate's turns nor the merge of turns and
passages (store.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Metadata

from roundtable.common.errors import InfraError
from roundtable.common.owners import owner_key
from roundtable.memory import scope
from roundtable.memory.backend import infra
from roundtable.memory.documents import Document
from roundtable.memory.hits import DocumentEntry, Hit, hit_of, hits_of
from roundtable.memory.lexical import Bm25, rrf
from roundtable.memory.passages import Passage, PassageMetadata

LEXICAL_WEIGHT = 1.0
"""BM25's weight in the fusion, against 1 for the dense ranking (chosen on the retrieval set)."""
LEXICAL_DEPTH = 3
"""How many of BM25's confident hits join the fusion (more let common words reorder it)."""
PAGE = 5_000
"""Entries per read when a whole collection is read."""


class Shelf:
    """The passages of one owner's documents (``scope.documents_of``); every read is checked
    against that owner too.

    ``write_lock`` is the store's (one write sequence at a time); ``batch`` is the client's
    largest write.
    """

    def __init__(
        self,
        collection: Collection,
        embedding_function: EmbeddingFunction[Documents],
        write_lock: threading.Lock,
        batch: int,
    ) -> None:
        self.collection = collection
        self._ef = embedding_function
        self._write_lock = write_lock
        self._batch = batch
        self._lock = threading.Lock()
        self._lexical: dict[str, Bm25] = {}  # by owner key; emptied on every write

    def write(self, document: Document, passages: list[Passage], owner: str | None) -> None:
        """Store ``document``'s passages for ``owner`` (its earlier version's are replaced)."""
        documents = self.collection
        ids = [scope.document_id(owner, p.source, document.sha256, p.position) for p in passages]
        with infra("reading stored passages"):
            found = documents.get(where=scope.where(owner, source=document.source), include=[])
        old = set(found["ids"])
        if old == set(ids):
            return  # the same content is stored already
        embeddings = self._ef([p.embedding_text() for p in passages])
        metadatas = [cast(Metadata, _metadata(p, document, owner)) for p in passages]
        with self._write_lock:
            self._forget_lexical()
            written: list[str] = []
            try:
                with infra("writing document passages"):
                    for start in range(0, len(ids), self._batch):
                        end = start + self._batch
                        documents.upsert(
                            ids=ids[start:end],
                            embeddings=embeddings[start:end],
                            documents=[p.text for p in passages[start:end]],
                            metadatas=metadatas[start:end],
                        )
                        written.extend(ids[start:end])
            except InfraError:
                with contextlib.suppress(Exception):
                    if written:
                        documents.delete(ids=sorted(set(written) - old))
                raise
            stale = sorted(old - set(ids))
            if stale:
                with infra("removing the passages of the earlier version"):
                    documents.delete(ids=stale)

    def entries(self, owner: str | None) -> list[DocumentEntry]:
        """Each of ``owner``'s documents: its source, how many passages, its content hash."""
        counts: dict[tuple[str, str], int] = {}
        for page in _pages(self.collection, ["metadatas"], scope.where(owner)):
            for meta in page["metadatas"] or []:
                key = (str((meta or {}).get("source", "")), str((meta or {}).get("sha256", "")))
                counts[key] = counts.get(key, 0) + 1
        return [
            DocumentEntry(source=source, sha256=sha, passages=n)
            for (source, sha), n in sorted(counts.items())
        ]

    def remove(self, source: str, owner: str | None) -> int:
        """Forget ``owner``'s passages of ``source`` (as listed, or a path); how many."""
        names = {source, str(Path(source).resolve())}
        removed = 0
        with self._write_lock, infra(f"removing {source}"):
            self._forget_lexical()
            for name in sorted(names):
                ids = self.collection.get(where=scope.where(owner, source=name), include=[])["ids"]
                if ids:
                    self.collection.delete(ids=ids)
                    removed += len(ids)
        return removed

    def search(
        self,
        queries: Sequence[str],
        vectors: Any,
        k: int,
        floor: float,
        excluded: frozenset[str],
        owner: str | None,
    ) -> list[Hit]:
        """``owner``'s passages by fused dense and BM25 rank; score: best cosine over queries."""
        documents = self.collection
        depth = max(4 * k, 20)
        rankings: list[tuple[float, list[str]]] = []
        found: dict[str, Hit] = {}
        with infra(f"searching {documents.name}"):
            result = documents.query(  # the owner's collection: no costly where filter
                query_embeddings=vectors,
                n_results=depth,
                include=["documents", "metadatas", "distances"],
            )
        for row in range(len(queries)):
            hits = hits_of(result, row, keep=lambda meta: scope.is_owners(meta, owner))
            rankings.append((1.0, [h.id for h in hits]))
            for hit in hits:
                if hit.id not in found or hit.score > found[hit.id].score:
                    found[hit.id] = hit
        lexical = self._lexical_index(owner)
        rankings.extend((LEXICAL_WEIGHT, lexical.confident(q, LEXICAL_DEPTH)) for q in queries)
        fused = [i for i in rrf(rankings) if i not in excluded][: 2 * depth]
        missing = [i for i in fused if i not in found]
        if missing:
            with infra(f"reading {documents.name}"):
                got = documents.get(
                    ids=missing,
                    where=scope.where(owner),
                    include=["documents", "metadatas", "embeddings"],
                )
            query_matrix = np.asarray(vectors, dtype=np.float32)
            for id_, text, meta, vector in zip(
                got["ids"],
                got["documents"] or [],
                got["metadatas"] or [],
                [] if got["embeddings"] is None else list(got["embeddings"]),
                strict=True,
            ):
                cosine = float(np.max(query_matrix @ np.asarray(vector, dtype=np.float32)))
                found[id_] = hit_of(id_, text, meta, cosine)
        return [found[i] for i in fused if i in found and found[i].score >= floor][:k]

    def _lexical_index(self, owner: str | None) -> Bm25:
        """The BM25 index of ``owner``'s passages, built on its first search after a write."""
        key = owner_key(owner)
        with self._lock:
            index = self._lexical.get(key)
        if index is None:
            ids: list[str] = []
            texts: list[str] = []
            for page in _pages(self.collection, ["documents", "metadatas"], scope.where(owner)):
                ids.extend(page["ids"])
                pairs = zip(page["documents"] or [], page["metadatas"] or [], strict=True)
                texts.extend(_embedding_text(text or "", meta) for text, meta in pairs)
            index = Bm25(ids, texts)
            with self._lock:
                self._lexical[key] = index
        return index

    def _forget_lexical(self) -> None:
        with self._lock:
            self._lexical.clear()


def _metadata(passage: Passage, document: Document, owner: str | None) -> dict[str, Any]:
    meta = PassageMetadata(
        source=passage.source,
        position=passage.position,
        line=passage.line,
        sha256=document.sha256,
        page=passage.page,
        heading=passage.heading,
    ).as_chroma()
    return scope.stamp(meta, owner)


def _pages(collection: Collection, include: list[Any], where: scope.Where) -> Iterator[Any]:
    """Every entry of ``collection`` that ``where`` keeps, a page at a time (one read of all
    fails at ~100k: "too many SQL variables")."""
    offset = 0
    while True:
        with infra(f"reading {collection.name}"):
            page = collection.get(include=include, where=where, limit=PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def _embedding_text(text: str, meta: Any) -> str:
    """What a stored passage was embedded as (its heading, then its text): BM25 reads it too."""
    heading = (meta or {}).get("heading")
    return f"{heading}\n{text}" if heading and not text.lstrip().startswith("#") else text
