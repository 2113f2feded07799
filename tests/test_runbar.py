"""The run bar's parts without a browser: a person's stop is no error, the headings' why and
turn numbers, the status line's words (the browser tests are ``test_ui_browser_runbar.py``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roundtable.conversations import Budget
from roundtable.transcripts import (
    ErrorEvent,
    LiveEvent,
    SelectionEvent,
    StopEvent,
    load,
    replay,
    why_line,
)
from roundtable.ui.render import ChainlitRenderer
from roundtable.ui.runbar import Progress
from roundtable.ui.stop_square import page_state
from tests.support.chainlit_page import recording_page
from tests.support.debates import pick, scripted_debate

GOLDEN = Path(__file__).parent / "golden" / "debate-v1.jsonl"
ROLES = ("researcher", "analyst", "critic", "writer")


async def _stopped_debate(path: Path, *, after: float, budget: Budget) -> list[LiveEvent]:
    """A debate whose models ignore the soft stop (a stalled stream is the same), stopped by
    the person ``after`` seconds in, mid-reply."""
    debate, clients, _ = scripted_debate(
        path,
        {},
        picks=[pick("analyst"), pick("critic")] * 4,
        defaults={role: f"{role} says " + "word " * 60 for role in ROLES},
        chunk_delay=0.03,
        budget=budget,
    )
    for client in clients.values():
        client._stop_signal = None  # deaf to the soft stop: only the hard cut ends the reply
    events: list[LiveEvent] = []

    async def consume() -> None:
        async for event in debate.run():
            events.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(after)
    debate.request_stop("stopped by you")
    await task
    return events


@pytest.mark.parametrize("after", [0.4, 1.9, 3.3])
async def test_a_stop_by_the_person_cuts_the_reply_without_an_error_event(
    tmp_path: Path, after: float
) -> None:
    events = await _stopped_debate(tmp_path / "t.jsonl", after=after, budget=Budget())
    assert [e for e in events if isinstance(e, ErrorEvent)] == []
    stop = events[-1]
    assert isinstance(stop, StopEvent) and (stop.code, stop.reason) == (
        "user_stop",
        "stopped by you",
    )
    saved = load(tmp_path / "t.jsonl")
    assert not [e for e in saved.events if isinstance(e, ErrorEvent)], "none recorded either"


async def test_a_cut_at_the_turn_deadline_is_still_an_error(tmp_path: Path) -> None:
    """Only the person's stop is excused: a reply cut at its deadline is a model failure."""
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={role: "word " * 60 for role in ROLES},
        chunk_delay=0.05,
        budget=Budget(max_turns=1, turn_deadline_s=0.5),
    )
    for client in clients.values():
        client._stop_signal = None
    events = [event async for event in debate.run()]
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and "turn deadline" in errors[0].message


def test_why_line_says_how_the_speaker_was_chosen_in_plain_words() -> None:
    def line(method: str) -> str:
        event = SelectionEvent.model_validate(
            {
                "seq": 1,
                "at": "2026-01-01T00:00:00Z",
                "turn": 2,
                "candidates": ["analyst"],
                "speaker": "analyst",
                "method": method,
                "reason": "the facts need weighing",
            }
        )
        return why_line(event)

    assert line("model") == "the facts need weighing (chosen by the manager)"
    assert line("rule") == "the facts need weighing (by the team's rules)"
    assert line("human") == "the facts need weighing (at your request)"
    assert "by model" not in line("fallback") and "fallback" not in line("fallback")


async def test_a_replay_shows_the_why_in_headings_and_no_rows_for_picks_or_memory() -> None:
    page = recording_page()
    renderer = ChainlitRenderer(live=False)
    async for event in replay(load(GOLDEN)):
        await renderer.show(event)
    messages = [m for m in page.messages() if " · turn " in m]
    assert messages[0].startswith(
        "**Researcher** · turn 1 — *the researcher opens a new question (by the team's rules)*"
    )
    assert messages[0].endswith(
        "*Memory gave 1 passage from document /tmp/tmpeaalqih7/city-notes.md, passage 0*"
    )
    assert messages[1].startswith(
        "**Critic** · turn 2 — *check the reasoning (chosen by the manager)*"
    ), "turn 2 as the person counts: their own message is no turn"
    assert page.steps("Manager picks") == [] and page.steps("Memory for") == []
    details = page.steps("Decision")
    ids = {i.id for i in page.items() if i.type == "assistant_message"}
    assert len(details) == len(messages) and all(d.parent in ids for d in details)
    assert all(d.name == "Decision and memory" for d in details)
    assert "Candidates: analyst, critic, writer" in details[1].output


async def test_the_status_line_says_planning_during_a_panels_plan() -> None:
    page = recording_page()
    budget = Budget(max_turns=5, max_tokens=1000)
    renderer = ChainlitRenderer(live=True, budget=budget, mode="panel")
    await renderer.show(load(GOLDEN).header)
    assert page.messages()[-1].startswith("*0 replies · 0 of 1,000 tokens · planning…*")
    debate = ChainlitRenderer(live=True, budget=budget)
    await debate.show(load(GOLDEN).header)
    assert page.messages()[-1].startswith("*Turn 0 of 5 · 0 of 1,000 tokens · manager choosing…*")


def test_progress_counts_a_turn_once_whether_streamed_or_committed() -> None:
    progress = Progress(max_turns=8, max_tokens=1000)
    assert progress.counter.number(3, "critic") == 1
    assert progress.counter.number(3, "critic") == 1
    assert progress.counter.number(5, "writer") == 2
    assert progress.line() == "Turn 2 of 8 · 0 of 1,000 tokens"


def test_the_page_may_only_say_composing_or_idle() -> None:
    assert page_state({"roundtable": "composing"}) == "composing"
    assert page_state({"roundtable": "idle"}) == "idle"
    for other in ({"roundtable": "stop"}, {"roundtable": "idle", "x": 1}, "idle", None, [1]):
        assert page_state(other) is None
