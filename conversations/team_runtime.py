"""AutoGen's runtime for one debate: started with the debate, settled between its turns.

A debate runs its ``SelectorGroupChat`` one turn per ``run_stream``. Left to itself, the group
chat starts a runtime of its own for every ``run_stream`` and stops it when the turn has gone
idle; a debate instead passes one ``DebateRuntime`` (``runtime=``), started when the debate
starts and stopped when it ends, so no turn starts or stops a message loop. ``run_stream``
then ends at the turn's termination, while the last deliveries of the turn may still be running.

A turn does not always end with a termination: after an agent failed, AutoGen's manager still
waits for that agent's reply, so every later reply leaves it waiting, and what ended those turns
was the group chat's own runtime going idle ("The group chat is stopped."). ``IdleEnd`` keeps
that: once the runtime has nothing queued or being handled while the turn's
``run_stream`` still runs, it ends the stream the way AutoGen's runtime stop did.

When an agent fails, AutoGen publishes the error to the other agents' containers, whose
handlers refuse it. The runtime only logs a handler's exception (AutoGen's default for a runtime
it does not own): the manager has already ended the turn with the error, and a stored
exception would kill the message loop every later turn needs.

``settle``, at each turn boundary, waits (bounded) for the previous turn's handlers to end, so
nothing of a turn is delivered once the next has begun, and drops an exception stored after the
turn it belonged to was already recorded (a runtime that keeps them). It reads AutoGen's private
runtime fields: no public API exposes them; each access is guarded, so a later AutoGen without
them only loses this barrier.

AutoGen's runtime opens a span for every message it creates, delivers and acknowledges (each
streamed chunk is three of them), and serialises every message for its event log and the
spans' attributes even when nothing records them: half of a zero-latency turn's CPU went there
(``bench/orchestration.py``). ``DebateRuntime`` does neither when nothing would receive it: no
spans while no tracer provider is set up (``observe``'s OTLP endpoint), no serialising while
AutoGen's event logger (``autogen_core.EVENT_LOGGER_NAME``) is off for INFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from autogen_agentchat.messages import StopMessage
from autogen_agentchat.teams._group_chat._events import GroupChatTermination
from autogen_core import EVENT_LOGGER_NAME, AgentId, MessageContext, SingleThreadedAgentRuntime
from opentelemetry import trace

LOGGER = logging.getLogger("roundtable.engine")
EVENTS = logging.getLogger(EVENT_LOGGER_NAME)
SETTLE_S = 5.0
"""The longest a turn waits for the previous turn's handlers (they refuse one message each)."""


def tracing_on(provider: trace.TracerProvider | None = None) -> bool:
    """Whether spans go anywhere: a tracer provider is set up (the API's own record nothing)."""
    provider = provider or trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


class _NoSpans:
    """AutoGen's trace helper when no provider is set up: no span, no name, no attributes."""

    @contextlib.contextmanager
    def trace_block(self, *_args: Any, **_kwargs: Any) -> Iterator[trace.Span]:
        yield trace.INVALID_SPAN


class DebateRuntime(SingleThreadedAgentRuntime):
    """One debate's message loop, for all its turns (see the module's note)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(tracer_provider=tracer_provider, ignore_unhandled_exceptions=True)
        self.traced = tracing_on(tracer_provider)
        if not self.traced:
            self._tracer_helper = _NoSpans()  # type: ignore[assignment]

    async def _create_otel_attributes(
        self,
        sender_agent_id: AgentId | None = None,
        recipient_agent_id: AgentId | None = None,
        message_context: MessageContext | None = None,
        message: Any = None,
    ) -> Mapping[str, str]:
        if not self.traced:
            return {}
        return await super()._create_otel_attributes(
            sender_agent_id, recipient_agent_id, message_context, message
        )

    def _try_serialize(self, message: Any) -> str:
        """A message as AutoGen's event log and span attributes show it; unread, not built."""
        if self.traced or EVENTS.isEnabledFor(logging.INFO):
            return super()._try_serialize(message)
        return ""

    async def close_debate(self) -> None:
        """Once the debate has ended: its last handlers settled, the message loop stopped."""
        await settle(self)
        if self._run_context is not None:
            await self.stop()


class IdleEnd:
    """Around one turn's ``run_stream``: if the runtime goes idle while the stream still runs,
    with no termination to end it, end it as a runtime of the group chat's own did when it
    stopped. ``watch`` at the turn's first item (the turn's start is queued by then, so an idle
    runtime is one whose turn is over); ``close`` when the stream has ended. Reads AutoGen's
    private fields, guarded: without them, no watch."""

    def __init__(self, team: Any, runtime: Any) -> None:
        self._team = team
        self._join = getattr(getattr(runtime, "_message_queue", None), "join", None)
        self._output = getattr(team, "_output_message_queue", None)
        self._watcher: asyncio.Future[None] | None = None

    def watch(self) -> None:
        if self._watcher is None and self._join is not None and self._output is not None:
            self._watcher = asyncio.ensure_future(self._end_when_idle())

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def _end_when_idle(self) -> None:
        assert self._join is not None and self._output is not None
        await self._join()
        if getattr(self._team, "_is_running", False):  # cleared as the stream ends, no await
            LOGGER.debug("turn_ended_idle")
            stopped = StopMessage(content="The group chat is stopped.", source="roundtable")
            self._output.put_nowait(GroupChatTermination(message=stopped))


async def settle(runtime: Any, timeout_s: float = SETTLE_S) -> None:
    """Let the previous turn's leftover handlers finish, and drop a stale stored exception."""
    tasks = getattr(runtime, "_background_tasks", None)
    pending = [t for t in tasks if not t.done()] if isinstance(tasks, set) else []
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        LOGGER.debug("runtime_settled", extra={"waited": len(pending), "running": len(late)})
    stale = getattr(runtime, "_background_exception", None)
    if stale is not None:
        LOGGER.debug("runtime_stale_error", extra={"error": repr(stale)[:200]})
        runtime._background_exception = None
