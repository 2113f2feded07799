"""The records the API takes and gives: one pydantic model per body, all in the schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from roundtable.api.webhooks import Delivery
from roundtable.conversations import MAX_QUESTION_CHARS, RunSettings
from roundtable.conversations.options import RoleName, TeamName
from roundtable.transcripts import Event, Header, Mode, QualityReport

RunState = Literal["running", "finished", "failed", "interrupted"]
"""``finished``: it stopped with a reason; ``failed``: it could not go on (see ``failure``);
``interrupted``: a saved transcript with no stop (its process ended mid-run)."""

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


Said = Annotated[
    str,
    Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=r"\S"),
]
"""Something a person says: not blank, not oversized (a lone surrogate, which JSON can carry
and UTF-8 cannot, is refused when the body is parsed)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequest(_Body):
    question: Said
    mode: Mode = "debate"
    team: TeamName | None = None
    """A team by name (``GET /api/teams`` lists them); the server's configured team if absent."""
    settings: RunSettings = Field(default_factory=RunSettings)
    webhook: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://", json_schema_extra={"format": "uri"}
    )
    """Where the outcome is POSTed, signed, when the run ends (must be on the allow-list)."""


class RunLinks(BaseModel):
    run: str
    events: str
    messages: str


class RunAccepted(BaseModel):
    id: str
    status: RunState
    links: RunLinks


class StopInfo(BaseModel):
    code: str
    reason: str


class RunSummary(BaseModel):
    id: str
    mode: Mode
    question: str
    status: RunState
    created_at: datetime
    stop: StopInfo | None = None


class RunDetail(RunSummary):
    header: Header
    events: list[Event]
    answer: str | None = None
    """The last thing an agent said (the writer's answer when the run went well)."""
    quality: QualityReport | None = None
    """The run's quality report (recorded just before its stop; none while it runs)."""
    failure: str | None = None
    webhook: Delivery | None = None


class RunList(BaseModel):
    runs: list[RunSummary]


class MessageRequest(_Body):
    text: Said
    ask: RoleName | None = None
    """The role that should answer next (one of the run's team's roles, in a debate)."""


class TeamRole(BaseModel):
    name: str
    description: str
    flags: list[str]
    """Its part in the protocol: ``opens``, ``gives_verdict``, ``answers``, ``plans``."""


class TeamInfo(BaseModel):
    name: str
    description: str
    roles: list[TeamRole]
    modes: list[Mode]
    """The run modes this team can run (a panel needs a verdict-giver and an answerer)."""
    default: bool
    """The server's configured team: a run that names no team runs it."""


class TeamList(BaseModel):
    teams: list[TeamInfo]


class Accepted(BaseModel):
    id: str
    detail: str


class Outcome(BaseModel):
    """The webhook's body when a run ends."""

    event: Literal["run.finished"] = "run.finished"
    id: str
    mode: Mode
    question: str
    status: RunState
    stop: StopInfo | None = None
    answer: str | None = None
    failure: str | None = None
    ended_at: datetime


class Problem(BaseModel):
    """Every error answer: what was wrong, in words."""

    detail: str
