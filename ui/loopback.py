"""The no-login mode answers only this machine: the bound address and every peer are checked.

With no users configured, everyone who reaches the UI is the local user (``auth.py``), so the
server must not be reachable from anywhere else, however it was started. Two checks, both in
the app, none resting on our launcher or on anything a client sends:

- ``check_bound``: the address Chainlit binds (its ``config.run.host``, which ``chainlit run``
  sets from ``--host`` or ``CHAINLIT_HOST`` before it loads the app) must be loopback; the app
  refuses to start otherwise.
- ``LoopbackOnly``: every HTTP request and socket whose real peer (the ASGI scope's
  ``client``, which the server fills from the connection) is not a loopback address is refused
  (403; a socket is closed with 1008) before Chainlit, the API or MCP sees it. This covers the
  ways a person can serve the app that its bound-address check cannot see, such as Chainlit's
  ``mount_chainlit`` in an app of their own under ``uvicorn --host 0.0.0.0``.

The ``Host`` header is never a reason to admit anyone (a client names whatever host it likes);
``auth.py`` still uses it to refuse a DNS-rebinding page, which comes from a loopback peer.
Does not own: logging in (``auth.py``), the launcher's own check (``server.py``).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from roundtable.ui.auth import is_loopback

REFUSED = "Roundtable: this server has no users configured and answers only this machine.\n"
POLICY_VIOLATION = 1008
"""The WebSocket close code for a refused peer (RFC 6455)."""
log = logging.getLogger("roundtable.ui.loopback")


def check_bound(host: str) -> str | None:
    """The start-up refusal (one line) when the no-login mode would bind beyond loopback."""
    if is_loopback(host):
        return None
    return f"roundtable ui: error: no users configured; refusing to serve on {host}"


def peer_is_loopback(scope: Scope) -> bool:
    """Whether the connection comes from this machine (a peer it cannot name does not)."""
    client = scope.get("client")
    return client is not None and is_loopback(str(client[0]))


class LoopbackOnly:
    """ASGI middleware: requests and sockets from beyond loopback are refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or peer_is_loopback(scope):
            await self.app(scope, receive, send)
            return
        log.debug("refused a peer beyond loopback: %s", scope.get("client"))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        else:
            await PlainTextResponse(REFUSED, status_code=403)(scope, receive, send)


def guard(app: Starlette) -> None:
    """Put ``LoopbackOnly`` in front of ``app`` (a Starlette app not yet serving), once: a
    reload of the app module (``chainlit run -w``) runs this again."""
    if not any(getattr(entry, "cls", None) is LoopbackOnly for entry in app.user_middleware):
        app.add_middleware(LoopbackOnly)


__all__ = ["LoopbackOnly", "check_bound", "guard", "peer_is_loopback"]
