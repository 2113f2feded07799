"""What a pipeline and a panel share: one agent answering one task.

Owns: ``speak``, one turn of one role outside the group chat (a fresh agent from the one
factory, its reply streamed, usage and latency measured; exceptions propagate to the caller,
which records them); and ``task_messages``, the prompt of a stage or branch.

Does not own: which stage runs when (``pipeline``, ``panel``), the transcript (``recorder``),
the deadlines (``control``), tools (``tools``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, ModelClientStreamingChunkEvent, TextMessage
from autogen_core import CancellationToken

from roundtable.agents import build_agent
from roundtable.common.errors import ModelError
from roundtable.conversations.cutoff import Cutoff, guard
from roundtable.conversations.participant import Participant
from roundtable.conversations.tools import ToolResult
from roundtable.transcripts.events import HUMAN, Usage

INPUT_CHARS = 1500
"""An earlier answer is cut to this in a later prompt: prompts stay small on a small model."""


@dataclass(frozen=True)
class Spoken:
    """A finished reply."""

    text: str
    usage: Usage
    latency_s: float
    interrupted: bool


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
        usage=Usage.of(usage),
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
