"""Transcript events: one discriminated union, keyed by ``kind``, with a schema version.

A transcript is a header line followed by one event per line. The same records flow live
from a running debate to the terminal, the browser and the tests, and back out of a saved
file for replay. ``TokenDelta`` is the one live-only record: streamed text that becomes a
``message`` event once the reply is complete, so it is never saved.

This module owns the header, the events, their union and its adapter. The field types,
vocabularies and nested records the events are built from are ``records`` (re-exported here,
so every name importable from this module before the split still is); writing and reading
files is ``store`` and ``lines``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from roundtable.agents import Team
from roundtable.transcripts.records import (
    MAX_TEXT,
    BranchStatus,
    Citation,
    Conflict,
    ErrorFamily,
    GuardAction,
    GuardRule,
    LedgerRow,
    MemoryHit,
    Method,
    MissingBranch,
    Mode,
    Name,
    PlanStep,
    QualityReport,
    Record,
    StopCode,
    Text,
    Usage,
    now,
)

__all__ = [
    "EVENT_ADAPTER",
    "HUMAN",
    "MAX_TEXT",
    "SCHEMA_VERSION",
    "AggregateEvent",
    "BranchEvent",
    "BranchStatus",
    "Citation",
    "Conflict",
    "ErrorEvent",
    "ErrorFamily",
    "Event",
    "GuardAction",
    "GuardEvent",
    "GuardRule",
    "Header",
    "LedgerRow",
    "LiveEvent",
    "MemoryEvent",
    "MemoryHit",
    "MessageEvent",
    "Method",
    "MissingBranch",
    "Mode",
    "Name",
    "NoticeEvent",
    "ParentRef",
    "PlanEvent",
    "PlanStep",
    "PruneEvent",
    "QualityEvent",
    "QualityReport",
    "RoleSummary",
    "SelectionEvent",
    "StopCode",
    "StopEvent",
    "Text",
    "TokenDelta",
    "Usage",
    "now",
]

SCHEMA_VERSION = 3
"""Bump with a numbered upgrade function in ``lines.UPGRADES`` when a shape changes."""

HUMAN = "human"
"""The speaker name of the person taking part."""


class RoleSummary(Record):
    """What a transcript remembers of a role card."""

    name: Name
    description: Text
    endpoint: Name
    model: Text
    max_tokens: int = Field(ge=1)


class ParentRef(Record):
    """Where a forked conversation branched off."""

    conversation_id: Name
    turn: int = Field(ge=0)


class Header(Record):
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


class _Event(Record):
    seq: int = Field(ge=1)
    """Position in the transcript, 1-based and strictly increasing: the event's id."""
    at: AwareDatetime
    turn: int = Field(ge=0)
    """The turn this event belongs to; turn 0 is the question itself."""


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


class AggregateEvent(_Event):
    """The critic's comparison of a panel's branches: what is answered, missing, disputed."""

    kind: Literal["aggregate"] = "aggregate"
    answered: list[Name] = Field(default_factory=list, max_length=16)
    missing: list[MissingBranch] = Field(default_factory=list, max_length=16)
    conflicts: list[Conflict] = Field(default_factory=list, max_length=16)
    compared: bool
    """False when the critic's comparison could not be used (then conflicts may be unlisted)."""
    usage: Usage = Usage()


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
