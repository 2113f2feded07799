"""The data folder is checked at start-up: a file or a read-only folder is one line, exit 2."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
COMMANDS = {
    "ask": ["ask", "--demo", "Why?"],
    "list": ["list"],
    "ui": ["ui", "--port", "0"],
}


def _run(
    argv: list[str], data: Path, *, read_only: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [ROUNDTABLE, *argv]
    if read_only:
        command = _read_only(data, command)
    env = {**os.environ, "ROUNDTABLE_DATA_DIR": str(data), "ROUNDTABLE_MEMORY__ENABLED": "false"}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def _read_only(data: Path, command: list[str]) -> list[str]:
    """``command`` run with ``data`` read-only: root ignores file modes, so as root a
    read-only bind mount in a private mount namespace (skipped where that is not allowed)."""
    if os.geteuid() != 0:
        data.chmod(0o555)
        return command
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {data} {data}"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("a read-only mount needs privileges this machine does not give")
    mount = f"mount --bind -o ro {shlex.quote(str(data))} {shlex.quote(str(data))}"
    return ["unshare", "-m", "sh", "-c", f"{mount} && exec {shlex.join(command)}"]


def _assert_one_line(result: subprocess.CompletedProcess[str], data: Path, says: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"data folder {data} (ROUNDTABLE_DATA_DIR): {says}" in lines[0]
    assert "No transcripts" not in result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_data_folder_that_is_a_file_is_one_line(tmp_path: Path, command: str) -> None:
    """``ask`` and ``ui`` gave a traceback; ``list`` said "No transcripts" and exited 0."""
    data = tmp_path / "data"
    data.write_text("not a folder")
    _assert_one_line(_run(COMMANDS[command], data), data, "not a folder")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_read_only_data_folder_is_one_line(tmp_path: Path, command: str) -> None:
    data = tmp_path / "data"
    (data / "transcripts").mkdir(parents=True)
    result = _run(COMMANDS[command], data, read_only=True)
    _assert_one_line(result, data, "not writable")
    assert list(data.rglob("*")) == [data / "transcripts"]  # nothing was written


def test_a_missing_data_folder_is_created(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    result = _run(["list"], data)
    assert result.returncode == 0, result.stderr
    assert (data / "transcripts").is_dir()
    assert list((data / "transcripts").iterdir()) == []  # the write check leaves nothing
