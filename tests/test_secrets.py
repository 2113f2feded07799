"""A secret never leaves the process: a server that echoes our key puts it nowhere.

The key reaches error messages only through the endpoint client, which scrubs the server's
words before it cuts them to one line; so the transcript, the stop reason, the terminal and
the logs never see it (tests/test_observe.py covers the logs' own filter).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from roundtable.agents.endpoint_errors import check_reachable
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.openai_client import OpenAIEndpointClient
from roundtable.common.errors import ConfigError, RoundtableError
from roundtable.common.secrets import REDACTED, scrub
from tests.support.chat_server import Reply, Request, endpoint_env, running_chat_server

KEY = "rt-live-0123456789abcdefghijKLMNOP"
"""Not an ``sk-`` key: only the configured value can catch it."""
ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))


def echo(request: Request) -> Reply | None:
    """Answer every chat request with an error that quotes the Authorization header, deep in a
    long message, so a cut to one line would keep part of the key if scrubbed too late."""
    if request.method == "GET":
        return None  # the start-up check passes: the calls themselves fail
    sent = request.headers.get("authorization", "")
    padding = "the request was malformed in several ways " * 5
    return Reply(status=500, error=f"{padding}; you sent {sent} and key={sent[7:]}")


def leaked(text: str) -> bool:
    """The key, or any 10-character piece of it, in ``text``."""
    return any(KEY[i : i + 10] in text for i in range(len(KEY) - 9))


def test_scrub_replaces_values_bearer_tokens_and_assignments() -> None:
    text = f"Bearer abc.def-1 and sk-ABCDEFGH12345678 and api_key={KEY} and {KEY}"
    cleaned = scrub(text, [KEY])
    assert not leaked(cleaned) and "abc.def-1" not in cleaned and "sk-ABCDEFGH" not in cleaned
    assert cleaned.count(REDACTED) == 4
    assert scrub("the key is abc", ["abc"]) == "the key is abc"  # too short to scrub


async def test_an_error_body_that_echoes_the_key_is_scrubbed_before_it_is_cut() -> None:
    with running_chat_server(responder=echo) as server:
        endpoint = EndpointSettings(
            kind="openai", base_url=server.url, model="m", api_key=KEY, max_retries=0
        )
        client = OpenAIEndpointClient(endpoint, max_tokens=8, temperature=0.0)
        try:
            with pytest.raises(RoundtableError) as caught:
                await client.create([])
        finally:
            await client.close()
        assert "HTTP 500" in str(caught.value) and not leaked(str(caught.value))
        assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_the_start_up_check_scrubs_the_key_too() -> None:
    def refuse(request: Request) -> Reply:
        return Reply(status=401, error=f"bad key {request.headers.get('authorization')}")

    with running_chat_server(responder=refuse) as server:
        endpoint = EndpointSettings(kind="openai", base_url=server.url, model="m", api_key=KEY)
        with pytest.raises(ConfigError) as caught:
            await check_reachable(endpoint, "default")
    assert "the API key was refused" in str(caught.value) and not leaked(str(caught.value))


def ask_on_echo(tmp_path: Path, url: Callable[[str], str] = str, **more: str) -> list[str]:
    """``roundtable ask`` on the echoing server at ``url``: what it wrote (the transcript, its
    stdout and stderr, the logs), after checking the failure was recorded."""
    with running_chat_server(responder=echo) as server:
        env = endpoint_env(
            url(server.url),
            tmp_path / "data",
            ROUNDTABLE_ENDPOINTS__DEFAULT__MAX_RETRIES="0",
            **more,
        )
        transcript = tmp_path / "t.jsonl"
        result = subprocess.run(
            [ROUNDTABLE, "ask", "Why?", "--max-turns", "2", "--transcript", str(transcript)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert server.chat_requests, "the server was never asked"
    assert transcript.is_file(), result.stderr
    assert "HTTP 500" in transcript.read_text()  # the failure is recorded, without the key
    written = [transcript.read_text(), result.stdout, result.stderr]
    return written + [p.read_text() for p in (tmp_path / "data" / "logs").glob("*.jsonl")]


def test_a_debate_on_an_echoing_server_leaks_the_key_nowhere(tmp_path: Path) -> None:
    """Through the whole product: terminal, transcript and logs."""
    written = ask_on_echo(
        tmp_path, ROUNDTABLE_ENDPOINTS__DEFAULT__API_KEY_ENV="RT_TEST_KEY", RT_TEST_KEY=KEY
    )
    assert [leaked(text) for text in written] == [False] * len(written), written[2][-3000:]


PASSWORD = "pw-9876543210zyxwvutsRQPONM"
"""A password in the endpoint's URL (``http://user:PASSWORD@host``): every error names the URL."""


def hidden(text: str) -> bool:
    """Neither the key nor the URL's password, nor a 10-character piece of either, in ``text``."""
    return not leaked(text) and not any(
        PASSWORD[i : i + 10] in text for i in range(len(PASSWORD) - 9)
    )


def with_password(url: str) -> str:
    return url.replace("http://", f"http://roundtable:{PASSWORD}@")


def test_a_password_in_the_endpoint_url_leaks_nowhere_from_the_cli(tmp_path: Path) -> None:
    """Each error names the endpoint by its URL: the password in it reached the transcript
    and the terminal, since only the key was scrubbed, and only from the server's words."""
    written = ask_on_echo(tmp_path, with_password, ROUNDTABLE_ENDPOINTS__DEFAULT__API_KEY=KEY)
    assert [hidden(text) for text in written] == [True] * len(written), written[1][-3000:]


def test_the_api_run_result_and_its_webhook_hold_no_secret(tmp_path: Path) -> None:
    import httpx

    from roundtable.agents import EndpointSettings
    from roundtable.api import ApiSettings
    from roundtable.conversations import load_settings
    from tests.support.api_server import AUTH, SECRET, TOKEN, running_api, running_receiver

    with running_chat_server(responder=echo) as chat, running_receiver() as receiver:
        endpoint = EndpointSettings(
            kind="openai",
            base_url=with_password(chat.url),
            model="m",
            api_key=KEY,
            max_retries=0,
        )
        settings = load_settings(
            data_dir=tmp_path / "data", endpoints={"default": endpoint}, memory={"enabled": False}
        )
        apis = ApiSettings(api_token=TOKEN, webhook_secret=SECRET, webhook_allow=[receiver.entry])
        with running_api(settings, apis) as api:
            body = {"question": "Why?", "settings": {"max_turns": 2}, "webhook": receiver.url}
            started = httpx.post(f"{api.url}/runs", json=body, headers=AUTH)
            assert started.status_code == 202, started.text
            run_id = started.json()["id"]
            assert receiver.arrived.wait(60)
            detail = httpx.get(f"{api.url}/runs/{run_id}", headers=AUTH).text
            listing = httpx.get(f"{api.url}/runs", headers=AUTH).text
    transcript = (tmp_path / "data" / "transcripts" / f"{run_id}.jsonl").read_text()
    assert "HTTP 500" in transcript and "roundtable:[redacted]@" in transcript
    written = [detail, listing, transcript, *(r.body.decode() for r in receiver.received)]
    assert [hidden(text) for text in written] == [True] * len(written), detail


def test_every_configured_secret_is_kept_out_of_an_errors_text() -> None:
    """The API token, the webhook secret and a database URL's password, once configured, are
    removed wherever an error becomes text: ours (``str``) and foreign ones (``error_text``)."""
    from roundtable.api import ApiSettings
    from roundtable.common.secrets import error_text
    from roundtable.ui.config import UISettings

    token, secret, password = "tok-1234567890abcdefXYZ", "whs-1234567890abcdefXYZ", "db-p@ss:w0rd!"
    ApiSettings(api_token=token, webhook_secret=secret)
    UISettings(database_url="postgresql+asyncpg://rt:db-p%40ss%3Aw0rd%21@db.internal/rt")
    text = f"saw {token}, {secret}, {password} and db-p%40ss%3Aw0rd%21"
    for shown in (str(ConfigError(text)), error_text(RuntimeError(text))):
        assert shown == f"saw {REDACTED}, {REDACTED}, {REDACTED} and {REDACTED}"
    assert str(ConfigError("postgresql://u:other@h/db")) == f"postgresql://u:{REDACTED}@h/db"


def test_the_logs_filter_removes_kept_secrets_too() -> None:
    """The JSON log's filter was given the endpoint keys only: the API token reached it."""
    from roundtable.common.secrets import keep

    keep("api-token-kept-0123456789")
    assert scrub("Bearer-less api-token-kept-0123456789 here") == f"Bearer-less {REDACTED} here"
