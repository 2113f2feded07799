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
from collections.abc import AsyncGenerator, Awaitable, Sequence
from typing import Any, TypeVar

from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema

from common.errors import ModelError

STOP_GRACE_S = 0.5
"""How long a reply may go on after the soft stop before it is cut: a client that honours the
stop ends within one chunk, and a cut turn still ends within its deadline plus 1 s."""
SETTLE_S = 0.3
"""How long a cut call may take to end cleanly (a llama.cpp worker ends at its next token);
past it the turn goes on and the call ends in the background."""

_T = TypeVar("_T")


class Cutoff:
    """Fires once with a reason; ``clear`` re-arms it (and drops pending timers) for a new turn."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []
        self.reason = ""

    @property
    def is_cut(self) -> bool:
        return self._event.is_set()

    def cut(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

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
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._event.clear()
        self.reason = ""

    async def race(self, step: Awaitable[_T]) -> _T:
        """``step``'s result, unless the cut fires first: then it is cancelled, ModelError."""
        if self.is_cut:
            if asyncio.iscoroutine(step):
                step.close()
            raise ModelError(self.reason)
        task = asyncio.ensure_future(step)
        fired = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, fired}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # we were cancelled ourselves: take the call down with us
            task.cancel()
            raise
        finally:
            fired.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait({task}, timeout=SETTLE_S)
        raise ModelError(self.reason)


class GuardedClient(ChatCompletionClient):
    """A model client whose calls end when the cutoff fires; otherwise exactly the inner one."""

    def __init__(self, inner: ChatCompletionClient, cutoff: Cutoff) -> None:
        self.inner = inner
        self.cutoff = cutoff

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        return await self.cutoff.race(self.inner.create(messages, **kwargs))

    async def create_stream(
        self, messages: Sequence[LLMMessage], **kwargs: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        stream = self.inner.create_stream(messages, **kwargs)
        try:
            while True:
                try:
                    item = await self.cutoff.race(anext(stream))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # A step cut or cancelled mid-way still runs in its own task, which ends the
            # stream; otherwise close what our consumer left open.
            if not getattr(stream, "ag_running", False):
                await stream.aclose()

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self.inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self.inner.total_usage()

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info


def guard(client: ChatCompletionClient, cutoff: Cutoff) -> ChatCompletionClient:
    """``client`` with its calls bounded by ``cutoff``."""
    return GuardedClient(client, cutoff)
