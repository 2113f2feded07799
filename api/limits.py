"""The API's request-body cap, enforced as the body streams in.

A body is read here, before any route sees it, and refused with 413 as soon as more than the
cap (``ROUNDTABLE_API_MAX_BODY_BYTES``, 1 MB by default) has arrived, whether or not the
request declared a ``Content-Length``: a declared length over the cap is refused unread, and a
chunked body is refused at the chunk that crosses it. So the server never holds more than the
cap of any request. The route then reads the buffered body as if from the connection.

Owns this one limit; the token check is ``gate``'s, the routes ``routes``'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roundtable.api.schemas import Problem

DEFAULT_MAX_BODY_BYTES = 1_000_000
Refusal = Callable[[int, str], Response]
"""How an app says no: a status and one line, in that app's error shape."""


class BodyCap:
    """ASGI middleware: at most ``limit`` bytes of request body, or 413 (worded by ``refuse``,
    in the wrapped app's error shape: the API's problem by default)."""

    def __init__(
        self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY_BYTES, refuse: Refusal | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, receive, send)
            return
        messages = await read_capped(receive, self.limit)
        if messages is None:
            await self._refuse(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.popleft() if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        said = f"the body is over {self.limit} bytes"
        if self.refuse is not None:
            response = self.refuse(413, said)
        else:
            response = JSONResponse(Problem(detail=said).model_dump(), status_code=413)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


async def read_capped(receive: Receive, limit: int) -> deque[Message] | None:
    """The request's body messages, up to its end (or a disconnect); None as soon as more
    than ``limit`` bytes have come, without reading the rest."""
    messages: deque[Message] = deque()
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages
