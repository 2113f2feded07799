"""Two users in a real browser, alice and bob, each with a canary word: bob sees nothing of
alice's, in his page (thread list included), his `/replay` answers, his transcripts and his
memory recall (``include_past`` on), nor through the API with his own token.

One real Chainlit server on the scripted model, users added to ``<data_dir>/users.json`` as
``roundtable users add`` does (no ``ROUNDTABLE_USERS``), headless Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from roundtable.common.accounts import accounts_path, add_user, issue_token
from roundtable.common.passwords import hash_password
from roundtable.transcripts import load
from tests.browser.harness import UIServer, chat_page, scripted_env, start_server

pytest_plugins = ["tests.browser.fixtures"]

PASSWORD = "owners-password-1"
CANARY = {"alice": "canaryzanzibarite", "bob": "canaryquillowhisp"}
ADMIN = "admin-token-0123456789abcdef"


def question(user: str) -> str:
    return f"Should the city close the {CANARY[user]} quarry?"


@pytest.fixture(scope="module")
def owners_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    data = tmp_path_factory.mktemp("owners") / "data"
    for user in CANARY:
        add_user(accounts_path(data), user, hash_password(PASSWORD))
    env = {
        **scripted_env(),
        "ROUNDTABLE_BUDGET__MAX_TURNS": "3",
        "ROUNDTABLE_MEMORY__INCLUDE_PAST": "true",
        "ROUNDTABLE_MEMORY__MIN_SCORE": "0.0",
        "ROUNDTABLE_API_TOKEN": ADMIN,
    }
    server = start_server(data, env)
    yield server
    server.stop()


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_bob_sees_nothing_of_alices_in_the_browser_or_the_api(
    browser: Browser, owners_server: UIServer
) -> None:
    server = owners_server
    with chat_page(browser, server, "owners-alice") as alice:
        alice.login("alice", PASSWORD)
        alice.send(question("alice"))
        alice.wait_stops(1, timeout=180_000)
    mine = {
        load(path).header.owner: load(path) for path in sorted(server.transcripts.glob("*.jsonl"))
    }
    alice_id = mine["alice"].header.conversation_id
    with chat_page(browser, server, "owners-bob") as bob:
        bob.login("bob", PASSWORD)
        bob.send(question("bob"))
        bob.wait_stops(1, timeout=180_000)
        bob.send("/replay")
        bob.wait_text("Replay with")
        bob.send(f"/replay {alice_id}")
        bob.wait_text(f"No transcript named '{alice_id}'")
        bob.send("/replay 2")
        bob.wait_text("There is no transcript #2")
        bob.send("/export md")
        bob.wait_text("Download:")
        shown = bob.body_text()
        assert CANARY["bob"] in shown
        assert CANARY["alice"] not in shown

    transcripts = [load(p) for p in server.transcripts.glob("*.jsonl")]
    assert sorted(str(t.header.owner) for t in transcripts) == ["alice", "bob"]
    for transcript in transcripts:
        user = str(transcript.header.owner)
        other = "bob" if user == "alice" else "alice"
        text = transcript.model_dump_json()
        assert CANARY[user] in text and CANARY[other] not in text
        assert any(e.kind == "memory" for e in transcript.events)  # recall ran: not vacuous

    bob_token, _ = issue_token(accounts_path(server.data_dir), "bob")
    listed = httpx.get(
        f"{server.url}/api/runs", headers={"Authorization": f"Bearer {bob_token}"}, timeout=30
    )
    assert listed.status_code == 200
    bob_id = next(t.header.conversation_id for t in transcripts if t.header.owner == "bob")
    assert [run["id"] for run in listed.json()["runs"]] == [bob_id]
    assert CANARY["alice"] not in listed.text
    theirs = httpx.get(
        f"{server.url}/api/runs/{alice_id}",
        headers={"Authorization": f"Bearer {bob_token}"},
        timeout=30,
    )
    assert theirs.status_code == 404 and CANARY["alice"] not in theirs.text
    everyone = httpx.get(
        f"{server.url}/api/runs", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )
    assert {run["id"] for run in everyone.json()["runs"]} == {alice_id, bob_id}
