"""From an API request to a ready run: the request's options checked against the server's.

The team is looked up by name among the teams the server loaded at start-up, never as a path
(a path in a request is hostile). Each refusal is a ConfigError naming the request's field:
``team``, ``settings.roles``, ``mode``, ``settings.endpoints``.
"""

from __future__ import annotations

from roundtable.agents import Teams
from roundtable.api.schemas import RunRequest
from roundtable.common.errors import ConfigError
from roundtable.conversations import (
    Run,
    RunOptions,
    Settings,
    build_run,
)
from roundtable.memory import MemoryStore


def build_api_run(
    settings: Settings,
    request: RunRequest,
    memory: MemoryStore | None,
    teams: Teams,
    owner: str | None = None,
) -> Run:
    """The run ``request`` asks for, as ``owner``'s (None: the local user's); anything the
    server does not offer is a ConfigError."""
    try:
        team = teams.get(request.team)
    except ConfigError as exc:
        raise ConfigError(f"team: {exc}") from exc
    try:
        cast = team.only(request.settings.roles)
    except ConfigError as exc:
        raise ConfigError(f"settings.roles: {exc}") from exc
    try:
        cast.require(request.mode)
    except ConfigError as exc:
        raise ConfigError(f"mode: {exc}") from exc
    options = RunOptions(
        mode=request.mode, team=team.name, **request.settings.model_dump(exclude_unset=True)
    )
    try:
        options.apply(settings, team=team)  # what is left to check: the endpoints
    except ConfigError as exc:
        raise ConfigError(f"settings.{exc}") from exc
    return build_run(
        settings, request.question, options=options, team=team, memory=memory, owner=owner
    )
