"""The memory store's calls queued off the event loop: ``aadd_*``, ``asearch`` and ``flush``.

Owns: running the store's calls, in the order they were made, on its one worker thread, so a
write need not hold up the debate's turn and a search sees every write queued before it. Does
not own: what the calls do (store.py). A mixin of ``MemoryStore`` (which holds the worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from roundtable.memory.documents import Document
from roundtable.memory.hits import Hit
from roundtable.memory.passages import Passage

T = TypeVar("T")


class Queued:
    """``MemoryStore``'s ``a*`` methods: each queues its call when called and returns an
    awaitable future; a write's error is raised where its future is awaited."""

    # What the store provides (typed loosely here: the store's own methods say it exactly).
    _worker: ThreadPoolExecutor
    add_message: Callable[..., None]
    add_pruned: Callable[..., None]
    add_files: Callable[..., list[tuple[Document, list[Passage]]]]
    search: Callable[..., list[Hit]]

    def _check_open(self) -> None:
        raise NotImplementedError

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
        *,
        owner: str | None = None,
    ) -> asyncio.Future[None]:
        """``add_message`` queued on the worker thread at call time; await it or ``flush()``."""
        return self._submit(
            lambda: self.add_message(
                conversation_id, speaker, turn, at, text, message_id, owner=owner
            )
        )

    def aadd_pruned(
        self,
        conversation_id: str,
        speaker: str,
        turn: int,
        text: str,
        message_id: str,
        *,
        owner: str | None = None,
    ) -> asyncio.Future[None]:
        """``add_pruned`` queued on the worker thread at call time."""
        return self._submit(
            lambda: self.add_pruned(conversation_id, speaker, turn, text, message_id, owner=owner)
        )

    def aadd_files(
        self, paths: Iterable[Path | str], *, owner: str | None = None
    ) -> asyncio.Future[list[tuple[Document, list[Passage]]]]:
        """``add_files`` queued on the worker thread at call time."""
        paths = list(paths)
        return self._submit(lambda: self.add_files(paths, owner=owner))

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
        owner: str | None = None,
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
                owner=owner,
            )
        )

    async def flush(self) -> None:
        """Wait until every call queued before this one has finished (errors stay with theirs)."""
        await self._submit(lambda: None)
