"""Request bodies are capped as they stream: 413 at the chunk that crosses the cap.

A raw socket sends the request, so the test controls framing (chunked or Content-Length) and
can leave a body unfinished: an answer that comes while the body is still open proves the
server refused it without waiting for (or holding) the rest.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from roundtable.api import ApiSettings
from tests.support.api_server import SECRET, TOKEN, ApiServer, running_api
from tests.test_api import DEBATE, settings_for

CAP = 1_000_000


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiServer]:
    apis = ApiSettings(api_token=TOKEN, webhook_secret=SECRET)
    with running_api(settings_for(tmp_path, DEBATE), apis) as server:
        yield server


def _connect(server: ApiServer, *, chunked: bool, length: int | None = None) -> socket.socket:
    port = int(server.url.split(":")[2].split("/")[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    head = (
        f"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _send_chunks(sock: socket.socket, total: int, piece: int = 64 * 1024) -> int:
    """Send ``total`` bytes of body as chunks (no last chunk); how many were sent before the
    server closed the connection."""
    sent = 0
    try:
        while sent < total:
            size = min(piece, total - sent)
            sock.sendall(f"{size:x}\r\n".encode() + b"x" * size + b"\r\n")
            sent += size
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def _status(sock: socket.socket, timeout: float = 5) -> tuple[int, dict[str, object]]:
    """The response's status and JSON body; fails if none comes within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"the connection closed without an answer: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ")[1]), json.loads(body)


def test_a_chunked_body_over_the_cap_is_refused_before_it_ends(api: ApiServer) -> None:
    """A chunked body was read and parsed whole (300 MB took 44 s and grew the server to
    about 1 GB). Now 413 comes while the body is still open: the rest is never read."""
    with _connect(api, chunked=True) as sock:
        started = time.monotonic()
        _send_chunks(sock, CAP + 200_000)  # over the cap, and the body never ends
        status, body = _status(sock)
    assert status == 413
    assert body == {"detail": f"the body is over {CAP} bytes"}
    assert time.monotonic() - started < 5


def test_a_declared_length_over_the_cap_is_refused_unread(api: ApiServer) -> None:
    with _connect(api, chunked=False, length=50_000_000) as sock:
        status, _ = _status(sock)  # nothing of the body was sent
    assert status == 413


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_within_the_cap_reaches_the_route_whole(api: ApiServer, chunked: bool) -> None:
    padding = " " * 500_000  # JSON whitespace: the body is near half the cap
    raw = (json.dumps({"question": "Why?"}) + padding).encode()
    with _connect(api, chunked=chunked, length=len(raw)) as sock:
        if chunked:
            half = len(raw) // 2
            for part in (raw[:half], raw[half:]):
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(raw)
        status, body = _status(sock, timeout=30)
    assert status == 202, body
    assert body["status"] == "running"


@pytest.mark.parametrize("size", [0, 1_000, CAP, CAP + 1, 5_000_000, 50_000_000])
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_bodies_from_empty_to_50_mb_are_413_exactly_over_the_cap(
    api: ApiServer, chunked: bool, size: int
) -> None:
    with _connect(api, chunked=chunked, length=size) as sock:
        if chunked:
            sent = _send_chunks(sock, size)
            if sent == size:
                sock.sendall(b"0\r\n\r\n")
        elif size <= CAP:
            sock.sendall(b"x" * size)
        status, _ = _status(sock, timeout=30)
    # over the cap: 413; within it the body is read whole and judged (not JSON, or no question)
    assert status == (413 if size > CAP else 422), status


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    apis = ApiSettings(api_token=TOKEN, webhook_secret=SECRET, api_max_body_bytes=2048)
    with (
        running_api(settings_for(tmp_path, DEBATE), apis) as server,
        _connect(server, chunked=True) as sock,
    ):
        _send_chunks(sock, 3000, piece=1000)
        status, body = _status(sock)
    assert status == 413 and body == {"detail": "the body is over 2048 bytes"}
