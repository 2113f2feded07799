"""Bounded reads: what is not a regular file, or is too big, is refused at once, in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roundtable.common.bounded import read_bounded, read_text, split_lines
from roundtable.common.errors import ConfigError

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def _socket(tmp_path: Path) -> Path:
    path = tmp_path / "sock.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # a socket file stays after the socket is closed
    server.close()
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.yaml"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_fifo, "not a regular file (a pipe (FIFO))"),
        (_socket, "cannot read"),  # a socket cannot even be opened
        (_directory, "not a regular file (a directory)"),
        (lambda _: Path("/dev/zero"), "not a regular file (a character device)"),
    ],
)
def test_what_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path, make: object, says: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read_bounded(path, 1000, "team file")
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert message.startswith(f"team file {path}: ")
    assert says in message
    assert "\n" not in message


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as handle:  # sparse: 4 GB to read if anything tried
        handle.truncate(4 * 1024**3)
    started = time.monotonic()
    says = r"huge.toml: 4294967296 bytes, over the size limit of 10 bytes$"
    with pytest.raises(ConfigError, match=says):
        read_bounded(huge, 10, "settings file")
    assert time.monotonic() - started < 1


def test_a_regular_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10, "document") == b"x" * 10
    assert read_text(path, 10, "document") == "x" * 10


def test_text_that_is_not_utf8_and_a_long_line_are_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"ok\n\xff")
    with pytest.raises(ConfigError, match=r"^settings file .*bad.toml: not UTF-8 text \(byte 3\)$"):
        read_text(path, 100, "settings file")
    with pytest.raises(ConfigError, match=r"bad.toml:2: line longer than 3 bytes$"):
        split_lines(b"abc\nabcd\n", 3, path, "transcript")
    assert split_lines(b"abc\nab\n", 3, path, "transcript") == [b"abc", b"ab", b""]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROUNDTABLE, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_replay_of_a_device_or_a_fifo_ends_at_once_with_one_line(
    tmp_path: Path, target: str
) -> None:
    path = _fifo(tmp_path) if target == "fifo" else Path(target)
    started = time.monotonic()
    _one_line(_cli("replay", str(path)), str(path), "not a regular file")
    assert time.monotonic() - started < 20


def test_a_team_file_that_is_a_fifo_does_not_hang_teams_check(tmp_path: Path) -> None:
    """The team file's read opened a FIFO blocking: ``teams check`` waited for ever."""
    fifo = _fifo(tmp_path)
    started = time.monotonic()
    result = _cli("teams", "check", str(fifo))
    assert result.returncode == 2, result.stderr
    assert result.stdout.strip() == f"team file {fifo}: not a regular file (a pipe (FIFO))"
    assert time.monotonic() - started < 25


def test_a_settings_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    """The settings file was read and parsed whole, whatever its size."""
    config = tmp_path / "roundtable.toml"
    config.write_text("# padding\n" * 200_000)  # 2 MB of comments: valid TOML
    result = _cli("list", env={"ROUNDTABLE_CONFIG": str(config)})
    _one_line(result, f"settings file {config}", "over the size limit")
