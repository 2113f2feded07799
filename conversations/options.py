"""Per-run options: one model for what a person may choose for one run, applied in one place.

The terminal (flags), the browser (settings panel and chat profile) and the HTTP API (the
request body) all build a ``RunOptions``; ``RunOptions.apply`` checks it against the server's
settings and gives what a run is built from. A new run option is added here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from roundtable.agents import SAFE_NAME, Team, resolve_team
from roundtable.common.errors import ConfigError
from roundtable.conversations.budget import Budget
from roundtable.conversations.settings import Settings
from roundtable.transcripts.events import Mode

MAX_TURNS_LIMIT = 40
"""The most agent turns one run may ask for."""
MAX_ROLES = 8

RoleName = Annotated[str, Field(pattern=SAFE_NAME, max_length=32)]
TeamName = Annotated[str, Field(pattern=SAFE_NAME, max_length=32)]


def _distinct(roles: list[str] | None) -> list[str] | None:
    if roles is not None and len(set(roles)) != len(roles):
        raise ValueError("a role is named twice")
    return roles


class RunSettings(BaseModel):
    """What one run may change within its team: turns, roles, endpoints and memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: int | None = Field(default=None, ge=1, le=MAX_TURNS_LIMIT)
    roles: Annotated[
        list[RoleName] | None,
        Field(
            default=None,
            min_length=2,
            max_length=MAX_ROLES,
            json_schema_extra={"uniqueItems": True},
        ),
        AfterValidator(_distinct),
    ] = None
    """Which of the team's roles take part (all by default)."""
    endpoints: dict[RoleName, str] = Field(default_factory=dict, max_length=MAX_ROLES)
    """Role -> configured endpoint name, for roles not on their usual endpoint."""
    memory: bool = True
    """Recall the shared memory before each speaker."""


class RunOptions(RunSettings):
    """Everything one run may choose: its mode and team, and the ``RunSettings``."""

    mode: Mode = "debate"
    team: TeamName | None = None
    """A team by name (the configured team by default)."""

    def apply(self, settings: Settings, *, team: Team | None = None) -> Prepared:
        """Check these options against ``settings``; ``team`` (a file the caller loaded)
        wins over ``self.team``. Anything not offered is a ConfigError naming it."""
        cast = team or resolve_team(self.team or settings.team, settings.teams_dir)
        cast = settings.guarded(cast.only(self.roles))
        cast.require(self.mode)
        for role, endpoint in self.endpoints.items():
            if role not in cast.roster:
                raise ConfigError(
                    f"endpoints: team {cast.name!r} has no role {role!r}; "
                    f"roles: {', '.join(cast.roster)}"
                )
            if endpoint not in settings.endpoints:
                known = ", ".join(sorted(settings.endpoints))
                raise ConfigError(f"endpoints.{role}: no endpoint {endpoint!r}; known: {known}")
        if self.endpoints:
            settings = settings.model_copy(update={"roles": {**settings.roles, **self.endpoints}})
        budget = settings.budget
        if self.max_turns is not None:
            budget = budget.model_copy(update={"max_turns": self.max_turns})
        return Prepared(settings=settings, team=cast, budget=budget, memory=self.memory)


@dataclass(frozen=True)
class Prepared:
    """Checked options, ready to build a run from."""

    settings: Settings
    team: Team
    budget: Budget
    memory: bool
