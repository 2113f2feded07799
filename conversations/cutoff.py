"""The hard stop of model calls in flight: what ends a turn whose model has gone quiet.

A deadline or the person's Stop first sets the soft ``stop_signal``, which clients check
between chunks. A stream that stalls before its next chunk never sees it, so ``STOP_GRACE_S``
later the ``Cutoff`` fires: every call made through a ``guard``-ed client is cancelled at once
and raises ``ModelError`` with the cut's reason. AutoGen then handles it like any failing
agent (the team stays usable), instead of our cancelling the team mid-turn, which leaves a
stalled handler in its runtime and hangs the next ``run_stream`` (measured).

Owns the cut only; who schedules it, and when, is the run's business (debate, pipeline, panel).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
)

from roundtable.agents.wrapped import WrappedClient
from roundtable.common.errors import ModelError

STOP_GRACE_S = 0.5
"""How long a reply may go on after the soft stop before it is cut: a client that honours the
stop ends within one chunk, and a cut turn still ends within its deadline plus 1 s."""


class Cutoff:
    """Fires once with a reason; ``clear`` re-arms it (and drops pending timers) for a new turn.

    A call made under ``armed`` is cancelled when the cut fires, the way ``asyncio.timeout``
    cancels what it guards, and the cancellation comes out as ``ModelError``: nothing is paid
    per chunk (an earlier version raced every chunk against the cut in two new tasks, which
    cost more than the rest of a turn's orchestration).
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []
        self._armed: set[asyncio.Task[Any]] = set()
        self._cancelled: set[asyncio.Task[Any]] = set()
        self.reason = ""
        self.failure: BaseException | None = None
        """The latest exception a guarded client raised: the original, before AutoGen wraps
        it in a ``RuntimeError``, so the engine can sort it with ``isinstance``."""

    @property
    def is_cut(self) -> bool:
        return self._event.is_set()

    def cut(self, reason: str) -> None:
        if self._event.is_set():
            return
        self.reason = reason
        self._event.set()
        for task in self._armed - self._cancelled:
            self._cancelled.add(task)
            task.cancel()

    def cut_after(self, seconds: float, reason: str) -> None:
        """Cut ``seconds`` from now unless cleared first. Without a running loop nothing is in
        flight, so there is nothing to cut."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timers.append(loop.call_later(seconds, self.cut, reason))

    def after_stop(self) -> None:
        """The soft stop was just asked for: cut what is still going ``STOP_GRACE_S`` from now."""
        self.cut_after(STOP_GRACE_S, f"still no reply {STOP_GRACE_S:g} s after the stop")

    def clear(self) -> None:
        """Re-arm for a new reply: no timers, not cut (``failure`` stays until the next
        reply starts, so it can be read after this one ended)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._event.clear()
        self.reason = ""

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        """Run the awaits inside under the cut: when it fires they end with ModelError."""
        if self.is_cut:
            raise ModelError(self.reason)
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Cutoff.armed needs a running task")
        self._armed.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if task in self._cancelled and task.uncancel() == 0:
                raise ModelError(self.reason) from None
            raise  # cancelled by someone else too: that cancellation goes on
        finally:
            self._armed.discard(task)
            self._cancelled.discard(task)


class GuardedClient(WrappedClient):
    """A model client whose calls end when the cutoff fires; otherwise exactly the inner one."""

    def __init__(self, inner: ChatCompletionClient, cutoff: Cutoff) -> None:
        super().__init__(inner)
        self.cutoff = cutoff

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        with self._remembered(), self.cutoff.armed():
            return await self.inner.create(messages, **kwargs)

    async def create_stream(
        self, messages: Sequence[LLMMessage], **kwargs: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        stream = self.inner.create_stream(messages, **kwargs)
        try:
            while True:
                # Only while we wait: never across our ``yield``.
                with self._remembered(), self.cutoff.armed():
                    try:
                        item = await anext(stream)
                    except StopAsyncIteration:
                        return
                yield item
        finally:
            await stream.aclose()  # a no-op when the cut already ended the stream

    @contextlib.contextmanager
    def _remembered(self) -> Iterator[None]:
        """Keep the exception the call raised (a cut included) on the cutoff, then re-raise."""
        try:
            yield
        except Exception as exc:
            self.cutoff.failure = exc
            raise


def guard(client: ChatCompletionClient, cutoff: Cutoff) -> ChatCompletionClient:
    """``client`` with its calls bounded by ``cutoff``."""
    return GuardedClient(client, cutoff)
