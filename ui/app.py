# mypy: disallow-untyped-calls=False
# (Chainlit ships py.typed, but Message.send, Step.send, user_session.get ... are unannotated.)
"""The Chainlit app: wires Chainlit's callbacks to the session runner, renderer and history.

Run by ``chainlit run ui/app.py`` (see ``server.py``; ``python -m roundtable.ui`` does it).
Everything is read once here at import, the UI's composition root: core settings, UI settings,
users, the history database. Handlers stay thin: ``on_message`` parses and queues, it never
waits for a debate (the composer must stay usable).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import chainlit as cl
import chainlit.server as chainlit_server
from chainlit.config import APP_ROOT as CHAINLIT_ROOT
from chainlit.config import config as chainlit_config
from chainlit.context import local_steps
from chainlit.data import get_data_layer
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.types import CommandDict, ThreadDict
from starlette.datastructures import Headers

from roundtable.agents import Team, load_teams
from roundtable.api import create_api, create_openai_api, load_api_settings
from roundtable.api import mount as mount_api
from roundtable.api.mcp_server import mcp_http_app, mount_mcp
from roundtable.common.errors import ConfigError
from roundtable.conversations import (
    Budget,
    choose_team,
    load_settings,
    open_memory_if_possible,
    start_observing,
)
from roundtable.transcripts import Mode, TranscriptError
from roundtable.ui import avatars, loopback, stop_square
from roundtable.ui import commands as cmd
from roundtable.ui.auth import LOCAL_USER, check_login, ensure_auth_secret, host_of, is_loopback
from roundtable.ui.config import load_ui_settings
from roundtable.ui.export import download
from roundtable.ui.history import (
    REPLAYED_KEY,
    TRANSCRIPT_KEY,
    create_schema,
    data_layer,
    database_url,
    thread_metadata,
    transcript_in,
)
from roundtable.ui.panel import options_from, widgets
from roundtable.ui.profiles import chat_profiles, model_note, team_for
from roundtable.ui.render import EXPORT_ACTION, STOP_ACTION, ChainlitRenderer
from roundtable.ui.replay_view import REPLAY_ACTION, listing, pick
from roundtable.ui.session import Refusal, SessionRunner
from roundtable.ui.uploads import add_uploads, uploaded_files

LEAVE_GRACE_S = 30.0
"""A debate whose page went away stops after this long, unless the page reconnects."""
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
chainlit_server.sio.eio.ping_timeout = SOCKET_PING_TIMEOUT_S
_DEFAULT_ENDPOINT = SETTINGS.endpoints["default"]
PROFILES = chat_profiles(TEAMS, model_note(_DEFAULT_ENDPOINT.kind, _DEFAULT_ENDPOINT.model))

COMMANDS: list[CommandDict] = [
    {"id": n, "icon": i, "description": t, "button": False, "persistent": False, "selected": False}
    for n, i, t in cmd.MENU
]


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


def _spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A background task in this session's context, outside Chainlit's current run step.

    Without clearing ``local_steps`` every message of the debate would be nested under the
    ``on_message`` step of the message that started it.
    """
    context = contextvars.copy_context()
    context.run(local_steps.set, None)
    return asyncio.get_running_loop().create_task(coro, context=context)


def _display(
    *,
    live: bool,
    budget: Budget | None,
    announce: bool,
    skip_through: int | None,
    mode: Mode = "debate",
) -> ChainlitRenderer:
    return ChainlitRenderer(
        live=live, budget=budget, announce=announce, skip_through=skip_through, mode=mode
    )


async def _link(path: Path, kind: str) -> None:
    """Remember in the thread which transcript it shows (for resume, continue and fork)."""
    other = REPLAYED_KEY if kind == TRANSCRIPT_KEY else TRANSCRIPT_KEY
    cl.user_session.set(kind, path.name)
    cl.user_session.set(other, None)
    layer = get_data_layer()
    if layer is not None:
        thread_id = cl.context.session.thread_id
        await layer.update_thread(thread_id, metadata={kind: path.name, other: None})


_RUNNERS: dict[str, SessionRunner] = {}
"""By Chainlit session id. Not in ``cl.user_session``: resuming a thread replaces that dict
with the thread's metadata, which would orphan a debate still running."""


def _team() -> Team:
    """This session's team: its chat profile's, or its transcript's once resumed."""
    return _runner().team or TEAMS.get(None)


def _runner() -> SessionRunner:
    """This session's runner, created on first use: a message that arrives before
    ``on_chat_start`` has finished still finds one (it used to be dropped)."""
    session_id = cl.context.session.id
    runner = _RUNNERS.get(session_id)
    if runner is None:
        team = team_for(cl.user_session.get("chat_profile"), TEAMS)
        runner = SessionRunner(
            settings=SETTINGS,
            display=_display,
            spawn=_spawn,
            on_transcript=_link,
            on_busy=stop_square.busy,
            memory=MEMORY,
            team=team,
            owner=_caller(),
        )
        runner.options, _ = options_from(cl.context.session.chat_settings or {}, SETTINGS, team)
        _RUNNERS[session_id] = runner
    return runner


def _caller() -> str:
    """Who this session is: the logged-in user's identifier (the local user's, with none)."""
    user = cl.user_session.get("user")
    return user.identifier if isinstance(user, cl.User) else LOCAL_USER


async def _send_controls(values: dict[str, Any] | None) -> None:
    await cl.ChatSettings(widgets(SETTINGS, _team(), values)).send()
    await cl.context.emitter.set_commands(COMMANDS)


async def _tell(text: str) -> None:
    await cl.Message(content=text, author="Roundtable").send()


@cl.on_chat_start
async def _chat_start() -> None:
    _runner()
    await _send_controls(None)


@cl.on_chat_resume
async def _chat_resume(thread: ThreadDict) -> None:
    # Chainlit shows the saved steps itself; a message sent from here would be saved but not
    # shown, so this only restores state.
    metadata = thread_metadata(thread)
    runner = _runner()
    if runner.running:  # the same session reconnected: its debate is still going
        return
    runner.transcript = transcript_in(SETTINGS.transcripts_dir, metadata.get(TRANSCRIPT_KEY))
    runner.replayed = transcript_in(SETTINGS.transcripts_dir, metadata.get(REPLAYED_KEY))
    shown = runner.transcript or runner.replayed
    if shown is not None:  # the thread carries on its transcript, with that team's roles
        try:
            prior = await asyncio.to_thread(runner.load_own, shown)
            runner.team = choose_team(SETTINGS, prior=prior)
        except TranscriptError:
            log.warning("resumed thread: transcript %s does not load", shown.name)
        except Refusal:  # not this user's: the thread is not linked to it
            runner.transcript = runner.replayed = None
    chat_settings = metadata.get("chat_settings")
    values = chat_settings if isinstance(chat_settings, dict) else None
    runner.options, _ = options_from(values or {}, SETTINGS, _team())
    await _send_controls(values)


@cl.on_settings_update
async def _settings_update(values: dict[str, Any]) -> None:
    options, ignored = options_from(values, SETTINGS, _team())
    _runner().options = options
    for line in ignored:
        await _tell(line)


@cl.on_message
async def _on_message(message: cl.Message) -> None:
    files = uploaded_files(message.elements or [])
    if files:  # before the question they came with: the run can recall them
        await add_uploads(MEMORY, files, SETTINGS.data_dir, _caller())
    text = message.content or ""
    if files and not text.strip():
        return
    refused = cmd.check_size(text, UI.max_input_chars)
    command = refused or cmd.parse(text, message.command, roles=tuple(_team().roster))
    try:
        await _dispatch(command)
    except (Refusal, ConfigError) as exc:
        await _tell(str(exc))


async def _dispatch(command: cmd.Command) -> None:
    runner = _runner()
    if isinstance(command, cmd.Refused):
        await _tell(command.message)
    elif isinstance(command, cmd.Say):
        await runner.say(command)
    elif isinstance(command, cmd.Stop):
        if not runner.stop(command.reason):
            await _tell("Nothing is running.")
    elif isinstance(command, cmd.Replay):
        await _replay(runner, command)
    elif isinstance(command, cmd.Fork):
        await runner.fork(command.turn, command.text)
    elif isinstance(command, cmd.Export):
        await _export(runner, command.fmt)


async def _replay(runner: SessionRunner, command: cmd.Replay) -> None:
    if command.which is None:
        text, actions = listing(SETTINGS.transcripts_dir, runner.owner)
        await cl.Message(content=text, author="Roundtable", actions=actions).send()
        return
    found = pick(SETTINGS.transcripts_dir, command.which, runner.owner)
    if isinstance(found, str):
        await _tell(found)
    elif not await runner.play(found, command.speed):
        await _tell("A run is in progress: /stop it first.")


async def _export(runner: SessionRunner, fmt: str) -> None:
    source = runner.transcript or runner.replayed
    if source is None:
        await _tell("Nothing to export yet.")
        return
    try:
        transcript = runner.load_own(source)
    except Refusal as exc:
        await _tell(str(exc))
        return
    name, data, mime = download(transcript, fmt)
    element = cl.File(name=name, content=data, mime=mime, display="inline")
    await cl.Message(content=f"Download: {name}", author="Roundtable", elements=[element]).send()


@cl.on_stop
async def _on_stop() -> None:
    """The composer's stop square (``stop_square``)."""
    await stop_square.drop_chainlit_notice()
    _runner().stop("stopped with the Stop button")


@cl.on_window_message
async def _from_page(data: Any) -> None:
    await stop_square.from_page(data)


@cl.action_callback(STOP_ACTION)
async def _stop_action(_action: cl.Action) -> None:
    if not _runner().stop("stopped with the Stop button"):
        await _tell("Nothing is running.")


@cl.action_callback(EXPORT_ACTION)
async def _export_action(action: cl.Action) -> None:
    fmt = "json" if action.payload.get("fmt") == "json" else "md"
    await _export(_runner(), fmt)


@cl.action_callback(REPLAY_ACTION)
async def _replay_action(action: cl.Action) -> None:
    name = action.payload.get("file")
    await _replay(_runner(), cmd.Replay(which=str(name), speed=1.0))


@cl.on_chat_end
async def _chat_end() -> None:
    session = cl.context.session
    runner = _RUNNERS.get(session.id)
    socket_id = getattr(session, "socket_id", None)
    if runner is None:
        return

    async def stop_unless_back() -> None:
        await asyncio.sleep(LEAVE_GRACE_S)
        if getattr(session, "socket_id", None) != socket_id:
            return  # the page reconnected
        if runner.running:
            runner.stop("the page was closed")
        else:
            _RUNNERS.pop(session.id, None)
            stop_square.forget(session.id)

    _spawn(stop_unless_back())
