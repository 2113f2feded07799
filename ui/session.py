"""One browser session's conversation: the debate runs as a background task, input is queued.

The Chainlit handler for a message must return at once (while it runs, the composer's Send
button turns into Stop and typing is blocked), so a message only reaches ``SessionRunner``,
which either hands it to the running debate (``Debate.interject``: delivered at the next turn
boundary, the current reply cut short softly) or starts a run in a background task. What
arrives while a run is ending or a replay is playing waits in a backlog and starts the next
run, so nothing typed is lost. After a debate stops, the next message continues the same
transcript; after a replay, it forks the replayed transcript at its end.

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

from common.errors import RoundtableError
from conversations import (
    Budget,
    Debate,
    LiveEvent,
    Settings,
    StopEvent,
    Transcript,
    build_debate,
    load,
    replay,
)
from memory import MemoryStore
from ui.commands import Say

log = logging.getLogger(__name__)

_WRITERS: dict[Path, SessionRunner] = {}
"""Which runner is appending to each transcript: one writer per file, across sessions."""


class Display(Protocol):
    """Where a run is drawn (``render.ChainlitRenderer``)."""

    async def show(self, event: LiveEvent) -> None: ...
    async def note(self, text: str) -> None: ...
    async def failure(self, text: str) -> None: ...


DisplayFactory = Callable[..., Display]
"""``factory(live=..., budget=..., announce=..., skip_through=...)``."""
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@dataclass(frozen=True)
class RunOptions:
    """The person's choices from the settings panel."""

    max_turns: int | None = None
    roles: tuple[str, ...] | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    """Role -> endpoint name, for roles not on their configured endpoint."""
    memory: bool = True
    """Recall shared memory before each speaker (when the process has a memory store)."""


@dataclass
class SessionRunner:
    """The conversation of one chat thread, and the run in progress if any."""

    settings: Settings
    display: DisplayFactory
    spawn: Spawn
    on_transcript: Callable[[Path, str], Awaitable[None]]
    memory: MemoryStore | None = None
    """The process's shared memory store (one process owns an embedded store)."""
    """Called with (path, kind) when the thread's transcript changes; kind is
    ``transcript`` (continued by the next message) or ``replayed`` (forked by it)."""
    transcript: Path | None = None
    replayed: Path | None = None
    options: RunOptions = field(default_factory=RunOptions)
    debate: Debate | None = None
    task: asyncio.Task[None] | None = None
    _accepting: bool = False
    _backlog: list[Say] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    # -- what the person does ---------------------------------------------------------------

    async def say(self, message: Say) -> None:
        """Deliver to the running debate, or start (continue) one."""
        if self.debate is not None and self._accepting:
            self.debate.interject(message.text, ask=message.ask)
            return
        if self.running:
            self._backlog.append(message)
            return
        await self._start(message)

    def stop(self, reason: str) -> bool:
        """Stop the run in progress (a debate ends at its next turn boundary); False if none."""
        if self.debate is not None and self._accepting:
            self.debate.request_stop(reason)
            return True
        if self.running and self.debate is None and self.task is not None:
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
        self.task = self.spawn(self._drive(replay(transcript, speed=speed), display, None))
        return True

    async def fork(self, turn: int, text: str) -> None:
        """Continue the replayed (or current) transcript from ``turn`` into a new child."""
        source = self.replayed or self.transcript
        if source is None:
            raise Refusal("Nothing to fork yet: /replay a transcript first.")
        if self.running:
            raise Refusal("A run is in progress: /stop it first, then fork.")
        prior = load(source)
        last = prior.events[-1].turn if prior.events else 0
        if turn > last:
            raise Refusal(f"That transcript has turns 0 to {last}; pick one of those.")
        self._launch(self._build(text, prior=prior, fork_at=turn), announce=True, skip_through=turn)

    # -- runs -----------------------------------------------------------------------------------

    async def _start(self, message: Say) -> None:
        if not message.text:
            raise Refusal("Say something with it, e.g. /ask critic is this sound?")
        skip: int | None = None
        if self.transcript is not None:
            await _take_over(self.transcript, self)
            debate = self._build(message.text, prior=load(self.transcript))
            announce = False
        elif self.replayed is not None:
            prior = load(self.replayed)
            last = prior.events[-1].turn if prior.events else 0
            debate = self._build(message.text, prior=prior, fork_at=last)
            announce, skip = True, last
        else:
            debate = self._build(message.text)
            announce = True
        if message.ask is not None:
            debate.interject("", ask=message.ask, cut_short=False)
        self._launch(debate, announce=announce, skip_through=skip)

    def _build(self, text: str, **kwargs: Any) -> Debate:
        options = self.options
        settings = self.settings
        if options.endpoints:
            roles = {**settings.roles, **options.endpoints}
            settings = settings.model_copy(update={"roles": roles})
        budget = settings.budget
        if options.max_turns is not None:
            budget = Budget(**{**budget.model_dump(), "max_turns": options.max_turns})
        roles_arg = list(options.roles) if options.roles and "prior" not in kwargs else None
        store = self.memory if options.memory else None
        return build_debate(settings, text, roles=roles_arg, budget=budget, memory=store, **kwargs)

    def _launch(self, debate: Debate, *, announce: bool, skip_through: int | None = None) -> None:
        self.debate = debate
        self._accepting = True
        self.replayed = None
        display = self.display(
            live=True, budget=debate.budget, announce=announce, skip_through=skip_through
        )
        self.task = self.spawn(self._drive(debate.run(), display, debate))

    async def _drive(
        self, events: AsyncIterator[LiveEvent], display: Display, debate: Debate | None
    ) -> None:
        link: asyncio.Future[None] | None = None
        if debate is not None:
            self.transcript = debate.transcript_path
            _WRITERS[debate.transcript_path] = self
            # Linking the thread to its transcript is a database write: under load it took
            # 50-80 s with 20 sessions, so the debate does not wait for it.
            link = asyncio.ensure_future(self.on_transcript(debate.transcript_path, "transcript"))
        try:
            async for event in events:
                if isinstance(event, StopEvent):
                    self._accepting = False  # later input starts the next run
                await display.show(event)
        except asyncio.CancelledError:
            await display.note("Replay stopped.")
        except RoundtableError as exc:
            await display.failure(f"The debate stopped: {exc}")
        except Exception as exc:  # our bug: keep the session usable, say what happened
            log.exception("debate run failed")
            await display.failure(f"Internal error: {type(exc).__name__}: {exc}")
        finally:
            if link is not None:
                try:
                    await link
                except Exception:  # the thread is not linked: history cannot resume it
                    log.exception("linking the thread to its transcript failed")
            if debate is not None and _WRITERS.get(debate.transcript_path) is self:
                del _WRITERS[debate.transcript_path]
            self.debate = None
            self._accepting = False
            self.task = None
        await self._next_from_backlog()

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


class Refusal(Exception):
    """A request that cannot be done now; the message is shown to the person."""
