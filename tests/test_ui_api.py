"""The API on the real UI server: a run started over HTTP is seen and replayed in the browser."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from roundtable.transcripts import HUMAN, MessageEvent, load
from tests.browser.harness import ChatPage, UIServer, scripted_env, start_server
from tests.support.api_server import AUTH, TOKEN

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser
QUESTION = "Should the harbour get a second ferry line?"


@pytest.fixture(scope="module")
def api_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    env = {**scripted_env(), "ROUNDTABLE_API_TOKEN": TOKEN}
    server = start_server(tmp_path_factory.mktemp("api-ui") / "data", env)
    yield server
    server.stop()


def _finished(server: UIServer, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        detail = httpx.get(f"{server.url}/api/runs/{run_id}", headers=AUTH).json()
        if detail["status"] != "running":
            return dict(detail)
        time.sleep(0.1)
    raise AssertionError("the API run did not end")


def test_the_api_is_served_beside_the_ui_behind_its_token(api_ui: UIServer) -> None:
    assert httpx.get(f"{api_ui.url}/api/runs").status_code == 401
    assert httpx.get(f"{api_ui.url}/api/runs/x").status_code == 401  # not the UI's page
    schema = httpx.get(f"{api_ui.url}/api/openapi.json", headers=AUTH).json()
    assert "/runs" in schema["paths"] and schema["servers"] == [{"url": "/api"}]
    assert httpx.get(f"{api_ui.url}/health").status_code == 200  # Chainlit's routes still work


def test_a_run_started_by_the_api_is_listed_and_replayed_in_the_browser(
    api_ui: UIServer, browser: Browser, request: pytest.FixtureRequest
) -> None:
    started = httpx.post(f"{api_ui.url}/api/runs", json={"question": QUESTION}, headers=AUTH)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    detail = _finished(api_ui, run_id)
    assert detail["status"] == "finished"
    saved = load(api_ui.transcripts / f"{run_id}.jsonl")

    chat = ChatPage(browser, api_ui, request.node.name)
    try:
        chat.open()
        chat.send("/replay")
        chat.wait_text(QUESTION)
        chat.send(f"/replay {run_id} fast")
        chat.wait_stops()
        chat.screenshot("api-run-replayed")
        texts = chat.agent_texts()
    finally:
        chat.close()
    said = [e for e in saved.events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert said
    for number, event in enumerate(said, start=1):  # turns as the person counts them
        heading = f"{event.speaker.capitalize()} · turn {number}"
        assert any(t.startswith(heading) and event.content in t for t in texts), heading


def test_the_page_heartbeat_tolerates_a_busy_machine(api_ui: UIServer) -> None:
    # Engine.IO's handshake tells the page how long to wait for the server's heartbeat.
    opened = httpx.get(f"{api_ui.url}/ws/socket.io/?EIO=4&transport=polling")
    assert opened.status_code == 200 and opened.text.startswith("0")
    assert json.loads(opened.text[1:])["pingTimeout"] == 120_000


def test_stopping_the_server_ends_api_runs_with_a_stated_reason(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {**scripted_env(), "ROUNDTABLE_API_TOKEN": TOKEN}
    server = start_server(tmp_path_factory.mktemp("api-stop") / "data", env)
    try:
        started = httpx.post(f"{server.url}/api/runs", json={"question": QUESTION}, headers=AUTH)
        run_id = started.json()["id"]
        time.sleep(1.0)  # the first reply is streaming (a word every 0.05 s)
    finally:
        server.stop()  # SIGTERM: Chainlit's shutdown hook runs
    last = load(server.transcripts / f"{run_id}.jsonl").events[-1]
    assert last.kind == "stop" and last.reason == "the server is shutting down"
