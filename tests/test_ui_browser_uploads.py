"""A PDF uploaded in the browser answers the question, and its citation opens the passage.

Real Chainlit server, headless Chromium, the real upload path (the composer's attach button,
Chainlit's file upload, ``ui/uploads.add_uploads``), the real Chroma memory and embedder, the
recall into the prompt and the citation check; only the words are scripted
(``browser/cite_script.yaml``: the researcher cites [1]). A citation is valid, and gets a side
element, only if note [1] was in the researcher's prompt: without the upload's passage there,
the reply still says "[1]" but nothing opens. The side element names the file and its page,
never the folder it is kept in on the server; the transcript's ``message`` event records the
citation as valid, pointing at the note [1] of the researcher's ``memory`` event. Screenshots
land in ``artifacts/screenshots/``.

A thread opened by the file alone is listed in the sidebar at once and titled by the question
that follows, also after a reload and when reopened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import MemoryEvent, MessageEvent, load
from roundtable.ui.titles import NEUTRAL
from tests.browser.harness import (
    AGENT,
    ChatPage,
    chat_page,
    scripted_env,
    start_server,
    wait_title,
)
from tests.support.docfiles import make_pdf

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).parent / "browser" / "cite_script.yaml"
ANSWER = "Building the proposed tram line would cost about 31 million euros per kilometre."
QUESTION = "How much would our tram line cost per kilometre?"
FILE = "tram brief.pdf"
ADDED = "Added 2 passage(s) from 1 file(s), 2 PDF page(s)."
NO_FS_PICKER = "delete Window.prototype.showOpenFilePicker; delete window.showOpenFilePicker;"


def send_file_alone(chat: ChatPage, path: Path) -> None:
    """Open the page, attach ``path`` with the attach button and send it with no text."""
    # Chromium has the File System Access picker, which react-dropzone prefers and Playwright
    # cannot answer: without it the attach button clicks Chainlit's file input, as elsewhere.
    chat.context.add_init_script(NO_FS_PICKER)
    chat.open()
    with chat.page.expect_file_chooser(timeout=30_000) as chooser:
        chat.page.locator("#upload-button").click()
    chooser.value.set_files(path)
    chat.screenshot("attached")
    # Send is enabled once the file is on the server; the message is the file alone.
    chat.page.locator("#chat-submit:not([disabled])").click(timeout=60_000)


@pytest.fixture
def chat(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    """A tab on a server of its own (a fresh memory), for one turn."""
    env = {**scripted_env(SCRIPT), "ROUNDTABLE_BUDGET__MAX_TURNS": "1"}
    server = start_server(tmp_path_factory.mktemp("uploads") / "data", env)
    try:
        with chat_page(browser, server, request.node.name) as page:
            yield page
    finally:
        server.stop()


def test_an_uploaded_pdf_is_cited_and_its_citation_opens_the_passage(
    chat: ChatPage, tmp_path: Path
) -> None:
    brief = make_pdf(
        tmp_path / FILE,
        [["The council meets on Tuesdays in the old town hall."], [ANSWER]],
    )
    send_file_alone(chat, brief)
    chat.wait_text(ADDED, timeout=120_000)
    chat.screenshot("added")

    chat.send(QUESTION)
    chat.wait_stops(1, timeout=180_000)
    reply = chat.page.locator(AGENT).filter(has_text="31 million euros per kilometre [1]")
    link = reply.locator("a.element-link", has_text="[1]")
    link.click(timeout=30_000)
    side = chat.page.locator("#side-view-content")
    side.get_by_text(ANSWER).wait_for(timeout=30_000)
    chat.screenshot("passage")
    assert "[1]" in chat.page.locator("#side-view-title").inner_text()
    shown = side.inner_text()
    # the file's own name and its page; never the folder it is kept in on the server
    assert "document tram brief.pdf, page 2" in shown
    assert "uploads" not in shown and str(chat.server.data_dir) not in shown

    (transcript,) = [load(p) for p in chat.server.transcripts.glob("*.jsonl")]
    said = [e for e in transcript.events if isinstance(e, MessageEvent)]
    answer = next(e for e in said if e.speaker == "researcher")
    recalled = [
        e
        for e in transcript.events
        if isinstance(e, MemoryEvent) and e.speaker == "researcher" and e.seq < answer.seq
    ]
    prompt_notes = {hit.n: hit for hit in recalled[-1].hits}  # the researcher's prompt's notes
    (citation,) = answer.citations
    assert citation.n == 1 and citation.valid
    assert citation.hit_id == prompt_notes[1].id
    assert ANSWER in prompt_notes[1].text
    assert prompt_notes[1].source == "document tram brief.pdf, page 2"


def test_a_thread_opened_by_a_file_alone_is_listed_and_titled_by_its_question(
    chat: ChatPage, tmp_path: Path
) -> None:
    """Chainlit names a thread by its first message's text, empty for a file alone: the thread
    was left off the sidebar ("No threads found" through the whole debate), the page off its
    /thread/ address, and after a reload it was "Untitled Conversation"."""
    brief = make_pdf(tmp_path / FILE, [["The council meets on Tuesdays."], [ANSWER]])
    send_file_alone(chat, brief)
    chat.wait_text(ADDED, timeout=120_000)
    thread = wait_title(chat, NEUTRAL)

    chat.send(QUESTION)
    chat.wait_stops(1, timeout=180_000)
    assert wait_title(chat, QUESTION) == thread
    chat.page.reload()  # the title is the saved one
    chat.wait_ready()
    assert wait_title(chat, QUESTION) == thread

    chat.open()  # a new chat, then the thread reopened from the sidebar
    chat.page.locator(f'a[href="{thread}"]').click(timeout=30_000)
    chat.page.wait_for_url(f"**{thread}", timeout=30_000)
    chat.wait_text(ADDED)
    chat.wait_text(QUESTION)
    chat.screenshot("reopened")
