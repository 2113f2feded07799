"""The composition root of a run of any mode: ``build_run(settings, question, mode=...)``.

The team is chosen once (``assemble.choose_team``) and checked against the mode.
``debate`` is ``assemble.build_debate`` unchanged. ``pipeline`` and ``panel`` take their
participants, manager, budget, stop signal and transcript path from ``build_debate`` too, so
which endpoint, model and client each role gets is decided in exactly one place; the debate
built for that is never run. A panel's fallback (its plan refused) is a debate continuing the
panel's transcript with the same clients.

Also here: the panel's lanes. A role's branches run in its endpoint's lane, at most
``PanelSettings.max_concurrency`` at once; every embedded endpoint shares ONE lane of width 1,
because they share one llama.cpp context whose calls serialise on a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from autogen_core.models import ChatCompletionClient

from roundtable.agents import Team
from roundtable.conversations.assemble import build_debate
from roundtable.conversations.budget import Budget
from roundtable.conversations.debate import Debate
from roundtable.conversations.modes import Run
from roundtable.conversations.options import RunOptions
from roundtable.conversations.panel import Panel, PanelSettings
from roundtable.conversations.participant import Participant
from roundtable.conversations.pipeline import Pipeline
from roundtable.conversations.recall import Recall
from roundtable.conversations.settings import Settings
from roundtable.memory import MemoryStore
from roundtable.transcripts.store import Transcript

EMBEDDED_LANE = "(embedded model)"
"""The one lane of every embedded endpoint (a name no TOML endpoint is likely to take)."""


def build_run(
    settings: Settings,
    question: str,
    options: RunOptions | None = None,
    *,
    team: Team | None = None,
    budget: Budget | None = None,
    transcript_path: Path | None = None,
    clients: dict[str, ChatCompletionClient] | None = None,
    manager_client: ChatCompletionClient | None = None,
    stop_signal: threading.Event | None = None,
    memory: MemoryStore | None = None,
    panel: PanelSettings | None = None,
    owner: str | None = None,
) -> Run:
    """A ready run as ``options`` say, on the configured models or on the given ``clients``.

    ``team`` is a team the caller loaded from a file (it wins over ``options.team``); a team
    that cannot run the mode (a panel with no verdict-giver, say) is refused here; ``budget``
    replaces the configured budget (``options.max_turns`` still applies); ``owner`` is whose
    run it is (None: the local user)."""
    options = options or RunOptions()
    mode = options.mode
    if budget is not None:
        settings = settings.model_copy(update={"budget": budget})
    ready = options.apply(settings, team=team)
    settings, cast, budget = ready.settings, ready.team, ready.budget
    memory = memory if ready.memory else None
    panel = panel or settings.panel
    if mode == "debate":
        return build_debate(
            settings,
            question,
            team=cast,
            budget=budget,
            transcript_path=transcript_path,
            clients=clients,
            manager_client=manager_client,
            stop_signal=stop_signal,
            memory=memory,
            owner=owner,
        )
    base = build_debate(
        settings,
        question,
        team=cast,
        budget=budget,
        transcript_path=transcript_path,
        clients=clients,
        manager_client=manager_client,
        stop_signal=stop_signal,
    )
    participants = list(base.participants.values())
    recall = (
        Recall(memory, base.conversation_id, settings.memory, owner)
        if memory is not None and settings.memory.enabled
        else None
    )
    window = base.header.context_window
    if mode == "pipeline":
        return Pipeline(
            team=cast,
            question=base.question,
            participants=participants,
            transcript_path=base.transcript_path,
            stop_signal=base.stop_signal,
            budget=base.budget,
            context_window=window,
            conversation_id=base.conversation_id,
            recall=recall,
            manager_price=settings.endpoints[settings.manager_endpoint].price,
            owner=owner,
        )
    lanes, limits = panel_lanes(settings, participants, panel, given=clients is not None)

    def fallback(transcript: Transcript) -> Debate:
        return build_debate(
            settings,
            question,
            team=cast,
            budget=base.budget,
            clients={p.card.name: p.client for p in participants},
            manager_client=base.manager_client,
            stop_signal=base.stop_signal,
            prior=transcript,
            memory=memory,
            owner=owner,
        )

    return Panel(
        team=cast,
        question=base.question,
        participants=participants,
        manager_client=base.manager_client,
        transcript_path=base.transcript_path,
        stop_signal=base.stop_signal,
        budget=base.budget,
        settings=panel,
        lanes=lanes,
        limits=limits,
        context_window=window,
        conversation_id=base.conversation_id,
        recall=recall,
        fallback=fallback,
        manager_price=settings.endpoints[settings.manager_endpoint].price,
        owner=owner,
    )


def panel_lanes(
    settings: Settings,
    participants: Sequence[Participant],
    panel: PanelSettings,
    *,
    given: bool = False,
) -> tuple[dict[str, str], dict[str, int]]:
    """Each role's lane and each lane's width. With ``given`` clients (tests, demos) every
    endpoint is its own lane of ``max_concurrency``: the configured kinds do not apply."""
    lanes: dict[str, str] = {}
    limits: dict[str, int] = {}
    for participant in participants:
        name, endpoint = settings.endpoint_for(participant.card.name)
        if endpoint.kind == "embedded" and not given:
            lanes[participant.card.name] = EMBEDDED_LANE
            limits[EMBEDDED_LANE] = 1
        else:
            lanes[participant.card.name] = name
            limits[name] = panel.max_concurrency
    return lanes, limits
