"""The API's front door and its refusals: the token gate, and every error answered as a problem.

``TokenGate`` resolves each request's caller (``callers.py``) before anything else reads it;
``problem`` is the API's one error shape (``schemas.Problem``), used by the routes, the gate and
the exception handlers here (a request that does not fit the schema, a fault of the machine).

Owns these refusals only; the routes are ``routes``'s, the body cap ``limits``'s.
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from roundtable.api.callers import Callers
from roundtable.api.limits import Refusal
from roundtable.api.schemas import Problem
from roundtable.common.secrets import error_text

__all__ = ["TokenGate", "describe_invalid", "infra", "invalid", "problem"]


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code=status)


async def invalid(_request: Request, exc: Exception) -> JSONResponse:
    """A request that does not fit the schema: one line per problem, naming the field."""
    assert isinstance(exc, RequestValidationError)
    return problem(422, describe_invalid(exc))


def describe_invalid(exc: RequestValidationError) -> str:
    """What is wrong with a request, one ``field: problem`` per problem on one line."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        given = error.get("input")
        shown = f" (got {given!r:.60})" if isinstance(given, str | int | float) else ""
        lines.append(f"{where or 'body'}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(lines) or "invalid request"


async def infra(_request: Request, exc: Exception) -> JSONResponse:
    """A fault of the machine (a transcript that does not load, a full disk): said plainly."""
    return problem(503, error_text(exc))


class TokenGate:
    """Every request needs ``Authorization: Bearer <token>``, the administrator's or a user's
    (even an unknown path: nothing about the API is told to a caller without a token); the
    caller goes in the request's state (``callers.caller_of``), then the body cap
    (``limits.BodyCap``) reads the body. ``refuse`` words the refusal in the wrapped app's
    error shape (the API's problem by default; ``/v1`` answers in OpenAI's)."""

    def __init__(self, app: ASGIApp, callers: Callers, refuse: Refusal | None = None) -> None:
        self.app = app
        self.callers = callers
        self.refuse = refuse or problem

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
