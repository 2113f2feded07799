"""The browser UI on the real embedded model (SmolLM2): one short debate, end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser.harness import ChatPage, UIServer, start_server

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = [pytest.mark.model, pytest.mark.browser]


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    server = start_server(
        tmp_path_factory.mktemp("ui-model") / "data", {"ROUNDTABLE_BUDGET__MAX_TURNS": "3"}
    )
    yield server
    server.stop()


def test_a_short_debate_on_the_embedded_model(browser: Browser, model_server: UIServer) -> None:
    chat = ChatPage(browser, model_server, "test_a_short_debate_on_the_embedded_model")
    try:
        chat.open()
        chat.send("Should schools start later in the morning?")
        chat.wait_stops(timeout=300_000)
        texts = chat.agent_texts()
        names = {t.split(" · turn")[0] for t in texts if " · turn " in t}
        assert len(names) >= 2, texts
        assert any("Debate stopped" in t for t in texts)
        assert chat.steps("Decision"), "each message holds the manager's decision"
    finally:
        chat.screenshot("end")
        chat.close()
