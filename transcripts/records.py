"""The parts transcript events are built from: field types, vocabularies and nested records.

Owns: the bounds every saved string and name obeys (``Text``, ``Name``, ``MAX_TEXT``), the
closed vocabularies events use (``StopCode``, ``Mode``, ``Method``, ``ErrorFamily``,
``BranchStatus``, ``GuardRule``, ``GuardAction``), the frozen base record, ``now``, and the
records that live inside events rather than on a line of their own (``Usage``, ``Citation``,
``LedgerRow``, ``MemoryHit``, ``PlanStep``, ``Conflict``, ``MissingBranch``,
``QualityReport``). Kept apart from ``events`` so that module reads as the union it is.

Does not own: the header and the events themselves, the union and its adapter (``events``,
which re-exports every name here), reading and writing files (``store``, ``lines``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

MAX_TEXT = 1_000_000
"""No saved string may be longer: a hostile file cannot make us hold gigabytes."""

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(min_length=1, max_length=64)]

StopCode = Literal[
    "accepted",
    "max_turns",
    "token_budget",
    "wall_clock",
    "user_stop",
    "error",
    "no_speaker",
    "completed",
    "partial",
]
"""``completed`` and ``partial`` end a pipeline or a panel: the writer answered, with every
branch (``completed``) or with some missing (``partial``, the answer says which)."""
Mode = Literal["debate", "pipeline", "panel"]
"""How a run works: the group-chat debate, a fixed pipeline, or a planned panel."""
Method = Literal["rule", "model", "fallback", "human"]
ErrorFamily = Literal["config", "model", "infra"]


def now() -> datetime:
    """The current time, timezone-aware UTC (all saved times are UTC)."""
    return datetime.now(UTC)


class Record(BaseModel):
    """Every saved record: unknown fields refused, nothing changed once made."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Counted(Protocol):
    """What AutoGen's ``RequestUsage`` offers (this package does not import AutoGen)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...


class Usage(Record):
    """Tokens a model call spent."""

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    """Prompt tokens the server reused from an earlier call (part of ``prompt_tokens``)."""

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        """Two calls' spending together: the one way usage is summed."""
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @classmethod
    def of(cls, counted: _Counted | None) -> Usage:
        """Usage from anything that counts prompt and completion tokens (AutoGen's
        ``RequestUsage``); nothing counted is zero."""
        if counted is None:
            return cls()
        cached = getattr(counted, "cached_tokens", 0)  # our clients' ``CachedUsage``
        return cls(
            prompt_tokens=counted.prompt_tokens,
            completion_tokens=counted.completion_tokens,
            cached_tokens=min(cached, counted.prompt_tokens) if isinstance(cached, int) else 0,
        )


class Citation(Record):
    """A ``[n]`` in a reply, checked against the passages numbered in that reply's prompt."""

    n: int = Field(ge=1, le=1000)
    hit_id: Name | None = None
    """The cited passage's id; None when no passage ``n`` was in the prompt."""
    valid: bool
    """False for a citation of a passage the speaker never saw: flagged, never a source."""


class LedgerRow(Record):
    """What one speaker (or the manager) cost in a run."""

    speaker: Name
    calls: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    """Prompt tokens reused from an earlier call (part of ``prompt_tokens``)."""
    seconds: float = Field(default=0.0, ge=0.0)
    cost_usd: float | None = Field(default=None, ge=0.0)
    """Set when the endpoint has a configured price per token."""


class MemoryHit(Record):
    """One retrieved passage, as the transcript keeps it."""

    id: Name
    source: Text
    score: float
    text: Text
    n: int | None = Field(default=None, ge=1)
    """The number the passage carried in the prompt's memory block (cited as ``[n]``)."""
    page: int | None = Field(default=None, ge=1)
    heading: Text | None = None
    line: int | None = Field(default=None, ge=1)


class PlanStep(Record):
    """One sub-question of a plan: who takes it, what it needs, what it waits for."""

    id: Name
    """``q1``, ``q2``... in a panel; ``s1``... for the stages of a pipeline."""
    role: Name
    needs: Name
    """The capability (or tool) the sub-question needs; the role's card must cover it."""
    question: Text
    depends_on: list[Name] = Field(default_factory=list, max_length=16)


BranchStatus = Literal["running", "ok", "failed", "timeout", "skipped", "cancelled"]


class Conflict(Record):
    """A disagreement between branches, as the critic found it."""

    topic: Text
    branches: list[Name] = Field(min_length=2, max_length=16)
    detail: Text


class MissingBranch(Record):
    """A branch whose answer the final answer lacks, and why."""

    branch: Name
    role: Name
    question: Text
    status: BranchStatus
    reason: Text


GuardRule = Literal["early_accept", "no_point", "copy", "reason", "format"]
"""The protocol rule a guard enforced: an acceptance before enough revisions, a REVISE
without a point, a reply copying an earlier turn or its instructions, a manager's reason that
names another role, a reply not in its role's shape."""


GuardAction = Literal["retried", "rewritten", "rejected"]


class QualityReport(Record):
    """How much of a debate a run was; measured from its own events, so any transcript can
    be scored again later."""

    turns: int = Field(ge=0)
    """Committed agent replies."""
    revisions: int = Field(ge=0)
    """REVISE verdicts committed."""
    revisions_with_point: int = Field(ge=0)
    rejected_copies: int = Field(ge=0)
    copied_turns: int = Field(ge=0)
    """Committed replies that still mostly repeat an earlier turn (should stay 0)."""
    distinctness: float | None = Field(default=None, ge=0.0, le=1.0)
    """Mean share of each reply's word trigrams not seen earlier in the run."""
    citations: int = Field(ge=0)
    invalid_citations: int = Field(ge=0)
    methods: dict[Method, int] = Field(default_factory=dict)
    """The manager's picks by how they were made."""
    reasons_naming_pick: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of the manager's reasons that speak of the chosen role and no other."""
    guards: dict[GuardRule, int] = Field(default_factory=dict)
    usage: Usage = Usage()
    cost_usd: float | None = Field(default=None, ge=0.0)
    seconds: float = Field(default=0.0, ge=0.0)
