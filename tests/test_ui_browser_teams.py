"""Teams in the browser: the real Chainlit server, headless Chromium, a scripted policy team.

The person picks the "policy" chat profile in the page and asks; the debate must be the
policy team's (economist, lawyer, sceptic), each message with its role's drawn avatar, served
by the server as an SVG; reopened, the thread's settings panel offers the same team.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import load
from tests.browser.harness import (
    AGENT,
    UIServer,
    chat_page,
    scripted_env,
    start_server,
)

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).parent / "browser" / "policy_script.yaml"
QUESTION = "Should the city charge cars to enter the centre?"
POLICY = ("economist", "lawyer", "sceptic")


@pytest.fixture(scope="module")
def teams_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    server = start_server(tmp_path_factory.mktemp("ui-teams") / "data", scripted_env(SCRIPT))
    yield server
    server.stop()


def test_the_policy_profile_picked_in_the_page_runs_the_policy_team_with_its_avatars(
    browser: Browser, teams_server: UIServer
) -> None:
    with chat_page(browser, teams_server, "teams") as chat:
        chat.open()
        chat.page.locator("#chat-profiles").click()
        for name in ("default", "policy", "product"):
            chat.page.locator(f'[data-test="select-item:{name}"]').wait_for(timeout=30_000)
        chat.page.locator('[data-test="select-item:policy"]').hover()
        description = chat.page.locator('#chat-profile-description[data-state="open"]')
        description.wait_for(timeout=30_000)
        for role in POLICY:
            assert role in description.inner_text()
        chat.screenshot("profiles")
        chat.page.locator('[data-test="select-item:policy"]').click()
        # a new chat starts on the profile: its welcome screen shows the team and its roles
        chat.page.locator("#welcome-screen").get_by_text("weigh a policy").wait_for(timeout=30_000)
        chat.wait_ready()
        chat.send(QUESTION)
        chat.wait_stops(1, timeout=120_000)
        chat.screenshot("policy")

        texts = chat.agent_texts()
        for role in POLICY:
            assert any(t.startswith(role.capitalize()) for t in texts), (role, texts)
        assert not any(t.startswith(("Researcher", "Analyst", "Critic", "Writer")) for t in texts)
        # every role's avatar is an <img> of /avatars/<role>, and it loads as the drawn SVG
        for role in POLICY:
            image = chat.page.locator(f'{AGENT} img[src$="/avatars/{role}"]').first
            image.wait_for(timeout=30_000)
            loaded = chat.page.evaluate(
                "(img) => img.complete && img.naturalWidth > 0", image.element_handle()
            )
            assert loaded, role
            src = image.get_attribute("src") or ""
            response = chat.page.request.get(
                src if src.startswith("http") else chat.server.url + src
            )
            assert response.status == 200
            assert response.headers["content-type"].startswith("image/svg+xml")
            assert f'aria-label="{role}"' in response.text()

        chat.page.locator(
            f'{AGENT} img[src$="/avatars/economist"]'
        ).first.scroll_into_view_if_needed()
        chat.screenshot("avatars")

        # reopened, the thread keeps its team: the settings panel offers the policy roles
        chat.page.wait_for_url("**/thread/*")
        chat.page.reload()
        chat.wait_ready()
        chat.page.locator("#chat-settings-open-modal").click()
        chat.page.get_by_text("Model endpoint: lawyer").wait_for(timeout=30_000)
        assert "Model endpoint: critic" not in chat.body_text()
        chat.screenshot("reopened-settings")

        [path] = chat.server.transcripts.glob("*.jsonl")
        header = load(path).header
        assert header.team is not None and header.team.name == "policy"
