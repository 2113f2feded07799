"""Transcript events: one discriminated union, keyed by ``kind``, with a schema version.

A transcript is a header line followed by one event per line. The same records flow live
from a running debate to the terminal, the browser and the tests, and back out of a saved
file for replay. ``TokenDelta`` is the one live-only record: streamed text that becomes a
``message`` event once the reply is complete, so it is never saved.

This module owns the record shapes only; writing and reading files is ``transcript.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from roundtable.agents import Team

SCHEMA_VERSION = 3
"""Bump with a numbered upgrade function in ``transcript.UPGRADES`` when a shape changes."""

HUMAN = "human"
"""The speaker name of the person taking part."""

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


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleSummary(_Record):
    """What a transcript remembers of a role card."""

    name: Name
    description: Text
    endpoint: Name
    model: Text
    max_tokens: int = Field(ge=1)


class ParentRef(_Record):
    """Where a forked conversation branched off."""

    conversation_id: Name
    turn: int = Field(ge=0)


class Header(_Record):
    """First line of every transcript."""

    kind: Literal["header"] = "header"
    schema_version: int = SCHEMA_VERSION
    conversation_id: Name
    created_at: AwareDatetime
    question: Text = Field(min_length=1)
    roles: list[RoleSummary] = Field(min_length=1, max_length=16)
    max_turns: int = Field(ge=1)
    context_window: int = Field(ge=1)
    parent: ParentRef | None = None
    team: Team | None = None
    """The team's cards as they were when the run started: replay, fork and resume use them,
    whatever the team file says now. None in version-1 transcripts (the default team)."""
    owner: Name | None = None
    """The user the run belongs to. None is the local user: runs saved before version 3 had
    no owner, and belong to the local user."""


class _Event(_Record):
    seq: int = Field(ge=1)
    """Position in the transcript, 1-based and strictly increasing: the event's id."""
    at: AwareDatetime
    turn: int = Field(ge=0)
    """The turn this event belongs to; turn 0 is the question itself."""


class _Counted(Protocol):
    """What AutoGen's ``RequestUsage`` offers (this package does not import AutoGen)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...


class Usage(_Record):
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


class Citation(_Record):
    """A ``[n]`` in a reply, checked against the passages numbered in that reply's prompt."""

    n: int = Field(ge=1, le=1000)
    hit_id: Name | None = None
    """The cited passage's id; None when no passage ``n`` was in the prompt."""
    valid: bool
    """False for a citation of a passage the speaker never saw: flagged, never a source."""


class MessageEvent(_Event):
    """A committed turn: an agent's complete reply, or what the person said."""

    kind: Literal["message"] = "message"
    speaker: Name
    content: Text
    usage: Usage = Usage()
    latency_s: float = Field(default=0.0, ge=0.0)
    verdict: Literal["ACCEPT", "REVISE"] | None = None
    interrupted: bool = False
    """True when the reply was cut short (a person stepped in, a deadline passed)."""
    truncated: bool = False
    """True when the reply reached its token cap mid-thought."""
    citations: list[Citation] = Field(default_factory=list, max_length=100)


class SelectionEvent(_Event):
    """The manager's choice of the next speaker, and why."""

    kind: Literal["selection"] = "selection"
    candidates: list[Name] = Field(min_length=1, max_length=16)
    speaker: Name
    method: Method
    reason: Text
    usage: Usage = Usage()


class LedgerRow(_Record):
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


class StopEvent(_Event):
    """The debate ended; ``reason`` says why in words a person reads."""

    kind: Literal["stop"] = "stop"
    code: StopCode
    reason: Text
    ledger: list[LedgerRow] = Field(default_factory=list, max_length=64)


class NoticeEvent(_Event):
    """Something the person should know that is not an error (a budget at 80%)."""

    kind: Literal["notice"] = "notice"
    code: Literal["budget_warning"]
    message: Text


class ErrorEvent(_Event):
    """Something went wrong during a turn; the debate carried on or stopped."""

    kind: Literal["error"] = "error"
    family: ErrorFamily
    speaker: Name | None = None
    message: Text
    attempt: int = Field(default=1, ge=1)


class MemoryHit(_Record):
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


class MemoryEvent(_Event):
    """What shared memory gave a speaker before it spoke."""

    kind: Literal["memory"] = "memory"
    speaker: Name
    query: Text
    hits: list[MemoryHit] = Field(default_factory=list, max_length=100)


class PruneEvent(_Event):
    """Turns left out of a prompt so it fits the model's window."""

    kind: Literal["prune"] = "prune"
    speaker: Name
    kept: int = Field(ge=0)
    dropped: int = Field(ge=0)
    tokens_before: int = Field(ge=0)
    tokens_after: int = Field(ge=0)
    budget: int = Field(ge=0)


class PlanStep(_Record):
    """One sub-question of a plan: who takes it, what it needs, what it waits for."""

    id: Name
    """``q1``, ``q2``... in a panel; ``s1``... for the stages of a pipeline."""
    role: Name
    needs: Name
    """The capability (or tool) the sub-question needs; the role's card must cover it."""
    question: Text
    depends_on: list[Name] = Field(default_factory=list, max_length=16)


class PlanEvent(_Event):
    """The plan a pipeline or panel will follow, shown before any work starts, or refused."""

    kind: Literal["plan"] = "plan"
    mode: Literal["pipeline", "panel"]
    steps: list[PlanStep] = Field(default_factory=list, max_length=16)
    accepted: bool
    reason: Text
    """Where the plan came from, or (refused) every reason it was refused."""
    fallback: Mode | None = None
    """What the run does instead of a refused plan."""
    usage: Usage = Usage()


BranchStatus = Literal["running", "ok", "failed", "timeout", "skipped", "cancelled"]


class BranchEvent(_Event):
    """A branch (a panel's sub-question, a pipeline's stage) starting or ending."""

    kind: Literal["branch"] = "branch"
    phase: Literal["start", "end"]
    branch: Name
    role: Name
    question: Text
    status: BranchStatus
    """``running`` at the start; at the end how it went."""
    latency_s: float = Field(default=0.0, ge=0.0)
    message_seq: int | None = Field(default=None, ge=1)
    """The ``message`` event holding the branch's answer (ended ``ok``)."""
    family: ErrorFamily | None = None
    error: Text | None = None
    """Why it failed, timed out, was skipped or cancelled."""


class Conflict(_Record):
    """A disagreement between branches, as the critic found it."""

    topic: Text
    branches: list[Name] = Field(min_length=2, max_length=16)
    detail: Text


class MissingBranch(_Record):
    """A branch whose answer the final answer lacks, and why."""

    branch: Name
    role: Name
    question: Text
    status: BranchStatus
    reason: Text


class AggregateEvent(_Event):
    """The critic's comparison of a panel's branches: what is answered, missing, disputed."""

    kind: Literal["aggregate"] = "aggregate"
    answered: list[Name] = Field(default_factory=list, max_length=16)
    missing: list[MissingBranch] = Field(default_factory=list, max_length=16)
    conflicts: list[Conflict] = Field(default_factory=list, max_length=16)
    compared: bool
    """False when the critic's comparison could not be used (then conflicts may be unlisted)."""
    usage: Usage = Usage()


GuardRule = Literal["early_accept", "no_point", "copy", "reason", "format"]
"""The protocol rule a guard enforced: an acceptance before enough revisions, a REVISE
without a point, a reply copying an earlier turn or its instructions, a manager's reason that
names another role, a reply not in its role's shape."""


GuardAction = Literal["retried", "rewritten", "rejected"]


class GuardEvent(_Event):
    """A protocol guard stepped in on a reply or a pick before it was committed."""

    kind: Literal["guard"] = "guard"
    speaker: Name
    rule: GuardRule
    action: GuardAction
    """Asked again; fixed in place (a reason templated, an ACCEPT turned into a REVISE);
    or not committed at all (recorded with an ``error``)."""
    detail: Text
    """What was wrong, in words a person reads (with the measured score where there is one)."""


class QualityReport(_Record):
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


class QualityEvent(_Event):
    """The run's quality report, written just before its ``stop``."""

    kind: Literal["quality"] = "quality"
    report: QualityReport


Event = Annotated[
    MessageEvent
    | SelectionEvent
    | StopEvent
    | ErrorEvent
    | MemoryEvent
    | PruneEvent
    | NoticeEvent
    | PlanEvent
    | BranchEvent
    | AggregateEvent
    | GuardEvent
    | QualityEvent,
    Field(discriminator="kind"),
]
"""Every saved event. One adapter reads and writes them all."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class TokenDelta(BaseModel):
    """Live only: a piece of text streaming from ``speaker``; never saved."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["token"] = "token"
    turn: int
    speaker: str
    text: str


LiveEvent = Header | Event | TokenDelta
"""What a running debate streams: its header, saved events, and token deltas."""
