"""The runs the API started, live: each one's task, committed events, followers and webhook.

Runs execute on the server's event loop like the UI's (a run's ``interject`` must be called
there). A follower gets every committed event after a sequence number, then each new one as
it is committed, in order, until the stop; token deltas go to followers that asked for them
and are dropped for one that lags (they are never saved, so nothing is lost that replay needs).
Runs the process did not start (the UI's, the CLI's, an earlier process's) are read from
their transcript file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from roundtable.agents import resolve_team
from roundtable.api.schemas import Outcome, RunState, StopInfo
from roundtable.api.webhooks import Delivery
from roundtable.common.errors import RoundtableError
from roundtable.common.secrets import error_text
from roundtable.conversations import Run
from roundtable.transcripts import (
    Event,
    Header,
    LiveEvent,
    Mode,
    PlanEvent,
    QualityEvent,
    QualityReport,
    StopEvent,
    TokenDelta,
)
from roundtable.transcripts.summary import final_answer

log = logging.getLogger("roundtable.api.registry")

TOKEN_BACKLOG = 1000
"""Token deltas a follower may fall behind by before further ones are dropped for it."""

Followed = Header | Event | TokenDelta
KEPT_ENDED = 100
"""Ended runs kept in memory (older ones are still read from their transcript files, and
listed as finished or interrupted). 500 kept a long-running server growing until its 500th
run, by the events and header each one holds (#15, finding 10)."""


@dataclass
class LiveRun:
    """One run the API started, and what it has committed so far."""

    run: Run
    mode: Mode
    header: Header | None = None
    events: list[Event] = field(default_factory=list)
    failure: str | None = None
    webhook: Delivery | None = None
    owner: str | None = None
    """Whose run it is (None: the local user's, as the administrator's runs are)."""
    task: asyncio.Task[None] | None = None
    ended: bool = False
    """The run's events are all in (its webhook may still be on its way)."""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the header is in (or the run ended without one)."""
    followers: list[_Follower] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.run.conversation_id

    @property
    def status(self) -> RunState:
        if not self.ended:
            return "running"
        return "failed" if self.failure is not None else "finished"

    def follow(self, after: int, tokens: bool) -> _Follower:
        """A follower primed with what was committed after ``after`` (0: the header too)."""
        follower = _Follower(tokens=tokens)
        if after <= 0 and self.header is not None:
            follower.queue.put_nowait(self.header)
        for event in self.events:
            if event.seq > after:
                follower.queue.put_nowait(event)
        if self.ended:
            follower.queue.put_nowait(None)
        else:
            self.followers.append(follower)
        return follower

    def publish(self, item: LiveEvent) -> None:
        if isinstance(item, Header):
            self.header = item
            self.started.set()
        elif not isinstance(item, TokenDelta):
            self.events.append(item)
        for follower in self.followers:
            follower.offer(item)

    def close(self) -> None:
        self.run = _Ended(self.run.conversation_id, self.run.transcript_path)
        self.ended = True
        self.started.set()
        for follower in self.followers:
            follower.queue.put_nowait(None)
        self.followers.clear()


@dataclass(frozen=True)
class _Ended:
    """What an ended run keeps of its ``Run``: its id and its file. The team, its agents, their
    model clients and contexts and the run's memory recall go: kept for each of the last
    ``KEPT_ENDED`` runs, they grew a server by about 0.3 MB a run (#15, finding 10)."""

    conversation_id: str
    transcript_path: Path

    def run(self) -> AsyncIterator[LiveEvent]:
        raise RuntimeError(f"run {self.conversation_id} has ended")

    def interject(self, text: str, *, ask: str | None = None, cut_short: bool = True) -> None:
        raise RuntimeError(f"run {self.conversation_id} has ended")

    def request_stop(self, reason: str = "stopped by the person") -> None:
        """Nothing to stop."""


@dataclass
class _Follower:
    tokens: bool
    queue: asyncio.Queue[Followed | None] = field(default_factory=asyncio.Queue)

    def offer(self, item: LiveEvent) -> None:
        if isinstance(item, TokenDelta) and (
            not self.tokens or self.queue.qsize() >= TOKEN_BACKLOG
        ):
            return
        self.queue.put_nowait(item)

    async def items(self) -> AsyncIterator[Followed]:
        while (item := await self.queue.get()) is not None:
            yield item


class RunRegistry:
    """Starts runs in background tasks and keeps them findable by id."""

    def __init__(self, transcripts_dir: Path, on_end: Callable[[LiveRun], object] | None = None):
        self.transcripts_dir = transcripts_dir
        self.on_end = on_end
        self._runs: dict[str, LiveRun] = {}

    def active(self) -> int:
        return sum(1 for live in self._runs.values() if not live.ended)

    def get(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    def start(
        self, run: Run, mode: Mode, webhook: Delivery | None = None, owner: str | None = None
    ) -> LiveRun:
        live = LiveRun(run=run, mode=mode, webhook=webhook, owner=owner)
        self._forget_old()
        self._runs[live.id] = live
        live.task = asyncio.get_running_loop().create_task(self._drive(live))
        return live

    def _forget_old(self) -> None:
        ended = [run_id for run_id, live in self._runs.items() if live.ended]
        for run_id in ended[: max(0, len(ended) - KEPT_ENDED + 1)]:
            del self._runs[run_id]

    def path_of(self, run_id: str) -> Path:
        live = self._runs.get(run_id)
        return live.run.transcript_path if live else self.transcripts_dir / f"{run_id}.jsonl"

    async def _drive(self, live: LiveRun) -> None:
        try:
            async for item in live.run.run():
                live.publish(item)
        except RoundtableError as exc:
            live.failure = str(exc)
        except Exception as exc:  # our bug: the run is reported failed, the server goes on
            log.exception("API run failed")
            live.failure = error_text(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            live.close()
        if self.on_end is not None:
            try:
                await _maybe_await(self.on_end(live))
            except Exception:
                log.exception("the end-of-run hook failed")

    async def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop every run (each ends at its next boundary) and wait a little for them."""
        tasks = [live.task for live in self._runs.values() if live.task and not live.task.done()]
        for live in self._runs.values():
            if not live.ended:
                live.run.request_stop("the server is shutting down")
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)


async def _maybe_await(value: object) -> None:
    if asyncio.isfuture(value) or asyncio.iscoroutine(value):
        await value


def mode_of(events: list[Event]) -> Mode:
    """A saved run's mode: a plan names it; a debate has none."""
    plan = next((e for e in events if isinstance(e, PlanEvent)), None)
    return plan.mode if plan is not None else "debate"


def stop_of(events: list[Event]) -> StopInfo | None:
    stop = next((e for e in reversed(events) if isinstance(e, StopEvent)), None)
    return StopInfo(code=stop.code, reason=stop.reason) if stop else None


def quality_of(events: list[Event]) -> QualityReport | None:
    """The run's latest quality report, if it has one."""
    found = next((e for e in reversed(events) if isinstance(e, QualityEvent)), None)
    return found.report if found else None


def answer_of(events: list[Event], header: Header | None = None) -> str | None:
    """The run's answer (``transcripts.summary.final_answer``); a version-1 header (no team)
    is read with the default team's flags."""
    if header is not None and header.team is None:
        header = header.model_copy(update={"team": resolve_team(None)})
    found = final_answer(header, events)
    return found.content if found is not None else None


def outcome_of(live: LiveRun) -> Outcome:
    header = live.header
    return Outcome(
        id=live.id,
        mode=live.mode,
        question=header.question if header else "",
        status=live.status,
        stop=stop_of(live.events),
        answer=answer_of(live.events, header),
        failure=live.failure,
        ended_at=datetime.now(UTC),
    )
