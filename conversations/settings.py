"""Settings, read once at start-up: ``ROUNDTABLE_*`` environment variables and a TOML file.

The TOML file is ``$ROUNDTABLE_CONFIG`` if set, else ``roundtable.toml`` in the data
directory if it exists. Environment variables win over the file. Nested values use ``__``
(``ROUNDTABLE_BUDGET__MAX_TURNS=12``). Everything else in Roundtable takes typed arguments;
only the composition roots (the command line, the UI) read settings.

An example ``roundtable.toml`` that sends the critic to a local Ollama::

    [endpoints.ollama]
    kind = "openai"
    base_url = "http://127.0.0.1:11434/v1"
    model = "llama3.2"
    context_window = 8192

    [roles]
    critic = "ollama"
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from roundtable.agents import DEFAULT_TEAM, SAFE_NAME, EndpointSettings, Guards, Team
from roundtable.agents.llama_client import EmbeddedModelSettings
from roundtable.common.bounded import MAX_CONFIG_BYTES, read_text
from roundtable.common.errors import ConfigError
from roundtable.common.secrets import keep, keep_url
from roundtable.common.validation import first_error
from roundtable.conversations.budget import Budget
from roundtable.conversations.panel_deps import PanelSettings
from roundtable.conversations.recall import MemorySettings


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/roundtable``, or ``~/.local/share/roundtable``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "roundtable"


class Settings(BaseSettings):
    """Every setting Roundtable reads, with defaults that need no configuration at all."""

    model_config = SettingsConfigDict(
        env_prefix="ROUNDTABLE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    endpoints: dict[str, EndpointSettings] = Field(
        default_factory=lambda: {"default": EndpointSettings()}
    )
    roles: dict[str, str] = Field(default_factory=dict)
    """Role name -> endpoint name, for roles that do not use ``default``."""
    manager_endpoint: str = "default"
    team: str = DEFAULT_TEAM
    """The team of new runs: a name (the user's ``teams_dir``, then the shipped teams) or a
    path to a team file."""
    teams_dir: Path | None = None
    database_url: str | None = None
    """``ROUNDTABLE_DATABASE_URL``: a PostgreSQL URL keeps transcripts in that database (beside
    the browser's chat history, ``transcripts.postgres``); empty or SQLite keeps the files."""
    """A folder of the user's own team files (``NAME.yaml``)."""
    guards: Guards | None = None
    """Replaces every team's protocol guards when set (``ROUNDTABLE_GUARDS__ENABLED=false``
    turns them off); each team's own ``guards`` block otherwise."""
    embedded: EmbeddedModelSettings = Field(default_factory=EmbeddedModelSettings)
    budget: Budget = Field(default_factory=Budget)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    panel: PanelSettings = Field(default_factory=PanelSettings)
    context_window: int | None = Field(default=None, ge=256)
    """Overrides every endpoint's window (``--context-window``)."""
    log_level: str = "INFO"
    log_stderr: bool = False
    otlp_endpoint: str | None = None
    """OpenTelemetry traces go here (OTLP over HTTP) when set; nothing is exported otherwise."""

    @model_validator(mode="after")
    def _names_exist(self) -> Settings:
        if "default" not in self.endpoints:  # naming other endpoints keeps the embedded default
            self.endpoints = {"default": EndpointSettings(), **self.endpoints}
        for role, endpoint in self.roles.items():
            if re.fullmatch(SAFE_NAME, role) is None:
                raise ValueError(f"roles: {role!r} is not a role name")
            if endpoint not in self.endpoints:
                raise ValueError(f"roles.{role}: no endpoint named {endpoint!r}")
        if self.manager_endpoint not in self.endpoints:
            raise ValueError(f"manager_endpoint: no endpoint named {self.manager_endpoint!r}")
        return self

    def guarded(self, team: Team) -> Team:
        """``team`` with the configured ``guards`` in place of its own, when they are set."""
        if self.guards is None:
            return team
        return team.model_copy(update={"guards": self.guards})

    def secrets(self) -> list[str]:
        """Every configured secret value, so logs can scrub them."""
        return [key for e in self.endpoints.values() if (key := e.key()) is not None]

    @model_validator(mode="after")
    def _keep_secrets(self) -> Settings:
        """Errors of this process never show a key or a URL's password (``common.secrets``)."""
        keep(*self.secrets())
        urls = [e.base_url for e in self.endpoints.values()] + [self.memory.url]
        for url in [*urls, self.database_url]:
            keep_url(url)
        return self

    @property
    def transcripts_dir(self) -> Path:
        return self.data_dir / "transcripts"

    def endpoint_for(self, role: str) -> tuple[str, EndpointSettings]:
        name = self.roles.get(role, "default")
        return name, self.endpoints[name]

    def window_of(self, endpoint: EndpointSettings) -> int:
        """The context window a prompt for this endpoint must fit."""
        if self.context_window is not None:
            return self.context_window
        if endpoint.kind == "embedded":
            return self.embedded.n_ctx
        return endpoint.context_window or 8192

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """The optional TOML file; a file that does not parse is a ConfigError naming it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_path()
        if path is None:
            return {}
        text = read_text(path, MAX_CONFIG_BYTES, "settings file")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path}: {exc}") from exc
        for name, instead in RETIRED.items():
            if name in data:
                raise ConfigError(f"settings file {path}: {instead}")
        return data


def config_path() -> Path | None:
    """The TOML settings file in force, if any."""
    explicit = os.environ.get("ROUNDTABLE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"ROUNDTABLE_CONFIG={explicit}: no such file")
        return path
    data_dir = os.environ.get("ROUNDTABLE_DATA_DIR")
    candidate = (Path(data_dir) if data_dir else default_data_dir()) / "roundtable.toml"
    return candidate if candidate.is_file() else None


RETIRED = {
    "cards_dir": "cards_dir is replaced by team: put your role cards in a team file "
    "(`roundtable teams show default` prints one to start from) and set team to its path",
}
"""Settings that existed once, with what to do instead (a silent no-op would mislead)."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings once; a mistake is one ConfigError line naming the setting."""
    for name, instead in RETIRED.items():
        if f"ROUNDTABLE_{name.upper()}" in os.environ:
            raise ConfigError(f"ROUNDTABLE_{name.upper()}: {instead}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where, message = first_error(exc, "settings")
        raise ConfigError(f"setting {where!r}: {message}") from exc
