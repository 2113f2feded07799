"""A failed turn's leftover AutoGen handlers must not hang the next turn (``team_runtime``).

An agent's error is published to the other agents' containers; a handler that refuses it can
outlive the turn's runtime and then acknowledge a message on the next turn's queue, or store
an exception the next turn's message loop dies of. Either way the next ``run_stream`` waited
forever. The leftover handler is reproduced here as a task in the runtime's own set."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage

from roundtable.common.errors import ModelError
from roundtable.conversations import Budget, team_runtime
from roundtable.transcripts import ErrorEvent, MessageEvent, StopEvent
from tests.support.debates import collect, pick, scripted_debate


def leftover(runtime: Any) -> None:
    """A handler of the failed turn still running: it ends within a second, and when it ends
    it acknowledges a message on whichever queue the runtime has by then (AutoGen's
    ``_process_publish`` does so in its ``finally``). If the next turn has started by then,
    that is the next turn's start message: the worst moment, made certain here."""

    async def late() -> None:
        for _ in range(100):
            if runtime._message_queue._unfinished_tasks > 0:  # the next turn has begun
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(ValueError):  # nothing left to acknowledge: refused
            runtime._message_queue.task_done()

    task = asyncio.get_running_loop().create_task(late())
    runtime._background_tasks.add(task)
    task.add_done_callback(runtime._background_tasks.discard)


async def run_with_a_leftover(path: Path) -> list[Any]:
    holder: dict[str, Any] = {}

    def fail(_messages: Sequence[LLMMessage]) -> str:
        leftover(holder["debate"]._team._runtime)
        raise ModelError("the model broke")

    debate, _, _ = scripted_debate(
        path,
        {"researcher": ["Facts."], "analyst": [fail, "Analysis."], "writer": ["Answer."]},
        picks=[pick("analyst"), pick("analyst"), pick("writer")],
        budget=Budget(max_turns=4),
        chunk_delay=0.1,
        roles=["researcher", "analyst", "writer"],
    )
    holder["debate"] = debate
    return await asyncio.wait_for(collect(debate), timeout=30)


async def test_the_turn_after_a_failure_runs_despite_a_leftover_handler(tmp_path: Path) -> None:
    events = await run_with_a_leftover(tmp_path / "t.jsonl")
    assert any(isinstance(e, ErrorEvent) and "the model broke" in e.message for e in events)
    said = [e.speaker for e in events if isinstance(e, MessageEvent)]
    assert said[-1] != "researcher" and len(said) >= 3, said  # turns went on after the failure
    assert isinstance(events[-1], StopEvent)


async def test_without_settling_the_next_turn_never_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard against a test that cannot fail: with ``settle`` a no-op, the run hangs."""

    async def nothing(_team: Any, timeout_s: float = 0.0) -> None:
        return None

    monkeypatch.setattr(team_runtime, "settle", nothing)
    monkeypatch.setattr("roundtable.conversations.debate.settle", nothing)
    with pytest.raises(TimeoutError):
        await run_with_a_leftover(tmp_path / "t.jsonl")
