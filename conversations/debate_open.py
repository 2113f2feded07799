"""Opening a debate: a new one, one that continues a transcript, or a fork of one.

Owns: the header a debate writes (a continued debate keeps its transcript's header; a fork
gets a new one pointing at its parent), opening the transcript through the ``Recorder`` (a new
file, the same file reopened, or a new file starting with a renumbered copy of the parent's
turns), and restoring the debate so far into the state and every agent's model context: an
agent gets its own earlier turns as assistant turns and the others' as user turns, so a
resumed or forked debate carries on from the transcript alone, with no saved team state.

Does not own: the turn loop (``debate``), the state record (``debate_record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import AssistantMessage, LLMMessage, UserMessage

from roundtable.agents import Team
from roundtable.common.errors import ConfigError
from roundtable.conversations.budget import Budget
from roundtable.conversations.debate_record import DebateState
from roundtable.conversations.participant import Participant, header_for
from roundtable.conversations.recorder import Recorder
from roundtable.transcripts.events import Event, Header, MessageEvent, ParentRef
from roundtable.transcripts.store import Transcript


@dataclass(frozen=True)
class Origin:
    """Where a debate starts: from nothing, from a transcript it continues, or a fork of one
    at ``fork_at`` (the last turn it keeps)."""

    prior: Transcript | None = None
    fork_at: int | None = None

    def __post_init__(self) -> None:
        if self.fork_at is not None and self.prior is None:
            raise ConfigError("a fork needs the transcript it branches from")

    @property
    def continues(self) -> bool:
        return self.prior is not None and self.fork_at is None


def debate_header(
    origin: Origin,
    conversation_id: str,
    question: str,
    participants: Sequence[Participant],
    budget: Budget,
    context_window: int,
    team: Team,
    owner: str | None = None,
) -> Header:
    """The transcript's header: a continued debate's own, else a new one (a fork's names its
    parent and keeps the parent's question)."""
    prior = origin.prior
    if prior is not None and origin.fork_at is None:
        return prior.header
    parent = (
        ParentRef(conversation_id=prior.header.conversation_id, turn=origin.fork_at)
        if prior is not None and origin.fork_at is not None
        else None
    )
    return header_for(
        conversation_id,
        prior.header.question if prior is not None else question,
        participants,
        budget,
        context_window,
        team=team,
        parent=parent,
        owner=owner,
    )


async def open_debate(
    origin: Origin, record: Recorder, state: DebateState, agents: Sequence[AssistantAgent]
) -> list[Event]:
    """Open the transcript and restore the debate so far; the copied events of a fork are
    returned to be shown (a continued debate's are already on screen)."""
    prior = origin.prior
    if prior is None:
        record.open()
        return []
    if origin.fork_at is None:
        record.reopen(prior)
        earlier = list(prior.events)
    else:
        record.open()
        earlier = record.copy(prior.events, until_turn=origin.fork_at)
    for event in earlier:
        if isinstance(event, MessageEvent):
            await restore(event, record, state, agents)
    return earlier if origin.fork_at is not None else []


async def restore(
    event: MessageEvent, record: Recorder, state: DebateState, agents: Sequence[AssistantAgent]
) -> None:
    """One earlier message, back in the state and in every agent's model context."""
    record.turn = max(record.turn, event.turn)
    state.floor.speakers.append(event.speaker)
    state.floor.last_verdict = event.verdict
    state.messages.append(event)
    for agent in agents:
        if agent.name == event.speaker:
            turn: LLMMessage = AssistantMessage(content=event.content, source=event.speaker)
        else:
            turn = UserMessage(content=event.content, source=event.speaker)
        await agent.model_context.add_message(turn)
