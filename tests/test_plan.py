"""Plans: what the manager is asked for, how a reply is read, every reason to refuse one."""

from __future__ import annotations

import json

import pytest

from roundtable.agents import resolve_team
from roundtable.conversations.plan import (
    Plan,
    PlanRefused,
    check_plan,
    find_cycle,
    fixed_steps,
    parse_plan,
    plan_prompt,
    plan_schema,
)
from roundtable.transcripts.events import PlanStep
from tests.support.runs import plan, step

CARDS = resolve_team(None).roles


def checked(reply: str) -> list[PlanStep]:
    return check_plan(parse_plan(reply), CARDS)


def refusal(reply: str) -> str:
    with pytest.raises(PlanRefused) as caught:
        checked(reply)
    return caught.value.reason


def test_a_valid_plan_becomes_steps_with_ids_and_dependencies() -> None:
    steps = checked(
        plan(
            step("researcher", "search_memory", "What do  our documents\nsay?"),
            step("analyst", "analysis", "What does it mean?", after=[1, 1]),
            step("writer", "writing", "Say it plainly.", after=[1, 2]),
        )
    )
    assert steps == [
        PlanStep(
            id="q1", role="researcher", needs="search_memory", question="What do our documents say?"
        ),
        PlanStep(
            id="q2",
            role="analyst",
            needs="analysis",
            question="What does it mean?",
            depends_on=["q1"],
        ),
        PlanStep(
            id="q3",
            role="writer",
            needs="writing",
            question="Say it plainly.",
            depends_on=["q1", "q2"],
        ),
    ]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            plan(
                step("researcher", "research", "A?", after=[3]),
                step("analyst", "analysis", "B?", after=[1]),
                step("critic", "review", "C?", after=[2]),
            ),
            "q1 -> q3 -> q2 -> q1 wait for each other in a cycle",
        ),
        (plan(step("researcher", "research", "A?", after=[1])), "q1 depends on itself"),
        (
            plan(step("researcher", "research", "A?", after=[4])),
            "q1 depends on 'q4', which is not in the plan",
        ),
        (
            plan(step("economist", "analysis", "A?")),
            "q1 goes to 'economist', which is not a role in this run "
            "(researcher, analyst, critic, writer)",
        ),
        (
            plan(step("writer", "research", "A?")),
            "q1 needs 'research', which the writer's card does not cover (it covers: writing)",
        ),
        (
            plan(step("researcher", "flying", "A?")),
            "q1 needs 'flying', which the researcher's card does not cover "
            "(it covers: research, search_memory)",
        ),
        ("not a plan", "the plan is not JSON: 'not a plan'"),
        ("{}", "the plan's field 'q1': Field required"),
        (
            '{"q1": {"role": "analyst", "question": "A?"}}',
            "the plan's field 'q1.needs': Field required",
        ),
        (
            plan(*[step("analyst", "analysis", f"{n}?") for n in range(5)]),
            "the plan's field 'q5': Extra inputs are not permitted",
        ),
    ],
    ids=[
        "cycle",
        "self",
        "missing-dependency",
        "unknown-role",
        "capability-missing",
        "unknown-capability",
        "not-json",
        "empty",
        "missing-field",
        "too-long",
    ],
)
def test_a_bad_plan_is_refused_with_a_clear_reason(reply: str, reason: str) -> None:
    assert refusal(reply).startswith(reason)


def test_every_problem_is_named_at_once() -> None:
    reason = refusal(
        plan(step("economist", "analysis", "A?"), step("analyst", "writing", "B?", after=[2]))
    )
    assert reason == (
        "q1 goes to 'economist', which is not a role in this run "
        "(researcher, analyst, critic, writer); q2 needs 'writing', which the "
        "analyst's card does not cover (it covers: analysis); q2 depends on itself"
    )


def test_find_cycle_ignores_chains_and_diamonds() -> None:
    diamond = Plan.model_validate(
        json.loads(
            plan(
                step("researcher", "research", "A?"),
                step("analyst", "analysis", "B?", after=[1]),
                step("analyst", "analysis", "C?", after=[1]),
                step("writer", "writing", "D?", after=[2, 3]),
            )
        )
    )
    assert find_cycle(diamond) is None


def test_the_schema_lets_each_role_take_only_what_its_card_covers() -> None:
    schema = plan_schema(CARDS).model_json_schema()
    assert schema["required"] == ["q1", "q2", "q3", "q4"]
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    assert sorted(defs) == sorted(
        f"{q}_{role}"
        for q in ("Q1", "Q2", "Q3", "Q4")
        for role in ("researcher", "analyst", "critic", "writer")
    )
    researcher = defs["Q1_researcher"]["properties"]
    assert researcher["role"]["const"] == "researcher"
    assert researcher["needs"]["enum"] == ["research", "search_memory"]
    assert defs["Q2_critic"]["properties"]["needs"]["const"] == "review"
    assert defs["Q3_writer"]["required"] == ["role", "needs", "question", "depends_on"]


def test_the_schema_lets_a_sub_question_depend_on_earlier_ones_only() -> None:
    """So a grammar cannot express a cycle, a self-dependency or a missing sub-question."""
    defs = plan_schema(CARDS).model_json_schema()["$defs"]
    assert defs["Q1_analyst"]["properties"]["depends_on"]["maxItems"] == 0
    assert defs["Q2_analyst"]["properties"]["depends_on"]["items"] == {
        "const": "q1",
        "type": "string",
    }
    assert defs["Q4_analyst"]["properties"]["depends_on"]["items"] == {
        "enum": ["q1", "q2", "q3"],
        "type": "string",
    }
    assert defs["Q4_analyst"]["properties"]["depends_on"]["maxItems"] == 3


def test_the_schema_becomes_a_llama_cpp_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(plan_schema(CARDS).model_json_schema()))
    assert '"\\"analyst\\""' in gbnf and '"\\"search_memory\\""' in gbnf


def test_the_prompt_lists_roles_with_what_they_cover_and_any_refusal() -> None:
    first = plan_prompt("Trams or buses?", CARDS)
    system = str(first[0].content)
    assert "- researcher (covers: research, search_memory): Gathers the facts" in system
    assert "- search_memory: searching the person's documents and the team's notes" in system
    assert str(first[1].content) == "Trams or buses?"
    again = plan_prompt("Trams or buses?", CARDS, refused="sub-question 1 depends on itself")
    assert str(again[-1].content) == (
        "Your previous plan was refused: sub-question 1 depends on itself. Write a corrected plan."
    )


def test_the_pipeline_plan_is_the_roster_in_order() -> None:
    steps = fixed_steps(resolve_team(None).only(["writer", "researcher"]).roles)
    assert [(s.id, s.role, s.needs, s.depends_on) for s in steps] == [
        ("s1", "researcher", "research", []),
        ("s2", "writer", "writing", ["s1"]),
    ]
