"""A real server answering many API runs, and its resident memory between them (#15, finding 10).

``roundtable ui`` is started as a person would (scripted model, memory on, an administrator
token) on a free loopback port; ``drive`` makes runs through the HTTP API, ``CONCURRENCY`` at a
time, each to its end; ``rss_mb`` reads the Chainlit server's resident set from ``/proc`` (the
launcher's only child, where every run lives). Used by ``bench/soak.py`` (idle, 1, 100 and
1,000 runs) and by ``tests/test_soak.py`` (a smaller version).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from roundtable.ui.server import free_port
from tests.support.servers import answers, clean_env, started

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
TOKEN = "soak-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONCURRENCY = 8
MAX_TURNS = 4
POLL_ATTEMPTS = 5
SETTLE_S = 1.0
"""Pause after the last run of a batch ends before RSS is read (its webhook, its writes)."""


@dataclass
class SoakServer:
    api: str
    """The API's base URL (``.../api``)."""
    pid: int
    """The Chainlit server's process id (not the launcher's)."""
    done: int = 0
    """Runs made so far."""


@contextmanager
def soak_server(data_dir: Path, *, memory: bool = True) -> Iterator[SoakServer]:
    """``roundtable ui`` on the scripted model, shut down with SIGTERM at the end."""
    port = free_port()
    env = clean_env(
        data_dir,
        ROUNDTABLE_API_TOKEN=TOKEN,
        ROUNDTABLE_ENDPOINTS__DEFAULT__KIND="scripted",
        ROUNDTABLE_MEMORY__ENABLED=str(memory).lower(),
        ROUNDTABLE_GUARDS__ENABLED="false",
    )
    command = [ROUNDTABLE, "ui", "--port", str(port)]
    with started(command, env, output=subprocess.DEVNULL) as launcher:
        assert answers(launcher, f"http://127.0.0.1:{port}/health", timeout=180)
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text()
        yield SoakServer(api=f"http://127.0.0.1:{port}/api", pid=int(children.split()[0]))


def rss_mb(pid: int) -> float:
    """The process's resident set now, in MB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def drive(server: SoakServer, runs: int) -> None:
    """Make ``runs`` more runs, ``CONCURRENCY`` at a time, each to its end (all must finish)."""
    asyncio.run(_drive(server, runs))
    server.done += runs
    time.sleep(SETTLE_S)


async def _drive(server: SoakServer, runs: int) -> None:
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=server.api, headers=AUTH, timeout=120) as client:

        async def one(index: int) -> None:
            async with slots:
                body = {
                    "question": f"Soak question {server.done + index}: trams or buses?",
                    "settings": {"max_turns": MAX_TURNS},
                }
                started = await client.post("/runs", json=body)
                assert started.status_code == 202, started.text
                run_id = started.json()["id"]
                while True:
                    run = await _poll(client, f"/runs/{run_id}")
                    if run["status"] != "running":
                        break
                    await asyncio.sleep(0.2)
                assert run["status"] == "finished", run

        await asyncio.gather(*(one(i) for i in range(runs)))


async def _poll(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    """GET ``path``; a connection the server closed as it was reused is tried again."""
    for attempt in range(POLL_ATTEMPTS):
        try:
            answer: dict[str, Any] = (await client.get(path)).json()
            return answer
        except httpx.TransportError:
            if attempt == POLL_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")
