"""Continuing a saved conversation and forking one at a turn, from the transcript alone."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from autogen_core.models import AssistantMessage, UserMessage

from roundtable.agents import ScriptedChatCompletionClient, load_team, resolve_team
from roundtable.conversations import Budget, build_debate, load_settings
from roundtable.transcripts import (
    HUMAN,
    MessageEvent,
    StopEvent,
    load,
)
from tests.support.debates import collect, scripted_debate

GOLDEN = Path(__file__).parent / "golden" / "debate-v1.jsonl"


async def test_continue_appends_to_the_same_transcript_and_agents_remember(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    shutil.copy(GOLDEN, path)
    before = load(path)
    debate, clients, _ = scripted_debate(
        path,
        {"analyst": ["Deliveries can use night windows."], "critic": ["ACCEPT: covered."]},
        question="What about deliveries at night?",
        prior=before,
        budget=Budget(max_turns=2),
        defaults={"writer": "Final."},
    )
    events = await collect(debate)
    after = load(path)
    assert after.header == before.header
    assert after.events[: len(before.events)] == before.events
    new = after.events[len(before.events) :]
    assert isinstance(new[0], MessageEvent) and new[0].speaker == HUMAN
    assert new[0].turn == before.events[-1].turn + 1
    assert isinstance(new[-1], StopEvent)
    assert [e.seq for e in after.events] == list(range(1, len(after.events) + 1))
    # the streamed events are the new ones only (the earlier ones are already on screen)
    committed = [e for e in events[1:] if not hasattr(e, "text") or isinstance(e, MessageEvent)]
    assert committed[0] == new[0]
    # an agent sees the whole earlier debate, its own turns as its own
    first_call = next(c for c in clients.values() if c.calls).calls[0].messages
    speaker = next(n for n, c in clients.items() if c.calls)
    kinds = {
        (type(m).__name__, m.source)
        for m in first_call
        if isinstance(m, AssistantMessage | UserMessage)
    }
    assert ("UserMessage", "researcher") in kinds or speaker == "researcher"
    assert ("UserMessage", HUMAN) in kinds
    if speaker == "critic":
        assert ("AssistantMessage", "critic") in kinds


async def test_fork_at_turn_3_makes_a_child_transcript(tmp_path: Path) -> None:
    original = GOLDEN.read_bytes()
    parent = load(GOLDEN)
    child_path = tmp_path / "child.jsonl"
    debate, _clients, _ = scripted_debate(
        child_path,
        {"analyst": ["A different angle."]},
        question="Suppose buses were free?",
        prior=parent,
        fork_at=3,
        budget=Budget(max_turns=1),
    )
    events = await collect(debate)
    child = load(child_path)
    assert child.header.parent is not None
    assert child.header.parent.conversation_id == parent.header.conversation_id
    assert child.header.parent.turn == 3
    assert child.header.conversation_id != parent.header.conversation_id
    copied = [e for e in child.events if e.turn <= 3]
    assert [e.model_dump(exclude={"seq"}) for e in copied] == [
        e.model_dump(exclude={"seq"}) for e in parent.events if e.turn <= 3
    ]
    fork_message = next(e for e in child.events if e.turn == 4)
    assert isinstance(fork_message, MessageEvent)
    assert (fork_message.speaker, fork_message.content) == (HUMAN, "Suppose buses were free?")
    assert GOLDEN.read_bytes() == original  # the parent is untouched
    assert len([e for e in events if isinstance(e, MessageEvent)]) >= 4


async def test_a_fork_and_a_resume_use_the_recorded_cards_not_the_team_file(
    tmp_path: Path,
) -> None:
    """The header keeps the team's cards: editing the team file later changes nothing for
    an old conversation, and a version-1 transcript carries on with the default cards."""
    team_file = tmp_path / "pair.yaml"
    card = "  - name: {0}\n    description: the {0} of this pair\n    instructions: {1}\n"
    team_file.write_text(
        "name: pair\nroles:\n"
        + card.format("proposer", "Propose one idea.")
        + "    opens: true\n    answers: true\n"
        + card.format("checker", "'Say ACCEPT: or REVISE: first.'")
        + "    gives_verdict: true\n"
    )
    team = load_team(team_file)
    first = tmp_path / "first.jsonl"
    signal = threading.Event()
    replies = {"proposer": "Use trams.", "checker": "REVISE: costs?"}

    def clients() -> dict[str, ScriptedChatCompletionClient]:
        return {
            n: ScriptedChatCompletionClient(default=r, name=n, stop_signal=signal)
            for n, r in replies.items()
        }

    settings = load_settings()
    budget = Budget(max_turns=3)
    await collect(
        build_debate(
            settings,
            "Trams?",
            team=team,
            clients=clients(),
            budget=budget,
            transcript_path=first,
            stop_signal=signal,
        )
    )
    team_file.write_text(team_file.read_text().replace("Propose one idea.", "Changed later."))
    parent = load(first)
    child = tmp_path / "child.jsonl"
    await collect(
        build_debate(
            settings,
            "And buses?",
            clients=clients(),
            budget=Budget(max_turns=1),
            prior=parent,
            fork_at=1,
            transcript_path=child,
            stop_signal=signal,
        )
    )
    recorded = load(child).header.team
    assert recorded is not None and recorded.roles == team.roles  # the cards, guards aside
    assert load(child).header.team.card("proposer").instructions == "Propose one idea."

    v1 = tmp_path / "v1.jsonl"
    shutil.copy(GOLDEN, v1)
    old = load(v1)
    assert old.header.team is None
    resumed = build_debate(
        settings,
        "What about deliveries?",
        clients={
            n: ScriptedChatCompletionClient(default="ACCEPT: ok.", name=n)
            for n in resolve_team(None).roster
        },
        prior=old,
        budget=Budget(max_turns=1),
    )
    assert resumed.header == old.header  # a continued transcript keeps its header
    events = await collect(resumed)
    said = [e for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert said and said[0].speaker in resolve_team(None).roster
