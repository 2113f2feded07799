"""Who is calling the API: a bearer token resolved to a user, or the administrator.

``ROUNDTABLE_API_TOKEN`` is the administrator's token: it sees every run. A token issued by
``roundtable users token NAME`` acts for that user: it sees and starts only that user's runs.
Owns: resolving an ``Authorization`` header to a ``Caller`` (every comparison in constant time)
and the rule of what a caller may see. Does not own: issuing or storing tokens
(``common.accounts``), nor answering the request (``routes.py``).

The users file is read again when it changes (its size, time or inode), so a token issued or
revoked while the server runs takes effect at the next request.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import HTTPConnection

from roundtable.api.config import ApiSettings
from roundtable.common.accounts import Accounts, accounts_path, read_accounts, user_of_token
from roundtable.common.errors import ConfigError
from roundtable.common.owners import owns
from roundtable.conversations import Settings

BEARER = b"Bearer "
log = logging.getLogger("roundtable.api.callers")


@dataclass(frozen=True)
class Caller:
    """Who made a request: a user (``admin`` False), or the administrator (every run)."""

    user: str | None
    admin: bool = False

    def sees(self, owner: str | None) -> bool:
        """Whether this caller may see a run of ``owner``."""
        return self.admin or owns(self.user, owner)

    @property
    def owner(self) -> str | None:
        """Who owns the runs this caller starts (the administrator's: the local user's)."""
        return None if self.admin else self.user


class Callers:
    """Resolves bearer tokens against the administrator token and the users file."""

    def __init__(self, admin_token: str | None, accounts_file: Path) -> None:
        self._admin = BEARER + admin_token.encode() if admin_token else None
        self._file = accounts_file
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._accounts = Accounts()

    def enabled(self) -> bool:
        """Whether any token could be accepted (else the API is off)."""
        return self._admin is not None or bool(self._current().tokens)

    def resolve(self, authorization: bytes) -> Caller | None:
        """The caller an ``Authorization`` header names, or None."""
        token = authorization.removeprefix(BEARER).decode("latin-1")
        user = user_of_token(self._current(), token)  # always run: the same time either way
        if self._admin is not None and hmac.compare_digest(authorization, self._admin):
            return Caller(None, admin=True)
        if not authorization.startswith(BEARER) or user is None:
            return None
        return Caller(user)

    def _current(self) -> Accounts:
        """The users file as it is now (re-read only when it changed); an unreadable file
        grants no user token (the administrator's still works)."""
        try:
            stat = os.stat(self._file)
            seen: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            seen = None
        with self._lock:
            if seen != self._seen:
                try:
                    self._accounts = read_accounts(self._file) if seen else Accounts()
                except ConfigError as exc:
                    log.warning("API user tokens are off: %s", exc)
                    self._accounts = Accounts()
                self._seen = seen
            return self._accounts


def callers_for(settings: Settings, api: ApiSettings) -> Callers:
    """The resolver every gate of this server uses: the administrator token and the users
    file in the data folder."""
    admin = api.api_token.get_secret_value() if api.api_token else None
    return Callers(admin, accounts_path(settings.data_dir))


LOCAL = Caller(None)
"""The person at this machine: an MCP client over stdio."""


def caller_of(connection: HTTPConnection) -> Caller:
    """The caller of a request that passed the token gate (its state holds it)."""
    caller = getattr(connection.state, "caller", None)
    if not isinstance(caller, Caller):
        raise RuntimeError("the token gate resolves every request's caller")
    return caller


def may_see(caller: Caller, owner: str | None) -> bool:
    """Whether ``caller`` may read a run that belongs to ``owner``."""
    return caller.sees(owner)


__all__ = ["LOCAL", "Caller", "Callers", "caller_of", "callers_for", "may_see"]
