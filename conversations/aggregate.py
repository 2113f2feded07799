"""Fan-in: the critic compares a panel's branches, the writer is told what to state.

Owns: the ``Comparison`` the critic produces with constrained output (its ``branches`` are an
enum of the branches that answered, so a grammar cannot name another), the critic's prompt,
reading and checking its reply (``parse_comparison``), and the words the person reads: the
critic's findings as a message (``describe_conflicts``), the writer's brief
(``synthesis_ask``), and the notes appended to the writer's answer (``answer_notes``) so the
disagreements and the missing branches are stated whatever the model wrote.

Does not own: calling the models or scheduling (``panel``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from autogen_core.models import LLMMessage, SystemMessage, UserMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from roundtable.agents import manager_prompts
from roundtable.common.validation import first_error
from roundtable.conversations.stage import INPUT_CHARS
from roundtable.conversations.structured import Refused
from roundtable.transcripts.events import HUMAN, Conflict, MissingBranch, PlanStep

MAX_CONFLICTS = 3
TOPIC_CHARS = 60
DETAIL_CHARS = 160
COMPARE_MAX_TOKENS = MAX_CONFLICTS * (TOPIC_CHARS + DETAIL_CHARS + 60)
"""Room for the longest comparison the schema allows: the grammar closes it, nothing cuts it."""


class Disagreement(BaseModel):
    """One disagreement as the critic writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1, max_length=400)
    branches: list[str] = Field(min_length=2, max_length=16)
    detail: str = Field(default="", max_length=1000)


class Comparison(BaseModel):
    """The critic's comparison of the branches' answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disagreements: list[Disagreement] = Field(default_factory=list, max_length=16)


class ComparisonRefused(Refused):
    """A comparison that cannot be used; the message says why."""


def comparison_schema(answered: Sequence[str]) -> type[BaseModel]:
    """The structured output asked of the critic: branches named from those that answered."""
    branch: Any = Literal[tuple(answered)]
    item = create_model(
        "Disagreement",
        __config__=ConfigDict(extra="forbid"),
        topic=(str, Field(min_length=1, max_length=TOPIC_CHARS)),
        branches=(list[branch], Field(min_length=2, max_length=len(answered))),
        detail=(str, Field(max_length=DETAIL_CHARS)),
    )
    schema: type[BaseModel] = create_model(
        "Comparison",
        __config__=ConfigDict(extra="forbid"),
        disagreements=(list[item], Field(max_length=MAX_CONFLICTS)),  # type: ignore[valid-type]
    )
    return schema


def compare_prompt(
    question: str, answers: Sequence[tuple[PlanStep, str]], instructions: str
) -> list[LLMMessage]:
    """The critic's prompt: its card's instructions, the question, each branch's answer."""
    ids = ", ".join(step.id for step, _ in answers)
    prompts = manager_prompts().compare
    system = SystemMessage(
        content=prompts.fill("system", instructions=instructions.strip(), ids=ids)
    )
    messages: list[LLMMessage] = [system, UserMessage(content=question, source=HUMAN)]
    for step, text in answers:
        cut = text if len(text) <= INPUT_CHARS else text[:INPUT_CHARS] + " [...]"
        messages.append(
            UserMessage(content=f"[{step.id}] {step.question}\n{cut}", source=step.role)
        )
    return messages


def parse_comparison(text: str, answered: Sequence[str]) -> list[Conflict]:
    """The conflicts in the critic's reply; raises ``ComparisonRefused`` saying what is wrong."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise ComparisonRefused(f"the comparison is not JSON: {text[:80]!r}") from None
    try:
        comparison = Comparison.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc, "comparison")
        raise ComparisonRefused(f"the comparison's field {where!r}: {message}") from None
    conflicts: list[Conflict] = []
    for number, item in enumerate(comparison.disagreements, start=1):
        named = list(dict.fromkeys(item.branches))
        unknown = [b for b in named if b not in answered]
        if unknown:
            raise ComparisonRefused(
                f"disagreement {number} names {', '.join(repr(b[:20]) for b in unknown)}, "
                f"not a branch that answered ({', '.join(answered)})"
            )
        if len(named) < 2:
            raise ComparisonRefused(f"disagreement {number} names fewer than two branches")
        conflicts.append(
            Conflict(
                topic=" ".join(item.topic.split()),
                branches=named,
                detail=" ".join(item.detail.split()),
            )
        )
    return conflicts


def describe_conflicts(conflicts: Sequence[Conflict], steps: Sequence[PlanStep]) -> str:
    """The critic's findings as the person reads them."""
    if not conflicts:
        return "The branches do not contradict each other."
    lines = ["The branches disagree:"]
    lines.extend(_conflict_line(c, steps) for c in conflicts)
    return "\n".join(lines)


def synthesis_ask(conflicts: Sequence[Conflict], missing: Sequence[MissingBranch]) -> str:
    """The manager's brief to the writer."""
    prompts = manager_prompts().synthesis
    parts = [prompts.fill("ask")]
    if conflicts:
        parts.append(prompts.fill("conflicts", topics="; ".join(c.topic for c in conflicts)))
    if missing:
        gaps = "; ".join(f"{m.branch} ({m.question})" for m in missing)
        parts.append(prompts.fill("missing", gaps=gaps))
    return " ".join(parts)


def answer_notes(
    conflicts: Sequence[Conflict],
    missing: Sequence[MissingBranch],
    steps: Sequence[PlanStep],
    *,
    compared: bool = True,
) -> str:
    """What the final answer must state, appended under plain headings ("" when nothing)."""
    sections: list[str] = []
    if conflicts:
        lines = ["Disagreements between the branches:"]
        lines.extend(_conflict_line(c, steps) for c in conflicts)
        sections.append("\n".join(lines))
    if not compared:
        sections.append(
            "The comparison of the branches could not be read: disagreements may be unlisted."
        )
    if missing:
        lines = ["Missing from this answer:"]
        lines.extend(
            f"- {m.branch} ({m.role}: {m.question}): {m.status}, {m.reason}" for m in missing
        )
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def _conflict_line(conflict: Conflict, steps: Sequence[PlanStep]) -> str:
    roles = {s.id: s.role for s in steps}
    who = ", ".join(f"{b} ({roles.get(b, '?')})" for b in conflict.branches)
    detail = f": {conflict.detail}" if conflict.detail else ""
    return f"- {conflict.topic} [{who}]{detail}"
