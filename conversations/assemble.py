"""The composition root of a debate: settings and role cards become a ready ``Debate``.

This is where configuration is checked before any work starts: unknown roles, bad endpoints
and a missing model file all fail here with one clear line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from autogen_core.models import ChatCompletionClient

from roundtable.agents import Team, check_endpoint, exact_counter, make_client, resolve_team
from roundtable.common.errors import ConfigError, InfraError
from roundtable.conversations import observe
from roundtable.conversations.budget import Budget
from roundtable.conversations.debate import Debate
from roundtable.conversations.participant import Participant, check_question, new_conversation_id
from roundtable.conversations.recall import Recall, open_memory
from roundtable.conversations.settings import Settings
from roundtable.memory import MemoryStore
from roundtable.transcripts.store import Transcript

MANAGER_MAX_TOKENS = 60


def build_debate(
    settings: Settings,
    question: str,
    *,
    team: Team | None = None,
    roles: Sequence[str] | None = None,
    budget: Budget | None = None,
    transcript_path: Path | None = None,
    clients: dict[str, ChatCompletionClient] | None = None,
    manager_client: ChatCompletionClient | None = None,
    stop_signal: threading.Event | None = None,
    prior: Transcript | None = None,
    fork_at: int | None = None,
    memory: MemoryStore | None = None,
    owner: str | None = None,
) -> Debate:
    """A debate on the configured models, or on the given ``clients`` (tests, demos).

    With ``prior``, the debate continues that transcript (same file) with ``question`` as the
    person's new message; with ``fork_at`` too, it branches at that turn into a new file that
    records its parent. ``owner`` is whose run it is (None: the local user): its header says
    so and its memory is that user's alone; a continued debate keeps its transcript's owner.
    """
    text = check_question(question)
    cast = choose_team(settings, team=team, roles=roles, prior=prior)
    cards = cast.roles
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
                shape=card.shape,
            )
        participants.append(
            Participant(
                card=card,
                client=client,
                endpoint=endpoint_name,
                model=endpoint.model,
                price=endpoint.price,
                window=settings.window_of(endpoint),
                counter=exact_counter(endpoint, settings.embedded) if clients is None else None,
                shared_first=endpoint.prompt_layout == "shared_first",
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
    if prior is not None and fork_at is None:
        owner = prior.header.owner
    recall = (
        Recall(memory, conversation_id, settings.memory, owner)
        if memory is not None and settings.memory.enabled
        else None
    )
    path = transcript_path or settings.transcripts_dir / f"{conversation_id}.jsonl"
    window = settings.window_of(settings.endpoints["default"])
    return Debate(
        team=cast,
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
        manager_price=settings.endpoints[settings.manager_endpoint].price,
        manager_shared_first=(
            settings.endpoints[settings.manager_endpoint].prompt_layout == "shared_first"
        ),
        owner=owner,
    )


def choose_team(
    settings: Settings,
    *,
    team: Team | None = None,
    roles: Sequence[str] | None = None,
    prior: Transcript | None = None,
) -> Team:
    """The cast of a run: a continued or forked one keeps its transcript's team (the default
    team's cards for a version-1 transcript); a new one takes ``team`` or the configured
    team. ``roles`` keeps a subset; configured ``guards`` replace the team's."""
    if prior is not None:
        recorded = prior.header.team or resolve_team(None)
        cast = recorded.only([r.name for r in prior.header.roles])
        cast = cast.only(roles) if roles is not None else cast
    else:
        cast = (team or resolve_team(settings.team, settings.teams_dir)).only(roles)
    return settings.guarded(cast)


async def preflight(settings: Settings, team: Team) -> None:
    """Check, in seconds, that every endpoint the run will use answers."""
    names = {settings.manager_endpoint}
    for role in team.roster:
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


def open_memory_if_possible(
    settings: Settings, warn: Callable[[str], None] | None = None
) -> MemoryStore | None:
    """The memory store, or None when memory is off or another process owns it: then the
    reason goes to ``warn`` (the terminal prints it), else to the log."""
    if not settings.memory.enabled:
        return None
    try:
        return open_memory(settings.memory, settings.data_dir)
    except InfraError as exc:
        if warn is not None:
            warn(str(exc))
        else:
            observe.log(
                "memory_unavailable", conversation_id="-", level=logging.WARNING, error=str(exc)
            )
        return None
