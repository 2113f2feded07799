"""A secret never leaves the process: a server that echoes our key puts it nowhere.

The key reaches error messages only through the endpoint client, which scrubs the server's
words before it cuts them to one line; so the transcript, the stop reason, the terminal and
the logs never see it (tests/test_observe.py covers the logs' own filter).
"""

from __future__ import annotations

import subprocess
import sys
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


def test_a_debate_on_an_echoing_server_leaks_the_key_nowhere(tmp_path: Path) -> None:
    """Through the whole product: terminal, transcript and logs."""
    with running_chat_server(responder=echo) as server:
        env = endpoint_env(
            server.url,
            tmp_path / "data",
            ROUNDTABLE_ENDPOINTS__DEFAULT__API_KEY_ENV="RT_TEST_KEY",
            ROUNDTABLE_ENDPOINTS__DEFAULT__MAX_RETRIES="0",
            RT_TEST_KEY=KEY,
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
    written += [p.read_text() for p in (tmp_path / "data" / "logs").glob("*.jsonl")]
    assert [leaked(text) for text in written] == [False] * len(written), result.stderr[-3000:]
