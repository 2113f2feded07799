"""The API app: built from its parts, and mounted on the UI's server.

``create_api`` builds a FastAPI app of its own (its own OpenAPI schema, nothing of Chainlit's
in it); ``mount`` puts it at ``/api`` on Chainlit's app, ahead of Chainlit's catch-all route
that would otherwise answer every GET with the UI's page.

Owns the assembly only: the routes are ``routes``'s, the token gate and the error answers
``gate``'s, the body cap ``limits``'s, the server-sent events ``streaming``'s, the schema's
additions ``openapi``'s. The names other modules used to import from here still resolve.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.routing import Mount
from starlette.types import ASGIApp

from roundtable.agents import Teams, load_teams
from roundtable.api.callers import callers_for
from roundtable.api.config import ApiSettings
from roundtable.api.gate import TokenGate, describe_invalid, infra, invalid
from roundtable.api.limits import BodyCap
from roundtable.api.openapi import Names, openapi_schema
from roundtable.api.routes import START_WAIT_S, Routes
from roundtable.api.streaming import followed
from roundtable.common.errors import InfraError
from roundtable.conversations import Settings
from roundtable.memory import MemoryStore


def create_api(
    settings: Settings,
    api: ApiSettings,
    memory: MemoryStore | None = None,
    teams: Teams | None = None,
) -> FastAPI:
    """The API app for runs on ``settings`` (with ``memory`` as the shared store if any) of
    ``teams`` (loaded from the settings if None: a bad team file is a ConfigError here)."""
    teams = teams or load_teams(settings.teams_dir, settings.team)
    routes = Routes(settings, api, memory, teams)
    app = FastAPI(
        title="Roundtable API",
        version="1",
        description="Start runs, follow their events, talk to them; webhooks when they end.",
        docs_url=None,  # the docs page loads its script from a CDN: nothing offline to show
        redoc_url=None,
    )
    app.state.registry = routes.registry
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(InfraError, infra)
    routes.register(app)
    names = Names(
        endpoints=sorted(settings.endpoints),
        teams=list(teams.by_name),
        roles=sorted({name for team in teams.by_name.values() for name in team.roster}),
    )
    app.openapi = lambda: openapi_schema(app, names)  # type: ignore[method-assign]
    app.add_middleware(BodyCap, limit=api.api_max_body_bytes)
    app.add_middleware(TokenGate, callers=callers_for(settings, api))  # added last: runs first
    return app


def mount(server: FastAPI | Any, api_app: ASGIApp, prefix: str = "/api") -> None:
    """Serve ``api_app`` under ``prefix`` on ``server``, before its catch-all routes."""
    server.router.routes.insert(0, Mount(prefix, app=api_app))


__all__ = [
    "START_WAIT_S",
    "TokenGate",
    "create_api",
    "describe_invalid",
    "followed",
    "mount",
]
