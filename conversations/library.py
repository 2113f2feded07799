"""Roundtable as a library: ask a team a question from Python and get its answer.

``run`` (synchronous), ``arun`` (async) and ``stream`` (the live events) are what
``import roundtable`` offers; ``RunResult`` is what a finished run gives back. The terminal's
``ask`` goes through the same ``configure`` -> ``Setup.build`` -> ``collect`` path, adding its
own preflight, memory warning and Ctrl-C handling around it.

Owns turning a few choices (team, mode, turns, roles, demo) into a built run and a finished
run's events into a ``RunResult``. Does not own the engine (``runs.build_run``), settings
loading (``settings.load_settings``) or any front end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ConfigDict, ValidationError

from roundtable.agents import EndpointSettings, Guards, Team, load_team, resolve_team
from roundtable.common.errors import ConfigError, RoundtableError
from roundtable.conversations.assemble import open_memory_if_possible
from roundtable.conversations.modes import Run
from roundtable.conversations.options import RunOptions
from roundtable.conversations.runs import build_run
from roundtable.conversations.settings import Settings, load_settings
from roundtable.memory import MemoryStore
from roundtable.transcripts.events import (
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    Mode,
    StopEvent,
    TokenDelta,
)
from roundtable.transcripts.summary import final_answer

TeamSpec = str | Path | Team
"""A team: its name (the user's ``teams_dir``, then the shipped teams), a team file, or a
``Team`` already loaded."""

__all__ = ["RunResult", "Setup", "TeamSpec", "arun", "collect", "configure", "run", "stream"]


class RunResult(BaseModel):
    """A finished run: the answer, why it stopped, what it cost and where it is saved."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    answer: str | None
    """The last message of the team's answerer (the role with ``answers: true``), else the
    last message of any agent; None when no agent spoke."""
    stop: StopEvent
    """How the run ended: ``stop.code`` (a ``StopCode``) and ``stop.reason`` in words."""
    ledger: list[LedgerRow]
    """What each speaker (and the manager) cost."""
    transcript: Path
    """The saved transcript (JSON lines): ``roundtable replay`` it, or ``transcripts.load``."""
    header: Header
    """The transcript's first line: the question, the roles, the team's cards."""
    events: list[Event]
    """Every committed event, as saved (no token deltas)."""


@dataclass(frozen=True)
class Setup:
    """Checked choices for one run, ready to build it."""

    settings: Settings
    options: RunOptions
    team: Team
    """The team as chosen (before ``options.roles`` keeps a subset)."""

    @property
    def cast(self) -> Team:
        """The team that takes part: ``team`` with just ``options.roles``."""
        return self.team.only(self.options.roles)

    def build(
        self,
        question: str,
        *,
        transcript: Path | None = None,
        memory: MemoryStore | None = None,
        owner: str | None = None,
    ) -> Run:
        """The run, not started, as ``owner``'s (None: the local user's); a bad question is a
        ConfigError here."""
        return build_run(
            self.settings,
            question,
            self.options,
            team=self.team,
            transcript_path=transcript,
            memory=memory,
            owner=owner,
        )


def configure(
    *,
    team: TeamSpec | None = None,
    mode: Mode = "debate",
    max_turns: int | None = None,
    roles: Sequence[str] | None = None,
    settings: Settings | None = None,
    demo: bool = False,
) -> Setup:
    """Check the choices for a run; anything wrong is a ConfigError naming it.

    ``settings`` default to ``load_settings()`` (environment and TOML file); ``demo`` swaps
    every endpoint for the built-in scripted model, so no model is needed at all, and turns the
    protocol guards off: fixed words cannot answer a guard's nudge."""
    if settings is None:
        settings = load_settings()
    if demo:
        scripted = {"default": EndpointSettings(kind="scripted")}
        settings = settings.model_copy(
            update={
                "endpoints": scripted,
                "roles": {},
                "manager_endpoint": "default",
                "guards": Guards(enabled=False),
            }
        )
    chosen = _team(team, settings)
    try:
        options = RunOptions(
            mode=mode, max_turns=max_turns, roles=list(roles) if roles is not None else None
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        raise ConfigError(f"{where}: {err['msg']}") from exc
    options.apply(settings, team=chosen)  # refuses a team that cannot run the mode, say
    return Setup(settings=settings, options=options, team=chosen)


def _team(spec: TeamSpec | None, settings: Settings) -> Team:
    if isinstance(spec, Team):
        return spec
    if isinstance(spec, Path):  # always a file, whatever its name
        return load_team(spec.expanduser())
    return resolve_team(spec or settings.team, settings.teams_dir)


async def collect(run: Run, *, on_event: Callable[[LiveEvent], None] | None = None) -> RunResult:
    """Drive ``run`` to its end, showing each event to ``on_event``, and sum it up."""
    header: Header | None = None
    committed: list[Event] = []
    async with _closing(run) as events:
        async for event in events:
            if on_event is not None:
                on_event(event)
            if isinstance(event, Header):
                header = event
            elif not isinstance(event, TokenDelta):
                committed.append(event)
    stop = committed[-1] if committed else None
    if header is None or not isinstance(stop, StopEvent):
        raise RoundtableError(f"run {run.conversation_id} ended without a stop event")
    return RunResult(
        conversation_id=run.conversation_id,
        answer=answer_of(header, committed),
        stop=stop,
        ledger=stop.ledger,
        transcript=run.transcript_path,
        header=header,
        events=committed,
    )


def _closing(run: Run) -> AbstractAsyncContextManager[AsyncGenerator[LiveEvent, None]]:
    """The run's events, closed however the consumer leaves (every mode's ``run`` is an
    async generator)."""
    return aclosing(cast(AsyncGenerator[LiveEvent, None], run.run()))


def answer_of(header: Header, events: Sequence[Event]) -> str | None:
    """The run's answer (``transcripts.summary.final_answer``; see ``RunResult.answer``)."""
    found = final_answer(header, events)
    return found.content if found is not None else None


async def stream(
    question: str,
    *,
    team: TeamSpec | None = None,
    mode: Mode = "debate",
    max_turns: int | None = None,
    roles: Sequence[str] | None = None,
    settings: Settings | None = None,
    demo: bool = False,
    transcript: str | PathLike[str] | None = None,
) -> AsyncIterator[LiveEvent]:
    """The live events of a run, as the terminal and the browser get them: the ``Header``,
    every committed event (``MessageEvent``, ``SelectionEvent``...) with ``TokenDelta``
    pieces of text between them, and a ``StopEvent`` last. Arguments as ``run``."""
    setup = configure(
        team=team, mode=mode, max_turns=max_turns, roles=roles, settings=settings, demo=demo
    )
    with _started(setup, question, transcript) as built:
        async with _closing(built) as events:
            async for event in events:
                yield event


async def arun(
    question: str,
    *,
    team: TeamSpec | None = None,
    mode: Mode = "debate",
    max_turns: int | None = None,
    roles: Sequence[str] | None = None,
    settings: Settings | None = None,
    demo: bool = False,
    transcript: str | PathLike[str] | None = None,
) -> RunResult:
    """``run`` for async code (a notebook, a web app): ``await roundtable.arun(...)``."""
    setup = configure(
        team=team, mode=mode, max_turns=max_turns, roles=roles, settings=settings, demo=demo
    )
    return await _finish(setup, question, transcript)


def run(
    question: str,
    *,
    team: TeamSpec | None = None,
    mode: Mode = "debate",
    max_turns: int | None = None,
    roles: Sequence[str] | None = None,
    settings: Settings | None = None,
    demo: bool = False,
    transcript: str | PathLike[str] | None = None,
) -> RunResult:
    """Ask ``team`` ``question`` and wait for its answer.

    ``team``: a name, a team file or a ``Team`` (the configured team by default); ``mode``:
    ``debate``, ``pipeline`` or ``panel``; ``max_turns`` and ``roles`` (a subset of the
    team's) narrow the run; ``settings`` default to the environment and the settings file;
    ``demo=True`` runs the built-in scripted model; ``transcript`` is where to save it (the
    data folder by default). Runs its own event loop: from async code use ``arun`` or
    ``stream``. Mistakes in the choices are a ``ConfigError``; an unreachable model an
    ``InfraError``; how the run ended is ``result.stop.code``, never an exception."""
    _refuse_running_loop()
    setup = configure(
        team=team, mode=mode, max_turns=max_turns, roles=roles, settings=settings, demo=demo
    )
    return asyncio.run(_finish(setup, question, transcript))


async def _finish(setup: Setup, question: str, transcript: str | PathLike[str] | None) -> RunResult:
    with _started(setup, question, transcript) as built:
        return await collect(built)


def _refuse_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "roundtable.run() cannot be called from a running event loop (async code, Jupyter): "
        "use `await roundtable.arun(...)`, or `async for event in roundtable.stream(...)`"
    )


@contextmanager
def _started(setup: Setup, question: str, transcript: str | PathLike[str] | None) -> Iterator[Run]:
    """The built run, with the shared memory open (when it can be) until the run is done."""
    path = None if transcript is None else Path(transcript)
    store = open_memory_if_possible(setup.settings)
    try:
        yield setup.build(question, transcript=path, memory=store)
    finally:
        if store is not None:
            store.close()
