"""One reply of the embedded model, generated in a worker thread: ``Generation``.

Owns: the worker thread that holds the engine's lock while it generates, the queue that hands
its text to the event loop as it comes, and a stop (the stop signal, a cancel) that ends the
reply between two tokens and never leaves a generating thread behind (a generation left running
after a cancel made the next call on the same context crash the process).

Does not own: the model and its lock (``agents.llama_engine``), prompts and usage
(``agents.llama_client``).
"""

from __future__ import annotations

import asyncio
import codecs
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from autogen_core import CancellationToken
from llama_cpp.llama_grammar import LlamaGrammar

from roundtable.agents.llama_engine import LlamaEngine

WORKER_THREAD_NAME = "roundtable-llama"
_LOCK_POLL_S = 0.05  # how often a thread waiting for the model checks whether to give up


@dataclass(frozen=True)
class Request:
    prompt: list[int]
    max_tokens: int
    temperature: float
    repeat_penalty: float
    grammar: LlamaGrammar | None
    seed: int | None
    caller: str
    """Whose saved state this call continues (``llama_states``)."""


@dataclass(frozen=True)
class End:
    finish_reason: Literal["stop", "length"]
    completion_tokens: int
    interrupted: bool
    cached_tokens: int = 0


class Generation:
    """One reply generated in a worker thread; its text crosses to the event loop via a queue."""

    def __init__(
        self,
        engine: LlamaEngine,
        request: Request,
        stop_signal: threading.Event | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._engine = engine
        self._request = request
        self._stop_signal = stop_signal
        self._loop = loop
        self._queue: asyncio.Queue[str | End | BaseException] = asyncio.Queue()
        self._ended: asyncio.Future[None] = loop.create_future()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._work, name=WORKER_THREAD_NAME)

    def start(self, cancellation_token: CancellationToken | None) -> None:
        if cancellation_token is not None:
            cancellation_token.add_callback(self._on_token_cancelled)
        self._thread.start()

    async def next(self) -> str | End:
        """The next text chunk, or the end; raises what the worker raised."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def stop(self) -> None:
        """Make the worker stop between tokens and wait until its thread has ended."""
        self._abort.set()
        cancelled = False
        while not self._ended.done():
            try:
                await asyncio.shield(self._ended)
            except asyncio.CancelledError:
                cancelled = True  # keep waiting: no thread may outlive the call
        self._thread.join()  # it has already sent its last message: only exiting is left
        if cancelled:
            raise asyncio.CancelledError

    def _on_token_cancelled(self) -> None:
        self._abort.set()
        self._call(self._queue.put_nowait, asyncio.CancelledError())

    # --- worker thread ---
    def _call(self, fn: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self._abort.set()

    def _work(self) -> None:
        try:
            self._call(self._queue.put_nowait, self._generate())
        except BaseException as exc:  # handed to the awaiting task, which re-raises it
            self._call(self._queue.put_nowait, exc)
        finally:
            self._call(_set_done, self._ended)

    def _interrupted(self) -> bool:
        return self._abort.is_set() or (
            self._stop_signal is not None and self._stop_signal.is_set()
        )

    def _generate(self) -> End:
        lock = self._engine.lock
        while not lock.acquire(timeout=_LOCK_POLL_S):
            if self._interrupted():
                return End("stop", 0, interrupted=True)
        try:
            return self._generate_locked()
        finally:
            lock.release()

    def _generate_locked(self) -> End:
        llama, req = self._engine.llama, self._request
        if self._interrupted():
            return End("stop", 0, interrupted=True)
        llama.set_seed(req.seed if req.seed is not None else self._engine.next_seed())
        cached = max(
            0, min(self._engine.states.restore_best(llama, req.prompt), len(req.prompt) - 1)
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        count, finish, interrupted = 0, "length", False
        tokens = llama.generate(
            req.prompt,
            temp=req.temperature,
            repeat_penalty=req.repeat_penalty,
            grammar=req.grammar,
        )
        try:
            for token in tokens:
                if self._engine.is_end_of_turn(token):
                    finish = "stop"
                    break
                count += 1
                text = decoder.decode(llama.detokenize([token]))
                if text:
                    self._call(self._queue.put_nowait, text)
                if count >= req.max_tokens:
                    break
                if self._interrupted():
                    finish, interrupted = "stop", True
                    break
        finally:
            tokens.close()  # inside this thread, with the lock held
            self._engine.states.save(llama, self._request.caller)
        tail = decoder.decode(b"", final=True)
        if tail:
            self._call(self._queue.put_nowait, tail)
        return End(cast(Literal["stop", "length"], finish), count, interrupted, cached)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
