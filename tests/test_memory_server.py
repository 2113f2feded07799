"""The memory store against a real ``chroma run`` server (the Rust one) on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from roundtable.common.errors import InfraError
from roundtable.memory import MemoryStats, MemoryStore


def _chroma_binary() -> str | None:
    beside = Path(sys.executable).parent / "chroma"
    return str(beside) if beside.exists() else shutil.which("chroma")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    binary = _chroma_binary()
    if binary is None:
        pytest.skip("the `chroma` CLI (shipped in the chromadb package) is not installed")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "chroma.log").open("wb")
    server = subprocess.Popen(
        [
            binary,
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited with {server.returncode}: see {log.name}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer its heartbeat within 30 s: see {log.name}")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_store_on_a_chroma_server(chroma_server: str, tmp_path: Path) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    doc = tmp_path / "notes.md"
    doc.write_text("# Rivers\n\nThe Nile flows north into the Mediterranean Sea.\n")

    with MemoryStore(url=chroma_server) as store:
        store.add_message("debate-a", "researcher", 0, at, "Glaciers are retreating fast.", "a0")
        store.add_message("debate-b", "critic", 0, at, "Ice sheets are melting quickly.", "b0")
        store.add_documents([doc])

        own = store.search("shrinking ice", conversation_id="debate-b", include_documents=False)
        past = store.search("shrinking ice", conversation_id="debate-b", include_past=True)
        river = store.search("Which way does the Egyptian river run?", conversation_id="debate-a")

        assert [h.id for h in own] == ["b0"]
        assert {h.id for h in past} == {"a0", "b0"}
        assert [(h.kind, h.source) for h in river] == [("document", str(doc.resolve()))]
        assert store.stats() == MemoryStats(message=2, document=1, pruned=0, conversations=2)
        assert store.search("shrinking ice", conversation_id="never-seen", min_score=0.0) != []
        assert store.search("ice", conversation_id="never-seen", include_documents=False) == []

    # A second client shares the server's data: no directory lock in server mode.
    with MemoryStore(url=chroma_server) as again:
        assert again.stats().message == 2


def test_unreachable_server_is_an_infra_error() -> None:
    with pytest.raises(InfraError, match="unreachable"):
        MemoryStore(url=f"http://127.0.0.1:{_free_port()}")
