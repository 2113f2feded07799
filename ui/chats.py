# mypy: disallow-untyped-calls=False
# (Chainlit ships py.typed, but Message.send, user_session.get ... are unannotated.)
"""What the Chainlit handlers do for the session in hand: its runner, its team, its commands.

``Chats`` holds the sessions of this server process (each one's ``SessionRunner``, by Chainlit
session id) and what they share (the settings, the memory store, the teams, the command menu).
Each method acts for the current Chainlit session (``cl.context``): find or create its runner,
restore a resumed thread, take a message and dispatch the command in it, replay, export, and
stop a debate whose page went away and did not come back.

Does not own: reading the settings and mounting the servers, nor registering the handlers
(``app``, the composition root Chainlit loads by path; this module never imports it); running
a debate (``session``); drawing it (``render``); parsing what was typed (``commands``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.context import local_steps
from chainlit.data import get_data_layer
from chainlit.types import CommandDict, ThreadDict

from roundtable.agents import Team, Teams
from roundtable.common.errors import ConfigError
from roundtable.conversations import Budget, Settings, choose_team
from roundtable.memory import MemoryStore
from roundtable.transcripts import Mode, TranscriptError
from roundtable.ui import commands as cmd
from roundtable.ui import stop_square
from roundtable.ui.auth import LOCAL_USER
from roundtable.ui.downloads import export_url, page_root
from roundtable.ui.export import download
from roundtable.ui.history import REPLAYED_KEY, TRANSCRIPT_KEY, thread_metadata, transcript_in
from roundtable.ui.panel import options_from, widgets
from roundtable.ui.pictures_view import fork_picture
from roundtable.ui.profiles import team_for
from roundtable.ui.render import ChainlitRenderer
from roundtable.ui.replay_view import listing, pick
from roundtable.ui.session import Refusal, SessionRunner
from roundtable.ui.titles import NEUTRAL, TitledDataLayer, replay_title
from roundtable.ui.uploads import add_uploads, uploaded_files

__all__ = ["LEAVE_GRACE_S", "Chats", "export", "spawn", "tell"]

LEAVE_GRACE_S = 30.0
"""A debate whose page went away stops after this long, unless the page reconnects."""

log = logging.getLogger("roundtable.ui.chats")

TITLED = "roundtable_titled"
"""In the session: this thread is titled by a question (``titles``); None: not yet, it has had
no message (Chainlit will name it after the first) or only commands."""


def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
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
    forks: Callable[[str], cl.Image | None] | None = None,
) -> ChainlitRenderer:
    return ChainlitRenderer(
        live=live,
        budget=budget,
        announce=announce,
        skip_through=skip_through,
        mode=mode,
        forks=forks,
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


def _caller() -> str:
    """Who this session is: the logged-in user's identifier (the local user's, with none)."""
    user = cl.user_session.get("user")
    return user.identifier if isinstance(user, cl.User) else LOCAL_USER


async def tell(text: str) -> None:
    await cl.Message(content=text, author="Roundtable").send()


class Chats:
    """The sessions of one server process, and what each handler does for the current one."""

    def __init__(
        self,
        settings: Settings,
        memory: MemoryStore | None,
        teams: Teams,
        commands: list[CommandDict],
        max_input_chars: int,
    ) -> None:
        self.settings = settings
        self.memory = memory
        self.teams = teams
        self.commands = commands
        self.max_input_chars = max_input_chars
        self.runners: dict[str, SessionRunner] = {}
        """By Chainlit session id. Not in ``cl.user_session``: resuming a thread replaces that
        dict with the thread's metadata, which would orphan a debate still running."""

    def team(self) -> Team:
        """This session's team: its chat profile's, or its transcript's once resumed."""
        return self.runner().team or self.teams.get(None)

    def runner(self) -> SessionRunner:
        """This session's runner, created on first use: a message that arrives before
        ``on_chat_start`` has finished still finds one (it used to be dropped)."""
        session_id = cl.context.session.id
        runner = self.runners.get(session_id)
        if runner is None:
            team = team_for(cl.user_session.get("chat_profile"), self.teams)
            owner = _caller()
            runner = SessionRunner(
                settings=self.settings,
                display=partial(
                    _display, forks=partial(fork_picture, self.settings.transcripts_dir, owner)
                ),
                spawn=spawn,
                on_transcript=_link,
                on_busy=stop_square.busy,
                memory=self.memory,
                team=team,
                owner=owner,
            )
            chat_settings = cl.context.session.chat_settings or {}
            runner.options, _ = options_from(chat_settings, self.settings, team)
            self.runners[session_id] = runner
        return runner

    async def send_controls(self, values: dict[str, Any] | None) -> None:
        await cl.ChatSettings(widgets(self.settings, self.team(), values)).send()
        await cl.context.emitter.set_commands(self.commands)

    async def resume(self, thread: ThreadDict) -> None:
        """Restore a reopened thread's state: its transcript, its team, its settings."""
        metadata = thread_metadata(thread)
        runner = self.runner()
        if runner.running:  # the same session reconnected: its debate is still going
            return
        folder = self.settings.transcripts_dir
        runner.transcript = transcript_in(folder, metadata.get(TRANSCRIPT_KEY))
        runner.replayed = transcript_in(folder, metadata.get(REPLAYED_KEY))
        shown = runner.transcript or runner.replayed
        if shown is not None:  # the thread carries on its transcript, with that team's roles
            try:
                prior = await asyncio.to_thread(runner.load_own, shown)
                runner.team = choose_team(self.settings, prior=prior)
            except TranscriptError:
                log.warning("resumed thread: transcript %s does not load", shown.name)
            except Refusal:  # not this user's: the thread is not linked to it
                runner.transcript = runner.replayed = None
        chat_settings = metadata.get("chat_settings")
        values = chat_settings if isinstance(chat_settings, dict) else None
        runner.options, _ = options_from(values or {}, self.settings, self.team())
        cl.user_session.set(TITLED, True)  # a reopened thread keeps the title it has
        await self.send_controls(values)

    async def update_settings(self, values: dict[str, Any]) -> None:
        options, ignored = options_from(values, self.settings, self.team())
        self.runner().options = options
        for line in ignored:
            await tell(line)

    async def message(self, message: cl.Message) -> None:
        """Uploads into memory, then the command in the text, dispatched (never waited on)."""
        files = uploaded_files(message.elements or [])
        if files:  # before the question they came with: the run can recall them
            await add_uploads(self.memory, files, self.settings.data_dir, _caller())
        text = message.content or ""
        if files and not text.strip():
            # Files alone: Chainlit names the thread by the empty text, which leaves it off the
            # sidebar and the page off its /thread/ address; titled like a command's, neutral
            # until a question comes.
            await self.title(text, None, plain=False)
            return
        refused = cmd.check_size(text, self.max_input_chars)
        command = refused or cmd.parse(text, message.command, roles=tuple(self.team().roster))
        question: str | None = None
        try:
            question = await self.dispatch(command)
        except (Refusal, ConfigError) as exc:
            await tell(str(exc))
        plain = isinstance(command, cmd.Say) and command.ask is None and not message.command
        await self.title(text, question, plain=plain)

    async def title(self, first: str | None, question: str | None, *, plain: bool) -> None:
        """Title the thread by ``question`` (None: ``titles.NEUTRAL``) unless it has a title
        from a question already. ``first``: the message just sent, if the thread's first
        (Chainlit's own title for it is replaced); ``plain``: it is a plain question, which
        Chainlit's title already is."""
        state = cl.user_session.get(TITLED)  # None: no message yet; False: neutral so far
        if state or (state is False and question is None):
            return
        cl.user_session.set(TITLED, question is not None)
        layer = get_data_layer()
        if (state is None and plain) or not isinstance(layer, TitledDataLayer):
            return
        thread_id = cl.context.session.thread_id
        title = question or NEUTRAL
        await layer.title(thread_id, title, first if state is None else None)
        # Chainlit's own signal that the thread list changed: the sidebar fetches it again.
        await cl.context.emitter.emit(
            "first_interaction", {"interaction": title, "thread_id": thread_id}
        )

    async def dispatch(self, command: cmd.Command) -> str | None:
        """Do what ``command`` says; the question it brings into the thread, if any."""
        runner = self.runner()
        if isinstance(command, cmd.Refused):
            await tell(command.message)
        elif isinstance(command, cmd.Say):
            await runner.say(command)
            return command.text or None
        elif isinstance(command, cmd.Stop):
            if not runner.stop(command.reason):
                await tell("Nothing is running.")
        elif isinstance(command, cmd.Replay):
            return await self.replay(runner, command)
        elif isinstance(command, cmd.Fork):
            await runner.fork(command.turn, command.text)
        elif isinstance(command, cmd.Export):
            await export(runner, command.fmt)
        return None

    async def replay(self, runner: SessionRunner, command: cmd.Replay) -> str | None:
        """List the transcripts, or replay one; the replay's title (``titles``) if it plays."""
        folder = self.settings.transcripts_dir
        if command.which is None:
            text, actions = listing(folder, runner.owner)
            await cl.Message(content=text, author="Roundtable", actions=actions).send()
            return None
        found = pick(folder, command.which, runner.owner)
        if isinstance(found, str):
            await tell(found)
        elif not await runner.play(found, command.speed):
            await tell("A run is in progress: /stop it first.")
        else:
            return replay_title(found.header.question)
        return None

    def leave(self) -> None:
        """The page went away: its debate stops after ``LEAVE_GRACE_S`` unless it comes back
        (a finished session's runner is forgotten then)."""
        session = cl.context.session
        runner = self.runners.get(session.id)
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
                self.runners.pop(session.id, None)
                stop_square.forget(session.id)

        spawn(stop_unless_back())


async def export(runner: SessionRunner, fmt: str) -> None:
    source = runner.transcript or runner.replayed
    if source is None:
        await tell("Nothing to export yet.")
        return
    try:
        transcript = runner.load_own(source)
    except Refusal as exc:
        await tell(str(exc))
        return
    url = export_url(source.stem, fmt, page_root())
    if url is not None:  # a link: one click downloads it, and it works in the reopened thread
        link = f"Download: [{source.stem}.{fmt}]({url})"
        await cl.Message(content=link, author="Roundtable").send()
        return
    name, data, mime = download(transcript, fmt)
    element = cl.File(name=name, content=data, mime=mime, display="inline")
    await cl.Message(content=f"Download: {name}", author="Roundtable", elements=[element]).send()
