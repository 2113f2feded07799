"""One browser session's conversation: the run goes on as a background task, input is queued.

The Chainlit handler for a message must return at once (while it runs, the composer's Send
button turns into Stop and typing is blocked), so a message only reaches ``SessionRunner``,
which either hands it to the running run (``Run.interject``: delivered at the next boundary)
or starts a run in a background task. What arrives while a run is ending or a replay is
playing waits in a backlog and starts the next run, so nothing typed is lost.

A new conversation runs in the mode chosen in the settings panel (``debate``, ``pipeline``,
``panel``). Carrying on a transcript is a debate feature: after any run stops, the next
message continues the same transcript as a debate (a pipeline's or panel's messages become
the debate's history, and the person is told so); after a replay, it forks the replayed
transcript at its end. ``/ask`` in a new pipeline or panel is passed on as a plain message.

A runner belongs to one user (``owner``): its runs are that user's (their headers and memory
say so), and it continues, forks and exports only that user's transcripts; another user's is
answered as a missing one.

Everything here runs on the event loop thread that runs the debates (``interject`` requires
it). Chainlit is not imported: drawing goes through ``Display`` and task creation through
``spawn``, both given by the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from roundtable.agents import Team
from roundtable.common.errors import ConfigError, RoundtableError
from roundtable.common.owners import owns
from roundtable.common.secrets import error_text
from roundtable.conversations import (
    Budget,
    Run,
    RunOptions,
    Settings,
    build_debate,
    build_run,
    choose_team,
)
from roundtable.memory import MemoryStore
from roundtable.transcripts import (
    LiveEvent,
    Mode,
    StopEvent,
    Transcript,
    load,
    replay,
)
from roundtable.ui.commands import Say

log = logging.getLogger("roundtable.ui.session")

_WRITERS: dict[Path, SessionRunner] = {}
"""Which runner is appending to each transcript: one writer per file, across sessions."""


class Display(Protocol):
    """Where a run is drawn (``render.ChainlitRenderer``)."""

    async def show(self, event: LiveEvent) -> None: ...
    async def note(self, text: str) -> None: ...
    async def failure(self, text: str) -> None: ...


DisplayFactory = Callable[..., Display]
"""``factory(live=..., budget=..., announce=..., skip_through=..., mode=...)``; a replay
passes no ``mode`` (the renderer learns it from the transcript's plan)."""
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@dataclass
class SessionRunner:
    """The conversation of one chat thread, and the run in progress if any."""

    settings: Settings
    display: DisplayFactory
    spawn: Spawn
    on_transcript: Callable[[Path, str], Awaitable[None]]
    """Called with (path, kind) when the thread's transcript changes; kind is
    ``transcript`` (continued by the next message) or ``replayed`` (forked by it)."""
    memory: MemoryStore | None = None
    """The process's shared memory store (one process owns an embedded store)."""
    team: Team | None = None
    """The team of this thread's new runs (its chat profile's), as loaded at start-up; None:
    ``options.team`` or the configured team. A continued transcript keeps its own team."""
    transcript: Path | None = None
    replayed: Path | None = None
    options: RunOptions = field(default_factory=RunOptions)
    on_busy: Callable[[bool], Awaitable[None]] | None = None
    """Called with True when a run or replay starts and False when it ends (the composer's
    stop square, ``stop_square``)."""
    owner: str | None = None
    """Who this session is (the Chainlit user's identifier; None or ``local``: the local user)."""
    active: Run | None = None
    """The run in progress (any mode); None while idle or replaying."""
    mode: Mode = "debate"
    """The mode of ``active``."""
    task: asyncio.Task[None] | None = None
    _display: Display | None = None
    _accepting: bool = False
    _backlog: list[Say] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    # -- what the person does ---------------------------------------------------------------

    async def say(self, message: Say) -> None:
        """Deliver to the running run, or start (continue) one."""
        if self.active is not None and self._accepting:
            try:
                self.active.interject(message.text, ask=message.ask)
            except ConfigError:  # a pipeline or a panel (not fallen back) refuses /ask
                if message.ask is None:
                    raise
                self.active.interject(message.text)
                await self._note(_no_ask(self.mode, "your message goes to its next step"))
            return
        if self.running:
            self._backlog.append(message)
            return
        await self._start(message)

    def stop(self, reason: str) -> bool:
        """Stop the run in progress (it ends at its next boundary); False if none."""
        if self.active is not None and self._accepting:
            self.active.request_stop(reason)
            return True
        if self.running and self.active is None and self.task is not None:
            self.task.cancel()  # a replay calls no model: cancelling it is safe
            return True
        return False

    async def play(self, transcript: Transcript, speed: float | None) -> bool:
        """Replay a saved transcript into the chat; False if a run is in progress."""
        if self.running:
            return False
        self.replayed = transcript.path
        await self.on_transcript(transcript.path, "replayed")
        display = self.display(live=False, budget=None, announce=True, skip_through=None)
        self._display = display
        self.task = self.spawn(self._drive(replay(transcript, speed=speed), display, None))
        return True

    async def fork(self, turn: int, text: str) -> None:
        """Continue the replayed (or current) transcript from ``turn`` into a new child."""
        source = self.replayed or self.transcript
        if source is None:
            raise Refusal("Nothing to fork yet: /replay a transcript first.")
        if self.running:
            raise Refusal("A run is in progress: /stop it first, then fork.")
        prior = self.load_own(source)
        last = prior.events[-1].turn if prior.events else 0
        if turn > last:
            raise Refusal(f"That transcript has turns 0 to {last}; pick one of those.")
        note = _as_debate(self.options.mode, "a fork")
        run, budget = self._build(text, prior=prior, fork_at=turn)
        self._launch(run, budget, "debate", announce=True, skip_through=turn, note=note)

    def load_own(self, path: Path) -> Transcript:
        """The transcript at ``path`` if it is this session's user's; another user's is a
        Refusal worded as for a transcript that does not exist."""
        transcript = load(path)
        if not owns(self.owner, transcript.header.owner):
            raise Refusal("No such transcript; /replay lists yours.")
        return transcript

    # -- runs -----------------------------------------------------------------------------------

    async def _start(self, message: Say) -> None:
        if not message.text:
            raise Refusal(f"Say something with it, e.g. /ask {message.ask} is this sound?")
        skip: int | None = None
        note: str | None = None
        mode: Mode = "debate"
        if self.transcript is not None:
            prior = self.load_own(self.transcript)
            await _take_over(self.transcript, self)
            run, budget = self._build(message.text, prior=prior)
            announce = False
            note = _as_debate(self.options.mode, "this conversation")
        elif self.replayed is not None:
            prior = self.load_own(self.replayed)
            last = prior.events[-1].turn if prior.events else 0
            run, budget = self._build(message.text, prior=prior, fork_at=last)
            announce, skip = True, last
            note = _as_debate(self.options.mode, "a replayed conversation")
        else:
            mode = self.options.mode
            run, budget = self._build(message.text)
            announce = True
        if message.ask is not None and mode == "debate":
            run.interject("", ask=message.ask, cut_short=False)
        elif message.ask is not None:
            note = _no_ask(mode, "it answers your message as its question")
        self._launch(run, budget, mode, announce=announce, skip_through=skip, note=note)

    def _build(
        self, text: str, *, prior: Transcript | None = None, fork_at: int | None = None
    ) -> tuple[Run, Budget]:
        """A run of the chosen mode, or (with ``prior``) a debate carrying on that transcript."""
        store = self.memory
        if prior is not None:  # a continued run keeps its team and its roles
            kept = self.options.model_copy(update={"mode": "debate", "roles": None})
            cast = choose_team(self.settings, prior=prior)
            ready = kept.apply(self.settings, team=cast)
            debate = build_debate(
                ready.settings,
                text,
                team=ready.team,
                budget=ready.budget,
                memory=store if ready.memory else None,
                prior=prior,
                fork_at=fork_at,
                owner=self.owner,
            )
            return debate, ready.budget
        budget = self.options.apply(self.settings, team=self.team).budget
        run = build_run(
            self.settings, text, self.options, team=self.team, memory=store, owner=self.owner
        )
        return run, budget

    def _launch(
        self,
        run: Run,
        budget: Budget,
        mode: Mode,
        *,
        announce: bool,
        skip_through: int | None = None,
        note: str | None = None,
    ) -> None:
        self.active = run
        self.mode = mode
        self._accepting = True
        self.replayed = None
        display = self.display(
            live=True, budget=budget, announce=announce, skip_through=skip_through, mode=mode
        )
        self._display = display
        self.task = self.spawn(self._drive(run.run(), display, run, note))

    async def _drive(
        self,
        events: AsyncIterator[LiveEvent],
        display: Display,
        run: Run | None,
        note: str | None = None,
    ) -> None:
        link: asyncio.Future[None] | None = None
        if run is not None:
            self.transcript = run.transcript_path
            _WRITERS[run.transcript_path] = self
            # Linking the thread to its transcript is a database write: under load it took
            # 50-80 s with 20 sessions, so the run does not wait for it.
            link = asyncio.ensure_future(self.on_transcript(run.transcript_path, "transcript"))
        try:
            await self._busy(True)
            if note is not None:
                await display.note(note)
            async for event in events:
                if isinstance(event, StopEvent):
                    self._accepting = False  # later input starts the next run
                await display.show(event)
        except asyncio.CancelledError:
            await display.note("Replay stopped.")
        except RoundtableError as exc:
            await display.failure(f"The {self.mode} stopped: {exc}")
        except Exception as exc:  # our bug: keep the session usable, say what happened
            log.exception("%s run failed", self.mode)
            await display.failure(error_text(f"Internal error: {type(exc).__name__}: {exc}"))
        finally:
            if link is not None:
                try:
                    await link
                except Exception:  # the thread is not linked: history cannot resume it
                    log.exception("linking the thread to its transcript failed")
            if run is not None and _WRITERS.get(run.transcript_path) is self:
                del _WRITERS[run.transcript_path]
            self.active = None
            self._accepting = False
            self.task = None
            await self._busy(False)
        try:
            await self._next_from_backlog()
        except (Refusal, RoundtableError) as exc:  # no handler is waiting to show it
            await display.note(str(exc))

    async def _busy(self, live: bool) -> None:
        if self.on_busy is not None:
            await self.on_busy(live)

    async def _note(self, text: str) -> None:
        if self._display is not None:
            await self._display.note(text)

    async def _next_from_backlog(self) -> None:
        backlog, self._backlog = self._backlog, []
        if not backlog:
            return
        await self.say(backlog[0])
        for message in backlog[1:]:
            await self.say(message)


async def _take_over(path: Path, runner: SessionRunner) -> None:
    """Stop another session's run on ``path`` (the same thread reopened elsewhere) and wait."""
    other = _WRITERS.get(path)
    if other is None or other is runner or other.task is None:
        return
    other.stop("the conversation was continued in another window")
    with contextlib.suppress(BaseException):
        await asyncio.shield(other.task)


def _as_debate(chosen: Mode, what: str) -> str | None:
    """What to tell a person who chose another mode when a run must carry on as a debate."""
    if chosen == "debate":
        return None
    return (
        f"Mode is {chosen}, but {what} carries on as a debate: only a debate can continue "
        f"a transcript. For a new {chosen}, open a new chat."
    )


def _no_ask(mode: Mode, then: str) -> str:
    return f"/ask picks who answers next in a debate; a {mode} follows its plan, so {then}."


class Refusal(Exception):
    """A request that cannot be done now; the message is shown to the person."""
