"""Speaker selection: rules first, a constrained model pick second, a fallback last.

``choose`` is the whole strategy. It looks at the ``Floor`` (who spoke, what the critic said,
how much budget is left) and returns a ``Decision`` naming the speaker, the candidates it
chose from, the method and a one-line reason. The model pick is constrained to the allowed
candidates (a JSON schema whose ``speaker`` is an enum of them), checked again against the
roster, and retried a bounded number of times; the fallback never returns an excluded name.

This module owns the choice; what the manager reads for it is ``pick_prompt``'s, the retries
are ``structured.ask``. It does not run agents or write transcripts.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autogen_core.models import ChatCompletionClient, LLMMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from roundtable.common.secrets import error_text
from roundtable.common.validation import first_error
from roundtable.conversations.pick_prompt import PICK_MAX_TOKENS, pick_prompt
from roundtable.conversations.reasons import fit_reason
from roundtable.conversations.structured import Refused, ask
from roundtable.transcripts.events import HUMAN, Method, Usage

REASON_CHARS = 160


class Decision(BaseModel):
    """Who speaks next, chosen how, and why."""

    model_config = ConfigDict(frozen=True)

    candidates: list[str]
    speaker: str
    method: Method
    reason: str
    usage: Usage = Usage()
    failures: list[str] = Field(default_factory=list)
    """Model picks that were refused before this decision (model misbehaviour, recorded)."""
    dropped_reason: str | None = None
    """The model's own reason, when it named another role and was left out."""


@dataclass
class Floor:
    """What the rules look at: the state of the debate between two turns."""

    roster: list[str]
    descriptions: dict[str, str]
    speakers: list[str] = field(default_factory=list)
    """Every committed speaker so far, the person included, oldest first."""
    last_verdict: Literal["ACCEPT", "REVISE"] | None = None
    """The reviewer's verdict, when the reviewer spoke last."""
    turns_left: int = 8
    tokens_left_ratio: float = 1.0
    requested: str | None = None
    """A role the person asked to answer next (``/ask critic ...``)."""
    excluded: set[str] = field(default_factory=set)
    """Roles that may not speak next (e.g. one whose last call failed)."""
    opener: str | None = None
    """The role that opens a new question (the team's ``opens`` flag)."""
    reviewer: str | None = None
    """The role whose verdicts accept or revise (``gives_verdict``)."""
    answerer: str | None = None
    """The role that writes the answer (``answers``)."""
    tasks: dict[str, str] = field(default_factory=dict)
    """Each role's task, stated in a model pick's reason (``reasons.fit_reason``)."""
    fit_reasons: bool = False
    """Whether a model pick's reason is built from the task, and the answerer drafts by
    mid-budget (the team's guards are on)."""
    max_turns: int = 8
    """The run's turn budget (``turns_left`` counts down from it)."""

    @property
    def last_speaker(self) -> str | None:
        return self.speakers[-1] if self.speakers else None

    @property
    def last_agent(self) -> str | None:
        return next((s for s in reversed(self.speakers) if s != HUMAN), None)

    @property
    def nearly_spent(self) -> bool:
        """Two turns or less, or 15% of the tokens or less, are left."""
        return self.turns_left <= 2 or self.tokens_left_ratio <= 0.15

    def agent_spoke_since_human(self) -> bool:
        return bool(self.speakers) and self.speakers[-1] != HUMAN


def allowed(floor: Floor) -> list[str]:
    """Who may speak next: never the previous speaker, never an excluded role."""
    return [
        name for name in floor.roster if name != floor.last_agent and name not in floor.excluded
    ] or [name for name in floor.roster if name not in floor.excluded]


def rule_pick(floor: Floor) -> Decision | None:
    """The fixed rules of a debate; None when no rule applies. Each reason names the chosen
    role and no other (``reasons.names_only``), as a model pick's does."""
    candidates = allowed(floor)
    if not candidates:
        return None
    if floor.requested in floor.roster:
        return Decision(
            candidates=[floor.requested],
            speaker=floor.requested,
            method="human",
            reason=f"the person asked the {floor.requested} to answer next",
        )

    def rule(name: str, reason: str) -> Decision | None:
        if name in candidates:
            return Decision(candidates=candidates, speaker=name, method="rule", reason=reason)
        return None

    opener, reviewer, answerer = floor.opener, floor.reviewer, floor.answerer
    if floor.last_agent is None and opener is not None:
        return rule(opener, f"the {opener} opens a new question")
    spoke = floor.agent_spoke_since_human()
    if reviewer is not None and answerer is not None and floor.last_agent == answerer and spoke:
        return rule(reviewer, f"the {reviewer} reviews the answer just written")
    if answerer is not None and floor.last_verdict == "ACCEPT" and floor.last_speaker == reviewer:
        return rule(answerer, f"the {answerer} answers: the team's reasoning was accepted")
    if answerer is not None and floor.fit_reasons and _draft_due(floor, answerer):
        return rule(answerer, f"the {answerer} drafts the answer: half the turns are used")
    answered = floor.last_agent == answerer or (
        len(floor.speakers) >= 2 and floor.speakers[-2:] == [answerer, reviewer]
    )
    if answerer is not None and floor.nearly_spent and not answered:
        left = f"{floor.turns_left} turn{'s' if floor.turns_left != 1 else ''} left"
        return rule(answerer, f"the budget is nearly spent ({left}), so the {answerer} answers")
    return None


def _draft_due(floor: Floor, answerer: str) -> bool:
    """Half the turns are used and the answerer has not drafted since the person last spoke:
    a draft now leaves the verdict-giver turns to ask for a revision before the budget is
    nearly spent (when the guards would let it accept at once)."""
    since = floor.speakers[_last_human(floor.speakers) + 1 :]
    used = floor.max_turns - floor.turns_left
    return answerer not in since and used * 2 >= floor.max_turns


def _last_human(speakers: list[str]) -> int:
    return len(speakers) - 1 - speakers[::-1].index(HUMAN) if HUMAN in speakers else -1


def fallback_pick(floor: Floor, why: str) -> Decision:
    """Deterministic: the allowed candidate who has waited longest (roster order breaks ties)."""
    candidates = allowed(floor)
    last_turn = {name: -1 for name in candidates}
    for index, speaker in enumerate(floor.speakers):
        if speaker in last_turn:
            last_turn[speaker] = index
    speaker = min(candidates, key=lambda n: (last_turn[n], floor.roster.index(n)))
    return Decision(
        candidates=candidates,
        speaker=speaker,
        method="fallback",
        reason=f"{why}; {speaker} has waited longest",
    )


def pick_schema(candidates: Sequence[str]) -> type[BaseModel]:
    """The structured output the model must produce: a speaker from the candidates, a reason.

    Cached per candidate tuple: the same class each time lets the model client reuse its
    compiled grammar (building both cost ~2 ms per pick).
    """
    return _pick_schema(tuple(candidates))


@functools.lru_cache(maxsize=64)
def _pick_schema(candidates: tuple[str, ...]) -> type[BaseModel]:
    speaker_type: Any = Literal[candidates]
    model: type[BaseModel] = create_model(
        "SpeakerPick",
        speaker=(speaker_type, ...),
        reason=(str, Field(max_length=REASON_CHARS)),
    )
    return model


async def model_pick(
    floor: Floor,
    client: ChatCompletionClient,
    history: Sequence[LLMMessage],
    *,
    attempts: int = 2,
    timeout_s: float | None = None,
    instructions_last: bool = False,
) -> Decision:
    """Ask the model to choose among the allowed candidates; fall back after ``attempts`` tries
    or once ``timeout_s`` (all tries together) has passed. ``instructions_last``: the
    manager's instructions follow the history (``pick_prompt``)."""
    candidates = allowed(floor)
    if len(candidates) == 1:
        return Decision(
            candidates=candidates,
            speaker=candidates[0],
            method="rule",
            reason=f"{candidates[0]} is the only one who may speak",
        )
    schema = pick_schema(candidates)
    ends = time.monotonic() + (timeout_s if timeout_s is not None else math.inf)

    def read(text: str) -> tuple[str, str]:
        speaker, reason, problem = _parse_pick(text, schema, candidates)
        if problem is not None or speaker is None:
            raise Refused(problem or "no speaker")
        return speaker, reason

    answer = await ask(
        client,
        lambda _refused: pick_prompt(
            floor.descriptions, candidates, history, instructions_last=instructions_last
        ),
        schema=schema,
        parse=read,
        attempts=attempts,
        limit=lambda: None if timeout_s is None else ends - time.monotonic(),
        extra={"max_tokens": PICK_MAX_TOKENS},
        explain=lambda exc: (
            "model",
            error_text(f"manager model failed: {type(exc).__name__}: {exc}")[:300],
        ),
        give_up_on_timeout=True,
    )
    failures = [
        f"manager model gave no pick within {timeout_s:g} s" if r.timed_out else r.reason
        for r in answer.refusals
    ]
    if answer.value is not None:
        speaker, reason = answer.value
        dropped = None
        if floor.fit_reasons:
            task = floor.tasks.get(speaker) or floor.descriptions[speaker]
            reason, dropped = fit_reason(speaker, task, reason, floor.roster)
        return Decision(
            candidates=candidates,
            speaker=speaker,
            method="model",
            reason=reason,
            usage=answer.usage,
            failures=failures,
            dropped_reason=dropped,
        )
    tries = len(failures)
    decision = fallback_pick(
        floor, f"the model gave no valid pick in {tries} tr{'y' if tries == 1 else 'ies'}"
    )
    return decision.model_copy(update={"usage": answer.usage, "failures": failures})


def _parse_pick(
    text: str, schema: type[BaseModel], candidates: Sequence[str]
) -> tuple[str | None, str, str | None]:
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # also a number too long to convert, deep nesting
        return None, "", f"not JSON: {text[:80]!r}"
    speaker = raw.get("speaker") if isinstance(raw, dict) else None
    if speaker not in candidates:  # the schema should make this impossible: check anyway
        named = repr(speaker)[:80]  # a runaway model may name anything, at any length
        return None, "", f"{named} is not one of {', '.join(candidates)}"
    try:
        pick = schema.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        return None, "", f"field {where!r}: {message}"
    reason = " ".join(str(getattr(pick, "reason", "")).split())[:REASON_CHARS]
    return str(speaker), reason or "the model gave no reason", None


async def choose(
    floor: Floor,
    client: ChatCompletionClient | None,
    history: Sequence[LLMMessage],
    *,
    timeout_s: float | None = None,
    instructions_last: bool = False,
) -> Decision:
    """The whole strategy: rules, then the model (when there is one, for at most
    ``timeout_s``), then the fallback."""
    if not allowed(floor):
        raise ValueError("no role may speak: every role is excluded")
    decided = rule_pick(floor)
    if decided is not None:
        return decided
    if client is None:
        return fallback_pick(floor, "no manager model configured")
    return await model_pick(
        floor, client, history, timeout_s=timeout_s, instructions_last=instructions_last
    )
