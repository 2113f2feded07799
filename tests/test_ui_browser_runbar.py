"""The run bar in the browser: Stop at hand at every moment, a stop that is a stop, headings
that say why and count turns as the run bar does.

Real Chainlit server, headless Chromium, a slow scripted model (a word every 0.1 s) so a stop
can land anywhere, mid-reply included; one test runs on a real OpenAI-compatible server whose
stream stalls, the case where a person's stop used to show as red "Error model" steps.
Screenshots land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import ErrorEvent, StopEvent, load
from tests.browser.harness import (
    AGENT,
    ChatPage,
    UIServer,
    chat_page,
    scripted_env,
    start_server,
)
from tests.support.chat_server import Reply, Request, endpoint_env, running_chat_server

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

SLOW = Path(__file__).parent / "browser" / "slow_script.yaml"
QUESTION = "Should our city ban private cars downtown?"
MAX_TURNS = 8
SQUARE = "#stop-button"
BAR_STOP = 'button:has-text("Stop the debate")'
STOPPED_BY_PERSON = "Debate stopped (user_stop): stopped with the Stop button"
READ = f"""() => {{
    const texts = Array.from(document.querySelectorAll('{AGENT} .message-content'))
        .map(e => e.innerText);
    const headings = texts.map(t => t.match(/^(\\w+) · turn (\\d+)/)).filter(Boolean);
    const bars = texts.map(t => t.match(/Turn (\\d+) of (\\d+)/)).filter(Boolean);
    return {{
        heading: headings.length ? Number(headings[headings.length - 1][2]) : null,
        bar: bars.length ? Number(bars[bars.length - 1][1]) : null,
        stopped: texts.some(t => t.includes('Debate stopped')),
    }};
}}"""
"""The latest heading's turn and the run bar's, read in one go (one state of the page)."""


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    env = {**scripted_env(SLOW), "ROUNDTABLE_BUDGET__MAX_TURNS": str(MAX_TURNS)}
    server = start_server(tmp_path_factory.mktemp("runbar") / "data", env)
    yield server
    server.stop()


@pytest.fixture
def slow(
    browser: Browser, slow_server: UIServer, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    with chat_page(browser, slow_server, request.node.name) as page:
        yield page


def _start(chat: ChatPage) -> None:
    """A new chat with a debate under way (its run bar is up)."""
    chat.open()
    chat.sent = 0
    chat.send(QUESTION)
    chat.page.wait_for_url("**/thread/*", timeout=30_000)  # the composer is re-mounted then
    chat.page.locator(BAR_STOP).first.wait_for(timeout=60_000)


def _error_steps(chat: ChatPage) -> list[str]:
    return chat.steps("Error")


def test_the_stop_control_is_at_hand_and_stops_the_debate_at_random_moments(
    slow: ChatPage,
) -> None:
    chat = slow
    seed = random.randrange(1_000_000)
    moments = random.Random(seed).sample([0.5, 1.5, 2.5, 4.0, 5.5, 7.0, 9.0], 4)
    for n, moment in enumerate(["mid-reply", *moments]):
        _start(chat)
        if moment == "mid-reply":  # a reply is streaming: its heading is up, its end is not
            chat.wait_for(
                f"""() => Array.from(document.querySelectorAll('{AGENT} .message-content'))
                .some(e => /^Researcher · turn 1/.test(e.innerText))"""
            )
            time.sleep(0.8)
        else:
            time.sleep(moment)
        state: dict[str, Any] = chat.page.evaluate(READ)
        assert not state["stopped"], f"the debate ended before {moment} s (seed {seed})"
        by_square = n % 2 == 0
        if by_square:  # the composer's stop square, there for the whole run
            chat.page.locator(SQUARE).wait_for(state="visible", timeout=5_000)
            chat.screenshot(f"square-{n}")
            chat.page.locator(SQUARE).click()
        else:  # typing brings back the send arrow; the run bar's Stop works then too
            chat.page.locator("#chat-input").fill("wait")
            chat.page.locator("#chat-submit").wait_for(state="visible", timeout=5_000)
            chat.page.locator(f"{BAR_STOP}:not([disabled])").first.wait_for(timeout=5_000)
            chat.screenshot(f"bar-stop-{n}")
            chat.page.locator(f"{BAR_STOP}:not([disabled])").first.click()
        chat.wait_text(STOPPED_BY_PERSON, timeout=30_000)
        chat.screenshot(f"stopped-{n}")
        texts = chat.agent_texts()
        replies = [t for t in texts if re.match(r"^\w+ · turn \d+", t)]
        assert len(replies) < MAX_TURNS, f"stopped at {moment} (seed {seed})"
        if moment == "mid-reply":
            assert replies[-1].endswith("(cut short)"), replies[-1]
        assert not any("Task manually stopped" in t for t in texts)
        assert _error_steps(chat) == [], f"a stop is no error (at {moment}, seed {seed})"
        # the run is over: the composer sends again (no square)
        chat.page.locator(SQUARE).wait_for(state="detached", timeout=10_000)
        chat.page.locator("#chat-input").fill("")


def test_the_heading_counts_turns_as_the_run_bar_does_and_says_why(slow: ChatPage) -> None:
    chat = slow
    _start(chat)
    compared = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state: dict[str, Any] = chat.page.evaluate(READ)
        if state["stopped"]:
            break
        if state["heading"] is not None and state["bar"] is not None:
            assert state["heading"] == state["bar"], state
            compared += 1
        time.sleep(0.4)
    chat.wait_stops()
    chat.screenshot("finished")
    assert compared >= 10, "the heading and the bar were compared all along the run"
    final: dict[str, Any] = chat.page.evaluate(READ)
    assert final["heading"] == final["bar"] == MAX_TURNS
    replies = [t for t in chat.agent_texts() if re.match(r"^\w+ · turn \d+", t)]
    numbers = [int(re.match(r"^\w+ · turn (\d+)", t).group(1)) for t in replies]  # type: ignore[union-attr]
    assert numbers == list(range(1, MAX_TURNS + 1))
    # one line of why per turn, in plain words, with the whole decision one click away
    assert replies[0].splitlines()[0] == (
        "Researcher · turn 1 — the researcher opens a new question (by the team's rules)"
    )
    assert replies[1].startswith(
        "Analyst · turn 2 — the facts need weighing (chosen by the manager)"
    )
    assert chat.steps("Manager picks") == [] and chat.steps("Memory for") == []
    assert len(chat.steps("Decision")) == MAX_TURNS, "one collapsed decision in each message"


def _stalling(request: Request) -> Reply:
    """Picks for the manager; for a role, a reply that stalls after a few words."""
    body = request.body if isinstance(request.body, dict) else {}
    if "response_format" in body:
        return Reply(text='{"speaker": "analyst", "reason": "the facts need weighing"}')
    words = "Cities that closed their centres to private cars report less traffic and"
    return Reply(text=words + " cleaner air.", chunk_delay=0.1, stall_after=8)


def test_a_stop_during_a_stalled_reply_shows_as_a_stop_not_as_errors(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    data = tmp_path_factory.mktemp("stalled") / "data"
    with running_chat_server(responder=_stalling) as model:
        env = endpoint_env(model.url, data)
        env = {k: v for k, v in env.items() if k.startswith("ROUNDTABLE_") and "DATA_DIR" not in k}
        server = start_server(data, env)
        try:
            with chat_page(browser, server, request.node.name) as chat:
                _start(chat)
                chat.wait_text("Cities that closed their centres")
                time.sleep(1.5)  # the stream has stalled: only the stop's hard cut ends it
                chat.page.locator(SQUARE).click()
                chat.wait_text(STOPPED_BY_PERSON, timeout=30_000)
                chat.screenshot("stopped-stalled")
                assert _error_steps(chat) == []
                reply = next(t for t in chat.agent_texts() if t.startswith("Researcher · turn 1"))
                assert reply.endswith("(cut short)")
        finally:
            server.stop()
    [saved] = [load(p) for p in (data / "transcripts").glob("*.jsonl")]
    assert not [e for e in saved.events if isinstance(e, ErrorEvent)]
    assert isinstance(saved.events[-1], StopEvent) and saved.events[-1].code == "user_stop"
