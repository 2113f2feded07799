"""The panel's plan as a graph in the browser: real Chainlit server, headless Chromium, the
scripted panel of ``test_ui_browser_modes.py`` (q3 fails).

The graph is an ``<img alt="plan.svg">``: its SVG is read through its ``src``. Live, it is
re-drawn as each branch starts and ends; when the panel finishes the failed branch must be
marked failed (in its state and in words), the others done, and the ending and a replay must
draw the same. The unit tests are ``test_plan_graph.py``. Screenshots land in
``artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser.harness import ChatPage, chat_page, scripted_env, start_server
from tests.test_ui_browser_modes import QUESTION, SCRIPT, _choose_mode, finished
from tests.test_ui_browser_pictures import _svgs

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

NS = "{http://www.w3.org/2000/svg}"


def _states(svg: str) -> dict[str, str]:
    """Each branch node's state, by id, and the words it shows."""
    root = ET.fromstring(svg)
    states: dict[str, str] = {}
    for node in root.iter(f"{NS}g"):
        words = [t.text for t in node.iter(f"{NS}text") if t.get("class") == "state"]
        states[node.get("data-branch", "")] = f"{node.get('data-state')}: {words[0]}"
    return states


@pytest.fixture
def chat(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    """A tab on a server of its own, every role reading the scripted panel."""
    env = {**scripted_env(SCRIPT), "ROUNDTABLE_BUDGET__MAX_TURNS": "5"}
    server = start_server(tmp_path_factory.mktemp("plan-graph") / "data", env)
    try:
        with chat_page(browser, server, request.node.name) as page:
            yield page
    finally:
        server.stop()


def test_the_plan_graph_marks_a_failed_branch(chat: ChatPage) -> None:
    chat.open()
    _choose_mode(chat, "panel")
    chat.send(QUESTION)
    chat.page.locator('img[alt="plan.svg"]').first.wait_for(timeout=60_000)
    chat.screenshot("plan-live")
    chat.wait_for(finished(1), timeout=120_000)
    chat.screenshot("plan-finished")
    graphs = _svgs(chat, "plan.svg")
    assert len(graphs) == 2, "the live graph, and the final one in the ending"
    expected = {"q1": "ok: done", "q2": "ok: done", "q3": "failed: failed"}
    assert all(_states(svg) == expected for svg in graphs)
    assert all(re.search(r'class="waits-for"', svg) for svg in graphs), "q3 waits for q1"
    assert "1 failed or timed out" in graphs[-1]

    [path] = chat.server.transcripts.glob("*.jsonl")
    chat.send(f"/replay {path.stem} fast")
    chat.wait_for(finished(2), timeout=120_000)
    chat.screenshot("plan-replayed")
    replayed = _svgs(chat, "plan.svg")
    assert len(replayed) == 4 and all(_states(svg) == expected for svg in replayed)
