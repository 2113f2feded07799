"""The protocol guards on the real embedded model (SmolLM2 through llama.cpp), end to end.

Before the guards, the critic accepted the first draft, replies repeated the turn before, and
the manager's reasons named other roles than its pick. Here a debate on the shipped model must
show none of that: the verdict-giver's first verdict is a REVISE with a point (the grammar
forces the form while a revision is owed), no committed reply is a copy, every model pick's
reason names its pick and no other role, and every rejected reply is recorded as an error.
A card's ``shape`` (a grammar) holds the role's replies to its form.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roundtable.agents import Guards, resolve_team
from roundtable.common.errors import ConfigError
from roundtable.conversations import Budget, RunOptions, build_run, load_settings
from roundtable.conversations.quality import has_point
from roundtable.conversations.reasons import names_only
from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    GuardEvent,
    MessageEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
    load,
)

pytestmark = [pytest.mark.model, pytest.mark.guards]

TURNS = 8
"""The answerer drafts by turn 5 (half used), so the verdict-giver reviews with turns to spare."""

QUESTIONS = [
    "Should our city ban private cars downtown?",
    "Is it worth replacing a school's paper textbooks with tablets?",
]


@pytest.mark.parametrize("question", QUESTIONS)
async def test_a_guarded_debate_on_the_embedded_model_revises_before_it_accepts(
    question: str, tmp_path: Path
) -> None:
    settings = load_settings()
    path = tmp_path / "guarded.jsonl"
    run = build_run(
        settings,
        question,
        RunOptions(max_turns=TURNS),
        budget=Budget(max_turns=TURNS, turn_deadline_s=240),
        transcript_path=path,
    )
    events = [event async for event in run.run()]
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code in {"accepted", "max_turns"}, stop
    saved = load(path).events
    team = resolve_team(None)
    reviewer = team.holder("gives_verdict")

    said = [e for e in saved if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    verdicts = [e for e in said if e.speaker == reviewer]
    assert verdicts, [e.speaker for e in said]  # the answerer drafts by mid-budget: reviewed
    first = verdicts[0]
    left = TURNS - sum(e.seq < first.seq for e in said)
    if left > 2:  # a revision is owed while more than 2 turns are left
        assert first.verdict == "REVISE", first.content
        earlier = [e.content for e in saved if isinstance(e, MessageEvent) and e.seq < first.seq]
        assert has_point(first.content, [*earlier, team.card(reviewer or "").instructions])

    report = next(e for e in saved if isinstance(e, QualityEvent)).report
    assert report.copied_turns == 0, report

    roster = team.roster
    for pick in (e for e in saved if isinstance(e, SelectionEvent) and e.method == "model"):
        assert names_only(pick.reason, pick.speaker, roster), pick.reason

    rejected = [e for e in saved if isinstance(e, GuardEvent) and e.action == "rejected"]
    errors = [e for e in saved if isinstance(e, ErrorEvent) and "not committed" in e.message]
    assert len(rejected) == len(errors)


FACT_LIST = r"""root ::= item ("\n" item){1,3}
item ::= "- " [^\n]+
"""
"""A list of two to four facts, one per line."""


async def test_a_cards_shape_holds_its_replies_to_the_grammar_on_the_embedded_model(
    tmp_path: Path,
) -> None:
    team = resolve_team(None)
    opener = team.holder("opens") or ""
    shaped = [
        card.model_copy(update={"shape": FACT_LIST}) if card.name == opener else card
        for card in team.roles
    ]
    cast = team.model_copy(update={"roles": shaped})
    path = tmp_path / "shaped.jsonl"
    run = build_run(
        load_settings(),
        "Should our town build a new library?",
        RunOptions(max_turns=2),
        team=cast,
        budget=Budget(max_turns=2, turn_deadline_s=240),
        transcript_path=path,
    )
    [event async for event in run.run()]
    saved = load(path)
    first = next(e for e in saved.events if isinstance(e, MessageEvent) and e.speaker == opener)
    lines = first.content.strip().splitlines()
    assert 2 <= len(lines) <= 4 and all(line.startswith("- ") for line in lines), first.content
    assert saved.header.team is not None
    assert saved.header.team.card(opener).shape == FACT_LIST  # the shape travels with it


def test_a_shape_that_is_not_a_grammar_is_one_clear_error(tmp_path: Path) -> None:
    team = resolve_team(None)
    broken = [card.model_copy(update={"shape": "this is not GBNF"}) for card in team.roles]
    with pytest.raises(ConfigError, match="GBNF"):
        build_run(
            load_settings(),
            "Should our town build a new library?",
            team=team.model_copy(update={"roles": broken}),
            transcript_path=tmp_path / "broken.jsonl",
        )


async def test_a_reply_cut_at_its_token_cap_is_marked_as_cut(tmp_path: Path) -> None:
    team = resolve_team(None)
    opener = team.holder("opens") or ""
    capped = [
        card.model_copy(update={"model": card.model.model_copy(update={"max_tokens": 8})})
        if card.name == opener
        else card
        for card in team.roles
    ]
    path = tmp_path / "capped.jsonl"
    run = build_run(
        load_settings(),
        "Explain in detail how a city tram network is planned and paid for.",
        RunOptions(max_turns=1),
        team=team.model_copy(update={"roles": capped, "guards": Guards(enabled=False)}),
        budget=Budget(max_turns=1, turn_deadline_s=240),
        transcript_path=path,
    )
    [event async for event in run.run()]
    first = next(
        e for e in load(path).events if isinstance(e, MessageEvent) and e.speaker == opener
    )
    assert first.truncated and first.usage.completion_tokens == 8, first
