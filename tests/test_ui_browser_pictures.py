"""The run's pictures in the browser: the timeline gains a bar as each turn commits, and the
ending shows the final timeline and the per-agent costs; a replay draws the same.

Real Chainlit server, headless Chromium, the slow scripted model (a word every 0.1 s, so each
turn commits seconds after the one before). The pictures are ``<img>`` elements: their SVG is
read through their ``src`` and its bars counted (the unit tests are ``test_pictures.py``).
Screenshots land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import HUMAN, MessageEvent, StopEvent, load
from tests.browser.harness import ChatPage, chat_page, scripted_env, start_server

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

SLOW = Path(__file__).parent / "browser" / "slow_script.yaml"
MAX_TURNS = 4
QUESTION = "Should our city ban private cars downtown?"
READ = """async (alt) => {
    const images = Array.from(document.querySelectorAll(`img[alt="${alt}"]`));
    const svgs = [];
    for (const image of images) {
        const response = await fetch(image.src);
        svgs.push(await response.text());
    }
    return svgs;
}"""
"""The SVG of every picture named ``alt`` on the page, in page order."""


def _bars(svg: str, kind: str = "turn") -> int:
    return svg.count(f'class="{kind}"')


def _svgs(chat: ChatPage, alt: str) -> list[str]:
    svgs: list[str] = chat.page.evaluate(READ, alt)
    return svgs


def _replies(chat: ChatPage) -> int:
    return sum(1 for t in chat.agent_texts() if " · turn " in t)


@pytest.fixture
def chat(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    """A tab on a server of its own, on the slow script, for ``MAX_TURNS`` turns."""
    env = {**scripted_env(SLOW), "ROUNDTABLE_BUDGET__MAX_TURNS": str(MAX_TURNS)}
    server = start_server(tmp_path_factory.mktemp("pictures") / "data", env)
    try:
        with chat_page(browser, server, request.node.name) as page:
            yield page
    finally:
        server.stop()


def test_the_timeline_gains_a_bar_per_turn_live_and_the_ending_shows_the_costs(
    chat: ChatPage,
) -> None:
    chat.open()
    chat.send(QUESTION)
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        stopped = "Debate stopped" in chat.body_text()
        live = _svgs(chat, "timeline.svg")
        if live:
            bars = _bars(live[0])
            assert bars <= _replies(chat), "a bar only for a reply on screen"
            if not seen or seen[-1] != bars:
                seen.append(bars)
                chat.screenshot(f"timeline-{bars}")
        if stopped:
            break
        time.sleep(0.3)
    chat.wait_stops()
    assert seen == list(range(1, MAX_TURNS + 1)), "one more bar as each turn committed"
    timelines, [costs] = _svgs(chat, "timeline.svg"), _svgs(chat, "costs.svg")
    assert len(timelines) == 2, "the live timeline, and the final one in the ending"
    assert all(_bars(svg) == MAX_TURNS for svg in timelines)
    assert _bars(timelines[-1], "question") == 1
    ending = chat.page.locator('[data-step-type="assistant_message"]').filter(
        has_text="Debate stopped"
    )
    assert ending.locator('img[alt="costs.svg"]').count() == 1
    assert ending.locator('img[alt="timeline.svg"]').count() == 1
    [path] = chat.server.transcripts.glob("*.jsonl")
    saved = load(path)
    stop = saved.events[-1]
    assert isinstance(stop, StopEvent)
    assert costs.count('class="cost tokens-in"') == len(stop.ledger) > 0
    for row in stop.ledger:
        assert f'data-value="{row.prompt_tokens:g}"' in costs
    chat.screenshot("ending")

    # a replay of the saved run draws the same pictures from the transcript
    chat.send(f"/replay {saved.header.conversation_id} fast")
    chat.wait_stops(2)
    replayed = _svgs(chat, "timeline.svg")
    turns = [e for e in saved.events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert len(replayed) == 4 and _bars(replayed[-1]) == len(turns) == MAX_TURNS
    assert len(_svgs(chat, "costs.svg")) == 2
    chat.screenshot("replayed")
