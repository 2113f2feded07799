"""What a pipeline and a panel share: one agent answering one task, and the transcript side.

Owns: ``speak``, one turn of one role outside the group chat (a fresh agent from the one
factory, its reply streamed, usage and latency measured; exceptions propagate to the caller,
which records them); ``task_messages``, the prompt of a stage or branch; ``Recorder``, which
stamps, commits (written and fsynced before anything is yielded), remembers messages in shared
memory and keeps the cost ledger, exactly as the debate does; and ``header_for``.

Does not own: which stage runs when (``pipeline``, ``panel``), tools (``tools``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TypedDict, TypeVar

from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, ModelClientStreamingChunkEvent, TextMessage
from autogen_core import CancellationToken

from roundtable.agents import Team, build_agent
from roundtable.common.errors import ModelError
from roundtable.conversations import observe
from roundtable.conversations.budget import Budget
from roundtable.conversations.cutoff import Cutoff, guard
from roundtable.conversations.debate import Participant
from roundtable.conversations.ledger import Ledger, Price
from roundtable.conversations.recall import Recall, as_event_hits, message_id
from roundtable.conversations.tools import ToolResult
from roundtable.transcripts.events import (
    HUMAN,
    Event,
    Header,
    LedgerRow,
    MemoryEvent,
    MessageEvent,
    RoleSummary,
    StopCode,
    StopEvent,
    Usage,
    now,
)
from roundtable.transcripts.store import TranscriptWriter

INPUT_CHARS = 1500
"""An earlier answer is cut to this in a later prompt: prompts stay small on a small model."""

_E = TypeVar("_E", bound=Event)


class Stamp(TypedDict):
    seq: int
    at: datetime
    turn: int


@dataclass(frozen=True)
class Spoken:
    """A finished reply."""

    text: str
    usage: Usage
    latency_s: float
    interrupted: bool


def header_for(
    conversation_id: str,
    question: str,
    participants: Sequence[Participant],
    budget: Budget,
    context_window: int,
    *,
    team: Team | None = None,
) -> Header:
    """The same header a debate writes."""
    return Header(
        conversation_id=conversation_id,
        created_at=now(),
        question=question,
        roles=[
            RoleSummary(
                name=p.card.name,
                description=p.card.description,
                endpoint=p.endpoint,
                model=p.model,
                max_tokens=p.card.model.max_tokens,
            )
            for p in participants
        ],
        max_turns=budget.max_turns,
        context_window=context_window,
        team=team,
    )


def task_messages(
    question: str,
    *,
    inputs: Sequence[tuple[str, str]] = (),
    tools: Sequence[ToolResult] = (),
    ask: str | None = None,
) -> list[BaseChatMessage]:
    """A stage's prompt: the question, earlier answers ``(speaker, text)``, tool blocks, the ask.

    Earlier answers are cut to ``INPUT_CHARS``; the manager's ``ask`` comes last, so the role
    answers it and not the last speaker.
    """
    messages: list[BaseChatMessage] = [TextMessage(source=HUMAN, content=question)]
    for speaker, text in inputs:
        cut = text if len(text) <= INPUT_CHARS else text[:INPUT_CHARS] + " [...]"
        messages.append(TextMessage(source=speaker, content=cut))
    for result in tools:
        if result.block is not None:
            messages.append(TextMessage(source="memory", content=result.block))
    if ask is not None:
        messages.append(TextMessage(source="manager", content=ask))
    return messages


async def speak(
    participant: Participant, task: Sequence[BaseChatMessage], cutoff: Cutoff | None = None
) -> AsyncIterator[str | Spoken]:
    """One reply of ``participant`` to ``task``: its text chunks as they stream, then ``Spoken``.

    A fresh agent per call, so concurrent branches of one role never share an agent's memory.
    A model failure raises (the caller records it); an empty reply raises ``ModelError``, and
    so does ``cutoff`` firing before the reply ends.
    """
    client = guard(participant.client, cutoff) if cutoff is not None else participant.client
    agent = build_agent(participant.card, client)
    began = time.monotonic()
    reply: TextMessage | None = None
    stream = agent.on_messages_stream(task, CancellationToken())
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, ModelClientStreamingChunkEvent):
                yield item.content
            elif isinstance(item, Response) and isinstance(item.chat_message, TextMessage):
                reply = item.chat_message
    if reply is None or not reply.content.strip():
        raise ModelError(f"the {participant.card.name} gave an empty reply")
    usage = reply.models_usage
    yield Spoken(
        text=reply.content.strip(),
        usage=Usage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        ),
        latency_s=time.monotonic() - began,
        interrupted=bool(getattr(participant.client, "last_interrupted", False)),
    )


async def spoken(
    participant: Participant, task: Sequence[BaseChatMessage], cutoff: Cutoff | None = None
) -> Spoken:
    """``speak`` without its chunks."""
    result: Spoken | None = None
    async for item in speak(participant, task, cutoff):
        if isinstance(item, Spoken):
            result = item
    assert result is not None
    return result


def stop_at_boundary(
    budget: Budget, *, tokens: int, started: float, user_stop: str | None
) -> tuple[StopCode, str] | None:
    """Whether a pipeline or panel must stop at this boundary, as (code, reason).

    Turns are not counted: the plan fixes how many there are."""
    if user_stop is not None:
        return "user_stop", user_stop
    if tokens >= budget.max_tokens:
        return "token_budget", f"used {tokens} of {budget.max_tokens} tokens"
    elapsed = time.monotonic() - started
    if elapsed >= budget.wall_clock_s:
        return "wall_clock", f"ran {elapsed:.0f} s of the {budget.wall_clock_s:.0f} s allowed"
    return None


class Recorder:
    """The transcript of one pipeline or panel run: stamps, commits, memory and the ledger."""

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

    @property
    def remembered(self) -> list[str]:
        """The memory ids of this run's committed messages (a tool must not find them)."""
        cid = self.header.conversation_id
        return [message_id(cid, seq) for seq in self._message_seqs]

    def open(self) -> Header:
        self._writer = TranscriptWriter.create(self.path, self.header)
        return self.header

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def stamp(self, turn: int | None = None) -> Stamp:
        assert self._writer is not None, "the transcript is not open"
        return {
            "seq": self._writer.next_seq(),
            "at": now(),
            "turn": max(self.turn, 0) if turn is None else turn,
        }

    def commit(self, event: _E) -> _E:
        """Write ``event`` durably; only then may it be yielded."""
        assert self._writer is not None, "the transcript is not open"
        self._writer.append(event)
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

    def stop(self, code: StopCode, reason: str) -> StopEvent:
        self.log("stop", code=code, reason=reason)
        return self.commit(StopEvent(**self.stamp(), code=code, reason=reason, ledger=self.rows()))

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
