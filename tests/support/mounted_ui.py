"""The UI served the other way Chainlit documents: mounted in a FastAPI app (``mount_chainlit``).

Run as a script in the prepared app root (``CHAINLIT_APP_ROOT``), as a person deploying it
would. The app cannot see the address its host app is bound to (Chainlit's ``config.run.host``
keeps its default), so only a check of each request's peer protects the no-login mode here.

    python mounted_ui.py serve HOST PORT   # uvicorn on HOST:PORT until killed
    python mounted_ui.py probe IP          # ASGI calls as a client at IP; prints JSON statuses

``probe`` needs no network: httpx's ``ASGITransport`` sets the scope's ``client`` to IP, which is
exactly what uvicorn would report for a peer at that address.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from chainlit.server import app as chainlit_app
from chainlit.utils import mount_chainlit
from fastapi import FastAPI

APP_FILE = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PREFIX = "/chainlit"
LOCAL_HOST = {"Host": "127.0.0.1"}
"""What an attacker on the network sends: the name the no-login mode used to trust."""


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with chainlit_app.router.lifespan_context(chainlit_app):  # the history schema
        yield


def host_app() -> FastAPI:
    app = FastAPI(lifespan=_lifespan)
    mount_chainlit(app, target=str(APP_FILE), path=PREFIX)
    return app


async def probe(ip: str) -> None:
    """Print the status of a health check, a header login and a Socket.IO handshake from
    ``ip`` (inside the lifespan: Chainlit's ends with ``os._exit(0)``)."""
    app = host_app()
    transport = httpx.ASGITransport(app=app, client=(ip, 40000), raise_app_exceptions=False)
    async with (
        _lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        health = await client.get(f"{PREFIX}/health", headers=LOCAL_HOST)
        login = await client.post(f"{PREFIX}/auth/header", headers=LOCAL_HOST)
        socket = await client.get(
            f"{PREFIX}/ws/socket.io/", params={"EIO": "4", "transport": "polling"}
        )
        statuses = {"health": health, "login": login, "socket": socket}
        print(json.dumps({name: r.status_code for name, r in statuses.items()}), flush=True)


def main(argv: list[str]) -> None:
    if argv[0] == "serve":
        uvicorn.run(host_app(), host=argv[1], port=int(argv[2]), log_level="warning")
    else:
        asyncio.run(probe(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
