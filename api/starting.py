"""From an API request to a ready run: the request's settings checked against the server's."""

from __future__ import annotations

from agents import ROLE_NAMES
from api.schemas import RunRequest
from common.errors import ConfigError
from conversations import Budget, Run, Settings, build_run
from memory import MemoryStore


def build_api_run(settings: Settings, request: RunRequest, memory: MemoryStore | None) -> Run:
    """The run ``request`` asks for; anything the server does not offer is a ConfigError."""
    options = request.settings
    for role, endpoint in options.endpoints.items():
        if role not in ROLE_NAMES:
            raise ConfigError(f"settings.endpoints: unknown role {role!r}; roles: {ROLE_NAMES}")
        if endpoint not in settings.endpoints:
            known = ", ".join(sorted(settings.endpoints))
            raise ConfigError(
                f"settings.endpoints.{role}: no endpoint {endpoint!r}; known: {known}"
            )
    if options.endpoints:
        settings = settings.model_copy(update={"roles": {**settings.roles, **options.endpoints}})
    budget = settings.budget
    if options.max_turns is not None:
        budget = Budget(**{**budget.model_dump(), "max_turns": options.max_turns})
    return build_run(
        settings,
        request.question,
        mode=request.mode,
        roles=options.roles,
        budget=budget,
        memory=memory if options.memory else None,
    )
