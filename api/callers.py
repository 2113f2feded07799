"""Who is calling: the one place a request (or an MCP session) becomes a caller.

Today every HTTP caller holds the one ``ROUNDTABLE_API_TOKEN`` (``TokenGate`` checked it
before any route runs), so every caller is the same: the local user, whose runs have no owner.
Per-user tokens replace ``caller_of`` (a token names its user) and nothing else: the routes and
the MCP tools ask only ``caller_of`` who is calling and ``may_see`` what that caller may read.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import HTTPConnection


class Caller(BaseModel):
    """Who sent a request: the owner its runs belong to (None: the local user)."""

    model_config = ConfigDict(frozen=True)

    owner: str | None = None


LOCAL = Caller()
"""The person at this machine: an MCP client over stdio, or the holder of the shared token."""


def caller_of(connection: HTTPConnection) -> Caller:
    """The caller of a request that passed the token gate: the shared token's holder, the
    local user (per-user tokens will look the token up here)."""
    del connection  # one shared token: nothing in the request tells callers apart yet
    return LOCAL


def may_see(caller: Caller, owner: str | None) -> bool:
    """Whether ``caller`` may read a run that belongs to ``owner`` (its header's): only its
    own runs."""
    return owner == caller.owner


__all__ = ["LOCAL", "Caller", "caller_of", "may_see"]
