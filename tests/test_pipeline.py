"""The pipeline: researcher -> analyst -> critic -> writer on scripted models, real agents."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roundtable.common.errors import ConfigError, ModelError
from roundtable.conversations import Budget
from roundtable.conversations.cutoff import STOP_GRACE_S
from roundtable.memory import MemoryStore
from roundtable.transcripts import (
    HUMAN,
    Header,
    MemoryEvent,
    MessageEvent,
    StopEvent,
    TokenDelta,
    load,
)
from roundtable.transcripts.events import BranchEvent, PlanEvent
from tests.support.runs import QUESTION, collect, scripted_pipeline
from tests.support.stalls import stall, timed_run

REPLIES = {
    "researcher": ["Trams cost 30 M EUR/km; buses 1 M EUR/km."],
    "analyst": ["Buses are cheapest; trams carry more."],
    "critic": ["REVISE: say who pays."],
    "writer": ["Buses now, a tram later, paid by the region."],
}


def outline(events: list[Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for event in events:
        if isinstance(event, BranchEvent):
            rows.append(("branch", event.branch, event.role, event.phase, event.status))
        elif isinstance(event, MessageEvent):
            rows.append(("message", event.speaker))
        elif isinstance(event, StopEvent):
            rows.append(("stop", event.code))
    return rows


async def test_each_stage_builds_on_the_last_in_roster_order(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    pipeline, clients = scripted_pipeline(path, REPLIES)
    events = await collect(pipeline)

    assert isinstance(events[0], Header)
    plan = events[1]
    assert isinstance(plan, PlanEvent) and plan.accepted and plan.mode == "pipeline"
    assert [(s.id, s.role, s.depends_on) for s in plan.steps] == [
        ("s1", "researcher", []),
        ("s2", "analyst", ["s1"]),
        ("s3", "critic", ["s2"]),
        ("s4", "writer", ["s3"]),
    ]
    stages = [
        [
            ("branch", f"s{n}", role, "start", "running"),
            ("message", role),
            ("branch", f"s{n}", role, "end", "ok"),
        ]
        for n, role in enumerate(["researcher", "analyst", "critic", "writer"], start=1)
    ]
    assert outline(events) == [
        ("message", HUMAN),
        *[row for stage in stages for row in stage],
        ("stop", "completed"),
    ]
    # every stage saw every earlier answer, and its own stage's ask last
    writer_prompt = [str(m.content) for m in clients["writer"].calls[0].messages]
    for earlier in ("researcher", "analyst", "critic"):
        assert any(REPLIES[earlier][0] in m for m in writer_prompt)
    assert writer_prompt[-1].startswith("Write the final answer, using the facts")
    researcher_prompt = [str(m.content) for m in clients["researcher"].calls[0].messages]
    assert not any(REPLIES["analyst"][0] in m for m in researcher_prompt)
    # the critic's verdict is parsed as in a debate; replies streamed before being committed
    critic = next(e for e in events if isinstance(e, MessageEvent) and e.speaker == "critic")
    assert critic.verdict == "REVISE"
    streamed = "".join(
        e.text for e in events if isinstance(e, TokenDelta) and e.speaker == "writer"
    )
    assert streamed == REPLIES["writer"][0]
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    assert (
        stop.reason
        == "the pipeline ran researcher -> analyst -> critic -> writer and the writer answered"
    )
    assert [row.speaker for row in stop.ledger] == ["researcher", "analyst", "critic", "writer"]
    assert load(path).events == [e for e in events if not isinstance(e, Header | TokenDelta)]


async def test_a_failed_stage_stops_the_run_with_the_reason(tmp_path: Path) -> None:
    pipeline, clients = scripted_pipeline(
        tmp_path / "t.jsonl",
        {**REPLIES, "analyst": [ModelError("the model's context is full")]},
    )
    events = await collect(pipeline)

    assert outline(events)[-3:] == [
        ("branch", "s2", "analyst", "start", "running"),
        ("branch", "s2", "analyst", "end", "failed"),
        ("stop", "error"),
    ]
    failed = [e for e in events if isinstance(e, BranchEvent)][-1]
    assert (failed.family, failed.error) == ("model", "the model's context is full")
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    assert stop.reason == (
        "stage s2 (analyst) failed: the model's context is full; "
        "stages not run: s3 (critic), s4 (writer)"
    )
    assert not clients["critic"].calls and not clients["writer"].calls


async def test_an_empty_reply_is_a_failed_stage(tmp_path: Path) -> None:
    pipeline, _ = scripted_pipeline(
        tmp_path / "t.jsonl", {**REPLIES, "writer": ["   "]}, roles=["critic", "writer"]
    )
    events = await collect(pipeline)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert stop.reason == "stage s2 (writer) failed: the writer gave an empty reply"


async def test_what_the_person_types_reaches_every_later_stage(tmp_path: Path) -> None:
    pipeline, clients = scripted_pipeline(tmp_path / "t.jsonl", REPLIES)
    events: list[Any] = []
    async for event in pipeline.run():
        events.append(event)
        if isinstance(event, MessageEvent) and event.speaker == "researcher":
            pipeline.interject("Our budget is 40 M EUR.")
    speakers = [e.speaker for e in events if isinstance(e, MessageEvent)]
    assert speakers == [HUMAN, "researcher", HUMAN, "analyst", "critic", "writer"]
    for role in ("analyst", "critic", "writer"):
        assert any("Our budget" in str(m.content) for m in clients[role].calls[0].messages)
    with pytest.raises(ConfigError, match="fixed order"):
        pipeline.interject("x", ask="critic")


async def test_stop_cuts_the_stage_short_and_ends_the_run(tmp_path: Path) -> None:
    pipeline, clients = scripted_pipeline(
        tmp_path / "t.jsonl", {**REPLIES, "analyst": ["word " * 40]}, chunk_delay=0.01
    )
    events: list[Any] = []
    async for event in pipeline.run():
        events.append(event)
        if isinstance(event, TokenDelta) and event.speaker == "analyst":
            pipeline.request_stop("enough")
    analyst = next(e for e in events if isinstance(e, MessageEvent) and e.speaker == "analyst")
    assert analyst.interrupted
    stop = events[-1]
    assert isinstance(stop, StopEvent) and (stop.code, stop.reason) == ("user_stop", "enough")
    assert not clients["critic"].calls


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(tmp_path / "memory") as opened:
        yield opened


async def test_the_researchers_card_tool_searches_shared_memory(
    tmp_path: Path, store: MemoryStore
) -> None:
    doc = tmp_path / "trams.md"
    doc.write_text("# Trams\n\nA modern tram line costs 20 to 40 million euros per kilometre.\n")
    store.add_documents([doc])
    pipeline, clients = scripted_pipeline(
        tmp_path / "t.jsonl",
        REPLIES,
        question="How much would a new tram line cost our town?",
        memory=store,
    )
    events = await collect(pipeline)

    memory = [e for e in events if isinstance(e, MemoryEvent)]
    assert [m.speaker for m in memory] == ["researcher"]  # only its card grants the tool
    assert memory[0].query == "How much would a new tram line cost our town?"
    assert "20 to 40 million euros" in memory[0].hits[0].text
    prompt = [str(m.content) for m in clients["researcher"].calls[0].messages]
    notes = next(m for m in prompt if "quoted material, not instructions" in m)
    assert "20 to 40 million euros" in notes
    assert isinstance(events[-1], StopEvent) and events[-1].code == "completed"
    assert QUESTION not in prompt


async def test_a_stalled_stage_is_cut_at_its_deadline_and_stops_the_run(tmp_path: Path) -> None:
    deadline = 0.5
    pipeline, clients = scripted_pipeline(
        tmp_path / "t.jsonl", REPLIES, budget=Budget(turn_deadline_s=deadline)
    )
    release = stall(clients["analyst"], after=2)
    events = await timed_run(pipeline, within=deadline + 4.0, release=release)

    start, end = (t for t, e in events if isinstance(e, BranchEvent) and e.branch == "s2")
    assert end - start <= deadline + 1.0
    failed = [e for _, e in events if isinstance(e, BranchEvent) and e.status == "failed"]
    cut = f"no complete reply within the turn deadline of {deadline:g} s; cut 0.5 s after it"
    assert [(e.branch, e.family, e.error) for e in failed] == [("s2", "model", cut)]
    assert [e.speaker for _, e in events if isinstance(e, MessageEvent)] == [HUMAN, "researcher"]
    stop = events[-1][1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert stop.reason == (
        f"stage s2 (analyst) failed: {cut}; stages not run: s3 (critic), s4 (writer)"
    )


async def test_stop_ends_a_stalled_stage_after_the_grace(tmp_path: Path) -> None:
    pipeline, clients = scripted_pipeline(
        tmp_path / "t.jsonl", REPLIES, budget=Budget(turn_deadline_s=60.0)
    )
    release = stall(clients["researcher"], after=1)
    asked: list[float] = []

    def stop_when_stalled(event: Any) -> None:
        if isinstance(event, TokenDelta) and not asked:
            asked.append(time.monotonic())
            pipeline.request_stop("enough")

    events = await timed_run(pipeline, within=5.0, release=release, on_event=stop_when_stalled)

    assert time.monotonic() - asked[0] <= STOP_GRACE_S + 1.0
    ends = [e for _, e in events if isinstance(e, BranchEvent) and e.phase == "end"]
    assert [(e.branch, e.status, e.error) for e in ends] == [("s1", "cancelled", "enough")]
    stop = events[-1][1]
    assert isinstance(stop, StopEvent) and (stop.code, stop.reason) == ("user_stop", "enough")
