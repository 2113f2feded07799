"""The users file: users' password hashes and their API tokens, in ``<data_dir>/users.json``.

Owns: reading it (a regular file, size-limited), writing it atomically (a temporary file in
the same folder, fsynced, mode 0600, renamed into place), adding and removing users, issuing,
listing and revoking tokens, and resolving a presented token to its user. A token is shown
once when issued; only its SHA-256 is kept, compared in constant time against every stored
one. Does not own: hashing passwords (``passwords.py``), the command line (``terminal``), nor
checking a login or a request (the UI's auth, the API's gate).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from roundtable.common.errors import ConfigError, InfraError
from roundtable.common.owners import LOCAL_USER
from roundtable.common.validation import first_error

USERS_FILE = "users.json"
MAX_BYTES = 1_000_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_PREFIX = "rt_"


class TokenRecord(BaseModel):
    """An issued API token: its id (shown and used to revoke it), its user and its hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9a-f]{12}$")
    user: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: AwareDatetime


class Accounts(BaseModel):
    """The whole users file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    users: dict[str, str] = Field(default_factory=dict)
    """Name -> password hash (``passwords.hash_password``)."""
    tokens: list[TokenRecord] = Field(default_factory=list)


def accounts_path(data_dir: Path) -> Path:
    """Where the users file of ``data_dir`` is."""
    return data_dir / USERS_FILE


def check_name(name: str) -> str:
    """A user name fit for a record's owner; ``local`` is the local user's and refused."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    if name == LOCAL_USER:
        raise ConfigError(f"user name {name!r} is the local user's: pick another")
    return name


def read_accounts(path: Path) -> Accounts:
    """The users file; a missing one is empty. A special, oversized or malformed file is a
    ConfigError naming it."""
    try:
        if not path.exists():
            return Accounts()
        if not path.is_file():
            raise ConfigError(f"users file {path}: not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"users file {path}: over the size limit of {MAX_BYTES} bytes")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"users file {path}: cannot read it ({exc.strerror})") from exc
    try:
        return Accounts.model_validate_json(data)
    except ValidationError as exc:
        where, message = first_error(exc, "file")
        raise ConfigError(f"users file {path}: {where}: {message}") from exc


def write_accounts(path: Path, accounts: Accounts) -> None:
    """Replace the users file at once (readers see the old or the new one), mode 0600."""
    data = accounts.model_dump_json(indent=2).encode() + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".users-", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise InfraError(f"users file {path}: cannot write it ({exc.strerror})") from exc


def add_user(path: Path, name: str, password_hash: str) -> bool:
    """Add ``name`` (or change their password); True if they are new."""
    accounts = read_accounts(path)
    new = check_name(name) not in accounts.users
    users = {**accounts.users, name: password_hash}
    write_accounts(path, accounts.model_copy(update={"users": users}))
    return new


def remove_user(path: Path, name: str) -> bool:
    """Remove ``name`` and revoke their tokens; False if there was no such user or token."""
    accounts = read_accounts(path)
    users = {k: v for k, v in accounts.users.items() if k != name}
    tokens = [t for t in accounts.tokens if t.user != name]
    if len(users) == len(accounts.users) and len(tokens) == len(accounts.tokens):
        return False
    write_accounts(path, accounts.model_copy(update={"users": users, "tokens": tokens}))
    return True


def issue_token(path: Path, name: str) -> tuple[str, TokenRecord]:
    """A new token for ``name``: the token itself (to show once) and its stored record."""
    accounts = read_accounts(path)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    existing = {t.id for t in accounts.tokens}
    token_id = secrets.token_hex(6)
    while token_id in existing:
        token_id = secrets.token_hex(6)
    record = TokenRecord(
        id=token_id, user=check_name(name), sha256=_digest(token), created_at=datetime.now(UTC)
    )
    write_accounts(path, accounts.model_copy(update={"tokens": [*accounts.tokens, record]}))
    return token, record


def revoke_token(path: Path, token_id: str) -> TokenRecord | None:
    """Revoke the token ``token_id``; its record, or None if there is none."""
    accounts = read_accounts(path)
    found = next((t for t in accounts.tokens if t.id == token_id), None)
    if found is not None:
        tokens = [t for t in accounts.tokens if t.id != token_id]
        write_accounts(path, accounts.model_copy(update={"tokens": tokens}))
    return found


def user_of_token(accounts: Accounts, token: str) -> str | None:
    """The user ``token`` was issued to, or None. Every stored hash is compared, in constant
    time, whether or not one matched already."""
    given = _digest(token).encode()
    found: str | None = None
    for record in accounts.tokens:
        if hmac.compare_digest(given, record.sha256.encode()):
            found = record.user
    return found


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
