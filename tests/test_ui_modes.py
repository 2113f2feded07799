"""Run modes in the UI without a browser: the settings panel's mode, the session building a
pipeline or panel and continuing it as a debate, the renderer's plan and branch steps (live
and in replay), and the exports. Real scripted panels; Chainlit's emitter records the page."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from roundtable.agents import resolve_team
from roundtable.conversations import (
    Budget,
    RunOptions,
    Settings,
    load_settings,
)
from roundtable.transcripts import (
    HUMAN,
    BranchEvent,
    LiveEvent,
    MessageEvent,
    PlanEvent,
    StopEvent,
    load,
    replay,
)
from roundtable.ui.commands import Say
from roundtable.ui.export import to_json, to_markdown
from roundtable.ui.panel import options_from, widgets
from roundtable.ui.render import ChainlitRenderer
from tests.support.chainlit_page import RecordingEmitter, recording_page
from tests.support.runs import (
    comparison,
    plan,
    scripted_panel,
    scripted_pipeline,
    scripted_settings,
    step,
)
from tests.support.sessions import say_and_wait, session_runner

PANEL_SCRIPT = Path(__file__).parent / "browser" / "panel_script.yaml"
QUESTION = "Compare trams, buses and bike lanes for a town of 50,000"


def _settings(tmp_path: Path) -> Settings:
    """Every role and the manager on the scripted panel of the browser test."""
    return scripted_settings(tmp_path, PANEL_SCRIPT)


def _failing_panel(path: Path) -> Any:
    """The browser test's panel: q3 waits for q1 and fails; q1 and q2 disagree on cost."""
    return scripted_panel(
        path,
        {
            "researcher": ["Trams cost 30 M EUR per km.", ""],
            "analyst": ["Over ten years trams are cheapest per rider."],
            "critic": [comparison(("cost", ["q1", "q2"], "dearest to build, cheapest to run"))],
            "writer": ["Start with buses."],
        },
        plans=[
            plan(
                step("researcher", "research", "What does each option cost to build?"),
                step("analyst", "analysis", "Which option is cheapest over ten years?"),
                step("researcher", "research", "How long does each take to build?", after=[1]),
            )
        ],
    )[0]


async def _draw(events: Any, renderer: ChainlitRenderer) -> list[LiveEvent]:
    seen: list[LiveEvent] = []
    async for event in events:
        seen.append(event)
        await renderer.show(event)
    return seen


# -- the settings panel -------------------------------------------------------------------------


def test_the_mode_is_offered_and_only_known_modes_are_taken() -> None:
    settings = load_settings()
    team = resolve_team(None)
    assert options_from({}, settings, team)[0].mode == "debate"
    assert options_from({"mode": "panel"}, settings, team)[0] == RunOptions(
        mode="panel", team="default"
    )
    refused, ignored = options_from({"mode": "anarchy", "max_turns": 3}, settings, team)
    assert refused.mode == "debate" and refused.max_turns == 3
    assert ignored == (
        "Unknown mode 'anarchy' ignored; modes: debate, pipeline, panel. Using debate.",
    )
    assert options_from({"mode": ["panel"]}, settings, team)[0].mode == "debate"
    select = widgets(settings, team, {"mode": "pipeline"})[0]
    assert (select.id, select.values, select.initial_value) == (  # type: ignore[attr-defined]
        "mode",
        ["debate", "pipeline", "panel"],
        "pipeline",
    )


# -- the renderer ---------------------------------------------------------------------------------


async def test_a_live_panel_draws_its_plan_branches_under_it_and_the_comparison(
    tmp_path: Path,
) -> None:
    page = recording_page()
    renderer = ChainlitRenderer(live=True, budget=Budget(), mode="panel")
    await _draw(_failing_panel(tmp_path / "t.jsonl").run(), renderer)

    [plan_step] = page.steps("Plan")
    assert plan_step.name == "Plan panel 3 sub-questions" and plan_step.default_open
    assert plan_step.output.splitlines()[2:] == [
        "- **q1** researcher (research): What does each option cost to build?",
        "- **q2** analyst (analysis): Which option is cheapest over ten years?",
        "- **q3** researcher (research, after q1): How long does each take to build?",
    ]
    branches = {b.name.split()[1]: b for b in page.steps("Branch")}
    assert sorted(branches) == ["q1", "q2", "q3"]
    assert all(b.parent == plan_step.id and b.ended for b in branches.values())
    assert branches["q1"].name.startswith("Branch q1 researcher ok in ")
    assert branches["q2"].name.startswith("Branch q2 analyst ok in ")
    assert branches["q3"].name.startswith("Branch q3 researcher FAILED after ")
    assert [b.is_error for b in branches.values()] == [False, False, True]
    assert "**Sub-question:** How long does each take to build?" in branches["q3"].output
    assert "Role: researcher · needs research · after q1" in branches["q3"].output
    assert "Why (model): the researcher gave an empty reply" in branches["q3"].output
    [compared] = page.steps("Comparison")
    assert compared.name == "Comparison 1 disagreement 1 missing" and compared.default_open
    assert "- cost [q1, q2]: dearest to build, cheapest to run" in compared.output
    assert "- q3 (researcher, failed): the researcher gave an empty reply" in compared.output
    messages = page.messages()
    assert "**Researcher** · turn 1 · q1\n\nTrams cost 30 M EUR per km." in messages
    assert "**Analyst** · turn 2 · q2\n\nOver ten years trams are cheapest per rider." in messages
    answer = next(m for m in messages if m.startswith("**Writer**"))
    assert "Disagreements between the branches:\n- cost [q1 (researcher), q2 (analyst)]" in answer
    assert messages[-1].startswith("**Panel finished** (partial): the writer answered from 2 of 3")
    assert not any(m.startswith("*Turn") for m in messages), "the status line went away"


async def test_concurrent_branches_of_one_role_each_get_their_own_labelled_message(
    tmp_path: Path,
) -> None:
    page = recording_page()
    panel, _, _ = scripted_panel(
        tmp_path / "t.jsonl",
        {
            "researcher": ["Trams cost 30 M EUR/km.", "Trams take 5 years."],
            "analyst": ["Buses emit the most per trip."],
            "critic": [comparison()],
            "writer": ["Buses first."],
        },
        plans=[
            plan(
                step("researcher", "research", "What does each cost?"),
                step("analyst", "analysis", "Which emits least?"),
                step("researcher", "research", "How long to build?"),
            )
        ],
        chunk_delay=0.01,
    )
    events = await _draw(panel.run(), ChainlitRenderer(live=True, budget=Budget(), mode="panel"))

    answers = {e.seq: e for e in events if isinstance(e, MessageEvent)}
    expected = sorted(
        f"**{e.role.capitalize()}** · turn {answers[e.message_seq].turn} · {e.branch}\n\n"
        + answers[e.message_seq].content
        for e in events
        if isinstance(e, BranchEvent) and e.message_seq is not None
    )
    shown = sorted(m for m in page.messages() if " · q" in m.split("\n")[0])
    assert shown == expected and len(shown) == 3


async def test_a_replayed_panel_shows_the_same_plan_and_branches(tmp_path: Path) -> None:
    live = recording_page()
    path = tmp_path / "t.jsonl"
    await _draw(_failing_panel(path).run(), ChainlitRenderer(live=True, mode="panel"))

    async def replayed() -> RecordingEmitter:
        page = recording_page()  # its own task: its own Chainlit context
        await _draw(replay(load(path)), ChainlitRenderer(live=False))
        return page

    again = await asyncio.create_task(replayed())

    def shape(page: RecordingEmitter) -> list[tuple[str, str, bool, bool]]:
        steps = [i for i in page.items() if i.name.startswith(("Plan", "Branch", "Comparison"))]
        ids = {i.id: i.name for i in steps}
        return [
            (
                i.name.split(" after ")[0].split(" ok in ")[0],
                i.output.split("Status")[0],
                i.is_error,
                ids.get(i.parent or "", "").startswith("Plan"),
            )
            for i in steps
        ]

    assert shape(again) == shape(live) and len(shape(live)) == 5
    assert [m for m in again.messages() if "· q" in m] == [m for m in live.messages() if "· q" in m]
    assert again.messages()[-1].startswith("**Panel finished** (partial)")


async def test_a_pipeline_streams_each_stage_into_its_own_labelled_message(tmp_path: Path) -> None:
    page = recording_page()
    pipeline, _ = scripted_pipeline(
        tmp_path / "t.jsonl",
        {
            "researcher": ["Trams cost 30 M EUR/km."],
            "analyst": ["Buses are cheaper."],
            "critic": ["ACCEPT: sound."],
            "writer": ["Start with buses."],
        },
        chunk_delay=0.001,
    )
    await _draw(pipeline.run(), ChainlitRenderer(live=True, budget=Budget(), mode="pipeline"))

    [plan_step] = page.steps("Plan")
    assert plan_step.name == "Plan pipeline 4 stages"
    stages = page.steps("Branch")
    assert [s.name.rsplit(" ok in ", 1)[0] for s in stages] == [
        "Branch s1 researcher",
        "Branch s2 analyst",
        "Branch s3 critic",
        "Branch s4 writer",
    ]
    assert all(s.parent == plan_step.id for s in stages)
    pictures = ("**Who spoke when**", "**The plan**")  # the timeline's, the plan graph's
    replies = [m for m in page.messages() if m not in pictures]
    assert replies[:4] == [
        "**Researcher** · turn 1 · s1\n\nTrams cost 30 M EUR/km.",
        "**Analyst** · turn 2 · s2\n\nBuses are cheaper.",
        "**Critic** · turn 3 · s3\n\nACCEPT: sound.",
        "**Writer** · turn 4 · s4\n\nStart with buses.",
    ]
    assert page.messages()[-1].startswith("**Pipeline finished** (completed)")


def test_the_status_line_of_a_panel_counts_replies_not_turns_of_a_cap() -> None:
    from roundtable.ui.runbar import Progress

    progress = Progress(max_turns=5, max_tokens=1000, capped=False)
    assert progress.line() == "0 replies · 0 of 1,000 tokens"
    assert Progress(max_turns=5, max_tokens=1000).line() == "Turn 0 of 5 · 0 of 1,000 tokens"


# -- exports --------------------------------------------------------------------------------------


async def test_exports_hold_the_plan_the_branches_and_the_comparison(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    [_ async for _ in _failing_panel(path).run()]
    transcript = load(path)

    text = to_markdown(transcript)
    assert "## Plan (panel)\n\nthe manager's plan: 3 sub-question(s), 2 independent\n" in text
    assert "- **q3** researcher (research, after q1): How long does each take to build?\n" in text
    assert "> branch q1 (researcher) started: What does each option cost to build?" in text
    assert "## Turn 1: Researcher (q1)\n\nTrams cost 30 M EUR per km." in text
    [failed] = [line for line in text.splitlines() if line.startswith("> branch q3 (res")][1:]
    assert re.fullmatch(
        r"> branch q3 \(researcher\) \*\*failed\*\*( after \d+\.\d s)?: "
        r"the researcher gave an empty reply",
        failed,
    )
    assert text.count("> branch ") == 6
    assert "## Comparison\n\n- answered: q1, q2\n" in text
    assert "- disagreement, cost [q1, q2]: dearest to build, cheapest to run" in text
    assert "- missing, q3 (researcher, failed): the researcher gave an empty reply" in text
    kinds = [e["kind"] for e in json.loads(to_json(transcript))["events"]]
    assert kinds.count("plan") == 1 and kinds.count("branch") == 6
    assert kinds.count("aggregate") == 1


# -- the session ----------------------------------------------------------------------------------


async def test_a_panel_chosen_in_settings_runs_and_a_follow_up_continues_it_as_a_debate(
    tmp_path: Path,
) -> None:
    runner, shown = session_runner(_settings(tmp_path), RunOptions(mode="panel", max_turns=2))
    await say_and_wait(runner, Say(QUESTION))
    first = shown[0]
    assert first.kwargs["mode"] == "panel" and first.notes == []
    plans = [e for e in first.events if isinstance(e, PlanEvent)]
    assert [(p.mode, p.accepted, len(p.steps)) for p in plans] == [("panel", True, 3)]
    stop = first.events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "partial"
    path = runner.transcript
    assert path is not None

    await say_and_wait(runner, Say("And which is quickest to build?"))
    second = shown[1]
    assert second.kwargs["mode"] == "debate"
    assert second.notes == [
        "Mode is panel, but this conversation carries on as a debate: only a debate can "
        "continue a transcript. For a new panel, open a new chat."
    ]
    assert runner.transcript == path, "the same transcript goes on"
    saved = load(path)
    humans = [e.content for e in saved.events if isinstance(e, MessageEvent) and e.speaker == HUMAN]
    assert humans == [QUESTION, "And which is quickest to build?"]
    assert sum(isinstance(e, PlanEvent) for e in saved.events) == 1
    assert isinstance(saved.events[-1], StopEvent) and saved.events[-1].code == "max_turns"


async def test_ask_in_a_new_panel_is_passed_on_as_its_question(tmp_path: Path) -> None:
    runner, shown = session_runner(_settings(tmp_path), RunOptions(mode="pipeline"))
    await say_and_wait(runner, Say(QUESTION, ask="critic"))
    assert shown[0].notes == [
        "/ask picks who answers next in a debate; a pipeline follows its plan, so it answers "
        "your message as its question."
    ]
    plans = [e for e in shown[0].events if isinstance(e, PlanEvent)]
    assert [p.mode for p in plans] == ["pipeline"]
    assert shown[0].events[0].question == QUESTION  # type: ignore[union-attr]


async def test_ask_during_a_pipeline_is_passed_on_as_a_plain_message(tmp_path: Path) -> None:
    runner, shown = session_runner(_settings(tmp_path), RunOptions(mode="pipeline"))
    await runner.say(Say(QUESTION))
    await say_and_wait(runner, Say("what about trams?", ask="critic"))
    assert shown[0].notes == [
        "/ask picks who answers next in a debate; a pipeline follows its plan, so your "
        "message goes to its next step."
    ]
    assert runner.transcript is not None
    saved = load(runner.transcript)
    humans = [e.content for e in saved.events if isinstance(e, MessageEvent) and e.speaker == HUMAN]
    assert humans == [QUESTION, "what about trams?"]
