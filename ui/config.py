"""Settings the browser UI reads on top of the core ``Settings``: users, history database, limits.

Read once at start-up from ``ROUNDTABLE_*`` environment variables (the core settings file
forbids unknown tables, so UI settings live in the environment, or in a users file):

- ``ROUNDTABLE_USERS``: JSON ``{"name": "<password hash>"}``; hashes come from
  ``python -m roundtable.ui hash-password``.
- ``ROUNDTABLE_USERS_FILE``: a TOML file with a ``[users]`` table of the same shape.
- ``<data_dir>/users.json``: users added with ``roundtable users add`` (``common.accounts``).
- ``ROUNDTABLE_DATABASE_URL``: SQLAlchemy async URL of the history database (default: SQLite
  in the data folder); ``postgresql+asyncpg://...`` for a real deployment.
- ``ROUNDTABLE_MAX_INPUT_CHARS``: the size limit of one message (default 20,000).

This module owns reading and checking those; it does not authenticate anyone (``auth.py``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from roundtable.common.accounts import accounts_path, read_accounts
from roundtable.common.bounded import MAX_CONFIG_BYTES, read_text
from roundtable.common.errors import ConfigError
from roundtable.common.secrets import keep_url
from roundtable.ui.commands import MAX_INPUT_CHARS


class UISettings(BaseSettings):
    """What the UI needs beyond the debate settings."""

    model_config = SettingsConfigDict(env_prefix="ROUNDTABLE_", extra="ignore")

    users: dict[str, str] = Field(default_factory=dict)
    users_file: Path | None = None
    database_url: str | None = None
    max_input_chars: int = Field(default=MAX_INPUT_CHARS, ge=100, le=500_000)

    @model_validator(mode="after")
    def _keep_secrets(self) -> UISettings:
        """No error of this process shows the database's password (``common.secrets``)."""
        keep_url(self.database_url)
        return self

    def all_users(self, data_dir: Path | None = None) -> dict[str, str]:
        """Users from ``roundtable users add`` (in ``data_dir``), the users file and the
        environment (the environment wins, then the users file)."""
        kept = read_accounts(accounts_path(data_dir)).users if data_dir is not None else {}
        if self.users_file is None:
            return {**kept, **self.users}
        text = read_text(self.users_file, MAX_CONFIG_BYTES, "users file (ROUNDTABLE_USERS_FILE)")
        try:
            table = tomllib.loads(text).get("users", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"ROUNDTABLE_USERS_FILE={self.users_file}: {exc}") from exc
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()
        ):
            raise ConfigError(
                f"ROUNDTABLE_USERS_FILE={self.users_file}: [users] must map names to hashes"
            )
        return {**kept, **table, **self.users}


def load_ui_settings() -> UISettings:
    """Read the UI settings once; a mistake is one ConfigError naming the setting."""
    try:
        return UISettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise ConfigError(f"setting ROUNDTABLE_{where.upper()}: {err['msg']}") from exc
