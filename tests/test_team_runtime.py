"""One AutoGen runtime per debate, settled between turns (``team_runtime``).

An agent's error is published to the other agents' containers, whose handlers refuse it; such a
handler can still run once the turn has ended. The debate's runtime must keep its message loop
through that (a stored exception used to kill the next turn's loop), and the next turn must not
begin before the failed turn's handlers have ended. The leftover handler is reproduced here as a
task in the runtime's own set, ending a moment after the failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from autogen_core import AgentId, MessageContext, RoutedAgent, TopicId, message_handler
from autogen_core.models import LLMMessage
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from roundtable.common.errors import ModelError
from roundtable.conversations import Budget, team_runtime
from roundtable.conversations.team_runtime import DebateRuntime, tracing_on
from roundtable.transcripts import ErrorEvent, MessageEvent, StopEvent
from tests.support.debates import collect, pick, scripted_debate

LEFTOVER_S = 0.5


def leftover(runtime: Any, ended: list[float]) -> None:
    """A handler of the failed turn still running: it ends ``LEFTOVER_S`` later."""

    async def late() -> None:
        await asyncio.sleep(LEFTOVER_S)
        ended.append(True)

    task = asyncio.get_running_loop().create_task(late())
    runtime._background_tasks.add(task)
    task.add_done_callback(runtime._background_tasks.discard)


async def run_with_a_leftover(path: Path, timeout_s: float = 30) -> tuple[list[Any], list[bool]]:
    """The analyst fails, leaving a handler behind; the writer speaks next. Returns the events
    and, for the writer's call, whether the leftover had ended by then."""
    holder: dict[str, Any] = {}
    ended: list[bool] = []
    called: list[bool] = []

    def fail(_messages: Sequence[LLMMessage]) -> str:
        leftover(holder["debate"]._runtime, ended)
        raise ModelError("the model broke")

    def answer(_messages: Sequence[LLMMessage]) -> str:
        called.append(bool(ended))
        return "Answer."

    debate, _, _ = scripted_debate(
        path,
        {"researcher": ["Facts."], "analyst": [fail, "Analysis."], "writer": [answer]},
        picks=[pick("analyst"), pick("analyst"), pick("writer")],
        budget=Budget(max_turns=4),
        chunk_delay=0.01,
        roles=["researcher", "analyst", "writer"],
    )
    holder["debate"] = debate
    events = await asyncio.wait_for(collect(debate), timeout=timeout_s)
    return events, called


async def test_the_turn_after_a_failure_waits_for_its_leftover_handler(tmp_path: Path) -> None:
    events, called = await run_with_a_leftover(tmp_path / "t.jsonl")
    assert any(isinstance(e, ErrorEvent) and "the model broke" in e.message for e in events)
    said = [e.speaker for e in events if isinstance(e, MessageEvent)]
    assert said == ["human", "researcher", "writer", "analyst"], said  # went on after it
    assert isinstance(events[-1], StopEvent)
    assert called == [True]


async def test_without_settling_the_next_turn_starts_under_the_leftover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard against a test that cannot fail: with ``settle`` a no-op, the writer is
    called while the failed turn's handler still runs."""

    async def nothing(_runtime: Any, timeout_s: float = 0.0) -> None:
        return None

    monkeypatch.setattr(team_runtime, "settle", nothing)
    monkeypatch.setattr("roundtable.conversations.debate.settle", nothing)
    _, called = await run_with_a_leftover(tmp_path / "t.jsonl")
    assert called == [False]


async def test_without_the_idle_end_the_turn_after_a_failure_never_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoGen's manager still waits for the failed agent, so the next reply brings no
    termination: only the runtime going idle ends that turn."""
    monkeypatch.setattr(team_runtime.IdleEnd, "watch", lambda _self: None)
    with pytest.raises(TimeoutError):
        await run_with_a_leftover(tmp_path / "t.jsonl", timeout_s=3)


async def test_one_runtime_runs_every_turn_and_stops_with_the_debate(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": ["Facts.", "More facts."], "writer": ["Answer.", "Better answer."]},
        picks=[pick("researcher"), pick("writer"), pick("researcher"), pick("writer")],
        budget=Budget(max_turns=4),
        roles=["researcher", "writer"],
    )
    runtime = debate._runtime
    loops: set[int] = set()
    async for _event in debate.run():
        loops.add(id(runtime._run_context))
    assert len(loops - {id(None)}) == 1  # one message loop, never restarted between turns
    assert runtime._run_context is None  # stopped when the debate ended
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@dataclass
class Note:
    text: str


class _Echo(RoutedAgent):
    def __init__(self) -> None:
        super().__init__("echo")

    @message_handler
    async def on_note(self, message: Note, ctx: MessageContext) -> Note:
        return message


async def _one_message(runtime: DebateRuntime) -> None:
    await _Echo.register(runtime, "echo", _Echo)
    runtime.start()
    assert await runtime.send_message(Note("hello"), AgentId("echo", "default")) == Note("hello")
    await runtime.publish_message(Note("hello"), TopicId("nobody", "default"))
    await runtime.close_debate()


async def test_spans_are_kept_when_a_tracer_provider_is_set_up() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = DebateRuntime(tracer_provider=provider)
    assert runtime.traced and tracing_on(provider)
    await _one_message(runtime)
    spans = exporter.get_finished_spans()
    assert any("hello" in str(s.attributes.get("message", "")) for s in spans), spans


async def test_without_a_provider_no_span_is_opened_and_nothing_serialised() -> None:
    runtime = DebateRuntime()
    assert not runtime.traced and not tracing_on()
    assert runtime._try_serialize(Note("hello")) == ""
    await _one_message(runtime)  # messages still delivered
