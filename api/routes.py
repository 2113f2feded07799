"""The API's routes for runs and teams: start, list, read, follow, talk to and stop runs.

``Routes`` holds what every handler shares (the settings, the memory store, the teams and the
``RunRegistry`` of live runs) and registers the handlers on the app ``create_api`` builds.

Every call is its caller's (``callers.py``): a user's token lists, reads, follows, talks to and
stops only that user's runs, and starts runs that are theirs; another user's run is answered
exactly as a missing one (404). The administrator's token (``ROUNDTABLE_API_TOKEN``) sees all.

Does not own: the app, its middleware and schema (``app``), the token check and the error
shape (``gate``), how events are worded as server-sent events (``streaming``), running runs
(``registry``), webhooks (``webhooks``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, get_args

from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from roundtable.agents import DEFAULT_TEAM, Team, Teams
from roundtable.api import streaming
from roundtable.api.callers import Caller
from roundtable.api.config import ApiSettings
from roundtable.api.gate import problem
from roundtable.api.registry import (
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

__all__ = ["START_WAIT_S", "Routes"]

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


class Routes:
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
            return problem(
                429, f"{self.api.max_active_runs} runs are going already; try again later"
            )
        try:
            webhook = self._webhook(body.webhook)
            owner = _caller(request).owner
            run = build_api_run(self.settings, body, self.memory, self.teams, owner)
        except WebhookRefused as exc:
            return problem(403, str(exc))
        except ConfigError as exc:
            return problem(422, str(exc))
        live = self.registry.start(run, body.mode, webhook, owner=owner)
        with contextlib.suppress(TimeoutError):  # a slow disk: the run goes on, its id is good
            await asyncio.wait_for(live.started.wait(), START_WAIT_S)
        if live.header is None and live.failure is not None:
            return problem(503, f"the run could not start: {live.failure}")
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
            return problem(404, f"no run {run_id!r}")
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
            items = streaming.follow(live, after, tokens)
        else:
            transcript = await self._saved(run_id, caller)
            if transcript is None:
                return problem(404, f"no run {run_id!r}")
            items = streaming.saved(transcript, after)
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
            return problem(
                422,
                f"ask: run {run_id!r} (team {team!r}) has no role {body.ask!r}; "
                f"roles: {', '.join(roster)}",
            )
        try:
            live.run.interject(body.text, ask=body.ask)
        except ConfigError as exc:
            return problem(422, f"ask: {exc}" if body.ask is not None else str(exc))
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
            return problem(409, f"run {run_id!r} has ended")
        return problem(404, f"no run {run_id!r}")

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
