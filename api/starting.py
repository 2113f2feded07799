"""From an API request to a ready run: the request's options checked against the server's."""

from __future__ import annotations

from roundtable.api.schemas import RunRequest
from roundtable.conversations import (
    Run,
    RunOptions,
    Settings,
    build_run,
)
from roundtable.memory import MemoryStore


def build_api_run(settings: Settings, request: RunRequest, memory: MemoryStore | None) -> Run:
    """The run ``request`` asks for; anything the server does not offer is a ConfigError."""
    options = RunOptions(
        mode=request.mode, team=request.team, **request.settings.model_dump(exclude_unset=True)
    )
    return build_run(settings, request.question, options=options, memory=memory)
