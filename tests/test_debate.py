"""The debate engine on scripted models: whole event streams, every stop condition."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from roundtable.common.errors import ConfigError, InfraError
from roundtable.conversations import Budget
from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    Header,
    MessageEvent,
    NoticeEvent,
    SelectionEvent,
    StopEvent,
    TokenDelta,
    load,
)
from tests.support.debates import collect, pick, scripted_debate


def outline(events: list[object]) -> list[tuple[str, ...]]:
    """The shape of a run: who spoke, who was picked how, and how it stopped."""
    rows: list[tuple[str, ...]] = []
    for event in events:
        if isinstance(event, MessageEvent):
            rows.append(("message", event.speaker, event.content))
        elif isinstance(event, SelectionEvent):
            rows.append(("selection", event.speaker, event.method))
        elif isinstance(event, StopEvent):
            rows.append(("stop", event.code))
        elif isinstance(event, ErrorEvent):
            rows.append(("error", event.family, event.speaker or "-"))
    return rows


async def test_a_debate_runs_to_acceptance_with_every_choice_recorded(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    debate, clients, manager = scripted_debate(
        path,
        {
            "researcher": ["Cities that did it cut traffic by a third."],
            "analyst": ["Cleaner air, but shops fear losing customers."],
            "critic": ["ACCEPT: the trade-off is clear.", "ACCEPT: well argued."],
            "writer": ["Yes, with good transit and delivery exemptions."],
        },
        picks=[pick("analyst", "facts need weighing"), pick("critic", "check the reasoning")],
    )
    events = await collect(debate)

    assert isinstance(events[0], Header)
    assert outline(events) == [
        ("message", HUMAN, "Should our city ban private cars downtown?"),
        ("selection", "researcher", "rule"),
        ("message", "researcher", "Cities that did it cut traffic by a third."),
        ("selection", "analyst", "model"),
        ("message", "analyst", "Cleaner air, but shops fear losing customers."),
        ("selection", "critic", "model"),
        ("message", "critic", "ACCEPT: the trade-off is clear."),
        ("selection", "writer", "rule"),
        ("message", "writer", "Yes, with good transit and delivery exemptions."),
        ("selection", "critic", "rule"),
        ("message", "critic", "ACCEPT: well argued."),
        ("stop", "accepted"),
    ]
    # the saved transcript holds exactly the committed events, in order
    saved = load(path)
    assert saved.events == [e for e in events if not isinstance(e, Header | TokenDelta)]
    # replies streamed token by token before they were committed
    streamed = "".join(e.text for e in events if isinstance(e, TokenDelta) and e.turn == 1)
    assert streamed == "Cities that did it cut traffic by a third."
    # the manager chose among allowed candidates only: never the previous speaker
    first_pick = manager.calls[0]
    schema = first_pick.json_output.model_json_schema()  # type: ignore[union-attr]
    assert schema["properties"]["speaker"]["enum"] == ["analyst", "critic", "writer"]
    # every agent saw who said what
    writer_prompt = clients["writer"].calls[0].messages
    assert [getattr(m, "source", None) for m in writer_prompt[1:]] == [
        HUMAN,
        "researcher",
        "analyst",
        "critic",
    ]


async def test_max_turns_stops_and_the_writer_answers_before_the_end(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={
            "researcher": "Facts.",
            "analyst": "Analysis.",
            "critic": "REVISE: not yet.",
            "writer": "An answer.",
        },
        picks=[pick("analyst"), pick("critic"), pick("researcher")],
        budget=Budget(max_turns=5),
    )
    events = await collect(debate)
    speakers = [e.speaker for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert len(speakers) == 5
    assert "writer" in speakers[-2:]
    assert all(a != b for a, b in itertools.pairwise(speakers))
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "max_turns"
    assert "5 turns" in stop.reason


async def test_token_budget_stops(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={r: "word " * 60 for r in ("researcher", "analyst", "critic", "writer")},
        picks=[pick("analyst")] * 5,
        budget=Budget(max_tokens=150, max_turns=50),
    )
    events = await collect(debate)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "token_budget"


async def test_wall_clock_cuts_the_reply_short_and_stops(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": ["slow " * 200]},
        chunk_delay=0.01,
        budget=Budget(wall_clock_s=0.3),
    )
    events = await collect(debate)
    reply = next(e for e in events if isinstance(e, MessageEvent) and e.speaker == "researcher")
    assert reply.interrupted
    assert 0 < len(reply.content) < len("slow " * 200)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "wall_clock"


async def test_a_person_steps_in_mid_reply_and_the_next_agent_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    debate, clients, _ = scripted_debate(
        path,
        {"researcher": ["long " * 100], "analyst": ["Taking the point on board."]},
        defaults={"critic": "ACCEPT: fine.", "writer": "Answer."},
        picks=[pick("analyst")],
        chunk_delay=0.005,
        budget=Budget(max_turns=5),
    )
    events = []
    async for event in debate.run():
        events.append(event)
        if isinstance(event, TokenDelta) and event.speaker == "researcher" and len(events) == 6:
            debate.interject("What about deliveries?")
    messages = [e for e in events if isinstance(e, MessageEvent)]
    assert [m.speaker for m in messages][:4] == [HUMAN, "researcher", HUMAN, "analyst"]
    assert messages[1].interrupted
    assert messages[2].content == "What about deliveries?"
    analyst_prompt = clients["analyst"].calls[0].messages
    assert getattr(analyst_prompt[-1], "source", None) == HUMAN
    assert analyst_prompt[-1].content == "What about deliveries?"


async def test_ask_makes_that_role_answer_next(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={"researcher": "F.", "analyst": "A.", "critic": "REVISE: more.", "writer": "W."},
        budget=Budget(max_turns=2),
    )
    debate.interject("Critic, is that right?", ask="critic", cut_short=False)
    events = await collect(debate)
    selections = [e for e in events if isinstance(e, SelectionEvent)]
    assert (selections[0].speaker, selections[0].method) == ("critic", "human")
    with pytest.raises(ConfigError, match="no role 'judge'"):
        debate.interject("hi", ask="judge")


async def test_stop_ends_the_debate_with_the_reason(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl", {"researcher": ["word " * 300]}, chunk_delay=0.005
    )
    events = []
    async for event in debate.run():
        events.append(event)
        if isinstance(event, TokenDelta) and len(events) == 8:
            debate.request_stop("the person pressed Stop")
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    assert (stop.code, stop.reason) == ("user_stop", "the person pressed Stop")
    assert sum(isinstance(e, MessageEvent) and e.interrupted for e in events) == 1


async def test_a_failing_agent_is_recorded_and_the_debate_goes_on(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"analyst": [RuntimeError("model crashed")], "researcher": ["F.", "G."]},
        defaults={"critic": "ACCEPT: ok.", "writer": "W.", "analyst": "A."},
        picks=[pick("analyst"), pick("critic")],
        budget=Budget(max_turns=4),
    )
    events = await collect(debate)
    rows = outline(events)
    assert ("error", "model", "analyst") in rows
    after = rows[rows.index(("error", "model", "analyst")) + 1]
    assert after[0] == "selection" and after[1] != "analyst"
    assert isinstance(events[-1], StopEvent)


async def test_repeated_failures_stop_with_a_reason(tmp_path: Path) -> None:
    boom = [RuntimeError("down")] * 5
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": boom, "analyst": boom, "critic": boom, "writer": boom},
        picks=[pick("analyst"), pick("critic"), pick("writer")],
    )
    events = await collect(debate)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert "3 turns in a row failed" in stop.reason


async def test_storage_failure_surfaces_as_infra_error(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(tmp_path / "t.jsonl", {"researcher": ["F."]})
    run = debate.run()
    await run.__anext__()  # header
    writer = debate._record.writer
    assert writer is not None
    writer._file.close()  # type: ignore[union-attr]  # simulate the disk going away
    with pytest.raises((InfraError, ValueError)):
        await run.__anext__()


def test_an_empty_question_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="question is empty"):
        scripted_debate(tmp_path / "t.jsonl", {}, question="   ")


async def test_transcripts_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("precious\n")
    debate, _, _ = scripted_debate(path, {})
    with pytest.raises(ConfigError, match="already exists"):
        await collect(debate)
    assert path.read_text() == "precious\n"


async def test_runs_concurrently_without_cross_talk(tmp_path: Path) -> None:
    runs = [
        scripted_debate(
            tmp_path / f"{n}.jsonl",
            {},
            question=f"canary-{n}?",
            defaults={
                r: f"{r} on canary-{n}" for r in ("researcher", "analyst", "critic", "writer")
            },
            picks=[pick("analyst")] * 3,
            budget=Budget(max_turns=3),
            chunk_delay=0.001,
        )[0]
        for n in range(4)
    ]
    results = await asyncio.gather(*(collect(d) for d in runs))
    for n, events in enumerate(results):
        text = " ".join(e.content for e in events if isinstance(e, MessageEvent))
        assert f"canary-{n}" in text
        assert not any(f"canary-{m}" in text for m in range(4) if m != n)


async def test_a_configuration_fault_in_an_agent_stops_the_debate_at_once(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": [ConfigError("endpoint 'default': API key refused (401)")]},
    )
    events = await collect(debate)
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert (error.family, error.speaker) == ("config", "researcher")
    assert error.message == "endpoint 'default': API key refused (401)"
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert "API key refused" in stop.reason


async def test_a_budget_warning_at_80_percent_and_a_cost_ledger_at_the_end(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={
            r: f"{r} says a few words." for r in ("researcher", "analyst", "critic", "writer")
        },
        picks=[pick("analyst"), pick("critic"), pick("researcher")],
        budget=Budget(max_turns=5),
    )
    events = await collect(debate)
    notices = [e for e in events if isinstance(e, NoticeEvent)]
    assert [n.message for n in notices] == ["80% of the turns budget used (4 of 5 turns)"]
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    rows = {row.speaker: row for row in stop.ledger}
    spoke = [e.speaker for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert set(rows) == {*spoke, "manager"}
    assert rows["manager"].calls == 2
    for speaker in set(spoke):
        assert rows[speaker].calls == spoke.count(speaker)
        assert rows[speaker].completion_tokens > 0
        assert rows[speaker].cost_usd is None  # no price configured


async def test_an_empty_reply_is_recorded_as_misbehaviour_and_never_committed(
    tmp_path: Path,
) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": ["   "]},
        defaults={"researcher": "F.", "analyst": "A.", "critic": "REVISE: no.", "writer": "W."},
        picks=[pick("analyst"), pick("critic")],
        budget=Budget(max_turns=3),
    )
    events = await collect(debate)
    assert not any(isinstance(e, MessageEvent) and not e.content.strip() for e in events)
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert (error.family, error.speaker, error.message) == (
        "model",
        "researcher",
        "researcher gave an empty reply",
    )
    after = [e for e in events if isinstance(e, SelectionEvent)][1]
    assert after.speaker != "researcher"
    assert isinstance(events[-1], StopEvent)
