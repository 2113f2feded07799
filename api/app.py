"""The API's routes, its token check, and mounting it on the UI's server.

``create_api`` builds a FastAPI app of its own (its own OpenAPI schema, nothing of Chainlit's
in it); ``mount`` puts it at ``/api`` on Chainlit's app, ahead of Chainlit's catch-all route
that would otherwise answer every GET with the UI's page.

Every call is its caller's (``callers.py``): a user's token lists, reads, follows, talks to and
stops only that user's runs, and starts runs that are theirs; another user's run is answered
exactly as a missing one (404). The administrator's token (``ROUNDTABLE_API_TOKEN``) sees all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from roundtable.agents import DEFAULT_TEAM, Team, Teams, load_teams
from roundtable.api.callers import Caller, Callers, callers_for
from roundtable.api.config import ApiSettings
from roundtable.api.limits import BodyCap, Refusal
from roundtable.api.registry import (
    Followed,
    LiveRun,
    RunRegistry,
    answer_of,
    mode_of,
    outcome_of,
    quality_of,
    stop_of,
)
from roundtable.api.schemas import (
    RUN_ID_PATTERN,
    Accepted,
    MessageRequest,
    Problem,
    RunAccepted,
    RunDetail,
    RunLinks,
    RunList,
    RunRequest,
    RunState,
    RunSummary,
    StopInfo,
    TeamInfo,
    TeamList,
    TeamRole,
)
from roundtable.api.starting import build_api_run
from roundtable.api.webhooks import WebhookRefused, check_target, deliver, new_delivery
from roundtable.common.errors import ConfigError, InfraError
from roundtable.common.secrets import error_text
from roundtable.conversations import MODES, Settings
from roundtable.memory import MemoryStore
from roundtable.transcripts import (
    Event,
    Mode,
    StopCode,
    Transcript,
    TranscriptError,
    catalogue,
    load,
    owned,
)
from roundtable.transcripts import Header as HeaderRecord

KEEPALIVE_S = 15.0
STOP_CODES = frozenset(get_args(StopCode))
START_WAIT_S = 30.0
"""How long ``POST /runs`` waits for the run's transcript to exist before answering."""

RunId = Annotated[str, PathParam(pattern=RUN_ID_PATTERN, description="The run's id")]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid bearer token"},
    422: {"model": Problem, "description": "The request is invalid (the detail says how)"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No run"}}
NOT_RUNNING: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The run has ended"}
}


def create_api(
    settings: Settings,
    api: ApiSettings,
    memory: MemoryStore | None = None,
    teams: Teams | None = None,
) -> FastAPI:
    """The API app for runs on ``settings`` (with ``memory`` as the shared store if any) of
    ``teams`` (loaded from the settings if None: a bad team file is a ConfigError here)."""
    teams = teams or load_teams(settings.teams_dir, settings.team)
    routes = _Routes(settings, api, memory, teams)
    app = FastAPI(
        title="Roundtable API",
        version="1",
        description="Start runs, follow their events, talk to them; webhooks when they end.",
        docs_url=None,  # the docs page loads its script from a CDN: nothing offline to show
        redoc_url=None,
    )
    app.state.registry = routes.registry
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(InfraError, _infra)
    routes.register(app)
    names = _Names(
        endpoints=sorted(settings.endpoints),
        teams=list(teams.by_name),
        roles=sorted({name for team in teams.by_name.values() for name in team.roster}),
    )
    app.openapi = lambda: _openapi(app, names)  # type: ignore[method-assign]
    app.add_middleware(BodyCap, limit=api.api_max_body_bytes)
    app.add_middleware(TokenGate, callers=callers_for(settings, api))  # added last: runs first
    return app


def mount(server: FastAPI | Any, api_app: ASGIApp, prefix: str = "/api") -> None:
    """Serve ``api_app`` under ``prefix`` on ``server``, before its catch-all routes."""
    server.router.routes.insert(0, Mount(prefix, app=api_app))


class _Routes:
    """The route handlers, sharing the settings and the registry."""

    def __init__(
        self, settings: Settings, api: ApiSettings, memory: MemoryStore | None, teams: Teams
    ):
        self.settings = settings
        self.api = api
        self.memory = memory
        self.teams = teams
        self.registry = RunRegistry(settings.transcripts_dir, on_end=self._ended)

    def register(self, app: FastAPI) -> None:
        app.post(
            "/runs",
            status_code=202,
            response_model=RunAccepted,
            responses={
                **ERRORS,
                403: {"model": Problem, "description": "The webhook URL is refused"},
                429: {"model": Problem, "description": "Too many runs"},
            },
            summary="Start a run; answers at once with its id",
        )(self.start)
        app.get(
            "/teams",
            response_model=TeamList,
            responses={401: ERRORS[401]},
            summary="The teams a run may name, their roles and the modes each can run",
        )(self.list_teams)
        app.get("/runs", response_model=RunList, responses=ERRORS, summary="Recent runs")(
            self.list_runs
        )
        app.get(
            "/runs/{run_id}",
            response_model=RunDetail,
            responses={**ERRORS, **NOT_FOUND},
            summary="A run's status and transcript",
        )(self.detail)
        app.get(
            "/runs/{run_id}/events",
            response_class=StreamingResponse,
            response_model=None,
            responses={
                **ERRORS,
                **NOT_FOUND,
                200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"},
            },
            summary="The run's events as server-sent events, in order, to its stop",
        )(self.events)
        app.post(
            "/runs/{run_id}/messages",
            status_code=202,
            response_model=Accepted,
            responses={**ERRORS, **NOT_FOUND, **NOT_RUNNING},
            summary="Say something in the run, as the person (the UI's queue)",
        )(self.message)
        app.post(
            "/runs/{run_id}/stop",
            status_code=202,
            response_model=Accepted,
            responses={**ERRORS, **NOT_FOUND, **NOT_RUNNING},
            summary="Stop the run at its next boundary",
        )(self.stop)

    # -- handlers -------------------------------------------------------------------------------

    async def start(self, body: RunRequest, request: Request) -> JSONResponse:
        if self.registry.active() >= self.api.max_active_runs:
            return _problem(
                429, f"{self.api.max_active_runs} runs are going already; try again later"
            )
        try:
            webhook = self._webhook(body.webhook)
            owner = _caller(request).owner
            run = build_api_run(self.settings, body, self.memory, self.teams, owner)
        except WebhookRefused as exc:
            return _problem(403, str(exc))
        except ConfigError as exc:
            return _problem(422, str(exc))
        live = self.registry.start(run, body.mode, webhook, owner=owner)
        with contextlib.suppress(TimeoutError):  # a slow disk: the run goes on, its id is good
            await asyncio.wait_for(live.started.wait(), START_WAIT_S)
        if live.header is None and live.failure is not None:
            return _problem(503, f"the run could not start: {live.failure}")
        links = _links(live.id)
        accepted = RunAccepted(id=live.id, status=live.status, links=links)
        return JSONResponse(
            accepted.model_dump(mode="json"), status_code=202, headers={"Location": links.run}
        )

    async def list_teams(self) -> TeamList:
        return TeamList(
            teams=[
                _team_info(team, name == self.teams.default)
                for name, team in self.teams.by_name.items()
            ]
        )

    async def list_runs(
        self, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> RunList:
        caller = _caller(request)
        folder = self.settings.transcripts_dir
        saved = await asyncio.to_thread(
            *((catalogue, folder) if caller.admin else (owned, folder, caller.user))
        )
        runs: list[RunSummary] = []
        for summary in saved[:limit]:
            if summary.problem is not None or summary.created_at is None:
                continue
            live = self.registry.get(summary.conversation_id)
            code, _, reason = summary.stop.partition(": ")
            # a run with no stop yet (running, or interrupted) has none: not its placeholder text
            stop = StopInfo(code=code, reason=reason) if code in STOP_CODES else None
            runs.append(
                RunSummary(
                    id=summary.conversation_id,
                    mode=summary.mode,
                    question=summary.question,
                    status=live.status if live else ("finished" if stop else "interrupted"),
                    created_at=summary.created_at,
                    stop=stop,
                )
            )
        return RunList(runs=runs)

    async def detail(self, run_id: RunId, request: Request) -> RunDetail | JSONResponse:
        caller = _caller(request)
        live = self._live(run_id, caller)
        if live is not None and live.header is not None:
            events = list(live.events)
            return _detail(live.header, events, live.status, live.mode, live)
        transcript = await self._saved(run_id, caller)
        if transcript is None:
            return _problem(404, f"no run {run_id!r}")
        events = list(transcript.events)
        status: RunState = "finished" if stop_of(events) else "interrupted"
        return _detail(transcript.header, events, status, mode_of(events), None)

    async def events(
        self,
        run_id: RunId,
        request: Request,
        after: Annotated[int, Query(ge=0, description="Only events after this seq")] = 0,
        tokens: Annotated[bool, Query(description="Also stream live token deltas")] = False,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> StreamingResponse | JSONResponse:
        if last_event_id is not None and last_event_id.isdigit():
            after = max(after, int(last_event_id))
        caller = _caller(request)
        live = self._live(run_id, caller)
        if live is not None:
            items = _follow(live, after, tokens)
        else:
            transcript = await self._saved(run_id, caller)
            if transcript is None:
                return _problem(404, f"no run {run_id!r}")
            items = _saved_items(transcript, after)
        return StreamingResponse(
            items, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def message(
        self, run_id: RunId, body: MessageRequest, request: Request
    ) -> Accepted | JSONResponse:
        live = await self._running(run_id, _caller(request))
        if isinstance(live, JSONResponse):
            return live
        header = live.header
        roster = [role.name for role in header.roles] if header is not None else []
        if body.ask is not None and header is not None and body.ask not in roster:
            team = header.team.name if header.team is not None else DEFAULT_TEAM  # version 1
            return _problem(
                422,
                f"ask: run {run_id!r} (team {team!r}) has no role {body.ask!r}; "
                f"roles: {', '.join(roster)}",
            )
        try:
            live.run.interject(body.text, ask=body.ask)
        except ConfigError as exc:
            return _problem(422, f"ask: {exc}" if body.ask is not None else str(exc))
        return Accepted(id=run_id, detail="queued: it joins the run at its next boundary")

    async def stop(self, run_id: RunId, request: Request) -> Accepted | JSONResponse:
        live = await self._running(run_id, _caller(request))
        if isinstance(live, JSONResponse):
            return live
        live.run.request_stop("stopped through the API")
        return Accepted(id=run_id, detail="stopping: the run ends at its next boundary")

    # -- helpers --------------------------------------------------------------------------------

    async def _running(self, run_id: str, caller: Caller) -> LiveRun | JSONResponse:
        """The live run, or the answer to give: 409 if it has ended, 404 if there is none
        (or it is not the caller's)."""
        live = self._live(run_id, caller)
        if live is not None and not live.ended:
            return live
        if live is not None or await self._saved(run_id, caller) is not None:
            return _problem(409, f"run {run_id!r} has ended")
        return _problem(404, f"no run {run_id!r}")

    def _live(self, run_id: str, caller: Caller) -> LiveRun | None:
        """The caller's live run ``run_id`` (another user's is as absent as a missing one)."""
        live = self.registry.get(run_id)
        return live if live is not None and caller.sees(live.owner) else None

    async def _saved(self, run_id: str, caller: Caller) -> Transcript | None:
        """The caller's saved run ``run_id``, or None (missing, or another user's)."""
        if (live := self.registry.get(run_id)) is not None and not caller.sees(live.owner):
            return None
        path = self.registry.path_of(run_id)
        if not path.is_file():
            return None
        try:
            transcript = await asyncio.to_thread(load, path)
        except TranscriptError as exc:
            if not caller.admin:  # whose it is cannot be told: answered as a missing one
                return None
            raise InfraError(str(exc)) from exc
        return transcript if caller.sees(transcript.header.owner) else None

    def _webhook(self, url: str | None) -> Any:
        if url is None:
            return None
        if self.api.webhook_secret is None:
            raise WebhookRefused("webhooks need ROUNDTABLE_WEBHOOK_SECRET set on the server")
        return new_delivery(check_target(url, self.api.webhook_allow))

    async def _ended(self, live: LiveRun) -> None:
        if live.webhook is None or self.api.webhook_secret is None:
            return
        body = outcome_of(live).model_dump_json().encode()
        await deliver(
            live.webhook,
            body,
            secret=self.api.webhook_secret.get_secret_value(),
            allow=self.api.webhook_allow,
            attempts=self.api.webhook_attempts,
            backoff_s=self.api.webhook_backoff_s,
            timeout_s=self.api.webhook_timeout_s,
        )


def _caller(request: Request) -> Caller:
    """Who made ``request`` (the token gate put it in the request's state)."""
    caller = getattr(request.state, "caller", None)
    assert isinstance(caller, Caller), "the token gate resolves every request's caller"
    return caller


def _links(run_id: str, prefix: str = "/api") -> RunLinks:
    base = f"{prefix}/runs/{run_id}"
    return RunLinks(run=base, events=f"{base}/events", messages=f"{base}/messages")


def _detail(
    header: HeaderRecord,
    events: list[Event],
    status: RunState,
    mode: Mode,
    live: LiveRun | None,
) -> RunDetail:
    stop = stop_of(events)
    return RunDetail(
        id=header.conversation_id,
        mode=mode,
        question=header.question,
        status=status,
        created_at=header.created_at,
        stop=stop,
        header=header,
        events=events,
        answer=answer_of(events, header),
        quality=quality_of(events),
        failure=live.failure if live else None,
        webhook=live.webhook if live else None,
    )


def _team_info(team: Team, default: bool) -> TeamInfo:
    return TeamInfo(
        name=team.name,
        description=team.description,
        roles=[
            TeamRole(name=card.name, description=card.description, flags=team.flags_of(card.name))
            for card in team.roles
        ],
        modes=[mode for mode in MODES if team.can_run(mode)],
        default=default,
    )


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code=status)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    """A request that does not fit the schema: one line per problem, naming the field."""
    assert isinstance(exc, RequestValidationError)
    return _problem(422, describe_invalid(exc))


def describe_invalid(exc: RequestValidationError) -> str:
    """What is wrong with a request, one ``field: problem`` per problem on one line."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        given = error.get("input")
        shown = f" (got {given!r:.60})" if isinstance(given, str | int | float) else ""
        lines.append(f"{where or 'body'}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(lines) or "invalid request"


async def _infra(_request: Request, exc: Exception) -> JSONResponse:
    """A fault of the machine (a transcript that does not load, a full disk): said plainly."""
    return _problem(503, error_text(exc))


# -- server-sent events ----------------------------------------------------------------------------


def _sse(item: Any) -> bytes:
    kind = getattr(item, "kind", "token")
    data = item.model_dump_json()
    seq = getattr(item, "seq", 0 if kind == "header" else None)
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


def _end(status: str) -> bytes:
    return f"event: end\ndata: {json.dumps({'status': status})}\n\n".encode()


KEEPALIVE = b": keepalive\n\n"
"""A server-sent event comment: clients ignore it, proxies see the stream is alive."""


async def followed(
    live: LiveRun, after: int, tokens: bool
) -> AsyncGenerator[Followed | bytes, None]:
    """What ``live`` commits after ``after`` (token deltas too if ``tokens``), as it comes, to
    its end, with ``KEEPALIVE`` after each ``KEEPALIVE_S`` of silence. Close it (``aclosing``)
    to drop the follower however the consumer leaves."""
    follower = live.follow(after, tokens)
    try:
        while True:
            try:
                item = await asyncio.wait_for(follower.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield KEEPALIVE
                continue
            if item is None:
                return
            yield item
    finally:
        if follower in live.followers:
            live.followers.remove(follower)


async def _follow(live: LiveRun, after: int, tokens: bool) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(followed(live, after, tokens)) as items:
        async for item in items:
            yield item if isinstance(item, bytes) else _sse(item)
    yield _end(live.status)


async def _saved_items(transcript: Transcript, after: int) -> AsyncIterator[bytes]:
    if after <= 0:
        yield _sse(transcript.header)
    for event in transcript.events:
        if event.seq > after:
            yield _sse(event)
    yield _end("finished" if stop_of(list(transcript.events)) else "interrupted")


# -- the token gate and the schema -----------------------------------------------------------------


class TokenGate:
    """Every request needs ``Authorization: Bearer <token>``, the administrator's or a user's
    (even an unknown path: nothing about the API is told to a caller without a token); the
    caller goes in the request's state (``callers.caller_of``), then the body cap
    (``limits.BodyCap``) reads the body. ``refuse`` words the refusal in the wrapped app's
    error shape (the API's problem by default; ``/v1`` answers in OpenAI's)."""

    def __init__(self, app: ASGIApp, callers: Callers, refuse: Refusal | None = None) -> None:
        self.app = app
        self.callers = callers
        self.refuse = refuse or _problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        given = headers.get(b"authorization", b"")
        caller = await asyncio.to_thread(self.callers.resolve, given)
        if caller is None:
            why = (
                "send Authorization: Bearer <token> (ROUNDTABLE_API_TOKEN, or a user's token "
                "from `roundtable users token NAME`)"
                if self.callers.enabled()
                else "the API is off: set ROUNDTABLE_API_TOKEN on the server or issue a "
                "user's token with `roundtable users token NAME`"
            )
            response = self.refuse(401, why)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class _Names:
    """The names this server offers, listed in its schema: they come from its configuration
    (endpoints) and its team files (teams, roles), not from the code."""

    endpoints: list[str]
    teams: list[str]
    roles: list[str]


def _openapi(app: FastAPI, names: _Names) -> dict[str, Any]:
    """FastAPI's schema, with the bearer token declared for every operation and the names of
    this server's endpoints, teams and roles listed."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers or None,
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
        }
        schema["security"] = [{"bearer": []}]
        models = components["schemas"]
        settings = models["RunSettings"]["properties"]
        mapping = settings["endpoints"]
        mapping.pop("patternProperties", None)
        mapping["propertyNames"] = {"enum": names.roles}
        mapping["additionalProperties"] = {"type": "string", "enum": names.endpoints}
        _enum(settings["roles"], names.roles)
        _enum(models["RunRequest"]["properties"]["team"], names.teams)
        _enum(models["MessageRequest"]["properties"]["ask"], names.roles)
        problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses["413"] = {"description": "The body is too large", "content": problem}
                if "requestBody" in operation:
                    responses["400"] = {"description": "The body is not JSON", "content": problem}
        app.openapi_schema = schema
    return app.openapi_schema


def _enum(prop: dict[str, Any], values: list[str]) -> None:
    """Narrow a name (or a list of names, or an optional one) to ``values``."""
    for option in prop.get("anyOf", [prop]):
        target = option.get("items", option)
        if target.get("type") == "string":
            target["enum"] = values


__all__ = ["TokenGate", "create_api", "describe_invalid", "followed", "mount"]
