"""A panel's plan: sub-questions, the role that takes each, and what each waits for.

Owns: the ``Plan`` record the manager produces; the constrained output it is asked for
(``plan_schema``: per role, only the capabilities its card covers, so a JSON schema or a
llama.cpp grammar cannot express a wrong pairing); the manager's prompt; reading a reply
(``parse_plan``); and checking a plan against the run's role cards (``check_plan``): an unknown
role, a role whose card does not cover what the sub-question needs, a dependency on a missing
sub-question and a cycle are each refused with a reason a person can read. A model that
ignores the schema (a scripted one, an endpoint without structured output) is checked the same.

Also here: the pipeline's plan (``fixed_steps``), the roster in order, each stage after the last.

Does not own: calling the model or running the plan (``panel``, ``pipeline``).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from autogen_core.models import LLMMessage, SystemMessage, UserMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from roundtable.agents import RoleCard, manager_prompts
from roundtable.common.errors import ConfigError
from roundtable.common.validation import first_error
from roundtable.conversations.structured import Refused
from roundtable.transcripts.events import HUMAN, PlanStep

MAX_STEPS = 4
STEP_IDS: tuple[str, ...] = tuple(f"q{n}" for n in range(1, MAX_STEPS + 1))
"""A plan names its sub-questions ``q1`` to ``q4``: the keys of the manager's JSON."""
QUESTION_CHARS = 120
"""A sub-question's length in the constrained output (the grammar closes the string)."""
PLAN_MAX_TOKENS = MAX_STEPS * (QUESTION_CHARS + 50)
"""Room for the longest plan the schema allows (a string takes at most a token a character),
so a rambling model is closed by the grammar, not cut off mid-JSON."""
LENIENT_QUESTION_CHARS = 1000
"""A model that ignores the schema may write longer sub-questions, up to this."""


class SubQuestion(BaseModel):
    """One sub-question as the manager wrote it; ``depends_on`` names other sub-questions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = Field(min_length=1, max_length=64)
    needs: str = Field(min_length=1, max_length=64)
    question: str = Field(min_length=1, max_length=LENIENT_QUESTION_CHARS)
    depends_on: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_STEPS
    )


class Plan(BaseModel):
    """The manager's plan, as read from its reply; ``check_plan`` decides whether it runs.

    Keyed by id rather than a list, so that the constrained output can let ``q3`` depend on
    ``q1`` and ``q2`` only: a grammar then cannot express a cycle, a self-dependency or a
    missing one. A model that ignores the schema can, and is refused by ``check_plan``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    q1: SubQuestion
    q2: SubQuestion | None = None
    q3: SubQuestion | None = None
    q4: SubQuestion | None = None

    def sub_questions(self) -> list[tuple[str, SubQuestion]]:
        """The plan's sub-questions with their ids, in id order."""
        found = ((sid, getattr(self, sid)) for sid in STEP_IDS)
        return [(sid, sub) for sid, sub in found if sub is not None]


class PlanRefused(Refused):
    """A plan that cannot run; ``reason`` names every problem found."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def planners(cards: Sequence[RoleCard]) -> list[RoleCard]:
    """The roles a plan may use: those whose card covers anything."""
    return [card for card in cards if card.coverage]


def plan_schema(cards: Sequence[RoleCard]) -> type[BaseModel]:
    """The structured output asked of the manager.

    Each sub-question is one of the roles with only what its card covers, and ``q<n>`` may
    depend on earlier sub-questions only. ``q2`` to ``q4`` are required but nullable, as
    strict structured output wants every key present.
    """
    roles = planners(cards)
    if not roles:
        raise ConfigError("a panel needs a role whose card lists capabilities or tools")
    fields: dict[str, Any] = {}
    for position, sid in enumerate(STEP_IDS):
        earlier: Any = Literal[STEP_IDS[:position]] if position else str
        variants: list[Any] = []
        for card in roles:
            role: Any = Literal[card.name]
            needs: Any = Literal[tuple(card.coverage)]
            variants.append(
                create_model(
                    f"{sid.upper()}_{card.name}",
                    __config__=ConfigDict(extra="forbid"),
                    role=(role, ...),
                    needs=(needs, ...),
                    question=(str, Field(min_length=1, max_length=QUESTION_CHARS)),
                    depends_on=(list[earlier], Field(max_length=position)),
                )
            )
        step: Any = functools.reduce(operator.or_, variants)
        fields[sid] = (step, ...) if not position else (step | None, ...)
    schema: type[BaseModel] = create_model("Plan", __config__=ConfigDict(extra="forbid"), **fields)
    return schema


def plan_prompt(
    question: str, cards: Sequence[RoleCard], refused: str | None = None
) -> list[LLMMessage]:
    """The manager's prompt: the roles and what they cover, the question, any earlier refusal."""
    roles = "\n".join(
        f"- {card.name} (covers: {', '.join(card.coverage)}): {card.description.strip()}"
        for card in planners(cards)
    )
    prompts = manager_prompts().plan
    needs = "\n".join(
        f"- {need}: {prompts.needs.get(need, need)}"
        for need in dict.fromkeys(n for card in planners(cards) for n in card.coverage)
    )
    system = SystemMessage(content=prompts.fill("system", roles=roles, needs=needs))
    messages: list[LLMMessage] = [system, UserMessage(content=question, source=HUMAN)]
    if refused is not None:
        messages.append(
            UserMessage(content=prompts.fill("refused", refused=refused), source="manager")
        )
    return messages


def parse_plan(text: str) -> Plan:
    """Read a plan from a reply; raises ``PlanRefused`` saying what is wrong with it."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise PlanRefused(f"the plan is not JSON: {text[:80]!r}") from None
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc, "plan")
        raise PlanRefused(f"the plan's field {where!r}: {message}") from None


def check_plan(plan: Plan, cards: Sequence[RoleCard]) -> list[PlanStep]:
    """The plan's steps, ready to run; raises ``PlanRefused`` naming every problem."""
    by_name = {card.name: card for card in cards}
    subs = plan.sub_questions()
    ids = [sid for sid, _ in subs]
    problems: list[str] = []
    for sid, sub in subs:
        card = by_name.get(sub.role)
        if card is None:
            problems.append(
                f"{sid} goes to {sub.role!r}, which is not a role in this run "
                f"({', '.join(by_name)})"
            )
        elif not card.covers(sub.needs):
            problems.append(
                f"{sid} needs {sub.needs!r}, which the {card.name}'s card does not cover "
                f"(it covers: {', '.join(card.coverage) or 'nothing'})"
            )
        for dep in dict.fromkeys(sub.depends_on):
            if dep == sid:
                problems.append(f"{sid} depends on itself")
            elif dep not in ids:
                problems.append(f"{sid} depends on {dep!r}, which is not in the plan")
    cycle = find_cycle(plan)
    if cycle is not None:
        problems.append(f"{' -> '.join(cycle)} wait for each other in a cycle")
    if problems:
        raise PlanRefused("; ".join(problems))
    return raw_steps(plan)


def raw_steps(plan: Plan) -> list[PlanStep]:
    """A plan's steps as written, unchecked: also how a refused plan is recorded."""
    return [
        PlanStep(
            id=sid,
            role=sub.role,
            needs=sub.needs,
            question=" ".join(sub.question.split()) or "?",
            depends_on=list(dict.fromkeys(sub.depends_on)),
        )
        for sid, sub in plan.sub_questions()
    ]


def find_cycle(plan: Plan) -> list[str] | None:
    """Two or more sub-questions waiting for each other (the first repeated last), or None.

    Self-dependencies and unknown ids are reported by ``check_plan``, not here.
    """
    subs = dict(plan.sub_questions())
    edges = {
        sid: [d for d in dict.fromkeys(sub.depends_on) if d in subs and d != sid]
        for sid, sub in subs.items()
    }
    state: dict[str, Literal["open", "done"]] = {}
    for start in edges:
        if start in state:
            continue
        path = [start]
        pending = [iter(edges[start])]
        state[start] = "open"
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[path.pop()] = "done"
                pending.pop()
            elif state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = "open"
                path.append(nxt)
                pending.append(iter(edges[nxt]))
    return None


def fixed_steps(cards: Sequence[RoleCard]) -> list[PlanStep]:
    """A pipeline's plan: every role in roster order, each building on the one before."""
    need = {card.name: next(iter(card.coverage), card.name) for card in cards}
    steps: list[PlanStep] = []
    for number, card in enumerate(cards, start=1):
        steps.append(
            PlanStep(
                id=f"s{number}",
                role=card.name,
                needs=need[card.name],
                question=card.stage_task,
                depends_on=[f"s{number - 1}"] if number > 1 else [],
            )
        )
    return steps


assert tuple(Plan.model_fields) == STEP_IDS, "Plan's fields must be the step ids"
