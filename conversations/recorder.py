"""The transcript side of a run, the same for every mode: stamps, commits, memory, the ledger.

Owns: opening the run's transcript (a new file, an existing one continued, or a new file that
starts with a renumbered copy of another's events: a fork); stamping events (seq, time,
turn); committing them (written and fsynced before anything is yielded); committing messages
as the next turn, remembering them in shared memory and charging them to the cost ledger;
the stop event with the run's quality report just before it (``reported`` yields that report
in every mode's stream); and the run's log lines with their context.

Does not own: what is said or when (``debate``, ``pipeline``, ``panel``), the file format
(``transcripts.store``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar

from roundtable.conversations import observe
from roundtable.conversations.ledger import Ledger, Price
from roundtable.conversations.quality import report
from roundtable.conversations.recall import Recall, as_event_hits, message_id
from roundtable.conversations.tools import ToolResult
from roundtable.transcripts.events import (
    HUMAN,
    BranchEvent,
    BranchStatus,
    Citation,
    ErrorFamily,
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    MemoryEvent,
    MessageEvent,
    PlanStep,
    QualityEvent,
    StopCode,
    StopEvent,
    Usage,
    now,
)
from roundtable.transcripts.store import Transcript, TranscriptWriter

_E = TypeVar("_E", bound=Event)


class Stamp(TypedDict):
    seq: int
    at: datetime
    turn: int


class Recorder:
    """The transcript of one run: stamps, commits, memory and the ledger."""

    def __init__(
        self,
        path: Path,
        header: Header,
        *,
        recall: Recall | None = None,
        prices: dict[str, Price] | None = None,
    ) -> None:
        self.path = path
        self.header = header
        self.recall = recall
        self.ledger = Ledger(prices=dict(prices or {}))
        self.tokens = 0
        self.turn = -1
        """The turn of the latest committed message; the question is turn 0."""
        self._writer: TranscriptWriter | None = None
        self._message_seqs: list[int] = []
        self._events: list[Event] = []
        """Every event of the transcript so far: what the quality report is measured on."""
        self._quality: QualityEvent | None = None
        """The report committed with the stop, until ``reported`` has yielded it."""

    @property
    def remembered(self) -> list[str]:
        """The memory ids of this run's committed messages (a tool must not find them)."""
        cid = self.header.conversation_id
        return [message_id(cid, seq) for seq in self._message_seqs]

    def open(self) -> Header:
        """Start a new transcript at ``path`` with the header."""
        self._writer = TranscriptWriter.create(self.path, self.header)
        return self.header

    def reopen(self, prior: Transcript) -> Header:
        """Continue ``prior`` in its own file, after its last event."""
        self._writer = TranscriptWriter.reopen(prior)
        self._events = list(prior.events)
        return self.header

    def copy(self, events: Sequence[Event], *, until_turn: int) -> list[Event]:
        """Commit the events of turns up to ``until_turn`` (no stop), renumbered; a branch's
        pointer to its answer follows the answer to its new number."""
        renumbered: dict[int, int] = {}
        copied: list[Event] = []
        for event in events:
            if event.turn > until_turn or isinstance(event, StopEvent | QualityEvent):
                continue
            update: dict[str, Any] = {"seq": self.next_seq()}
            if isinstance(event, BranchEvent) and event.message_seq is not None:
                update["message_seq"] = renumbered.get(event.message_seq)
            renumbered[event.seq] = update["seq"]
            copied.append(self.commit(event.model_copy(update=update)))
        return copied

    @property
    def writer(self) -> TranscriptWriter | None:
        """The open transcript, or None before ``open`` and after ``close``."""
        return self._writer

    def next_seq(self) -> int:
        assert self._writer is not None, "the transcript is not open"
        return self._writer.next_seq()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def stamp(self, turn: int | None = None) -> Stamp:
        return {
            "seq": self.next_seq(),
            "at": now(),
            "turn": max(self.turn, 0) if turn is None else turn,
        }

    def commit(self, event: _E) -> _E:
        """Write ``event`` durably; only then may it be yielded."""
        assert self._writer is not None, "the transcript is not open"
        self._writer.append(event)
        self._events.append(event)
        return event

    def message(
        self,
        speaker: str,
        content: str,
        *,
        usage: Usage | None = None,
        latency_s: float = 0.0,
        verdict: Literal["ACCEPT", "REVISE"] | None = None,
        interrupted: bool = False,
        truncated: bool = False,
        citations: list[Citation] | None = None,
    ) -> MessageEvent:
        """Commit a message as the next turn; an agent's is charged to its ledger line."""
        self.turn += 1
        event = self.commit(
            MessageEvent(
                **self.stamp(),
                speaker=speaker,
                content=content,
                usage=usage or Usage(),
                latency_s=round(latency_s, 3),
                verdict=verdict,
                interrupted=interrupted,
                truncated=truncated,
                citations=citations or [],
            )
        )
        self._message_seqs.append(event.seq)
        if speaker != HUMAN:
            self.charge(speaker, event.usage, latency_s)
        if self.recall is not None:
            self.recall.remember(event)
        return event

    def charge(self, speaker: str, usage: Usage, seconds: float, calls: int = 1) -> None:
        self.tokens += usage.total
        self.ledger.charge(speaker, usage, seconds, calls=calls)

    def memory(self, speaker: str, result: ToolResult) -> MemoryEvent:
        """Commit what a tool found for ``speaker``."""
        return self.commit(
            MemoryEvent(
                **self.stamp(),
                speaker=speaker,
                query=result.query,
                hits=as_event_hits(result.hits),
            )
        )

    def branch(
        self,
        step: PlanStep,
        phase: Literal["start", "end"],
        status: BranchStatus,
        *,
        latency_s: float = 0.0,
        message_seq: int | None = None,
        family: ErrorFamily | None = None,
        error: str | None = None,
    ) -> BranchEvent:
        """Commit the start or end of a plan step (a pipeline's stage, a panel's branch)."""
        return self.commit(
            BranchEvent(
                **self.stamp(),
                phase=phase,
                branch=step.id,
                role=step.role,
                question=step.question,
                status=status,
                latency_s=round(latency_s, 3),
                message_seq=message_seq,
                family=family,
                error=error,
            )
        )

    def stop(self, code: StopCode, reason: str, **fields: Any) -> StopEvent:
        """Commit the run's quality report, then its stop with the ledger; ``fields`` go to
        the stop's log line."""
        rows = self.rows()
        stamp = self.stamp()
        quality = report(self.header, self._events, ledger=rows, ended=stamp["at"])
        self._quality = self.commit(QualityEvent(**stamp, report=quality))
        self.log("stop", code=code, reason=reason, **fields)
        return self.commit(StopEvent(**self.stamp(), code=code, reason=reason, ledger=rows))

    async def reported(self, events: AsyncGenerator[LiveEvent, None]) -> AsyncIterator[LiveEvent]:
        """A mode's ``events`` with the quality report committed by ``stop`` yielded just
        before the stop event: the one place every mode's stream gets it."""
        async with aclosing(events) as stream:
            async for event in stream:
                if isinstance(event, StopEvent) and self._quality is not None:
                    quality, self._quality = self._quality, None
                    yield quality
                yield event

    def rows(self) -> list[LedgerRow]:
        return self.ledger.rows()

    async def flush(self) -> None:
        if self.recall is not None:
            await self.recall.flush()

    def log(
        self, event: str, *, agent: str | None = None, level: int = logging.INFO, **fields: object
    ) -> None:
        observe.log(
            event,
            conversation_id=self.header.conversation_id,
            turn=self.turn + 1,
            agent=agent,
            level=level,
            **fields,
        )
