"""Run modes in the browser: the real Chainlit server, headless Chromium, a scripted panel.

The person picks the panel mode in the settings panel and asks; the page must show the plan
before the answers, each branch as a step under it (the failed one marked), the comparison
with its disagreement, and the writer's answer naming it; ``/export md`` must hold the plan,
and ``/replay`` must draw the same plan and branches again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import (
    AggregateEvent,
    BranchEvent,
    PlanEvent,
    load,
)
from tests.browser.harness import AGENT, ChatPage, UIServer, chat_page, start_server

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).parent / "browser" / "panel_script.yaml"
QUESTION = "Compare trams, buses and bike lanes for a town of 50,000"


def finished(count: int) -> str:
    """A page predicate: at least ``count`` panels have finished."""
    return f"""() => Array.from(document.querySelectorAll('{AGENT}'))
        .filter(e => e.innerText.includes('Panel finished')).length >= {count}"""


@pytest.fixture(scope="module")
def panel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """A server whose every role and manager reads the scripted panel."""
    env = {
        "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "scripted",
        "ROUNDTABLE_ENDPOINTS__DEFAULT__SCRIPT": str(SCRIPT),
        "ROUNDTABLE_BUDGET__MAX_TURNS": "5",
    }
    server = start_server(tmp_path_factory.mktemp("ui-modes") / "data", env)
    yield server
    server.stop()


@pytest.fixture
def panel_chat(
    browser: Browser, panel_server: UIServer, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    with chat_page(browser, panel_server, request.node.name) as page:
        yield page


def _choose_mode(chat: ChatPage, mode: str) -> None:
    """Through the settings panel, as a person does: open it, pick, confirm."""
    chat.page.locator("#chat-settings-open-modal").click()
    chat.page.locator("button#mode").click()
    chat.page.get_by_role("option", name=mode, exact=True).click()
    chat.page.locator("#confirm").click()
    chat.page.locator("#confirm").wait_for(state="detached", timeout=30_000)


def _step_button(chat: ChatPage, prefix: str) -> None:
    button = chat.page.locator(f'button[id^="step-{prefix}"]')
    button.first.wait_for(timeout=60_000)
    assert button.count() == 1, f"one step {prefix!r}"


def test_a_panel_chosen_in_settings_shows_its_plan_branches_and_conflicts(
    panel_chat: ChatPage,
) -> None:
    chat = panel_chat
    chat.open()
    _choose_mode(chat, "panel")
    chat.send(QUESTION)
    chat.wait_for(finished(1), timeout=120_000)
    chat.screenshot("panel")

    # the plan, open, with every sub-question, its role and what it waits for
    _step_button(chat, "Plan panel 3 sub-questions")
    body = chat.body_text()
    for line in (
        "q1 researcher (research): What does each option cost to build?",
        "q2 analyst (analysis): Which option is cheapest over ten years?",
        "q3 researcher (research, after q1): How long does each take to build?",
    ):
        assert line in body
    # each branch is a step nested in the plan's block, its ending in its name (Chainlit's own
    # red for an error step is overridden by its "finished" grey: the words carry it)
    plan_block = chat.page.locator(
        '[data-step-type="run"]', has=chat.page.locator('button[id^="step-Plan panel"]')
    )
    for branch in (
        "Branch q1 researcher ok in ",
        "Branch q2 analyst ok in ",
        "Branch q3 researcher FAILED after ",
    ):
        _step_button(chat, branch)
        nested = plan_block.locator(f'[data-step-type="tool"] button[id^="step-{branch}"]')
        assert nested.count() == 1, f"{branch} is under the plan"
    # the plan came before any answer, each answer is its own message labelled with its branch
    order = chat.transcript_order()
    answers = [
        i for i, e in enumerate(order) if re.match(r"assistant_message: \w+ · turn \d · q", e)
    ]
    assert len(answers) == 2
    assert any(e.startswith("run: Used Plan panel") for e in order[: answers[0]])
    texts = chat.agent_texts()
    assert any(re.match(r"Researcher · turn \d · q1\nTrams cost 30 M EUR per km", t) for t in texts)
    assert any(re.match(r"Analyst · turn \d · q2\nOver ten years", t) for t in texts)
    # the comparison lists the disagreement; the writer's answer states it and what is missing
    _step_button(chat, "Comparison 1 disagreement 1 missing")
    assert "cost [q1, q2]: q1 finds trams dearest to build, q2 cheapest per rider" in body
    answer = next(t for t in texts if t.startswith("Writer"))
    assert "Start with buses and bike lanes; plan a tram line for later." in answer
    assert "Disagreements between the branches:" in answer
    assert "cost [q1 (researcher), q2 (analyst)]" in answer
    assert "q3 (researcher: How long does each take to build?): failed" in answer
    assert any(t.startswith("Panel finished (partial)") for t in texts)

    # the transcript on the server is a panel's
    [path] = chat.server.transcripts.glob("*.jsonl")
    events = load(path).events
    assert sum(isinstance(e, PlanEvent) for e in events) == 1
    assert sum(isinstance(e, BranchEvent) for e in events) == 6
    assert sum(isinstance(e, AggregateEvent) for e in events) == 1

    # the Markdown export holds the plan
    chat.send("/export md")
    link = chat.page.locator(f'{AGENT} a:has-text("{path.stem}.md")').last
    link.wait_for(timeout=60_000)
    href = link.get_attribute("href")
    assert href is not None
    exported = chat.page.request.get(href if href.startswith("http") else chat.server.url + href)
    text = exported.text()
    assert "## Plan (panel)" in text
    assert "- **q1** researcher (research): What does each option cost to build?" in text
    assert "- disagreement, cost [q1, q2]:" in text

    # replayed, the same plan and branches are drawn again
    chat.send(f"/replay {path.stem} fast")
    chat.wait_for(finished(2), timeout=120_000)
    chat.screenshot("replayed")
    for prefix in (
        "Plan panel 3 sub-questions",
        "Branch q1 researcher ok",
        "Branch q3 researcher FAILED",
    ):
        assert len(chat.steps(prefix)) == 2, prefix
    assert len(chat.steps("Comparison 1 disagreement 1 missing")) == 2
    assert sum(bool(re.match(r"Analyst · turn \d · q2\n", t)) for t in chat.agent_texts()) == 2
    assert len(list(chat.server.transcripts.glob("*.jsonl"))) == 1, "a replay writes nothing"
