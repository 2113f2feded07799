"""One logger tree: a server whose endpoint is unreachable prints no traceback (#15, finding 9).

The run fails as it should (each turn an infrastructure fault, then the stop), and it is
recorded: the turn failures in the JSON log, the stop as one line in the API. What used to go
wrong was beside that: AutoGen logs every failed reply and every agent that then received the
team's error with a traceback on loggers outside ours, and Chainlit's root handler printed them
all on the server's stdout (72 for one run), unredacted. They are handled errors: now they join
our tree at debug level, as one line each, through the redactor.

The server is the real one (``roundtable ui``, API included) on a free port; the endpoint is a
closed port on loopback, with an API key that must never be printed either.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from roundtable.ui.server import free_port
from tests.support.servers import answers, clean_env

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
TOKEN = "admin-token-0123456789abcdef"
KEY = "rt-live-KEY-0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def server_env(data_dir: Path, level: str) -> dict[str, str]:
    return clean_env(
        data_dir,
        ROUNDTABLE_API_TOKEN=TOKEN,
        ROUNDTABLE_ENDPOINTS__DEFAULT__KIND="openai",
        ROUNDTABLE_ENDPOINTS__DEFAULT__BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        ROUNDTABLE_ENDPOINTS__DEFAULT__MODEL="m",
        ROUNDTABLE_ENDPOINTS__DEFAULT__API_KEY=KEY,
        ROUNDTABLE_ENDPOINTS__DEFAULT__MAX_RETRIES="0",
        ROUNDTABLE_MEMORY__ENABLED="false",
        ROUNDTABLE_LOG_LEVEL=level,
        ROUNDTABLE_GUARDS__ENABLED="false",
    )


def one_failed_run(data_dir: Path, level: str) -> tuple[dict[str, object], str]:
    """Start the server, make one API run to its end; the run as listed, and all the server
    printed (stdout and stderr) up to its shutdown."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen(
        [ROUNDTABLE, "ui", "--port", str(port)],
        env=server_env(data_dir, level),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert answers(server, f"http://127.0.0.1:{port}/health"), "the server ended"
        deadline = time.monotonic() + 120
        body = {"question": "Is tea better than coffee?", "settings": {"max_turns": 4}}
        started = httpx.post(f"{base}/runs", json=body, headers=AUTH, timeout=60)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        while True:
            assert time.monotonic() < deadline, "the run did not end in 120 s"
            run = httpx.get(f"{base}/runs/{run_id}", headers=AUTH, timeout=10).json()
            if run["status"] != "running":
                break
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    return run, output


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_run_on_an_unreachable_endpoint_prints_no_traceback(data_dir: Path, level: str) -> None:
    run, output = one_failed_run(data_dir, level)
    stop = run["stop"]
    assert isinstance(stop, dict) and stop["code"] == "error", run
    assert "\n" not in stop["reason"] and "Traceback" not in stop["reason"]
    assert output.count("Traceback") == 0, output[-4000:]
    assert "autogen" not in output and KEY not in output, output[-4000:]
    records = [
        json.loads(line)
        for line in (data_dir / "logs" / "roundtable.jsonl").read_text().splitlines()
    ]
    assert any(r["event"] == "turn_failed" and "cannot connect" in r["error"] for r in records)
    library = [r for r in records if str(r["logger"]).startswith("roundtable.library")]
    if level == "INFO":
        assert library == []
    else:  # AutoGen's own words, each one line at debug level, never the key
        assert library and {r["level"] for r in library} == {"debug"}
        assert all("\n" not in json.dumps(r["error"]) for r in library)
    assert all(KEY not in json.dumps(r) for r in records)
