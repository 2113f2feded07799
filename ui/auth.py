"""Who is using the UI: password login for configured users, or the one local user.

With users configured, each has a password hash (``scrypt$n$r$p$salt$hash``, standard library
only) and logs in through Chainlit's password form; every thread belongs to its user. With no
users, the UI serves one person on this machine: everyone who reaches it is logged in as
``local`` without a form, which is only safe on this machine: the app refuses a bound address
or a peer beyond loopback (``loopback.py``), and the callback refuses a ``Host`` header that is
not loopback (a DNS-rebinding page gets nothing); the Host header never admits anyone.

Also owns the JWT secret Chainlit signs sessions with: ``CHAINLIT_AUTH_SECRET`` if set, else
one generated once and kept (mode 0600) in the data folder, so logins survive a restart.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from roundtable.common.owners import LOCAL_USER
from roundtable.common.passwords import hash_password, verify_password

LOOPBACK_NAMES = {"localhost"}


def check_login(users: dict[str, str], name: str, password: str) -> bool:
    """A configured user with the right password (constant time for unknown names too); the
    local user's name never logs in with a password."""
    stored = users.get(name) if name != LOCAL_USER else None
    if stored is None:
        verify_password(password, hash_password("unknown-user"))  # same cost either way
        return False
    return verify_password(password, stored)


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: addresses only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_of(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8000`` -> ``::1``)."""
    value = host_header.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def ensure_auth_secret(data_dir: Path) -> None:
    """Set ``CHAINLIT_AUTH_SECRET`` from the environment or a file kept in ``data_dir``."""
    if os.environ.get("CHAINLIT_AUTH_SECRET"):
        return
    path = data_dir / "ui" / "auth-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    os.environ["CHAINLIT_AUTH_SECRET"] = path.read_text().strip()


__all__ = [
    "LOCAL_USER",
    "check_login",
    "ensure_auth_secret",
    "hash_password",
    "host_of",
    "is_loopback",
    "verify_password",
]
