"""Scripted debates for tests: real agents, real team, real transcript; fixed words."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from roundtable.agents import Guards, ScriptedChatCompletionClient, Team, resolve_team
from roundtable.agents.scripted import Reply
from roundtable.conversations import Budget, Debate, Participant
from roundtable.conversations.recall import MemorySettings, Recall
from roundtable.memory import MemoryStore
from roundtable.transcripts import LiveEvent, Transcript


def pick(speaker: str, reason: str = "it is their turn") -> str:
    """A manager reply naming ``speaker``."""
    return f'{{"speaker": "{speaker}", "reason": "{reason}"}}'


def scripted_debate(
    path: Path,
    replies: dict[str, Iterable[Reply]],
    *,
    picks: Iterable[Reply] = (),
    question: str = "Should our city ban private cars downtown?",
    budget: Budget | None = None,
    roles: Sequence[str] | None = None,
    team: Team | None = None,
    chunk_delay: float = 0.0,
    defaults: dict[str, str] | None = None,
    prior: Transcript | None = None,
    fork_at: int | None = None,
    memory: MemoryStore | None = None,
    memory_settings: MemorySettings | None = None,
    guards: Guards | None = None,
) -> tuple[Debate, dict[str, ScriptedChatCompletionClient], ScriptedChatCompletionClient]:
    """A debate whose roles and manager speak from scripts; without the protocol guards
    unless ``guards`` are given (the scripts predate them)."""
    signal = threading.Event()
    cast = (team or resolve_team(None)).only(roles)
    cast = cast.model_copy(update={"guards": guards or Guards(enabled=False)})
    cards = cast.roles
    clients = {
        card.name: ScriptedChatCompletionClient(
            replies.get(card.name, ()),
            default=(defaults or {}).get(card.name),
            chunk_delay=chunk_delay,
            stop_signal=signal,
            name=card.name,
        )
        for card in cards
    }
    manager = ScriptedChatCompletionClient(picks, name="manager")
    conversation_id = prior.header.conversation_id if prior and fork_at is None else None
    conversation_id = conversation_id or f"test-{uuid.uuid4().hex[:8]}"
    recall = (
        Recall(memory, conversation_id, memory_settings or MemorySettings())
        if memory is not None
        else None
    )
    debate = Debate(
        team=cast,
        question=question,
        participants=[Participant(card=c, client=clients[c.name]) for c in cards],
        manager_client=manager,
        transcript_path=path,
        stop_signal=signal,
        budget=budget,
        prior=prior,
        fork_at=fork_at,
        conversation_id=conversation_id,
        recall=recall,
    )
    return debate, clients, manager


async def collect(debate: Debate) -> list[LiveEvent]:
    """Run a debate to its end and return everything it streamed."""
    return [event async for event in debate.run()]
