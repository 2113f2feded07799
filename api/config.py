"""The API's configuration, from ``ROUNDTABLE_*`` environment variables.

Checked at start-up (a ``ConfigError`` names what is wrong): a token too short to be a secret,
a webhook allow-list entry that is not ``host:port``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from roundtable.api.limits import DEFAULT_MAX_BODY_BYTES
from roundtable.common.errors import ConfigError
from roundtable.common.secrets import keep

MIN_TOKEN_CHARS = 16


class ApiSettings(BaseSettings):
    """Who may call the API, where webhooks may go, and how hard to try delivering them."""

    model_config = SettingsConfigDict(env_prefix="ROUNDTABLE_", extra="ignore")

    api_token: SecretStr | None = None
    """The bearer token every request must carry; unset, the API refuses every request."""
    webhook_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 signature of each webhook body; unset, webhooks are refused."""
    webhook_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """``host:port`` entries a webhook URL must match (comma-separated in the environment)."""
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_s: float = Field(default=0.5, gt=0, le=60)
    """First wait between attempts; it doubles each time (with jitter)."""
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    api_max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=100_000_000)
    """A request body over this is refused with 413 as it streams in (Content-Length or not)."""
    max_active_runs: int = Field(default=8, ge=1, le=256)
    """Runs the API keeps going at once; more are refused with 429."""

    @field_validator("api_token", "webhook_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _keep_secrets(self) -> ApiSettings:
        """No error of this process shows the token or the webhook secret (common.secrets)."""
        keep(*(s.get_secret_value() for s in (self.api_token, self.webhook_secret) if s))
        return self

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allow")
    @classmethod
    def _host_ports(cls, entries: list[str]) -> list[str]:
        return [normalise_entry(entry) for entry in entries]


def normalise_entry(entry: str) -> str:
    """``Host:port`` lower-cased; anything else (no port, a bad port, a URL) is refused."""
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not host or "/" in entry or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not host:port (e.g. 127.0.0.1:9000)")
    return f"{host.lower().strip('[]')}:{int(port)}"


def load_api_settings(**overrides: object) -> ApiSettings:
    """The API settings from the environment; a bad value is a ConfigError naming it."""
    try:
        return ApiSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"ROUNDTABLE_{'_'.join(str(p) for p in e['loc'][:1]).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"API settings: {problems}") from exc
