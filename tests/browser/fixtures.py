"""Pytest fixtures for the browser tests (imported by ``tests/test_ui_*.py``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.harness import (
    CHROMIUM,
    ChatPage,
    UIServer,
    chat_page,
    launch_browser,
    scripted_env,
    start_server,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it
    is open, which would break the async tests of the modules that come after."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup-test")
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """One scripted-model server for the whole session (starting one takes ~15 s)."""
    server = start_server(tmp_path_factory.mktemp("ui") / "data", scripted_env())
    yield server
    server.stop()


@pytest.fixture
def chat(
    browser: Browser, ui_server: UIServer, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    with chat_page(browser, ui_server, request.node.name) as page:
        yield page
