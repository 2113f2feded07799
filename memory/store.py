"""The retrieval memory: what the debate remembers and how it is searched.

Owns: the layout of collections, writing messages, pruned turns and document passages, searching
them scoped to a conversation, and running calls off the event loop. Does not own: opening
ChromaDB and checking collections (backend.py), how vectors are computed (embedding.py), how
files become passages (passages.py), the shape and ranking of results (hits.py), nor when the
debate writes or searches (the conversations package).

Layout, so that scoping never pays for a metadata ``where`` filter (~200 ms at 100k entries):

* ``roundtable-conv-<hash>``: one collection per conversation, its messages and pruned turns;
* ``roundtable-archive``: every message and pruned turn of every conversation, so past
  conversations are searched with one query;
* ``roundtable-documents``: the passages of the user's documents.

A search queries at most two collections (the conversation's own or the archive, and the
documents) and merges them by score. Message ids must be unique across conversations: the
archive holds them all under their own ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import numpy as np
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Metadata

from roundtable.common.errors import ConfigError, InfraError
from roundtable.memory.backend import (
    DirectoryLock,
    close_client,
    connect,
    infra,
    open_collection,
    open_embedded,
)
from roundtable.memory.documents import DEFAULT_MAX_BYTES, Document
from roundtable.memory.embedding import MiniLMEmbedding
from roundtable.memory.hits import DocumentEntry, Hit, Kind, MemoryStats, interleave, merge_hits
from roundtable.memory.lexical import Bm25, rrf
from roundtable.memory.passages import (
    DEFAULT_MAX_TOKENS,
    Passage,
    PassageMetadata,
    TokenCounter,
    estimate_tokens,
    load_documents,
)

DOCUMENTS = "roundtable-documents"
ARCHIVE = "roundtable-archive"
CONVERSATION_PREFIX = "roundtable-conv-"

LEXICAL_WEIGHT = 1.0
"""BM25's weight in the fusion, against 1 for the dense ranking (chosen on the retrieval set)."""
LEXICAL_DEPTH = 3
"""How many of BM25's confident hits join the fusion (more let common words reorder it)."""

PAGE = 5_000
"""Entries per read when a whole collection is read."""

T = TypeVar("T")


def conversation_collection(conversation_id: str) -> str:
    """The collection of one conversation (hashed: ids may hold characters Chroma refuses)."""
    return CONVERSATION_PREFIX + hashlib.sha256(conversation_id.encode()).hexdigest()[:32]


def _document_id(source: str, sha256: str, position: int) -> str:
    """A passage's id: its file, that file's content and its place (a changed file: new ids)."""
    return f"doc:{hashlib.sha256(source.encode()).hexdigest()[:16]}:{sha256[:12]}:{position}"


class MemoryStore:
    """Retrieval memory over ChromaDB for the debate.

    Give ``path`` for an embedded store in that directory (one process owns it: another
    process opening it gets an InfraError at once) or ``url`` for a Chroma server
    (``chroma run --host 127.0.0.1``). The embedding function defaults to the offline MiniLM;
    a store's collections are refused with a ConfigError when made with another one.

    The ``a*`` methods queue the call on one worker thread when they are called (from a
    running event loop) and return an awaitable future: a write need not hold up the debate's
    turn, calls run in the order they were made, so a search sees every write queued before
    it, and ``flush()`` waits for everything queued so far. A write's error is raised where
    its future is awaited.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        url: str | None = None,
        embedding_function: EmbeddingFunction[Documents] | None = None,
        max_document_bytes: int = DEFAULT_MAX_BYTES,
        passage_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if (path is None) == (url is None):
            raise ConfigError("memory: give exactly one of a store path or a server url")
        self._ef = embedding_function or MiniLMEmbedding()
        self._max_document_bytes = max_document_bytes
        self._passage_tokens = passage_tokens
        counter = getattr(self._ef, "count_tokens", None)
        self._count_tokens: TokenCounter = counter if callable(counter) else estimate_tokens
        self._lock = threading.RLock()  # guards the collection cache and closing
        self._write_lock = threading.Lock()  # one write sequence at a time
        self._collections: dict[str, Collection] = {}
        self._lexical: Bm25 | None = None  # of the documents; None: rebuild on next search
        self._directory_lock: DirectoryLock | None = None
        self._closed = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory-writer")
        self.location = str(path) if path is not None else str(url)
        try:
            if path is not None:
                self._directory_lock = DirectoryLock(Path(path))
                self._client = open_embedded(Path(path))
            else:
                assert url is not None
                self._client = connect(url)
            # Check the shared collections now: a mismatch is a start-up error.
            self._collection(DOCUMENTS, create=True)
            self._collection(ARCHIVE, create=True)
        except BaseException:
            self.close()
            raise

    def _collection(self, name: str, *, create: bool) -> Collection | None:
        """The named collection, opened and checked once."""
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            if collection is None:
                collection = open_collection(
                    self._client, name, self._ef, create=create, location=self.location
                )
                if collection is not None:
                    self._collections[name] = collection
            return collection

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"memory store {self.location} is closed")

    # -- writing -------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: str,
        speaker: str,
        turn: int,
        at: datetime,
        text: str,
        message_id: str,
    ) -> None:
        """Remember a committed message of a conversation (idempotent by ``message_id``)."""
        _check_turn(conversation_id, message_id, turn)
        metadata: dict[str, str | int | float | bool] = {
            "kind": "message",
            "conversation_id": conversation_id,
            "speaker": speaker,
            "turn": turn,
            "at": at.isoformat(),
        }
        self._write_turn(conversation_id, message_id, text, metadata)

    def add_pruned(
        self, conversation_id: str, speaker: str, turn: int, text: str, message_id: str
    ) -> None:
        """Remember a turn that pruning removed from a prompt.

        It shares its message's id: the stored entry is marked pruned (keeping the message's
        time) rather than kept twice.
        """
        _check_turn(conversation_id, message_id, turn)
        metadata: dict[str, str | int | float | bool] = {
            "kind": "pruned",
            "conversation_id": conversation_id,
            "speaker": speaker,
            "turn": turn,
        }
        collection = self._collection(conversation_collection(conversation_id), create=True)
        assert collection is not None
        with infra("reading a message"):
            existing = collection.get(ids=[message_id], include=["metadatas"])
        for old in existing["metadatas"] or []:
            at = (old or {}).get("at")
            if isinstance(at, str):
                metadata["at"] = at
        self._write_turn(conversation_id, message_id, text, metadata)

    def _write_turn(
        self,
        conversation_id: str,
        message_id: str,
        text: str,
        metadata: dict[str, str | int | float | bool],
    ) -> None:
        if not text.strip():
            return  # nothing to find: an empty message is not remembered
        conversation = self._collection(conversation_collection(conversation_id), create=True)
        archive = self._collection(ARCHIVE, create=True)
        assert conversation is not None and archive is not None
        embeddings = self._ef([text])
        with self._write_lock, infra(f"writing message {message_id}"):
            for collection in (archive, conversation):
                collection.upsert(
                    ids=[message_id],
                    embeddings=embeddings,
                    documents=[text],
                    metadatas=[cast(Metadata, metadata)],
                )

    def add_documents(
        self, paths: Iterable[Path | str], *, extra: dict[str, str] | None = None
    ) -> list[Passage]:
        """``add_files``, returning every passage of every file in order."""
        return [p for _, passages in self.add_files(paths, extra=extra) for p in passages]

    def add_files(
        self, paths: Iterable[Path | str], *, extra: dict[str, str] | None = None
    ) -> list[tuple[Document, list[Passage]]]:
        """Convert files (PDF, DOCX, HTML, Markdown, text) into passages and remember them.

        Every file is read and checked first: a missing, oversized, encrypted, corrupt, empty
        or unsupported file raises a ConfigError naming it and nothing is stored. Adding a
        changed file again replaces its passages (ids carry its content hash); an unchanged
        one is not embedded again. ``extra`` is metadata for every passage (an ``owner``).
        """
        loaded = load_documents(
            [Path(p) for p in paths],
            max_bytes=self._max_document_bytes,
            max_tokens=self._passage_tokens,
            count_tokens=self._count_tokens,
        )
        documents = self._collection(DOCUMENTS, create=True)
        assert documents is not None
        for document, passages in loaded:
            self._write_document(documents, document, passages, extra or {})
        return loaded

    def _write_document(
        self,
        documents: Collection,
        document: Document,
        passages: list[Passage],
        extra: dict[str, str],
    ) -> None:
        ids = [_document_id(p.source, document.sha256, p.position) for p in passages]
        with infra("reading stored passages"):
            old = set(documents.get(where={"source": document.source}, include=[])["ids"])
        if old == set(ids):
            return  # the same content is stored already
        embeddings = self._ef([p.embedding_text() for p in passages])
        metadatas: list[Metadata] = [
            cast(
                Metadata,
                PassageMetadata(
                    source=p.source,
                    position=p.position,
                    line=p.line,
                    sha256=document.sha256,
                    page=p.page,
                    heading=p.heading,
                    **extra,
                ).as_chroma(),
            )
            for p in passages
        ]
        batch = self._client.get_max_batch_size()
        with self._write_lock:
            self._lexical = None
            written: list[str] = []
            try:
                with infra("writing document passages"):
                    for start in range(0, len(ids), batch):
                        end = start + batch
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

    def list_documents(self) -> list[DocumentEntry]:
        """Each stored document: its source, how many passages, and its content hash."""
        documents = self._collection(DOCUMENTS, create=True)
        assert documents is not None
        metadatas = [
            m for page in _pages(documents, ["metadatas"]) for m in page["metadatas"] or []
        ]
        counts: dict[tuple[str, str], int] = {}
        for meta in metadatas:
            key = (str((meta or {}).get("source", "")), str((meta or {}).get("sha256", "")))
            counts[key] = counts.get(key, 0) + 1
        return [
            DocumentEntry(source=source, sha256=sha, passages=n)
            for (source, sha), n in sorted(counts.items())
        ]

    def remove_document(self, source: str) -> int:
        """Forget every passage of ``source`` (as listed, or a path); how many were removed."""
        documents = self._collection(DOCUMENTS, create=True)
        assert documents is not None
        names = {source, str(Path(source).resolve())}
        removed = 0
        with self._write_lock, infra(f"removing {source}"):
            self._lexical = None
            for name in sorted(names):
                ids = documents.get(where={"source": name}, include=[])["ids"]
                if ids:
                    documents.delete(ids=ids)
                    removed += len(ids)
        return removed

    # -- searching -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        conversation_id: str | None = None,
        include_documents: bool = True,
        include_past: bool = False,
        exclude_ids: Iterable[str] = (),
        k: int = 5,
        min_score: float = 0.3,
        document_min_score: float | None = None,
        also: Sequence[str] = (),
    ) -> list[Hit]:
        """The ``k`` entries that best answer ``query``, documents and turns taken in turn.

        Turns: the earlier turns of ``conversation_id`` and every other conversation (if
        ``include_past``), by cosine similarity >= ``min_score``. Documents (if
        ``include_documents``): dense and BM25 rankings of ``query`` and each of ``also``
        fused by reciprocal rank, kept at cosine >= ``document_min_score`` (``min_score`` if
        None). The two lists alternate, the better head first, so turns that resemble the
        question cannot crowd out a passage that answers it. Never returns an id in
        ``exclude_ids``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        floor = min_score if document_min_score is None else document_min_score
        for score in (min_score, floor):
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"min_score must be within [0, 1], got {score}")
        excluded = frozenset(exclude_ids)
        names: list[str] = []
        if include_past:
            names.append(ARCHIVE)
        elif conversation_id is not None:
            names.append(conversation_collection(conversation_id))
        collections = [c for c in (self._collection(n, create=False) for n in names) if c]
        documents = self._collection(DOCUMENTS, create=False) if include_documents else None
        if not query.strip() or not (collections or documents):
            return []
        queries = [query, *(q for q in also if q.strip() and q != query)]
        vectors = self._ef.embed_query(queries)
        turns: list[Hit] = []
        for collection in collections:
            with infra(f"searching {collection.name}"):
                result = collection.query(
                    query_embeddings=vectors[:1],
                    n_results=k + len(excluded),  # excluded ids take at most that many places
                    include=["documents", "metadatas", "distances"],
                )
            turns.extend(_hits(result))
        ranked_turns = merge_hits(turns, k=k, min_score=min_score, exclude_ids=excluded)
        passages: list[Hit] = []
        if documents is not None and documents.count():
            passages = self._document_hits(documents, queries, vectors, k, floor, excluded)
        return interleave(passages, ranked_turns, k)

    def _document_hits(
        self,
        documents: Collection,
        queries: Sequence[str],
        vectors: Any,
        k: int,
        floor: float,
        excluded: frozenset[str],
    ) -> list[Hit]:
        """Passages by fused dense and BM25 rank; score: best cosine over the queries."""
        depth = max(4 * k, 20)
        rankings: list[tuple[float, list[str]]] = []
        found: dict[str, Hit] = {}
        with infra(f"searching {documents.name}"):
            result = documents.query(
                query_embeddings=vectors,
                n_results=depth,
                include=["documents", "metadatas", "distances"],
            )
        for row in range(len(queries)):
            hits = _hits(result, row)
            rankings.append((1.0, [h.id for h in hits]))
            for hit in hits:
                if hit.id not in found or hit.score > found[hit.id].score:
                    found[hit.id] = hit
        lexical = self._lexical_index(documents)
        rankings.extend((LEXICAL_WEIGHT, lexical.confident(q, LEXICAL_DEPTH)) for q in queries)
        fused = [i for i in rrf(rankings) if i not in excluded][: 2 * depth]
        missing = [i for i in fused if i not in found]
        if missing:
            with infra(f"reading {documents.name}"):
                got = documents.get(ids=missing, include=["documents", "metadatas", "embeddings"])
            query_matrix = np.asarray(vectors, dtype=np.float32)
            for id_, text, meta, vector in zip(
                got["ids"],
                got["documents"] or [],
                got["metadatas"] or [],
                [] if got["embeddings"] is None else list(got["embeddings"]),
                strict=True,
            ):
                cosine = float(np.max(query_matrix @ np.asarray(vector, dtype=np.float32)))
                found[id_] = _hit(id_, text, meta, cosine)
        return [found[i] for i in fused if i in found and found[i].score >= floor][:k]

    def _lexical_index(self, documents: Collection) -> Bm25:
        """The BM25 index of the passages, built on the first search after a write."""
        with self._lock:
            index = self._lexical
        if index is None:
            ids: list[str] = []
            texts: list[str] = []
            for page in _pages(documents, ["documents", "metadatas"]):
                ids.extend(page["ids"])
                pairs = zip(page["documents"] or [], page["metadatas"] or [], strict=True)
                texts.extend(_embedding_text(text or "", meta) for text, meta in pairs)
            index = Bm25(ids, texts)
            with self._lock:
                self._lexical = index
        return index

    def stats(self) -> MemoryStats:
        """How many messages, passages and pruned turns the store holds."""
        documents = self._collection(DOCUMENTS, create=True)
        archive = self._collection(ARCHIVE, create=True)
        assert documents is not None and archive is not None
        with infra("counting entries"):
            total = archive.count()
            # A filtered read, acceptable here: stats is not on the per-turn path.
            pruned = len(archive.get(where={"kind": "pruned"}, include=[])["ids"])
            conversations = sum(
                1 for c in self._client.list_collections() if c.name.startswith(CONVERSATION_PREFIX)
            )
            return MemoryStats(
                message=total - pruned,
                document=documents.count(),
                pruned=pruned,
                conversations=conversations,
            )

    # -- async and lifetime --------------------------------------------------------------

    def _submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Queue ``call`` on the worker thread now; the returned future can be awaited later."""
        self._check_open()
        return asyncio.get_running_loop().run_in_executor(self._worker, call)

    def aadd_message(
        self,
        conversation_id: str,
        speaker: str,
        turn: int,
        at: datetime,
        text: str,
        message_id: str,
    ) -> asyncio.Future[None]:
        """``add_message`` queued on the worker thread at call time; await it or ``flush()``."""
        return self._submit(
            lambda: self.add_message(conversation_id, speaker, turn, at, text, message_id)
        )

    def aadd_pruned(
        self, conversation_id: str, speaker: str, turn: int, text: str, message_id: str
    ) -> asyncio.Future[None]:
        """``add_pruned`` queued on the worker thread at call time."""
        return self._submit(
            lambda: self.add_pruned(conversation_id, speaker, turn, text, message_id)
        )

    def aadd_files(
        self, paths: Iterable[Path | str], *, extra: dict[str, str] | None = None
    ) -> asyncio.Future[list[tuple[Document, list[Passage]]]]:
        """``add_files`` queued on the worker thread at call time."""
        paths = list(paths)
        return self._submit(lambda: self.add_files(paths, extra=extra))

    def asearch(
        self,
        query: str,
        *,
        conversation_id: str | None = None,
        include_documents: bool = True,
        include_past: bool = False,
        exclude_ids: Iterable[str] = (),
        k: int = 5,
        min_score: float = 0.3,
    ) -> asyncio.Future[list[Hit]]:
        """``search`` queued on the worker thread: it sees every write queued before it."""
        excluded = tuple(exclude_ids)
        return self._submit(
            lambda: self.search(
                query,
                conversation_id=conversation_id,
                include_documents=include_documents,
                include_past=include_past,
                exclude_ids=excluded,
                k=k,
                min_score=min_score,
            )
        )

    async def flush(self) -> None:
        """Wait until every call queued before this one has finished (errors stay with theirs)."""
        await self._submit(lambda: None)

    def close(self) -> None:
        """Finish queued work, close the client and release the directory. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._worker.shutdown(wait=True)
        client = getattr(self, "_client", None)
        if client is not None:
            close_client(client)
        self._collections.clear()
        if self._directory_lock is not None:
            self._directory_lock.release()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_turn(conversation_id: str, message_id: str, turn: int) -> None:
    if not conversation_id or not message_id:
        raise ValueError("conversation_id and message_id must not be empty")
    if turn < 0:
        raise ValueError(f"turn must be >= 0, got {turn}")


def _hits(result: Any, row: int = 0) -> list[Hit]:
    """Chroma's answer to query ``row`` as hits; score = cosine similarity = 1 - distance."""
    ids: Sequence[str] = result["ids"][row]
    texts = (result.get("documents") or [[]])[row]
    metadatas = (result.get("metadatas") or [[]])[row]
    distances = (result.get("distances") or [[]])[row]
    return [
        _hit(id_, text, meta, 1.0 - float(distance))
        for id_, text, meta, distance in zip(ids, texts, metadatas, distances, strict=True)
    ]


def _hit(id_: str, text: str | None, meta: Any, cosine: float) -> Hit:
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


def _pages(collection: Collection, include: list[Any]) -> Iterator[Any]:
    """Every entry of ``collection``, a page at a time (one read of all fails at ~100k:
    "too many SQL variables")."""
    offset = 0
    while True:
        with infra(f"reading {collection.name}"):
            page = collection.get(include=include, limit=PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def _embedding_text(text: str, meta: Any) -> str:
    """What a stored passage was embedded as (its heading, then its text): BM25 reads it too."""
    heading = (meta or {}).get("heading")
    return f"{heading}\n{text}" if heading and not text.lstrip().startswith("#") else text
