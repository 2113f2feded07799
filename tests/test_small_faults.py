"""The smaller faults an attacker's probe found (#15): each refused or shown plainly now."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from roundtable.common.errors import ConfigError
from roundtable.conversations import check_question
from tests.support.api_server import AUTH, running_api
from tests.test_api import DEBATE, QUESTION, api_settings, settings_for, start, wait_ended

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
INVISIBLE = "\x00\x00\x01\x07\u200b\x1b"
"""NULs, control characters, a zero-width space and an escape: nothing to read."""


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROUNDTABLE_MEMORY__ENABLED": "false"}
    return subprocess.run(
        [ROUNDTABLE, *args], input=stdin, capture_output=True, text=True, timeout=120, env=env
    )


def one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(needle in lines[0] for needle in needles), lines[0]


def test_a_question_of_nuls_and_control_characters_is_refused() -> None:
    with pytest.raises(ConfigError, match="nothing visible in it"):
        check_question(INVISIBLE)
    assert check_question(" \x00Why?\n") == "\x00Why?"  # visible text: kept as asked


def test_ask_refuses_a_question_of_nuls_in_one_line() -> None:
    """A question made only of NULs was accepted and run."""
    one_line(run("ask", "--demo", "-", stdin=INVISIBLE + "\n"), "nothing visible")


def test_the_api_refuses_a_question_of_nuls(tmp_path: Path) -> None:
    with running_api(settings_for(tmp_path, DEBATE), api_settings()) as api:
        response = httpx.post(f"{api.url}/runs", json={"question": INVISIBLE}, headers=AUTH)
    assert response.status_code == 422
    assert "nothing visible" in response.json()["detail"]


@pytest.mark.parametrize(
    "content", ["", "#\n", "\u200b\n", "---\n\n***\n"], ids=["empty", "hash", "zwsp", "rules"]
)
def test_memory_add_of_a_file_without_text_is_an_error(tmp_path: Path, content: str) -> None:
    """An empty file gave "Added 0 passage(s)" and exit 0; a lone ``#`` added a passage."""
    path = tmp_path / "notes.md"
    path.write_text(content, encoding="utf-8")
    result = subprocess.run(
        [ROUNDTABLE, "memory", "add", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ROUNDTABLE_DATA_DIR": str(tmp_path / "data")},
    )
    one_line(result, f"document {path}: no text in it")
    assert "Added" not in result.stdout


def test_a_running_run_is_listed_with_no_stop(tmp_path: Path) -> None:
    """``GET /api/runs`` showed a running run's stop as ``{"code": "(no stop", ...}``."""
    slow = {**DEBATE, "chunk_delay": 0.05, "defaults": {**DEBATE["defaults"], "critic": "REVISE"}}
    with running_api(settings_for(tmp_path, slow, max_turns=30), api_settings()) as api:
        run_id = start(api, {"question": QUESTION})["id"]
        time.sleep(0.3)
        listed = httpx.get(f"{api.url}/runs", headers=AUTH).json()["runs"]
        httpx.post(f"{api.url}/runs/{run_id}/stop", headers=AUTH)
        wait_ended(api, run_id)
        ended = httpx.get(f"{api.url}/runs", headers=AUTH).json()["runs"]
    [running] = [r for r in listed if r["id"] == run_id]
    assert running["status"] == "running" and running["stop"] is None
    [stopped] = [r for r in ended if r["id"] == run_id]
    assert stopped["stop"]["code"] == "user_stop" and stopped["stop"]["reason"]
