"""Server processes in tests: a clean environment, and waiting until one answers.

Owns nothing of what a server is (``roundtable ui``, ``chainlit run``, a mounted app): the
tests start them as a person would, with these two helpers.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

START_S = 90.0


def clean_env(data_dir: Path, **more: str) -> dict[str, str]:
    """This process's environment minus every Roundtable and Chainlit setting, with the data
    folder and ``more``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUNDTABLE_", "CHAINLIT_"))}
    env.update(ROUNDTABLE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **more)
    return env


def answers(process: subprocess.Popen[str], url: str, timeout: float = START_S) -> bool:
    """True once ``url`` answers, False if ``process`` ended first (it fails the test if
    neither happens within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"the server did not answer in {timeout:.0f} s"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.25)
    return False


@contextmanager
def started(
    command: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    output: int | IO[Any] = subprocess.PIPE,
) -> Iterator[subprocess.Popen[str]]:
    """``command`` running (stdout and stderr together to ``output``), ended with SIGTERM at
    the end (a launcher passes it on to its server and waits), killed 30 s later if need be."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
