"""Commands in a real browser, typed as a person types them: ``/replay 1`` typed in full and
sent with one Enter replays at once (no second Enter, nothing left in the composer); the same
command picked from the composer's menu (a chip, then ``1``) replays too and leaves no chip
behind, so the next command typed runs as itself. Either way the thread is titled in the
sidebar by the replayed question, never by the command (also after a reload).

One real Chainlit server on the scripted model with one saved transcript (the golden debate),
headless Chromium typing key by key.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import load
from roundtable.ui.titles import replay_title
from tests.browser.harness import (
    ChatPage,
    UIServer,
    chat_page,
    scripted_env,
    start_server,
    stops_at_least,
    wait_title,
)

pytest_plugins = ["tests.browser.fixtures"]

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
TITLE = replay_title(load(GOLDEN).header.question)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    data = tmp_path_factory.mktemp("commands") / "data"
    (data / "transcripts").mkdir(parents=True)
    shutil.copy(GOLDEN, data / "transcripts" / GOLDEN.name)
    started = start_server(data, scripted_env())
    yield started
    started.stop()


def type_keys(chat: ChatPage, keys: str) -> None:
    """Type ``keys`` into the composer one key at a time, as a person does."""
    box = chat.page.locator("#chat-input")
    box.click()
    box.press_sequentially(keys, delay=60)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_replay_1_typed_in_full_and_sent_with_one_enter_replays(
    browser: Browser, server: UIServer
) -> None:
    with chat_page(browser, server, "command-typed") as chat:
        chat.open()
        type_keys(chat, "/replay 1")
        chat.screenshot("typed")
        chat.page.locator("#chat-input").press("Enter")  # once
        chat.page.wait_for_function(stops_at_least(1), timeout=30_000)
        chat.screenshot("replayed")
        assert chat.page.locator("#chat-input").input_value() == ""
        assert "Yes, with good transit and delivery exemptions." in chat.body_text()
        thread = wait_title(chat, TITLE)
        chat.page.reload()  # the title is the saved one
        chat.wait_ready()
        assert wait_title(chat, TITLE) == thread


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_a_command_picked_from_the_menu_runs_once_and_leaves_no_chip(
    browser: Browser, server: UIServer
) -> None:
    with chat_page(browser, server, "command-menu") as chat:
        chat.open()
        type_keys(chat, "/repl")
        chat.page.keyboard.press("Enter")  # picks /replay from the menu: a chip
        chat.screenshot("chip")
        type_keys(chat, "1")
        chat.page.keyboard.press("Enter")
        chat.page.wait_for_function(stops_at_least(1), timeout=30_000)
        chat.screenshot("replayed")
        wait_title(chat, TITLE)
        type_keys(chat, "/export html")
        chat.page.keyboard.press("Enter")
        chat.wait_text(f"Download: {GOLDEN.stem}.html", timeout=30_000)
        chat.screenshot("exported")
        assert "No transcript named" not in chat.body_text()
