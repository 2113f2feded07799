"""The time of one model call over HTTP, and the stop signal that can end it early.

Owns: a call's deadlines (the step's own ``until``, the whole call's ``call_timeout_s``), the
waits that watch them and the stop signal together, and the back-off pause that gives up at
once when the call is stopped or would run out of time. ``agents.openai_client`` waits through
a ``CallClock`` for the server to answer and for each chunk; ``agents.resilience`` pauses
through it between retries.

Does not own: what a timeout means for the call (retryable or not, said by the client), the
retry rules (``agents.resilience``).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from autogen_core import CancellationToken

from roundtable.agents.resilience import CallKey

STOP_POLL_S = 0.05
"""How often a wait on the server looks at the stop signal."""
TIMEOUT_GRACE_S = 0.02
"""How long past a timeout a reply already received may take to be read."""

T = TypeVar("T")


class Ended:
    """What a wait returns instead of a result: why it ended (see the three below)."""

    def __init__(self, why: str) -> None:
        self.why = why


STOPPED = Ended("the stop signal was set")
TIMED_OUT = Ended("the step's own timeout passed")
OUT_OF_TIME = Ended("the whole call's time (call_timeout_s) is up")


class CallClock:
    """One logical call: its key, the moment it runs out of time (``math.inf``: never) and
    the stop signal it watches (None: it is never stopped)."""

    def __init__(
        self, key: CallKey, timeout_s: float | None, stop_signal: threading.Event | None
    ) -> None:
        self.key = key
        self.deadline = time.monotonic() + timeout_s if timeout_s is not None else math.inf
        self._stop_signal = stop_signal

    def stopping(self) -> bool:
        """True once the stop signal is set."""
        return self._stop_signal is not None and self._stop_signal.is_set()

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds``, watching the stop signal; False, at once, when the call is
        stopped or the sleep would outlast the call's time."""
        end = time.monotonic() + seconds
        if end > self.deadline:
            return False
        while not self.stopping():
            left = end - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, STOP_POLL_S))
        return False

    async def wait_for(
        self,
        step: Callable[[], Awaitable[T]],
        until: float,
        cancellation_token: CancellationToken | None,
    ) -> T | Ended:
        """Await ``step()`` unless the stop signal is set first or while it waits (so a
        stalled server cannot hold an interrupt back), or time runs out: ``until`` for this
        step, the call's deadline for the whole call. Then the step is cancelled."""
        if self.stopping():
            return STOPPED
        task = asyncio.ensure_future(step())
        if cancellation_token is not None:
            cancellation_token.link_future(task)
        try:
            return await self._watch(task, until)
        finally:
            if not task.done():
                task.cancel()  # stop reading: the stream is closed next
                await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # mark it retrieved: result() re-raised it if it mattered

    async def _watch(self, task: asyncio.Future[T], until: float) -> T | Ended:
        while True:
            now = time.monotonic()
            limit = min(until, self.deadline)
            if now >= limit:
                # A busy event loop can wake us at the deadline with the data already
                # received: give it a moment to be read before calling it a timeout.
                done, _ = await asyncio.wait({task}, timeout=TIMEOUT_GRACE_S)
                if done:
                    return task.result()
                return OUT_OF_TIME if self.deadline <= until else TIMED_OUT
            done, _ = await asyncio.wait({task}, timeout=min(limit - now, STOP_POLL_S))
            if done:
                return task.result()
            if self.stopping():
                return STOPPED
