"""Forks as a tree of transcripts in the browser: real Chainlit server, headless Chromium, the
scripted model.

A run that is neither a fork nor forked shows no tree. Once it is forked (``/fork``), the
fork's ending shows the tree (an ``<img alt="forks.svg">``) with both transcripts, the fork
marked as the current one; replaying the parent shows the same tree with the parent marked. The
unit tests are ``test_fork_tree.py``. Screenshots land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import load
from tests.browser.harness import ChatPage, chat_page, scripted_env, start_server
from tests.test_ui_browser_pictures import _svgs

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

NS = "{http://www.w3.org/2000/svg}"
QUESTION = "Should our city ban private cars downtown?"


def _nodes(svg: str) -> dict[str, str]:
    """Each drawn transcript's conversation id and its class (``fork current`` marks one)."""
    root = ET.fromstring(svg)
    return {g.get("data-conversation", ""): g.get("class", "") for g in root.iter(f"{NS}g")}


@pytest.fixture
def chat(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    """A tab on a server of its own (its transcripts folder holds only this test's runs)."""
    env = {**scripted_env(), "ROUNDTABLE_BUDGET__MAX_TURNS": "3"}
    server = start_server(tmp_path_factory.mktemp("forks") / "data", env)
    try:
        with chat_page(browser, server, request.node.name) as page:
            yield page
    finally:
        server.stop()


def test_a_fork_shows_the_tree_of_transcripts(chat: ChatPage) -> None:
    chat.open()
    chat.send(QUESTION)
    chat.wait_stops(1, timeout=120_000)
    assert _svgs(chat, "forks.svg") == [], "no tree for a run that is neither fork nor forked"
    [parent] = [load(p) for p in chat.server.transcripts.glob("*.jsonl")]

    chat.send("/fork 1 Suppose buses were free?")
    chat.wait_stops(2, timeout=120_000)
    tree_image = chat.page.locator('img[alt="forks.svg"]').first
    tree_image.wait_for(timeout=30_000)
    tree_image.scroll_into_view_if_needed()
    chat.screenshot("fork-tree")
    [child] = [
        load(p)
        for p in chat.server.transcripts.glob("*.jsonl")
        if p.stem != parent.header.conversation_id
    ]
    mother, daughter = parent.header.conversation_id, child.header.conversation_id
    [tree] = _svgs(chat, "forks.svg")
    assert _nodes(tree) == {mother: "fork", daughter: "fork current"}
    assert QUESTION in tree and "forked at turn 1" in tree
    assert "Suppose buses were free? (this one)" in tree, "a fork is drawn by what it asked"

    chat.send(f"/replay {mother} fast")
    chat.wait_stops(3, timeout=120_000)
    chat.page.locator('img[alt="forks.svg"]').last.scroll_into_view_if_needed()
    chat.screenshot("fork-tree-replayed")
    trees = _svgs(chat, "forks.svg")
    assert len(trees) == 2
    assert _nodes(trees[-1]) == {mother: "fork current", daughter: "fork"}
