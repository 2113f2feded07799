"""The panel: plan, fan out, fan in. Scripted words; real agents, transcript and HTTP server."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from roundtable.agents import EndpointSettings, resolve_team
from roundtable.common.errors import ConfigError, ModelError
from roundtable.conversations import Debate, RunOptions, load_settings
from roundtable.conversations.cutoff import STOP_GRACE_S
from roundtable.conversations.panel import Panel, PanelSettings
from roundtable.conversations.pipeline import Pipeline
from roundtable.conversations.runs import EMBEDDED_LANE, build_run, panel_lanes
from roundtable.memory import MemoryStore
from roundtable.terminal import TerminalRenderer
from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    Header,
    MemoryEvent,
    MessageEvent,
    SelectionEvent,
    StopEvent,
    TokenDelta,
    load,
    replay,
)
from roundtable.transcripts.events import AggregateEvent, BranchEvent, PlanEvent
from tests.support.chat_server import Reply, Request, running_chat_server
from tests.support.debates import pick
from tests.support.runs import (
    QUESTION,
    collect,
    collect_and_close,
    comparison,
    participants,
    plan,
    scripted_clients,
    scripted_panel,
    step,
)
from tests.support.stalls import stall, timed_run

THREE = plan(
    step("researcher", "research", "What does each option cost to build?"),
    step("analyst", "analysis", "Which option emits the least per trip?"),
    step("researcher", "research", "How long does each take to build?"),
)


def outline(events: list[Any]) -> list[tuple[Any, ...]]:
    """The shape of a run: plan, branches, messages, comparison and stop."""
    rows: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, PlanEvent):
            rows.append(("plan", event.accepted, [(s.id, s.role) for s in event.steps]))
        elif isinstance(event, BranchEvent):
            rows.append(("branch", event.branch, event.phase, event.status))
        elif isinstance(event, MessageEvent):
            rows.append(("message", event.speaker))
        elif isinstance(event, AggregateEvent):
            rows.append(("aggregate", event.answered, [m.branch for m in event.missing]))
        elif isinstance(event, SelectionEvent):
            rows.append(("selection", event.speaker))
        elif isinstance(event, ErrorEvent):
            rows.append(("error", event.speaker))
        elif isinstance(event, StopEvent):
            rows.append(("stop", event.code))
    return rows


def rendered(events: list[Any]) -> str:
    out = io.StringIO()
    render = TerminalRenderer(out, colour=False)
    for event in events:
        render(event)
    return out.getvalue()


async def test_a_plan_runs_its_branches_and_the_answer_states_the_disagreement(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    panel, clients, manager = scripted_panel(
        path,
        {
            "researcher": ["Trams cost 30 M EUR/km; buses 1 M.", "Trams take 5 years."],
            "analyst": ["Trams emit the least per trip; buses the most."],
            "critic": [comparison(("cost", ["q1", "q2"], "q2 ignores the cost of trams"))],
            "writer": ["Start with buses, plan a tram."],
        },
        plans=[THREE],
    )
    events = await collect(panel)

    assert isinstance(events[0], Header)
    rows = outline(events)
    assert rows[:2] == [
        ("plan", True, [("q1", "researcher"), ("q2", "analyst"), ("q3", "researcher")]),
        ("message", HUMAN),
    ]
    assert rows[-4:] == [
        ("message", "critic"),
        ("aggregate", ["q1", "q2", "q3"], []),
        ("message", "writer"),
        ("stop", "completed"),
    ]
    branch_rows = [r for r in rows if r[0] == "branch"]
    assert sorted(branch_rows) == sorted(
        [
            ("branch", q, phase, s)
            for q in ("q1", "q2", "q3")
            for phase, s in (("start", "running"), ("end", "ok"))
        ]
    )
    aggregate = next(e for e in events if isinstance(e, AggregateEvent))
    assert aggregate.compared
    assert [(c.topic, c.branches) for c in aggregate.conflicts] == [("cost", ["q1", "q2"])]
    answer = [e for e in events if isinstance(e, MessageEvent)][-1]
    assert answer.content == (
        "Start with buses, plan a tram.\n\n"
        "Disagreements between the branches:\n"
        "- cost [q1 (researcher), q2 (analyst)]: q2 ignores the cost of trams"
    )
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    assert stop.reason == "the writer answered from all 3 branches; 1 disagreement(s) stated"
    # each branch's end names the message with its answer
    messages = {e.seq: e for e in events if isinstance(e, MessageEvent)}
    for end in (e for e in events if isinstance(e, BranchEvent) and e.phase == "end"):
        assert end.message_seq is not None and messages[end.message_seq].speaker == end.role
    # the manager was constrained: per role, only what its card covers
    schema = manager.calls[0].json_output.model_json_schema()  # type: ignore[union-attr]
    needs = schema["$defs"]["Q1_analyst"]["properties"]["needs"]
    assert needs == {"const": "analysis", "title": "Needs", "type": "string"}
    # the critic compared the branches that answered, named by an enum of their ids
    compare = clients["critic"].calls[0]
    critic_schema = compare.json_output.model_json_schema()  # type: ignore[union-attr]
    assert critic_schema["$defs"]["Disagreement"]["properties"]["branches"]["items"] == {
        "enum": ["q1", "q2", "q3"],
        "type": "string",
    }
    # the writer was told to state the disagreement
    brief = str(clients["writer"].calls[0].messages[-1].content)
    assert "State these disagreements openly instead of hiding them: cost." in brief
    # saved exactly as streamed; replay shows the same as the live run
    saved = load(path)
    assert saved.events == [e for e in events if not isinstance(e, Header | TokenDelta)]
    replayed = [e async for e in replay(saved)]
    assert rendered(replayed) == rendered(events)
    text = rendered(events)
    assert "Plan (panel): the manager's plan: 3 sub-question(s), 3 independent" in text
    assert "  q2 analyst (analysis): Which option emits the least per trip?" in text
    assert "  < q2 (analyst) ok after" in text
    assert "  compared: 3 answered, 0 missing, 1 disagreement(s)" in text


async def test_a_dependent_branch_waits_for_its_input_and_sees_it(tmp_path: Path) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {
            "researcher": ["Trams cost 30 M EUR/km."],
            "analyst": ["At 30 M EUR/km a tram is a big bet."],
            "writer": ["Answer."],
        },
        plans=[
            plan(
                step("researcher", "research", "What does a tram cost?"),
                step("analyst", "analysis", "Is that cost worth it?", after=[1]),
            )
        ],
        defaults={"critic": comparison()},
    )
    events = await collect(panel)

    branches = [(e.branch, e.phase) for e in events if isinstance(e, BranchEvent)]
    assert branches == [("q1", "start"), ("q1", "end"), ("q2", "start"), ("q2", "end")]
    plan_event = next(e for e in events if isinstance(e, PlanEvent))
    assert plan_event.steps[1].depends_on == ["q1"]
    prompt = [str(m.content) for m in clients["analyst"].calls[0].messages]
    assert any("[q1] What does a tram cost?\nTrams cost 30 M EUR/km." in m for m in prompt)
    assert "Answer only your part of the question (q2): Is that cost worth it?" in prompt[-1]
    assert isinstance(events[-1], StopEvent) and events[-1].code == "completed"


async def test_a_failed_branch_is_reported_and_the_answer_says_what_is_missing(
    tmp_path: Path,
) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {
            "researcher": ["Trams cost 30 M EUR/km.", "Trams take 5 years."],
            "analyst": [ModelError("the model's context is full")],
            "critic": [comparison()],
            "writer": ["Buses are the safe choice."],
        },
        plans=[
            plan(
                step("researcher", "research", "What does each option cost?"),
                step("analyst", "analysis", "Which emits the least?"),
                step("researcher", "research", "How long to build?"),
                step("writer", "writing", "Summarise the emissions.", after=[2]),
            )
        ],
    )
    events = await collect(panel)

    ends = {e.branch: e for e in events if isinstance(e, BranchEvent) and e.phase == "end"}
    assert {k: v.status for k, v in ends.items()} == {
        "q1": "ok",
        "q2": "failed",
        "q3": "ok",
        "q4": "skipped",
    }
    assert ends["q2"].family == "model" and ends["q2"].error == "the model's context is full"
    assert ends["q4"].error == "it needs q2, which did not answer"
    aggregate = next(e for e in events if isinstance(e, AggregateEvent))
    assert aggregate.answered == ["q1", "q3"]
    assert [(m.branch, m.status) for m in aggregate.missing] == [
        ("q2", "failed"),
        ("q4", "skipped"),
    ]
    answer = [e for e in events if isinstance(e, MessageEvent)][-1]
    assert answer.speaker == "writer"
    assert answer.content == (
        "Buses are the safe choice.\n\n"
        "Missing from this answer:\n"
        "- q2 (analyst: Which emits the least?): failed, the model's context is full\n"
        "- q4 (writer: Summarise the emissions.): skipped, it needs q2, which did not answer"
    )
    brief = str(clients["writer"].calls[0].messages[-1].content)
    assert "Some parts could not be answered; say so: q2 (Which emits the least?)" in brief
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "partial"
    assert (
        stop.reason
        == "the writer answered from 2 of 4 branches; missing: q2 (failed), q4 (skipped)"
    )


async def test_a_branch_past_its_timeout_is_cancelled_and_reported(tmp_path: Path) -> None:
    panel, _, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {"researcher": ["Trams."], "analyst": ["words " * 40], "writer": ["Partial."]},
        plans=[
            plan(
                step("researcher", "research", "What does a tram cost?"),
                step("analyst", "analysis", "Which emits the least?"),
            )
        ],
        settings=PanelSettings(branch_timeout_s=1.0),
        chunk_delay=0.1,  # one word is quick; the analyst's 40 take 4 s
    )
    events = await collect(panel)

    ends = {e.branch: e for e in events if isinstance(e, BranchEvent) and e.phase == "end"}
    assert (ends["q1"].status, ends["q2"].status) == ("ok", "timeout")
    assert ends["q2"].error == "no answer within 1 s"
    assert 0.95 < ends["q2"].latency_s < 3.0
    aggregate = next(e for e in events if isinstance(e, AggregateEvent))
    assert aggregate.answered == ["q1"] and aggregate.compared  # one answer: nothing to compare
    answer = [e for e in events if isinstance(e, MessageEvent)][-1]
    assert "- q2 (analyst: Which emits the least?): timeout, no answer within 1 s" in answer.content
    assert isinstance(events[-1], StopEvent) and events[-1].code == "partial"


async def test_no_branch_answering_stops_with_every_reason(tmp_path: Path) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {"researcher": [ModelError("boom")]},
        plans=[plan(step("researcher", "research", "What does a tram cost?"))],
    )
    events = await collect(panel)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert stop.reason == "no branch answered: q1 (researcher): boom"
    assert not clients["writer"].calls


async def test_an_unreadable_comparison_is_retried_then_the_answer_says_so(tmp_path: Path) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {
            "researcher": ["A."],
            "analyst": ["B."],
            "critic": ["they agree", comparison(("cost", ["q1", "q7"], "?"))],
            "writer": ["Answer."],
        },
        plans=[
            plan(
                step("researcher", "research", "Cost?"),
                step("analyst", "analysis", "Emissions?"),
            )
        ],
    )
    events = await collect(panel)

    errors = [e.message for e in events if isinstance(e, ErrorEvent)]
    assert errors == [
        "comparison refused: the comparison is not JSON: 'they agree'",
        "comparison refused: disagreement 1 names 'q7', not a branch that answered (q1, q2)",
    ]
    aggregate = next(e for e in events if isinstance(e, AggregateEvent))
    assert not aggregate.compared and aggregate.conflicts == []
    answer = [e for e in events if isinstance(e, MessageEvent)][-1]
    assert answer.content.endswith(
        "The comparison of the branches could not be read: disagreements may be unlisted."
    )
    assert len(clients["critic"].calls) == 2


CYCLIC = plan(
    step("researcher", "research", "What does a tram cost?", after=[2]),
    step("analyst", "analysis", "Is it worth it?", after=[1]),
)
UNKNOWN_ROLE = plan(step("economist", "analysis", "What does a tram cost?"))
LACKS_CAPABILITY = plan(step("analyst", "search_memory", "What do our documents say?"))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (CYCLIC, "q1 -> q2 -> q1 wait for each other in a cycle"),
        (
            UNKNOWN_ROLE,
            "q1 goes to 'economist', which is not a role in this run "
            "(researcher, analyst, critic, writer)",
        ),
        (
            LACKS_CAPABILITY,
            "q1 needs 'search_memory', which the analyst's card does not cover "
            "(it covers: analysis)",
        ),
        ("I think we should research trams.", "the plan is not JSON: 'I think we should"),
    ],
    ids=["cyclic", "unknown-role", "capability-missing", "not-json"],
)
async def test_an_invalid_plan_is_refused_with_its_reason_and_a_debate_takes_over(
    tmp_path: Path, bad: str, reason: str
) -> None:
    path = tmp_path / "t.jsonl"
    panel, _, manager = scripted_panel(
        path,
        {
            "researcher": ["Trams cost 30 M EUR/km."],
            "writer": ["Buses first."],
            "critic": ["ACCEPT: clear and sourced."],
        },
        plans=[bad, bad],
        picks=[pick("writer", "the facts are in")],
    )
    events = await collect(panel)

    rows = outline(events)
    assert rows[1][:2] == ("plan", False)
    assert rows[:1] + rows[2:] == [
        ("error", "manager"),
        ("message", HUMAN),
        ("selection", "researcher"),
        ("message", "researcher"),
        ("selection", "writer"),
        ("message", "writer"),
        ("selection", "critic"),
        ("message", "critic"),
        ("stop", "accepted"),
    ]
    refused = next(e for e in events if isinstance(e, PlanEvent))
    assert refused.reason.startswith(f"plan refused: {reason}")
    assert refused.reason.endswith("; falling back to a debate")
    assert refused.fallback == "debate"
    # the second attempt was told why the first was refused
    retry = str(manager.calls[1].messages[-1].content)
    assert retry.startswith(f"Your previous plan was refused: {reason}")
    # one transcript, one header: the debate continued the panel's file
    saved = load(path)
    assert saved.events == [e for e in events if not isinstance(e, Header | TokenDelta)]
    assert sum(isinstance(e, Header) for e in events) == 1
    assert "  ! plan refused: " in rendered(events)


async def test_without_a_fallback_a_refused_plan_stops_the_run(tmp_path: Path) -> None:
    panel, _, _ = scripted_panel(tmp_path / "t.jsonl", {}, plans=[CYCLIC, CYCLIC], fallback=False)
    events = await collect(panel)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert stop.reason == "plan refused: q1 -> q2 -> q1 wait for each other in a cycle"


async def test_a_lane_of_width_one_runs_branches_one_at_a_time(tmp_path: Path) -> None:
    """The embedded model's single context: its lane is one wide, so the transcript shows
    the branches one after another, which is what the model did."""
    panel, _, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {"writer": ["Answer."]},
        defaults={"researcher": "one two three four", "critic": comparison()},
        plans=[plan(*[step("researcher", "research", f"Part {n}?") for n in range(1, 4)])],
        chunk_delay=0.02,
        lanes={"researcher": EMBEDDED_LANE},
        limits={EMBEDDED_LANE: 1},
    )
    events = await collect(panel)
    intervals = branch_intervals(events)
    assert len(intervals) == 3
    ordered = sorted(intervals.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(ordered))


async def test_stop_during_the_branches_ends_the_run_after_them(tmp_path: Path) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {},
        defaults={"researcher": "word " * 50},
        plans=[plan(step("researcher", "research", "A?"), step("researcher", "research", "B?"))],
        chunk_delay=0.02,
    )
    seen: list[Any] = []
    async for event in panel.run():
        seen.append(event)
        if isinstance(event, BranchEvent) and event.phase == "start":  # once a few words are out
            asyncio.get_running_loop().call_later(0.1, panel.request_stop, "enough")
    stop = seen[-1]
    assert isinstance(stop, StopEvent) and (stop.code, stop.reason) == ("user_stop", "enough")
    assert not clients["writer"].calls and not clients["critic"].calls
    cut = [e for e in seen if isinstance(e, MessageEvent) and e.speaker == "researcher"]
    assert cut and all(e.interrupted for e in cut)


async def test_what_the_person_types_reaches_the_branches(tmp_path: Path) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {"researcher": ["A."], "writer": ["W."]},
        plans=[plan(step("researcher", "research", "A?"))],
    )
    events: list[Any] = []
    async for event in panel.run():
        events.append(event)
        if isinstance(event, PlanEvent):
            panel.interject("Our budget is 40 M EUR.")
    humans = [e.content for e in events if isinstance(e, MessageEvent) and e.speaker == HUMAN]
    assert humans == [QUESTION, "Our budget is 40 M EUR."]
    assert any(
        "Our budget is 40 M EUR." in str(m.content) for m in clients["researcher"].calls[0].messages
    )
    with pytest.raises(ConfigError, match="a panel follows its plan"):
        panel.interject("x", ask="critic")


def test_a_panel_needs_a_verdict_giver_and_an_answerer(tmp_path: Path) -> None:
    team = resolve_team(None).only(["researcher", "analyst", "critic"])
    clients = scripted_clients({}, roles=["researcher", "analyst", "critic"])
    with pytest.raises(ConfigError, match="cannot run a panel: no role has answers: true"):
        Panel(
            team=team,
            question=QUESTION,
            participants=participants(clients),
            manager_client=None,
            transcript_path=tmp_path / "t.jsonl",
            stop_signal=__import__("threading").Event(),
        )


# -- concurrency against a real OpenAI-compatible HTTP server --------------------------------

FOUR = plan(
    step("researcher", "research", "What do trams cost?"),
    step("researcher", "research", "What do buses cost?"),
    step("analyst", "analysis", "Which emits the least?"),
    step("analyst", "analysis", "Which is quickest to build?"),
)
DELAY_S = 1.0


def loopback_responder(request: Request) -> Reply | None:
    """Every chat reply takes ``DELAY_S``: a plan, a comparison or an answer."""
    if not request.path.endswith("/chat/completions") or not isinstance(request.body, dict):
        return None
    schema = (request.body.get("response_format") or {}).get("json_schema", {}).get("name")
    if schema == "Plan":
        return Reply(FOUR, delay=DELAY_S)
    if schema == "Comparison":
        return Reply(comparison(), delay=DELAY_S)
    return Reply("An answer from the endpoint.", delay=DELAY_S)


def branch_intervals(events: list[Any]) -> dict[str, tuple[datetime, datetime]]:
    starts = {e.branch: e.at for e in events if isinstance(e, BranchEvent) and e.phase == "start"}
    ends = {e.branch: e.at for e in events if isinstance(e, BranchEvent) and e.phase == "end"}
    return {b: (starts[b], ends[b]) for b in starts}


def endpoint_settings(url: str) -> Any:
    return load_settings(
        endpoints={"default": EndpointSettings(kind="openai", base_url=url, model="test-model")}
    )


@pytest.mark.timeout(60)
async def test_four_independent_branches_overlap_on_a_real_http_endpoint(tmp_path: Path) -> None:
    with running_chat_server(responder=loopback_responder) as server:
        run = build_run(
            endpoint_settings(server.url),
            QUESTION,
            options=RunOptions(mode="panel"),
            transcript_path=tmp_path / "t.jsonl",
        )
        assert isinstance(run, Panel)
        events = await collect_and_close(run)
        bodies = [r.body for r in server.chat_requests]

    intervals = branch_intervals(events)
    assert sorted(intervals) == ["q1", "q2", "q3", "q4"]
    # every branch was under way before any of them finished: they overlapped
    assert max(s for s, _ in intervals.values()) < min(e for _, e in intervals.values())
    ends = [e for e in events if isinstance(e, BranchEvent) and e.phase == "end"]
    assert all(e.status == "ok" and e.latency_s >= DELAY_S for e in ends)
    span = max(e for _, e in intervals.values()) - min(s for s, _ in intervals.values())
    assert span.total_seconds() < 4 * DELAY_S  # reported, not the point: overlap is
    # the plan was asked with the constrained schema, as structured output
    assert bodies[0]["response_format"]["json_schema"]["name"] == "Plan"
    assert isinstance(events[-1], StopEvent) and events[-1].code == "completed"


@pytest.mark.timeout(60)
async def test_an_endpoints_lane_bounds_the_branches_running_at_once(tmp_path: Path) -> None:
    with running_chat_server(responder=loopback_responder) as server:
        run = build_run(
            endpoint_settings(server.url),
            QUESTION,
            options=RunOptions(mode="panel"),
            transcript_path=tmp_path / "t.jsonl",
            panel=PanelSettings(max_concurrency=2),
        )
        assert isinstance(run, Panel)
        events = await collect_and_close(run)

    intervals = list(branch_intervals(events).values())
    assert len(intervals) == 4
    most = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    assert most == 2


# -- the factory ----------------------------------------------------------------------------


def test_build_run_makes_each_mode_on_the_same_clients(tmp_path: Path) -> None:
    settings = load_settings()
    clients = scripted_clients({})
    manager = scripted_clients({}, roles=["writer"])["writer"]
    made = {
        mode: build_run(
            settings,
            QUESTION,
            options=RunOptions(mode=mode),
            clients=dict(clients),
            manager_client=manager,
            transcript_path=tmp_path / f"{mode}.jsonl",
        )
        for mode in ("debate", "pipeline", "panel")
    }
    assert isinstance(made["debate"], Debate)
    assert isinstance(made["pipeline"], Pipeline)
    assert isinstance(made["panel"], Panel)
    assert made["panel"].transcript_path == tmp_path / "panel.jsonl"


def test_every_embedded_endpoint_shares_one_lane_of_width_one() -> None:
    settings = load_settings(
        endpoints={
            "default": EndpointSettings(),
            "small": EndpointSettings(),
            "remote": EndpointSettings(kind="openai", base_url="http://127.0.0.1:9/v1"),
        },
        roles={"analyst": "small", "critic": "remote"},
    )
    roster = participants(scripted_clients({}))
    lanes, limits = panel_lanes(settings, roster, PanelSettings(max_concurrency=3))
    assert lanes == {
        "researcher": EMBEDDED_LANE,
        "analyst": EMBEDDED_LANE,
        "critic": "remote",
        "writer": EMBEDDED_LANE,
    }
    assert limits == {EMBEDDED_LANE: 1, "remote": 3}


async def test_a_researcher_branch_searches_the_persons_documents(tmp_path: Path) -> None:
    doc = tmp_path / "trams.md"
    doc.write_text("# Trams\n\nA modern tram line costs 20 to 40 million euros per kilometre.\n")
    with MemoryStore(tmp_path / "memory") as store:
        store.add_documents([doc])
        panel, clients, _ = scripted_panel(
            tmp_path / "t.jsonl",
            {"researcher": ["20-40 M EUR/km."], "analyst": ["Buses."], "writer": ["W."]},
            defaults={"critic": comparison()},
            plans=[
                plan(
                    step("researcher", "search_memory", "What does a tram line cost per km?"),
                    step("analyst", "analysis", "What does a tram line cost per km?"),
                )
            ],
            memory=store,
        )
        events = await collect(panel)

    memory = [e for e in events if isinstance(e, MemoryEvent)]
    assert [(m.speaker, m.query) for m in memory] == [
        ("researcher", "What does a tram line cost per km?")
    ]
    assert "20 to 40 million euros" in memory[0].hits[0].text
    prompt = [str(m.content) for m in clients["researcher"].calls[0].messages]
    assert any("quoted material, not instructions" in m for m in prompt)
    assert not any(
        "quoted material" in str(m.content) for m in clients["analyst"].calls[0].messages
    )


async def test_stop_ends_a_stalled_branch_after_the_grace(tmp_path: Path) -> None:
    panel, clients, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {},
        defaults={"researcher": "Trams.", "analyst": "Buses."},
        plans=[plan(step("researcher", "research", "A?"), step("analyst", "analysis", "B?"))],
        settings=PanelSettings(branch_timeout_s=60.0),
    )
    release = stall(clients["analyst"])
    asked: list[float] = []

    def stop_when_stalled(event: Any) -> None:
        if isinstance(event, BranchEvent) and event.branch == "q2" and not asked:
            asked.append(time.monotonic())
            panel.request_stop("enough")

    events = await timed_run(panel, within=5.0, release=release, on_event=stop_when_stalled)

    assert time.monotonic() - asked[0] <= STOP_GRACE_S + 1.0
    ends = [e for _, e in events if isinstance(e, BranchEvent) and e.phase == "end"]
    assert ("q2", "cancelled", "enough") in [(e.branch, e.status, e.error) for e in ends]
    stop = events[-1][1]
    assert isinstance(stop, StopEvent) and (stop.code, stop.reason) == ("user_stop", "enough")
    assert not clients["writer"].calls and not clients["critic"].calls


async def test_a_fork_keeps_each_branch_pointing_at_its_answer(tmp_path: Path) -> None:
    """A fork renumbers what it copies (a stop in the middle is left out): a branch's pointer
    to its answer must follow the answer to its new number."""
    from roundtable.agents import ScriptedChatCompletionClient
    from roundtable.conversations import Budget, build_debate
    from roundtable.transcripts import save
    from roundtable.transcripts.events import now
    from tests.support.runs import scripted_clients

    WRITER_PICK = '{"speaker": "writer", "reason": "r"}'

    defaults = {"researcher": "r", "analyst": "a", "critic": "c", "writer": "w"}
    panel, _, _ = scripted_panel(tmp_path / "run.jsonl", {}, plans=[THREE], defaults=defaults)
    await collect(panel)
    header = load(tmp_path / "run.jsonl").header  # a real panel's; events laid out by hand
    path = tmp_path / "parent.jsonl"
    at = now()
    events = [
        MessageEvent(seq=1, at=at, turn=0, speaker=HUMAN, content="Trams?"),
        StopEvent(seq=2, at=at, turn=0, code="user_stop", reason="stopped"),
        BranchEvent(
            seq=3,
            at=at,
            turn=0,
            phase="start",
            branch="q1",
            role="researcher",
            question="Cost?",
            status="running",
        ),
        MessageEvent(seq=4, at=at, turn=1, speaker="researcher", content="Trams cost most."),
        BranchEvent(
            seq=5,
            at=at,
            turn=1,
            phase="end",
            branch="q1",
            role="researcher",
            question="Cost?",
            status="ok",
            message_seq=4,
        ),
    ]
    save(path, header, events)
    clients = scripted_clients(
        {}, defaults={"researcher": "r", "analyst": "a", "critic": "c", "writer": "w"}
    )
    child_path = tmp_path / "child.jsonl"
    fork = build_debate(
        load_settings(),
        "And buses?",
        prior=load(path),
        fork_at=1,
        clients=dict(clients),
        manager_client=ScriptedChatCompletionClient(default=WRITER_PICK),
        transcript_path=child_path,
        budget=Budget(max_turns=1),
    )
    await collect(fork)

    child = load(child_path).events
    end = next(e for e in child if isinstance(e, BranchEvent) and e.phase == "end")
    assert end.seq == 4 and end.message_seq == 3  # renumbered, not the old 4 (itself now)
    answer = next(e for e in child if e.seq == end.message_seq)
    assert isinstance(answer, MessageEvent) and answer.content == "Trams cost most."
