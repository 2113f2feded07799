"""Scripted debates for tests: real agents, real team, real transcript; fixed words."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from agents import ScriptedChatCompletionClient, load_roster
from agents.scripted import Reply
from conversations import Budget, Debate, LiveEvent, Participant, Transcript


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
    chunk_delay: float = 0.0,
    defaults: dict[str, str] | None = None,
    prior: Transcript | None = None,
    fork_at: int | None = None,
) -> tuple[Debate, dict[str, ScriptedChatCompletionClient], ScriptedChatCompletionClient]:
    """A debate whose roles and manager speak from scripts."""
    signal = threading.Event()
    cards = load_roster(None, roles)
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
    debate = Debate(
        question=question,
        participants=[Participant(card=c, client=clients[c.name]) for c in cards],
        manager_client=manager,
        transcript_path=path,
        stop_signal=signal,
        budget=budget,
        prior=prior,
        fork_at=fork_at,
    )
    return debate, clients, manager


async def collect(debate: Debate) -> list[LiveEvent]:
    """Run a debate to its end and return everything it streamed."""
    return [event async for event in debate.run()]
