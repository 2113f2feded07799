"""The API on a real loopback HTTP server (uvicorn in a thread), and a webhook receiver.

The API runs on uvicorn's own event loop, as it does on the UI's server; tests talk to it over
HTTP with httpx, so streaming (server-sent events) is real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from roundtable.api import ApiSettings, create_api
from roundtable.conversations import Settings
from roundtable.ui.server import free_port

TOKEN = "test-token-0123456789abcdef"
SECRET = "webhook-secret-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class ApiServer:
    url: str
    """The API's base URL (``.../api``)."""
    server: uvicorn.Server
    app: Any


@contextmanager
def running_api(settings: Settings, api: ApiSettings, prefix: str = "/api") -> Iterator[ApiServer]:
    """The API mounted under ``prefix`` of a bare app, served on a free loopback port."""
    from fastapi import FastAPI

    from roundtable.api import mount

    host = FastAPI()
    app = create_api(settings, api)
    mount(host, app, prefix)
    with serving(host) as (port, server):
        yield ApiServer(url=f"http://127.0.0.1:{port}{prefix}", server=server, app=app)


@contextmanager
def serving(host: Any) -> Iterator[tuple[int, uvicorn.Server]]:
    """``host`` (an ASGI app) served by uvicorn in a thread on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(host, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield port, server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookReceiver:
    """Records every POST; answers from ``statuses`` in turn (200 once they run out)."""

    port: int
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    _answers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def entry(self) -> str:
        return f"127.0.0.1:{self.port}"

    def accepted(self) -> list[Received]:
        """Deliveries answered 2xx."""
        return [r for r, s in zip(self.received, self._answers, strict=False) if s < 300]

    def answer(self, request: Received) -> int:
        status = self.statuses.pop(0) if self.statuses else 200
        self.received.append(request)
        self._answers.append(status)
        if status < 300:
            self.arrived.set()
        return status

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.accepted()]


@contextmanager
def running_receiver(statuses: list[int] | None = None) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(port=0, statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(Received(body=body, headers=headers))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
