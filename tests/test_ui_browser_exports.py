"""The export links in a real browser: one click on "Download Markdown" (or JSON, or HTML) at
the end of a run downloads the file, with no file card to click again; and again after a
reload, and in the same thread reopened from the sidebar, where the session that ran it is gone
(the file is made from the saved transcript). The HTML page, opened from the disk in Chromium,
shows the answer first and the pictures, asks for nothing (not one request besides its own
file) and breaks no rule of its own CSP (no console message).

One real Chainlit server on the scripted model, one user logging in with a password, headless
Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from playwright.sync_api import Browser, Download, Page, Request

from roundtable.common.accounts import accounts_path, add_user
from roundtable.common.passwords import hash_password
from roundtable.transcripts import final_answer, load, to_html, to_json, to_markdown
from tests.browser.harness import AGENT, STOPPED, UIServer, chat_page, scripted_env, start_server

pytest_plugins = ["tests.browser.fixtures"]

PASSWORD = "exports-password-1"
QUESTION = "Should the city close the riverside car park?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    data = tmp_path_factory.mktemp("exports") / "data"
    add_user(accounts_path(data), "alice", hash_password(PASSWORD))
    started = start_server(data, {**scripted_env(), "ROUNDTABLE_BUDGET__MAX_TURNS": "3"})
    yield started
    started.stop()


def click_once(page: Page, label: str) -> Download:
    """Click the stop message's ``label`` link once; the download it starts."""
    link = page.locator(f"{AGENT}:has-text('{STOPPED}') a", has_text=label).last
    with page.expect_download(timeout=30_000) as started:  # from the tab the link opens
        link.click()
    return started.value


def read(download: Download) -> str:
    path = download.path()
    assert path is not None
    return Path(path).read_text(encoding="utf-8")


def open_page_offline(browser: Browser, download: Download) -> dict[str, object]:
    """The downloaded HTML opened from the disk: what it shows, what it asked for and what
    the console said (a CSP violation is logged there)."""
    path = download.path()
    assert path is not None
    page_file = Path(path).with_suffix(".html")
    Path(path).replace(page_file)
    context = browser.new_context()
    asked: list[str] = []
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: asked.append(cast(Request, request).url))
        page.on("console", lambda message: console.append(message.text))
        page.goto(page_file.as_uri())
        shown = page.evaluate(
            """() => ({
                first: document.querySelector('section').id,
                answer: document.getElementById('answer').innerText,
                pictures: document.querySelectorAll('#pictures svg').length,
                border: getComputedStyle(document.getElementById('answer')).borderTopWidth,
            })"""
        )
    finally:
        context.close()
    return {**shown, "asked": asked, "console": console, "file": page_file.as_uri()}


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_one_click_downloads_the_export_also_in_a_thread_reopened_after_a_reload(
    browser: Browser, server: UIServer
) -> None:
    with chat_page(browser, server, "exports") as chat:
        chat.login("alice", PASSWORD)
        chat.send(QUESTION)
        chat.wait_stops(1, timeout=180_000)
        [path] = server.transcripts.glob("*.jsonl")
        transcript = load(path)
        name = transcript.header.conversation_id
        chat.screenshot("ended")

        md = click_once(chat.page, "Download Markdown")
        assert md.suggested_filename == f"{name}.md"
        assert read(md) == to_markdown(transcript)
        assert "Download:" not in chat.body_text()  # no file card was sent
        page = click_once(chat.page, "Download HTML")
        assert page.suggested_filename == f"{name}.html"
        assert read(page) == to_html(transcript)
        shown = open_page_offline(browser, page)
        assert shown["first"] == "answer" and shown["pictures"] == 2
        answer = final_answer(transcript.header, transcript.events)
        assert answer is not None
        assert " ".join(answer.content.split()) in " ".join(str(shown["answer"]).split())
        assert shown["border"] == "2px"  # its stylesheet applies under its own CSP
        assert shown["asked"] == [shown["file"]] and shown["console"] == []

        chat.page.wait_for_url("**/thread/*")
        thread_url = chat.page.url
        chat.page.reload()  # the same thread, resumed in a new session
        chat.wait_ready()
        chat.wait_stops(1)
        reloaded = click_once(chat.page, "Download JSON")
        assert read(reloaded) == to_json(load(path))

        thread_path = thread_url.removeprefix(server.url)
        chat.page.goto(server.url + "/")  # a new chat; then the thread, from the sidebar
        chat.wait_ready()
        chat.page.locator(f'a[href="{thread_path}"]').first.click(timeout=30_000)
        chat.page.wait_for_url(thread_url, timeout=30_000)
        chat.wait_stops(1)
        chat.screenshot("reopened")

        again = click_once(chat.page, "Download JSON")
        assert again.suggested_filename == f"{name}.json"
        assert read(again) == to_json(load(path))
        md_again = click_once(chat.page, "Download Markdown")
        assert read(md_again) == to_markdown(load(path))
        page_again = click_once(chat.page, "Download HTML")
        assert page_again.suggested_filename == f"{name}.html"
        assert read(page_again) == to_html(load(path))
