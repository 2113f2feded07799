"""The first page a newcomer sees, in headless Chromium on the real server and default settings.

It must say what Roundtable is, which team will answer (its roles' cards), which model runs
(the embedded demo model says so, with a pointer to a real one), offer starter questions, and
follow the browser's light or dark preference. Nothing is asked, so no model is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from roundtable.agents import load_teams
from tests.browser.harness import UIServer, chat_page, start_server

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """The server as ``make run`` starts it: the embedded model, the default team."""
    server = start_server(tmp_path_factory.mktemp("ui-first") / "data", {})
    yield server
    server.stop()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_first_page_says_what_runs_offers_starters_and_follows_the_theme(
    browser: Browser, default_server: UIServer, scheme: str
) -> None:
    team = load_teams().get(None)
    with chat_page(browser, default_server, f"first-page-{scheme}") as chat:
        chat.page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        chat.open()
        welcome = chat.page.locator("#welcome-screen")
        welcome.get_by_text("Roundtable").first.wait_for(timeout=30_000)
        text = welcome.inner_text()
        assert "debates your question" in text
        for card in team.roles:
            assert card.name in text and card.description.split(".")[0] in text
        assert "SmolLM2-135M-Instruct" in text and "offline demo model" in text
        assert "Ollama" in text
        for question in team.starters:
            chat.page.get_by_text(question[:40]).first.wait_for(timeout=30_000)
        shown = chat.page.evaluate("() => document.documentElement.className")
        assert scheme in shown.split(), shown
        chat.screenshot(scheme)
