"""A real OpenAI-compatible chat server on loopback, for tests.

Owns: serving ``POST /v1/chat/completions`` (server-sent events when ``stream`` is true, one
JSON body otherwise, usage included when asked) and ``GET /v1/models`` from scripted replies;
a record of every request; and fault injection per reply (status codes with an OpenAI-style
error body, extra headers such as ``Retry-After``, a delay or a hang before answering, a
trickle between chunks, a stall or a connection cut mid-stream, a reset before any answer). It also
notices when the client goes away before the reply ends, even while it hangs or trickles, and
records whether each reply was sent whole (``Request.completed``).

Does not own: any model behaviour. Replies are what the test scripts: a queue (``enqueue``),
a ``default``, or a ``responder`` function of the request, consulted first for every path.

Standard library only: ``ThreadingHTTPServer`` on 127.0.0.1, port 0, in a daemon thread.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    """What the server answers to one request, faults included."""

    text: str = ""
    status: int = 200
    error: str | None = None
    """Error message for a status >= 400 (default: the status phrase)."""
    error_code: str | None = None
    """OpenAI-style ``error.code``, e.g. ``model_not_found``, ``context_length_exceeded``."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before the status line; ``math.inf`` hangs until the server stops."""
    chunk_delay: float = 0.0
    """Seconds between streamed chunks: a trickle."""
    chunks: list[str] | None = None
    """Streamed pieces; default: word-sized pieces of ``text``."""
    usage: bool = True
    """False: never report usage, even when the request asks for it."""
    cached_tokens: object = None
    """Reported as OpenAI's ``usage.prompt_tokens_details.cached_tokens`` when set."""
    cut_after: int | None = None
    """Streaming only: drop the connection after this many content chunks."""
    stall_after: int | None = None
    """Streaming only: after this many content chunks, go silent until the client leaves."""
    reset: bool = False
    """Reset the connection (TCP RST) instead of answering, after ``delay``."""
    finish_reason: str = "stop"

    @classmethod
    def fail(
        cls,
        status: int,
        error: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> Reply:
        """An error reply, e.g. ``Reply.fail(429, headers={"Retry-After": "1"})``."""
        return cls(status=status, error=error, error_code=code, headers=headers or {}, delay=delay)

    def pieces(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else word_pieces(self.text)


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The parsed JSON body (None when there was none)."""
    disconnected: bool = False
    """The client went away before the reply ended."""
    status: int | None = None
    """The status answered (None: nothing was answered: reset, or abandoned in a hang)."""
    completed: bool = False
    """The whole reply was sent: for a stream, up to its last chunk."""
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set when the server has finished with this request (answered, cut, or abandoned)."""

    @property
    def succeeded(self) -> bool:
        """A 200 reply sent whole: what a client may have consumed as a completion.

        Waits (briefly) for the handler to finish with the request: a client can read the
        stream's last chunk before the handler thread has recorded that it wrote it.
        """
        self.done.wait(SETTLE_S)
        return self.status == 200 and self.completed

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []


Responder = Callable[[Request], "Reply | str | None"]
"""Called first for every request; ``None`` falls through to the normal behaviour."""


class ChatServer:
    """Scripted OpenAI-compatible server; use through ``running_chat_server``."""

    def __init__(
        self,
        replies: Iterable[Reply | str] = (),
        *,
        default: Reply | str | None = None,
        responder: Responder | None = None,
        models: Iterable[str] = ("test-model",),
    ) -> None:
        self._replies: deque[Reply | str] = deque(replies)
        self.default = default
        self.responder = responder
        self.models = list(models)
        self.requests: list[Request] = []
        self.pipelined = 0
        """Requests that came on a connection while its previous reply was pending."""
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.chat = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client is given, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def enqueue(self, *replies: Reply | str) -> None:
        with self._lock:
            self._replies.extend(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, end hangs and trickles, and drop every open connection."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    # Called from handler threads.

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _reply_for(self, request: Request) -> Reply | None:
        if self.responder is not None:
            scripted = self.responder(request)
            if scripted is not None:
                return Reply(scripted) if isinstance(scripted, str) else scripted
        if request.method == "GET" and request.path.endswith("/models"):
            return None
        if not request.path.endswith("/chat/completions"):
            return Reply.fail(404, f"no route for {request.method} {request.path}")
        with self._lock:
            reply = self._replies.popleft() if self._replies else self.default
        if reply is None:
            return Reply.fail(500, "chat server: no scripted reply left")
        return Reply(reply) if isinstance(reply, str) else reply

    def _wait(self, seconds: float, connection: socket.socket | None = None) -> bool:
        """Sleep ``seconds`` (forever if infinite); False if the server is stopping or (given
        its ``connection``) the client went away meanwhile."""
        if seconds <= 0:
            return not self._closing.is_set() and not self._gone(connection)
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return not self._gone(connection)
            if self._closing.wait(min(left, GONE_POLL_S)) or self._gone(connection):
                return False

    def _gone(self, connection: socket.socket | None) -> bool:
        """Whether the client closed its end (a readable socket with nothing to read).

        Bytes arriving while a reply is pending mean the client sent its next request on a
        connection whose last one it abandoned without closing it: counted in ``pipelined``,
        since such a client would read the old reply as the answer to the new request.
        """
        if connection is None:
            return False
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            if not readable:
                return False
            if connection.recv(1, socket.MSG_PEEK) == b"":
                return True
        except (OSError, ValueError):
            return True
        with self._lock:
            self.pipelined += 1
        return True  # stop waiting: the test will fail on ``pipelined`` with a clear count


GONE_POLL_S = 0.05
"""How often a hang or a trickle looks whether its client went away."""

SETTLE_S = 2.0
"""How long a finished client waits for the handler to record what it sent."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """socketserver's default backlog (5) drops the connections of a burst of clients: they
    wait for a SYN retransmit (1 s), which a test would take for a hang."""
    chat: ChatServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets or drops its connection (as fault tests make clients do) is
        # not a server error worth a traceback on the console.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.chat._track(self.connection, True)

    def finish(self) -> None:
        self.server.chat._track(self.connection, False)
        with suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep test output quiet

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        chat = self.server.chat
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, self.path, headers, body)
        chat._record(request)
        try:
            reply = chat._reply_for(request)
            if reply is not None and not chat._wait(reply.delay, self.connection):
                request.disconnected = not chat._closing.is_set()
                self.close_connection = True
                return
            if reply is not None and reply.reset:
                self._reset()
                return
            request.status = reply.status if reply is not None else 200
            if reply is None:
                self._send_json(200, _model_list(chat.models))
            elif reply.status >= 400:
                self._send_json(reply.status, _error_body(reply), reply.headers)
            elif isinstance(body, dict) and body.get("stream"):
                request.completed = self._stream(request, reply)
                return
            else:
                self._send_json(200, _completion(request, reply), reply.headers)
            request.completed = True
        except (BrokenPipeError, ConnectionResetError):
            request.disconnected = True
            self.close_connection = True
        finally:
            request.done.set()

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _reset(self) -> None:
        """Drop the connection with a TCP reset: the client reads nothing at all."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _stream(self, request: Request, reply: Reply) -> bool:
        """Stream ``reply``; True when it was sent to its last chunk."""
        chat = self.server.chat
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        content_chunks = len(reply.pieces())
        for number, event in enumerate(_stream_events(request, reply)):
            if reply.cut_after is not None and number > reply.cut_after:
                # An abrupt end: no terminating chunk, the socket just closes.
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return False
            # Event 0 is the role chunk; a trickle waits before each content chunk.
            delay = reply.chunk_delay if 0 < number <= content_chunks else 0.0
            if reply.stall_after is not None and number == reply.stall_after + 1:
                delay = float("inf")
            if delay > 0 and not chat._wait(delay, self.connection):
                request.disconnected = not chat._closing.is_set()
                self.close_connection = True
                return False
            self._write_chunk(f"data: {event}\n\n".encode())
        self._write_chunk(b"")
        return True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def word_pieces(text: str) -> list[str]:
    """Word-sized pieces that join back to exactly ``text`` (each but the first starts with
    its space)."""
    pieces: list[str] = []
    start = 0
    for index in range(1, len(text)):
        if text[index] == " " and text[index - 1] != " ":
            pieces.append(text[start:index])
            start = index
    if text:
        pieces.append(text[start:])
    return pieces


def _model_list(models: list[str]) -> dict[str, Any]:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in models]
    return {"object": "list", "data": data}


def _error_body(reply: Reply) -> dict[str, Any]:
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "error"
    kind = "invalid_request_error" if reply.status < 500 else "server_error"
    error = {
        "message": reply.error or phrase,
        "type": kind,
        "param": None,
        "code": reply.error_code,
    }
    return {"error": error}


def _usage(request: Request, completion_tokens: int, cached: object = None) -> dict[str, Any]:
    """Deterministic counts: words in the prompt, pieces in the reply."""
    prompt = sum(len(_text(m.get("content")).split()) for m in request.messages)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _model(request: Request) -> str:
    body = request.body
    return str(body.get("model", "test-model")) if isinstance(body, dict) else "test-model"


def _completion(request: Request, reply: Reply) -> dict[str, Any]:
    message = {"role": "assistant", "content": reply.text}
    payload: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(request),
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
    }
    if reply.usage:
        payload["usage"] = _usage(request, len(reply.pieces()), reply.cached_tokens)
    return payload


def _stream_events(request: Request, reply: Reply) -> Iterator[str]:
    """The SSE ``data:`` payloads of one streamed reply, ``[DONE]`` last."""
    options = request.body.get("stream_options") if isinstance(request.body, dict) else None
    wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    base = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(request),
    }
    if wants_usage:
        base["usage"] = None  # as OpenAI does: null on every chunk but the last

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({**base, "choices": [choice]})

    pieces = reply.pieces()
    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces:
        yield chunk({"content": piece})
    yield chunk({}, reply.finish_reason)
    if wants_usage and reply.usage:
        yield json.dumps(
            {**base, "choices": [], "usage": _usage(request, len(pieces), reply.cached_tokens)}
        )
    yield "[DONE]"


@contextmanager
def running_chat_server(
    *replies: Reply | str,
    default: Reply | str | None = None,
    responder: Responder | None = None,
    models: Iterable[str] = ("test-model",),
) -> Iterator[ChatServer]:
    """A started ``ChatServer`` on a free loopback port, stopped on exit."""
    server = ChatServer(replies, default=default, responder=responder, models=models)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def endpoint_env(url: str, data_dir: Path, **more: str) -> dict[str, str]:
    """The environment of a ``roundtable`` command whose every role (and the manager) talks
    to the test server at ``url``, with memory off; ``more`` adds variables."""
    return {
        **os.environ,
        "ROUNDTABLE_DATA_DIR": str(data_dir),
        "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "openai",
        "ROUNDTABLE_ENDPOINTS__DEFAULT__BASE_URL": url,
        "ROUNDTABLE_ENDPOINTS__DEFAULT__MODEL": "test-model",
        "ROUNDTABLE_MEMORY__ENABLED": "false",
        **more,
    }
