# mypy: disallow-untyped-calls=False
# (Chainlit ships py.typed, but Message.send, Step.send, user_session.get ... are unannotated.)
"""The Chainlit app: the UI's composition root, and Chainlit's callbacks registered on it.

Run by ``chainlit run ui/app.py`` (see ``server.py``; ``python -m roundtable.ui`` does it), so
every handler is registered here, in the file Chainlit loads by path. Everything is read once
here at import: core settings, UI settings, users, the history database, the teams; the API,
``/v1`` and MCP are mounted on Chainlit's server. Handlers stay thin: each hands the session in
hand to ``chats.Chats`` (its runner, its commands, replay and export); ``on_message`` parses
and queues, it never waits for a debate (the composer must stay usable).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import chainlit as cl
import chainlit.server as chainlit_server
from chainlit.config import APP_ROOT as CHAINLIT_ROOT
from chainlit.config import config as chainlit_config
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.types import CommandDict, ThreadDict
from starlette.datastructures import Headers

from roundtable.agents import load_teams
from roundtable.api import create_api, create_openai_api, load_api_settings
from roundtable.api import mount as mount_api
from roundtable.api.mcp_server import mcp_http_app, mount_mcp
from roundtable.common.errors import ConfigError
from roundtable.conversations import load_settings, open_memory_if_possible, start_observing
from roundtable.ui import avatars, downloads, loopback, stop_square
from roundtable.ui import commands as cmd
from roundtable.ui.auth import LOCAL_USER, check_login, ensure_auth_secret, host_of, is_loopback
from roundtable.ui.chats import Chats, export, tell
from roundtable.ui.config import load_ui_settings
from roundtable.ui.history import create_schema, data_layer, database_url
from roundtable.ui.profiles import chat_profiles, model_note
from roundtable.ui.render import EXPORT_ACTION, STOP_ACTION
from roundtable.ui.replay_view import REPLAY_ACTION

SOCKET_PING_TIMEOUT_S = 120
"""How long the page and the server wait for each other's heartbeat before hanging up
(Engine.IO's default, 20 s, dropped sessions mid-debate on a 2-core machine loaded 20 deep:
the page reconnects as a new session and never sees its debate's end)."""

log = logging.getLogger("roundtable.ui.app")
for _name in ("autogen_core", "autogen_agentchat"):  # their INFO event log floods the console
    logging.getLogger(_name).setLevel(logging.WARNING)

SETTINGS = load_settings()
UI = load_ui_settings()
try:
    USERS = UI.all_users(SETTINGS.data_dir)
    """At start-up: with any user, the UI logs in with passwords (a later one logs in too)."""
except ConfigError as _exc:
    raise SystemExit(f"roundtable ui: error: {_exc}") from None
HOST = chainlit_config.run.host
"""The address Chainlit binds: ``chainlit run`` sets it from ``--host`` before loading us."""
DB_URL = database_url(SETTINGS.data_dir, UI.database_url)

chainlit_config.ui.default_theme = "system"
"""The page follows the browser's light or dark preference (Chainlit's frontend supports
"system"; its config type, and so ``config.toml``, offers only "light" and "dark")."""
if chainlit_config.features.mcp.enabled:  # the launcher checks too; this covers `chainlit run`
    raise SystemExit("roundtable ui: error: MCP is enabled in .chainlit/config.toml; refusing")
if not USERS:  # no login: this machine only, whichever way the app was started
    if (refusal := loopback.check_bound(HOST)) is not None:
        raise SystemExit(refusal)
    loopback.guard(chainlit_server.app)
ensure_auth_secret(SETTINGS.data_dir)
start_observing(SETTINGS)
MEMORY = open_memory_if_possible(SETTINGS)
"""One store for every session of this server process (one process owns an embedded store)."""
try:
    TEAMS = load_teams(SETTINGS.teams_dir, SETTINGS.team)
    """Every team a chat may run (loaded and checked once: a bad file stops the server)."""
    _API_SETTINGS = load_api_settings()
    API = create_api(SETTINGS, _API_SETTINGS, memory=MEMORY, teams=TEAMS)
    OPENAI_API = create_openai_api(
        SETTINGS, _API_SETTINGS, API.state.registry, memory=MEMORY, teams=TEAMS
    )
    MCP = mcp_http_app(SETTINGS, _API_SETTINGS, memory=MEMORY, teams=TEAMS)
except ConfigError as _exc:
    raise SystemExit(f"roundtable ui: error: {_exc}") from None
mount_api(chainlit_server.app, API)
"""The HTTP API (``/api``), on this server: its runs share the memory store and data folder."""
mount_api(chainlit_server.app, OPENAI_API, "/v1")
"""The OpenAI-compatible ``/v1`` (same token, same runs): any OpenAI client can ask a team."""
mount_mcp(chainlit_server.app, MCP)
"""MCP over streamable HTTP at ``/mcp`` (same token): agent tools ask a team."""
chainlit_server.app.router.routes.insert(
    0,
    avatars.route(
        avatars.role_avatars(TEAMS.by_name.values()),
        Path(CHAINLIT_ROOT) / "public" / "avatars",
        chainlit_server.get_avatar,
    ),
)
"""Every role's avatar, drawn; ahead of Chainlit's own route, which answers the rest."""
chainlit_server.app.router.routes.insert(
    0, downloads.route(SETTINGS.transcripts_dir, chainlit_config.run.root_path)
)
"""The export links' downloads, ahead of Chainlit's catch-all page route."""
chainlit_server.sio.eio.ping_timeout = SOCKET_PING_TIMEOUT_S
_DEFAULT_ENDPOINT = SETTINGS.endpoints["default"]
PROFILES = chat_profiles(TEAMS, model_note(_DEFAULT_ENDPOINT.kind, _DEFAULT_ENDPOINT.model))

COMMANDS: list[CommandDict] = [
    {"id": n, "icon": i, "description": t, "button": False, "persistent": False, "selected": False}
    for n, i, t in cmd.MENU
]
CHATS = Chats(SETTINGS, MEMORY, TEAMS, COMMANDS, UI.max_input_chars)
"""Every session of this server process: their runners, and what the handlers do for each."""


# -- start-up, history, users ------------------------------------------------------------------


@cl.on_app_startup
async def _startup() -> None:
    await create_schema(DB_URL)


@cl.on_app_shutdown
async def _shutdown() -> None:
    """API runs end with a stated stop (and their webhooks go out) rather than mid-turn."""
    await API.state.registry.shutdown()


@cl.set_chat_profiles
async def _chat_profiles(
    _user: cl.User | None, _language: str | None = None
) -> list[cl.ChatProfile]:
    return PROFILES


@cl.data_layer
def _data_layer() -> SQLAlchemyDataLayer:
    return data_layer(DB_URL)


if USERS:

    @cl.password_auth_callback
    async def _password_login(username: str, password: str) -> cl.User | None:
        try:  # read at each login: users added or removed while the server runs count
            users = await asyncio.to_thread(UI.all_users, SETTINGS.data_dir)
        except ConfigError as exc:  # a users file broken since start-up: nobody logs in
            log.error("login refused: %s", exc)
            return None
        ok = await asyncio.to_thread(check_login, users, username, password)
        return cl.User(identifier=username, metadata={"provider": "password"}) if ok else None

else:

    @cl.header_auth_callback
    async def _local_login(headers: Headers) -> cl.User | None:
        # No users: the one person on this machine, whose peer ``loopback.LoopbackOnly`` has
        # already checked (the Host header admits no one). A page on another site that
        # resolves its name to 127.0.0.1 (DNS rebinding) sends its own Host and is refused.
        if not is_loopback(host_of(headers.get("host", ""))):
            return None
        return cl.User(identifier=LOCAL_USER, metadata={"provider": "local"})


# -- the session ---------------------------------------------------------------------------------


@cl.on_chat_start
async def _chat_start() -> None:
    CHATS.runner()
    await CHATS.send_controls(None)


@cl.on_chat_resume
async def _chat_resume(thread: ThreadDict) -> None:
    # Chainlit shows the saved steps itself; a message sent from here would be saved but not
    # shown, so this only restores state.
    await CHATS.resume(thread)


@cl.on_settings_update
async def _settings_update(values: dict[str, Any]) -> None:
    await CHATS.update_settings(values)


@cl.on_message
async def _on_message(message: cl.Message) -> None:
    await CHATS.message(message)


@cl.on_stop
async def _on_stop() -> None:
    """The composer's stop square (``stop_square``)."""
    await stop_square.drop_chainlit_notice()
    CHATS.runner().stop("stopped with the Stop button")


@cl.on_window_message
async def _from_page(data: Any) -> None:
    await stop_square.from_page(data)


@cl.action_callback(STOP_ACTION)
async def _stop_action(_action: cl.Action) -> None:
    if not CHATS.runner().stop("stopped with the Stop button"):
        await tell("Nothing is running.")


@cl.action_callback(EXPORT_ACTION)
async def _export_action(action: cl.Action) -> None:
    fmt = str(action.payload.get("fmt"))
    fmt = fmt if fmt in ("json", "html") else "md"
    await export(CHATS.runner(), fmt)


@cl.action_callback(REPLAY_ACTION)
async def _replay_action(action: cl.Action) -> None:
    name = action.payload.get("file")
    title = await CHATS.replay(CHATS.runner(), cmd.Replay(which=str(name), speed=1.0))
    await CHATS.title(None, title, plain=False)


@cl.on_chat_end
async def _chat_end() -> None:
    CHATS.leave()
