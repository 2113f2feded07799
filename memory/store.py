"""The retrieval memory: what the debate remembers and how it is searched.

Owns: the layout of collections, writing messages and pruned turns, searching them scoped to
a conversation and an owner, and merging them with document passages. Does not own: opening
ChromaDB and checking collections (backend.py), the documents collection (shelf.py), what a
turn's entry carries and how it is written and queried (turns.py), the owner rule (scope.py),
the calls queued off the event loop (queued.py), how vectors are computed (embedding.py), how
files become passages (passages.py), the shape and ranking of results (hits.py), nor when the
debate writes or searches (the conversations package).

Layout:

* ``roundtable-archive`` (the local user's; ``-u-<hash>`` for each other user): every message
  and pruned turn of every conversation of that user, so past conversations are searched with
  one query;
* ``roundtable-conv-<hash>``: a conversation's own collection, made only once one of its turns
  is pruned (conversation.py says why);
* ``roundtable-documents`` (likewise per user): the passages of that user's documents.

Every entry carries its owner, and every read keeps only the caller's (scope.py): with
``include_past``, one user's debate never recalls another's turns or documents. A search
queries at most two collections (the conversation's own or the owner's archive, and the
owner's documents) and merges them by score. Message ids must be unique across conversations:
an archive holds them all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType

from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction

from roundtable.common.errors import ConfigError
from roundtable.common.owners import owner_key
from roundtable.memory import conversation, scope, turns
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
from roundtable.memory.hits import DocumentEntry, Hit, MemoryStats, interleave
from roundtable.memory.passages import (
    DEFAULT_MAX_TOKENS,
    Passage,
    TokenCounter,
    estimate_tokens,
    load_documents,
)
from roundtable.memory.queued import Queued
from roundtable.memory.shelf import Shelf

DOCUMENTS = scope.DOCUMENTS
ARCHIVE = scope.ARCHIVE
CONVERSATION_PREFIX = conversation.PREFIX
conversation_collection = conversation.collection_name


class MemoryStore(Queued):
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
        self._shelves: dict[str, Shelf] = {}  # by owner key
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
                    scope.upgrade(collection)  # entries from before owners: the local user's
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
        *,
        owner: str | None = None,
    ) -> None:
        """Remember a committed message of ``owner``'s conversation (idempotent by id)."""
        turns.check_turn(conversation_id, message_id, turn)
        metadata = turns.message_metadata(conversation_id, speaker, turn, at, owner)
        self._write_turn(conversation_id, message_id, text, metadata)

    def add_pruned(
        self,
        conversation_id: str,
        speaker: str,
        turn: int,
        text: str,
        message_id: str,
        *,
        owner: str | None = None,
    ) -> None:
        """Remember a turn that pruning removed from a prompt.

        It shares its message's id: the stored entry is marked pruned (keeping the message's
        time) rather than kept twice.
        """
        turns.check_turn(conversation_id, message_id, turn)
        collection = self._conversation(conversation_id, owner, create=True)
        assert collection is not None
        metadata = turns.pruned_metadata(
            collection, conversation_id, speaker, turn, message_id, owner
        )
        self._write_turn(conversation_id, message_id, text, metadata)

    def _write_turn(
        self,
        conversation_id: str,
        message_id: str,
        text: str,
        metadata: dict[str, object],
    ) -> None:
        if not text.strip():
            return  # nothing to find: an empty message is not remembered
        owner = str(metadata[scope.OWNER])
        archive = self._collection(scope.archive_of(owner), create=True)
        own = self._conversation(conversation_id, owner, create=False)
        assert archive is not None
        embeddings = self._ef([text])
        collections = (archive, own) if own else (archive,)
        turns.write(collections, self._write_lock, message_id, text, embeddings, metadata)

    def _conversation(
        self, conversation_id: str, owner: str | None, *, create: bool
    ) -> Collection | None:
        """The conversation's own collection, or None; made (and seeded) when ``create``."""
        name = conversation_collection(conversation_id)
        found = self._collection(name, create=False)
        if found is not None or not create:
            return found
        made = self._collection(name, create=True)
        archive = self._collection(scope.archive_of(owner), create=True)
        assert made is not None and archive is not None
        with self._write_lock, infra(f"indexing conversation {conversation_id}"):
            conversation.seed(made, archive, conversation_id, owner)
        return made

    def add_documents(
        self, paths: Iterable[Path | str], *, owner: str | None = None
    ) -> list[Passage]:
        """``add_files``, returning every passage of every file in order."""
        return [p for _, passages in self.add_files(paths, owner=owner) for p in passages]

    def add_files(
        self, paths: Iterable[Path | str], *, owner: str | None = None
    ) -> list[tuple[Document, list[Passage]]]:
        """Convert files (PDF, DOCX, HTML, Markdown, text) into passages and remember them as
        ``owner``'s (None: the local user).

        Every file is read and checked first: a missing, oversized, encrypted, corrupt, empty
        or unsupported file raises a ConfigError naming it and nothing is stored. Adding a
        changed file again replaces its passages (ids carry its content hash); an unchanged
        one is not embedded again.
        """
        loaded = load_documents(
            [Path(p) for p in paths],
            max_bytes=self._max_document_bytes,
            max_tokens=self._passage_tokens,
            count_tokens=self._count_tokens,
        )
        shelf = self._shelf(owner, create=True)
        assert shelf is not None
        for document, passages in loaded:
            shelf.write(document, passages, owner)
        return loaded

    def list_documents(self, *, owner: str | None = None) -> list[DocumentEntry]:
        """Each of ``owner``'s documents: its source, how many passages, its content hash."""
        shelf = self._shelf(owner, create=False)
        return shelf.entries(owner) if shelf is not None else []

    def remove_document(self, source: str, *, owner: str | None = None) -> int:
        """Forget ``owner``'s passages of ``source`` (as listed, or a path); how many."""
        shelf = self._shelf(owner, create=False)
        return shelf.remove(source, owner) if shelf is not None else 0

    def _shelf(self, owner: str | None, *, create: bool) -> Shelf | None:
        """``owner``'s documents (None if they have none and ``create`` is False)."""
        key = owner_key(owner)
        with self._lock:
            self._check_open()
            shelf = self._shelves.get(key)
            if shelf is None:
                collection = self._collection(scope.documents_of(key), create=create)
                if collection is None:
                    return None
                batch = self._client.get_max_batch_size()
                shelf = self._shelves[key] = Shelf(collection, self._ef, self._write_lock, batch)
            return shelf

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
        owner: str | None = None,
    ) -> list[Hit]:
        """The ``k`` entries of ``owner`` (None: the local user) that best answer ``query``,
        documents and turns taken in turn; another owner's entry is never returned.

        Turns: the earlier turns of ``conversation_id`` and every other conversation of the
        owner (if ``include_past``), by cosine similarity >= ``min_score``. Documents (if
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
        archive = self._collection(scope.archive_of(owner), create=False)
        # The owner's archive needs no where filter (costly on a large collection); a
        # conversation's collection is small and filtered. Each hit's owner is checked.
        searched: list[tuple[Collection, scope.Where | None]] = []
        if include_past and archive is not None:
            searched.append((archive, None))
        elif conversation_id is not None:
            own = self._conversation(conversation_id, owner, create=False)
            if own is not None:
                searched.append((own, scope.where(owner)))
            elif archive is not None:  # nothing pruned yet: its turns are only in the archive
                searched.append((archive, scope.where(owner, conversation_id=conversation_id)))
        collections = [collection for collection, _ in searched]
        documents = self._shelf(owner, create=False) if include_documents else None
        if not query.strip() or not (collections or documents):
            return []
        queries = [query, *(q for q in also if q.strip() and q != query)]
        vectors = self._ef.embed_query(queries)
        ranked_turns = turns.query(
            searched, vectors[:1], k=k, min_score=min_score, excluded=excluded, owner=owner
        )
        passages: list[Hit] = []
        if documents is not None and documents.collection.count():
            passages = documents.search(queries, vectors, k, floor, excluded, owner)
        return interleave(passages, ranked_turns, k)

    def stats(self, *, owner: str | None = None) -> MemoryStats:
        """How many messages, passages and pruned turns ``owner`` has, and how many
        conversations the store holds (every user's: the CLI's view of its data folder)."""
        documents = self._collection(scope.documents_of(owner), create=True)
        archive = self._collection(scope.archive_of(owner), create=True)
        assert documents is not None and archive is not None
        with infra("counting entries"):
            total = archive.count()
            # A filtered read, acceptable here: stats is not on the per-turn path.
            pruned = len(archive.get(where=scope.where(owner, kind="pruned"), include=[])["ids"])
            archives = self._client.list_collections()
            conversations = conversation.count(c for c in archives if c.name.startswith(ARCHIVE))
            return MemoryStats(
                message=total - pruned,
                document=documents.count(),
                pruned=pruned,
                conversations=conversations,
            )

    # -- lifetime ----------------------------------------------------------------------

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
