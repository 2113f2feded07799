"""Speaker selection: rules, the constrained model pick, and a fallback that never cheats."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roundtable.agents import ScriptedChatCompletionClient
from roundtable.conversations import Floor, choose
from roundtable.conversations.selection import allowed, fallback_pick, pick_schema, rule_pick
from roundtable.transcripts import HUMAN
from tests.support.debates import pick

ROSTER = ["researcher", "analyst", "critic", "writer"]
DESCRIPTIONS = {name: f"the {name}" for name in ROSTER}


def floor(speakers: list[str], **kw: object) -> Floor:
    flags = {"opener": "researcher", "reviewer": "critic", "answerer": "writer"}
    return Floor(
        roster=list(ROSTER),
        descriptions=DESCRIPTIONS,
        speakers=speakers,
        **{**flags, **kw},  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("speakers", "extra", "expected"),
    [
        ([HUMAN], {}, ("researcher", "the researcher opens a new question")),
        (
            [HUMAN, "researcher", "writer"],
            {},
            ("critic", "the critic reviews the answer just written"),
        ),
        (
            [HUMAN, "researcher", "critic"],
            {"last_verdict": "ACCEPT"},
            ("writer", "the writer answers: the team's reasoning was accepted"),
        ),
        (
            [HUMAN, "researcher", "analyst"],
            {"turns_left": 2},
            ("writer", "the budget is nearly spent (2 turns left), so the writer answers"),
        ),
        (
            [HUMAN, "researcher", "analyst"],
            {"tokens_left_ratio": 0.1},
            ("writer", "the budget is nearly spent (8 turns left), so the writer answers"),
        ),
    ],
)
def test_rules(speakers: list[str], extra: dict[str, object], expected: tuple[str, str]) -> None:
    decision = rule_pick(floor(speakers, **extra))
    assert decision is not None
    assert (decision.speaker, decision.reason) == expected
    assert decision.method == "rule"


def test_the_rules_follow_the_flags_whatever_the_names() -> None:
    names = ["economist", "lawyer", "sceptic"]
    flags = {"opener": "economist", "reviewer": "sceptic", "answerer": "lawyer"}

    def at(speakers: list[str], **kw: object) -> tuple[str, str] | None:
        state = Floor(
            roster=names,
            descriptions={n: n for n in names},
            speakers=speakers,
            **{**flags, **kw},  # type: ignore[arg-type]
        )
        decision = rule_pick(state)
        return (decision.speaker, decision.reason) if decision else None

    assert at([HUMAN]) == ("economist", "the economist opens a new question")
    assert at([HUMAN, "economist", "lawyer"]) == (
        "sceptic",
        "the sceptic reviews the answer just written",
    )
    assert at([HUMAN, "lawyer", "sceptic"], last_verdict="ACCEPT") == (
        "lawyer",
        "the lawyer answers: the team's reasoning was accepted",
    )
    assert at([HUMAN], opener=None) is None  # no opener: the manager's model chooses


def test_a_team_without_flags_has_no_rules_but_the_persons_ask() -> None:
    bare = Floor(roster=["a", "b"], descriptions={"a": "a", "b": "b"}, speakers=[HUMAN])
    assert rule_pick(bare) is None
    bare.turns_left = 1
    assert rule_pick(bare) is None
    bare.requested = "b"
    decision = rule_pick(bare)
    assert decision is not None and decision.speaker == "b"


def test_no_rule_applies_mid_debate() -> None:
    assert rule_pick(floor([HUMAN, "researcher", "analyst"])) is None


def test_the_person_can_ask_for_a_role_even_the_last_speaker() -> None:
    decision = rule_pick(floor([HUMAN, "critic"], requested="critic"))
    assert decision is not None
    assert (decision.speaker, decision.method) == ("critic", "human")


def test_a_human_turn_after_the_writer_does_not_force_the_critic() -> None:
    assert rule_pick(floor([HUMAN, "writer", HUMAN])) is None


async def test_the_model_picks_among_allowed_candidates_with_a_reason() -> None:
    client = ScriptedChatCompletionClient([pick("critic", "  the analysis needs checking  ")])
    decision = await choose(floor([HUMAN, "researcher", "analyst"]), client, [])
    assert (decision.speaker, decision.method) == ("critic", "model")
    assert decision.reason == "the analysis needs checking"
    call = client.calls[0]
    schema = call.json_output.model_json_schema()  # type: ignore[union-attr]
    assert schema["properties"]["speaker"]["enum"] == ["researcher", "critic", "writer"]
    assert call.extra_create_args == {"max_tokens": 60}
    prompt = str(call.messages[0].content)
    assert "- critic: the critic" in prompt and "- analyst" not in prompt


async def test_invalid_picks_are_retried_then_the_fallback_decides() -> None:
    client = ScriptedChatCompletionClient([pick("analyst"), "gibberish"])
    decision = await choose(floor([HUMAN, "researcher", "analyst"]), client, [])
    assert decision.method == "fallback"
    assert decision.speaker == "critic"  # never spoke, first in roster order among the allowed
    assert decision.failures == [
        "'analyst' is not one of researcher, critic, writer",
        "not JSON: 'gibberish'",
    ]


async def test_a_failing_manager_model_falls_back() -> None:
    client = ScriptedChatCompletionClient([ConnectionError("down"), ConnectionError("down")])
    decision = await choose(floor([HUMAN, "researcher", "analyst"]), client, [])
    assert decision.method == "fallback"
    assert "ConnectionError" in decision.failures[0]


def test_schema_refuses_names_outside_the_candidates() -> None:
    schema = pick_schema(["analyst", "critic"])
    assert schema.model_validate({"speaker": "critic", "reason": "ok"})
    with pytest.raises(ValueError):
        schema.model_validate({"speaker": "writer", "reason": "ok"})


names = st.sampled_from([*ROSTER, HUMAN])


@settings(max_examples=300, deadline=None)
@given(
    speakers=st.lists(names, max_size=30),
    excluded=st.sets(st.sampled_from(ROSTER), max_size=3),
    verdict=st.sampled_from([None, "ACCEPT", "REVISE"]),
    turns_left=st.integers(0, 10),
    junk=st.lists(
        st.one_of(st.text(max_size=30), st.builds(pick, names), st.just('{"speaker": null}')),
        min_size=2,
        max_size=2,
    ),
)
async def test_any_decision_is_an_allowed_speaker(
    speakers: list[str], excluded: set[str], verdict: str | None, turns_left: int, junk: list[str]
) -> None:
    state = floor(speakers, excluded=excluded, last_verdict=verdict, turns_left=turns_left)
    decision = await choose(state, ScriptedChatCompletionClient(junk), [])
    assert decision.speaker in allowed(state)
    assert decision.speaker not in excluded
    assert decision.speaker in decision.candidates
    if decision.method == "model":
        assert (
            json.loads(next(j for j in junk if decision.speaker in j))["speaker"]
            == decision.speaker
        )


def test_the_fallback_rotates_to_whoever_waited_longest() -> None:
    decision = fallback_pick(
        floor([HUMAN, "researcher", "analyst", "critic", "researcher"]), "test"
    )
    assert decision.speaker == "writer"
    decision = fallback_pick(
        floor([HUMAN, "writer", "researcher", "analyst", "critic"], excluded={"writer"}), "test"
    )
    assert decision.speaker == "researcher"
