"""The composition root of a debate: settings and role cards become a ready ``Debate``.

This is where configuration is checked before any work starts: unknown roles, bad endpoints
and a missing model file all fail here with one clear line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from autogen_core.models import ChatCompletionClient

from agents import check_endpoint, exact_counter, load_roster, make_client
from common.errors import ConfigError, InfraError
from conversations import observe
from conversations.budget import Budget
from conversations.debate import Debate, Participant, check_question, new_conversation_id
from conversations.recall import Recall, open_memory
from conversations.settings import Settings
from conversations.transcript import Transcript
from memory import MemoryStore

MANAGER_MAX_TOKENS = 60


def build_debate(
    settings: Settings,
    question: str,
    *,
    roles: Sequence[str] | None = None,
    budget: Budget | None = None,
    transcript_path: Path | None = None,
    clients: dict[str, ChatCompletionClient] | None = None,
    manager_client: ChatCompletionClient | None = None,
    stop_signal: threading.Event | None = None,
    prior: Transcript | None = None,
    fork_at: int | None = None,
    memory: MemoryStore | None = None,
) -> Debate:
    """A debate on the configured models, or on the given ``clients`` (tests, demos).

    With ``prior``, the debate continues that transcript (same file) with ``question`` as the
    person's new message; with ``fork_at`` too, it branches at that turn into a new file that
    records its parent.
    """
    text = check_question(question)
    if prior is not None and roles is None:
        roles = [role.name for role in prior.header.roles]
    cards = load_roster(settings.cards_dir, roles)
    signal = stop_signal or threading.Event()
    participants: list[Participant] = []
    for card in cards:
        endpoint_name, endpoint = settings.endpoint_for(card.name)
        if clients is not None:
            if card.name not in clients:
                raise ConfigError(f"no model client given for role {card.name!r}")
            client = clients[card.name]
        else:
            client = make_client(
                endpoint,
                name=endpoint_name,
                role=card.name,
                max_tokens=card.model.max_tokens,
                temperature=card.model.temperature,
                gives_verdict=card.gives_verdict,
                stop_signal=signal,
                embedded=settings.embedded,
            )
        participants.append(
            Participant(
                card=card,
                client=client,
                endpoint=endpoint_name,
                model=endpoint.model,
                window=settings.window_of(endpoint),
                counter=exact_counter(endpoint, settings.embedded) if clients is None else None,
            )
        )
    if manager_client is None and clients is None:
        manager = settings.endpoints[settings.manager_endpoint]
        if manager.kind == "openai":  # a hung manager must not hold a turn past its deadline
            deadline = (budget or settings.budget).turn_deadline_s / 2
            timeout = min(manager.call_timeout_s or deadline, deadline)
            manager = manager.model_copy(update={"call_timeout_s": timeout})
        manager_client = make_client(
            manager,
            name=settings.manager_endpoint,
            role="manager",
            max_tokens=MANAGER_MAX_TOKENS,
            temperature=0.2,
            gives_verdict=False,
            stop_signal=threading.Event(),  # the manager's pick is short and never cut
            embedded=settings.embedded,
        )
    conversation_id = prior.header.conversation_id if prior and fork_at is None else None
    conversation_id = conversation_id or new_conversation_id()
    recall = (
        Recall(memory, conversation_id, settings.memory)
        if memory is not None and settings.memory.enabled
        else None
    )
    path = transcript_path or settings.transcripts_dir / f"{conversation_id}.jsonl"
    window = settings.window_of(settings.endpoints["default"])
    return Debate(
        question=text,
        participants=participants,
        manager_client=manager_client,
        transcript_path=path,
        stop_signal=signal,
        budget=budget or settings.budget,
        context_window=window,
        conversation_id=conversation_id,
        prior=prior,
        fork_at=fork_at,
        recall=recall,
    )


async def preflight(settings: Settings, roles: Sequence[str] | None = None) -> None:
    """Check, in seconds, that every endpoint the debate will use answers."""
    names = {settings.manager_endpoint}
    for role in roles or [c.name for c in load_roster(settings.cards_dir)]:
        names.add(settings.endpoint_for(role)[0])
    for name in sorted(names):
        await check_endpoint(settings.endpoints[name], name)


def start_observing(settings: Settings) -> None:
    """JSON logs in the data folder (and tracing when configured), once per process."""
    observe.configure(
        log_file=settings.data_dir / "logs" / "roundtable.jsonl",
        level=settings.log_level,
        stderr=settings.log_stderr,
        secrets=settings.secrets(),
        otlp_endpoint=settings.otlp_endpoint,
    )


def open_memory_if_possible(settings: Settings) -> MemoryStore | None:
    """The memory store, or None (logged) when memory is off or another process owns it."""
    if not settings.memory.enabled:
        return None
    try:
        return open_memory(settings.memory, settings.data_dir)
    except InfraError as exc:
        observe.log(
            "memory_unavailable", conversation_id="-", level=logging.WARNING, error=str(exc)
        )
        return None
