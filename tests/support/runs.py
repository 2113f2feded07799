"""Scripted pipelines and panels for tests: real agents, real transcript; fixed words."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from autogen_core.models import ChatCompletionClient

from roundtable.agents import (
    EndpointSettings,
    Guards,
    ScriptedChatCompletionClient,
    Team,
    resolve_team,
)
from roundtable.agents.scripted import Reply, load_script
from roundtable.conversations import (
    Budget,
    Debate,
    Participant,
    Settings,
    load_settings,
)
from roundtable.conversations.modes import Run
from roundtable.conversations.panel import Panel, PanelSettings
from roundtable.conversations.pipeline import Pipeline
from roundtable.conversations.recall import MemorySettings, Recall
from roundtable.memory import MemoryStore
from roundtable.transcripts import LiveEvent, Transcript

QUESTION = "Compare trams, buses and bike lanes for a town of 50,000 on cost and emissions"


def step(role: str, needs: str, question: str, after: Sequence[int] = ()) -> dict[str, Any]:
    """One sub-question of a scripted plan; ``after``: numbers of those it depends on."""
    return {
        "role": role,
        "needs": needs,
        "question": question,
        "depends_on": [f"q{n}" for n in after],
    }


def plan(*steps: dict[str, Any]) -> str:
    """A manager reply holding a plan: the steps are ``q1``, ``q2``..."""
    return json.dumps({f"q{n}": s for n, s in enumerate(steps, start=1)})


def comparison(*items: tuple[str, Sequence[str], str]) -> str:
    """A critic reply holding its comparison: (topic, branch ids, detail) per disagreement."""
    return json.dumps(
        {
            "disagreements": [
                {"topic": topic, "branches": list(branches), "detail": detail}
                for topic, branches, detail in items
            ]
        }
    )


def scripted_settings(folder: Path, script: Path | None = None) -> Settings:
    """Settings with every role and the manager on ``script`` (default: the built-in demo
    debate), without its typing delay."""
    quick = load_script(script).model_copy(update={"chunk_delay": 0.0})
    path = folder / "script.yaml"
    path.write_text(yaml.safe_dump(quick.model_dump()))
    endpoint = EndpointSettings(kind="scripted", script=path)
    return load_settings(endpoints={"default": endpoint}, roles={})


def scripted_clients(
    replies: Mapping[str, Iterable[Reply]],
    *,
    defaults: Mapping[str, str] | None = None,
    roles: Sequence[str] | None = None,
    chunk_delay: float = 0.0,
    signal: threading.Event | None = None,
    team: Team | None = None,
) -> dict[str, ScriptedChatCompletionClient]:
    return {
        card.name: ScriptedChatCompletionClient(
            replies.get(card.name, ()),
            default=(defaults or {}).get(card.name),
            chunk_delay=chunk_delay,
            stop_signal=signal,
            name=card.name,
        )
        for card in (team or resolve_team(None)).roles
        if roles is None or card.name in roles
    }


def participants(
    clients: Mapping[str, ChatCompletionClient],
    endpoints: Mapping[str, str] | None = None,
    team: Team | None = None,
) -> list[Participant]:
    return [
        Participant(
            card=card,
            client=clients[card.name],
            endpoint=(endpoints or {}).get(card.name, "default"),
        )
        for card in (team or resolve_team(None)).only(list(clients)).roles
    ]


def recall_for(store: MemoryStore | None, conversation_id: str) -> Recall | None:
    if store is None:
        return None
    return Recall(store, conversation_id, MemorySettings(min_score=0.2))


def scripted_pipeline(
    path: Path,
    replies: Mapping[str, Iterable[Reply]],
    *,
    question: str = QUESTION,
    roles: Sequence[str] | None = None,
    budget: Budget | None = None,
    chunk_delay: float = 0.0,
    memory: MemoryStore | None = None,
    team: Team | None = None,
) -> tuple[Pipeline, dict[str, ScriptedChatCompletionClient]]:
    signal = threading.Event()
    cast = (team or resolve_team(None)).only(roles)
    clients = scripted_clients(
        replies, roles=roles, chunk_delay=chunk_delay, signal=signal, team=cast
    )
    conversation_id = f"test-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline(
        team=cast,
        question=question,
        participants=participants(clients, team=cast),
        transcript_path=path,
        stop_signal=signal,
        budget=budget,
        conversation_id=conversation_id,
        recall=recall_for(memory, conversation_id),
    )
    return pipeline, clients


def scripted_panel(
    path: Path,
    replies: Mapping[str, Iterable[Reply]],
    *,
    plans: Iterable[Reply] = (),
    picks: Iterable[Reply] = (),
    question: str = QUESTION,
    defaults: Mapping[str, str] | None = None,
    settings: PanelSettings | None = None,
    chunk_delay: float = 0.0,
    lanes: Mapping[str, str] | None = None,
    limits: Mapping[str, int] | None = None,
    fallback: bool = True,
    memory: MemoryStore | None = None,
    team: Team | None = None,
) -> tuple[Panel, dict[str, ScriptedChatCompletionClient], ScriptedChatCompletionClient]:
    """A panel whose manager replies ``plans`` (then ``picks``, if it falls back to a debate,
    without the protocol guards: the scripts predate them)."""
    signal = threading.Event()
    cast = (team or resolve_team(None)).model_copy(update={"guards": Guards(enabled=False)})
    clients = scripted_clients(
        replies, defaults=defaults, chunk_delay=chunk_delay, signal=signal, team=cast
    )
    manager = ScriptedChatCompletionClient([*plans, *picks], name="manager")
    conversation_id = f"test-{uuid.uuid4().hex[:8]}"
    roster = participants(clients, team=cast)

    def debate(transcript: Transcript) -> Run:
        return Debate(
            team=cast,
            question=question,
            participants=roster,
            manager_client=manager,
            transcript_path=transcript.path,
            stop_signal=signal,
            prior=transcript,
        )

    panel = Panel(
        team=cast,
        question=question,
        participants=roster,
        manager_client=manager,
        transcript_path=path,
        stop_signal=signal,
        settings=settings,
        lanes=lanes,
        limits=limits,
        conversation_id=conversation_id,
        recall=recall_for(memory, conversation_id),
        fallback=debate if fallback else None,
    )
    return panel, clients, manager


async def collect(run: Run) -> list[LiveEvent]:
    """Run to the end and return everything it streamed."""
    return [event async for event in run.run()]


async def collect_and_close(run: Panel | Pipeline) -> list[LiveEvent]:
    """``collect``, then close the run's model clients in this event loop (HTTP clients left
    to the garbage collector would try to close in a loop that has gone)."""
    try:
        return await collect(run)
    finally:
        clients = [p.client for p in run.participants.values()]
        if isinstance(run, Panel) and run.manager_client is not None:
            clients.append(run.manager_client)
        for client in clients:
            await client.close()
