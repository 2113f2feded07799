"""OpenAI-compatible chat completions under ``/v1``: a team answers like a model.

Owns: the ``/v1`` routes (``GET /models``, ``POST /chat/completions``); model ids (each team,
and each team with each mode it can run: ``roundtable/default``, ``roundtable/policy:panel``);
a chat request as a run (the last user message is the question, earlier messages its bounded
background); a run's events as one OpenAI reply or as OpenAI chunks (the turns as reasoning,
then the answer as content). Errors in OpenAI's shape, with the one-line messages used
everywhere else.

Does not own: running runs (``RunRegistry``, shared with ``/api``), the token check
(``TokenGate``, the same one ``/api`` uses), who is calling (``callers.caller_of``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from roundtable.agents import Teams, load_teams
from roundtable.api.callers import caller_of, callers_for
from roundtable.api.config import ApiSettings
from roundtable.api.gate import TokenGate, describe_invalid
from roundtable.api.limits import BodyCap
from roundtable.api.openai_schemas import (
    AnswerMessage,
    ChatChunk,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ErrorBody,
    ErrorResponse,
    FinishReason,
    ModelCard,
    ModelList,
    RunInfo,
    Usage,
    openai_error,
    openapi_of,
)
from roundtable.api.registry import LiveRun, RunRegistry, answer_of, stop_of
from roundtable.api.routes import START_WAIT_S
from roundtable.api.streaming import followed
from roundtable.common.errors import ConfigError
from roundtable.common.tokens import TiktokenCounter
from roundtable.conversations import MODES, Mode, RunOptions, Settings, build_run
from roundtable.memory import MemoryStore
from roundtable.transcripts import HUMAN, Event, MessageEvent, StopEvent

PREFIX = "roundtable/"
TRANSCRIPT_HEADER = "X-Roundtable-Transcript"
LIMITS = frozenset({"max_turns", "token_budget", "wall_clock"})
"""Stop codes that say a limit (the caller's or the server's) ended the run."""
MAX_BACKGROUND_CHARS = 6000
"""Characters of earlier messages passed with the question (the most recent ones)."""
MAX_EARLIER_CHARS = 1500
"""Characters kept of any one earlier message."""


class Refused(Exception):
    """A request this server will not run, with the status and the one line to say."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def create_openai_api(
    settings: Settings,
    api: ApiSettings,
    registry: RunRegistry,
    memory: MemoryStore | None = None,
    teams: Teams | None = None,
) -> FastAPI:
    """The ``/v1`` app: runs go through ``registry`` (the ``/api`` app's, so both list them
    and both count them against ``max_active_runs``)."""
    teams = teams or load_teams(settings.teams_dir, settings.team)
    routes = _Completions(settings, api, registry, memory, teams)
    app = FastAPI(
        title="Roundtable, OpenAI-compatible",
        version="1",
        description="Ask a team as you would ask a model: the debate is its reasoning.",
        docs_url=None,
        redoc_url=None,
    )
    app.get("/models", response_model=ModelList, summary="Each team, and each team:mode")(
        routes.models
    )
    app.post(
        "/chat/completions",
        response_model=ChatCompletion,
        responses={
            **{status: {"model": ErrorResponse} for status in (400, 401, 404, 429, 502, 503)},
            200: {"content": {"text/event-stream": {}}, "description": "A reply, or chunks"},
        },
        summary="A run of the model's team answers the last user message",
    )(routes.complete)
    app.openapi = lambda: openapi_of(app, list(routes.ids))  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Refused, _refused)
    app.add_middleware(BodyCap, limit=api.api_max_body_bytes, refuse=openai_error)
    callers = callers_for(settings, api)
    app.add_middleware(TokenGate, callers=callers, refuse=openai_error)  # added last: first
    return app


def model_ids(teams: Teams) -> dict[str, tuple[str, Mode]]:
    """Every model id offered, to its (team, mode): ``roundtable/<team>`` runs the team's
    first mode (a debate where it can), ``roundtable/<team>:<mode>`` each mode it can run."""
    found: dict[str, tuple[str, Mode]] = {}
    for name, team in teams.by_name.items():
        modes = [mode for mode in MODES if team.can_run(mode)]
        if not modes:
            continue
        found[f"{PREFIX}{name}"] = (name, modes[0])
        for mode in modes:
            found[f"{PREFIX}{name}:{mode}"] = (name, mode)
    return found


def question_of(messages: list[ChatMessage]) -> str:
    """The last user message, with the earlier messages (the most recent first to be kept,
    each cut short) below it as background: what the team answers."""
    if messages[-1].role != "user":
        raise Refused(400, "messages: the last message must be the user's question")
    question = messages[-1].text().strip()
    if not question:
        raise Refused(400, "messages: the last user message has no text")
    lines: list[str] = []
    room = MAX_BACKGROUND_CHARS
    for message in reversed(messages[:-1]):
        text = " ".join(message.text().split())
        if not text:
            continue
        if len(text) > MAX_EARLIER_CHARS:
            text = text[:MAX_EARLIER_CHARS] + "..."
        line = f"> {message.role}: {text}"
        if len(line) > room:
            break
        lines.insert(0, line)
        room -= len(line) + 1
    if not lines:
        return question
    earlier = "\n".join(lines)
    return f"{question}\n\nEarlier in this conversation (background, oldest first):\n{earlier}"


class _Completions:
    """The route handlers, sharing the settings, the registry and the teams."""

    def __init__(
        self,
        settings: Settings,
        api: ApiSettings,
        registry: RunRegistry,
        memory: MemoryStore | None,
        teams: Teams,
    ) -> None:
        self.settings = settings
        self.api = api
        self.registry = registry
        self.memory = memory
        self.teams = teams
        self.ids = model_ids(teams)
        self.created = int(time.time())

    async def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=name, created=self.created) for name in self.ids])

    async def complete(self, body: ChatRequest, request: Request) -> Response:
        live = await self._start(body, caller_of(request).owner)
        headers = {TRANSCRIPT_HEADER: live.id}
        if body.stream:
            usage = body.stream_options is not None and body.stream_options.include_usage
            chunks = _Chunks(live, body.model, body.answer_cap, usage)
            headers["Cache-Control"] = "no-cache"
            return StreamingResponse(
                chunks.stream(), media_type="text/event-stream", headers=headers
            )
        await _ended(live)
        reply = _reply(live, body.model, body.answer_cap)
        return JSONResponse(reply.model_dump(mode="json"), headers=headers)

    async def _start(self, body: ChatRequest, owner: str | None) -> LiveRun:
        """The run ``body`` asks for, as ``owner``'s (the token's user), started and past its
        header."""
        chosen = self.ids.get(body.model)
        if chosen is None:
            raise Refused(
                404, f"no model {body.model!r}: GET /v1/models lists them", "model_not_found"
            )
        if self.registry.active() >= self.api.max_active_runs:
            raise Refused(429, f"{self.api.max_active_runs} runs are going already; try later")
        team_name, mode = chosen
        question = question_of(body.messages)
        budget = self.settings.budget
        if body.budget is not None:  # within the server's limits, never beyond them
            asked = body.budget.model_dump(exclude_none=True)
            budget = budget.model_copy(
                update={key: min(value, getattr(budget, key)) for key, value in asked.items()}
            )
        try:
            run = build_run(
                self.settings,
                question,
                RunOptions(mode=mode, team=team_name, max_turns=body.max_turns),
                team=self.teams.get(team_name),
                budget=budget,
                memory=self.memory,
                owner=owner,
            )
        except ConfigError as exc:
            raise Refused(400, str(exc)) from exc
        live = self.registry.start(run, mode, owner=owner)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.started.wait(), START_WAIT_S)
        if live.header is None and live.failure is not None:
            raise Refused(503, f"the run could not start: {live.failure}")
        return live


async def _ended(live: LiveRun) -> None:
    follower = live.follow(0, tokens=False)
    async for _ in follower.items():
        pass


def _reply(live: LiveRun, model: str, cap: int | None) -> ChatCompletion:
    answer, finish = _answer(live, cap)
    reasoning = "".join(reasoning_of(event) for event in live.events)
    return ChatCompletion(
        id=f"chatcmpl-{live.id}",
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                message=AnswerMessage(content=answer, reasoning_content=reasoning),
                finish_reason=finish,
            )
        ],
        usage=usage_of(live.events),
        roundtable=_info(live),
    )


def _answer(live: LiveRun, cap: int | None) -> tuple[str, FinishReason]:
    """The run's answer, cut to ``cap`` tokens. A run that a limit ended before anyone spoke
    answers nothing, ``length`` (as a model cut by ``max_tokens``); a failed one is refused."""
    answer = answer_of(live.events, live.header)
    if live.failure is not None:
        raise Refused(503, f"the run failed: {live.failure}")
    if answer is None:
        stop = stop_of(live.events)
        if stop is not None and stop.code in LIMITS:
            return "", "length"
        why = f"{stop.code}: {stop.reason}" if stop else "it did not stop"
        raise Refused(502, f"the run ended without an answer ({why})", "no_answer")
    if cap is None:
        return answer, "stop"
    encoding = TiktokenCounter().encoding
    tokens = encoding.encode(answer, disallowed_special=())
    if len(tokens) <= cap:
        return answer, "stop"
    return encoding.decode(tokens[:cap]), "length"


def reasoning_of(event: object) -> str:
    """What a committed event adds to the reasoning: each agent's turn, and the stop."""
    if isinstance(event, MessageEvent) and event.speaker != HUMAN:
        return f"**{event.speaker}** (turn {event.turn}):\n{event.content}\n\n"
    if isinstance(event, StopEvent):
        return f"Stopped ({event.code}): {event.reason}\n"
    return ""


def usage_of(events: list[Event]) -> Usage:
    """The run's tokens from its stop's ledger (the manager's row included)."""
    stop = next((e for e in reversed(events) if isinstance(e, StopEvent)), None)
    rows = stop.ledger if stop is not None else []
    prompt = sum(row.prompt_tokens for row in rows)
    completion = sum(row.completion_tokens for row in rows)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _info(live: LiveRun) -> RunInfo:
    stop = stop_of(live.events)
    return RunInfo(
        transcript_id=live.id,
        stop_code=stop.code if stop else None,
        stop_reason=stop.reason if stop else None,
    )


class _Chunks:
    """One run as OpenAI chunks: a reasoning delta per committed turn, then the answer as
    content deltas, the finish, the usage when asked, and ``[DONE]``."""

    def __init__(self, live: LiveRun, model: str, cap: int | None, usage: bool) -> None:
        self.live = live
        self.model = model
        self.cap = cap
        self.usage = usage
        self.created = int(time.time())

    def _chunk(self, delta: Delta, finish: FinishReason | None = None, **extra: Any) -> bytes:
        chunk = ChatChunk(
            id=f"chatcmpl-{self.live.id}",
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
            **extra,
        )
        return _data(chunk.model_dump_json(exclude_none=True))

    async def stream(self) -> AsyncIterator[bytes]:
        role: Literal["assistant"] | None = "assistant"  # said once, in the first chunk
        try:
            async with contextlib.aclosing(followed(self.live, 0, tokens=False)) as items:
                async for item in items:
                    if isinstance(item, bytes):
                        yield item
                    elif text := reasoning_of(item):
                        yield self._chunk(Delta(role=role, reasoning_content=text))
                        role = None
            async for piece in self._ending():
                yield piece
        finally:
            if not self.live.ended:  # the client went away: the run stops at its next boundary
                self.live.run.request_stop("the client went away")

    async def _ending(self) -> AsyncIterator[bytes]:
        try:
            answer, finish = _answer(self.live, self.cap)
        except Refused as exc:
            error = ErrorBody(message=str(exc), type="server_error", code=exc.code)
            yield _data(ErrorResponse(error=error).model_dump_json())
            yield _data("[DONE]")
            return
        for piece in re.findall(r"\S+\s*|\s+", answer) or [answer]:
            yield self._chunk(Delta(content=piece))
        yield self._chunk(Delta(), finish, roundtable=_info(self.live))
        if self.usage:
            chunk = ChatChunk(
                id=f"chatcmpl-{self.live.id}",
                created=self.created,
                model=self.model,
                choices=[],
                usage=usage_of(self.live.events),
            )
            yield _data(chunk.model_dump_json(exclude_none=True))
        yield _data("[DONE]")


def _data(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return openai_error(400, describe_invalid(exc))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return openai_error(exc.status_code, str(exc.detail))


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return openai_error(exc.status, str(exc), exc.code)


__all__ = ["create_openai_api", "model_ids", "question_of"]
