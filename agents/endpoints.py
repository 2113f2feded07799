"""Where a role's words come from: the embedded model, or an OpenAI-compatible endpoint.

``EndpointSettings`` is the configuration record (read from settings at the composition
root); ``make_client`` turns one into a model client for one role of one conversation. The
vendor SDKs stay in their own modules: ``llama_client`` (llama_cpp) and ``openai_client``
(openai, through autogen-ext).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from common.errors import ConfigError

VERDICT_GRAMMAR = r"""root ::= verdict ": " line
verdict ::= "ACCEPT" | "REVISE"
line ::= [^\n]+
"""
"""Forces a reply that starts with the critic's verdict (embedded model only)."""


class EndpointSettings(BaseModel):
    """One model endpoint. ``kind="embedded"`` needs nothing else: it is the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["embedded", "openai", "scripted"] = "embedded"
    """``scripted`` replays a script file (``script``), or the built-in demo: no model at all."""
    base_url: str | None = None
    """For ``openai``: e.g. http://127.0.0.1:11434/v1 (Ollama), http://host:8000/v1 (vLLM)."""
    model: str = "SmolLM2-135M-Instruct"
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    """Name of an environment variable holding the key (preferred over ``api_key``)."""
    context_window: int | None = Field(default=None, ge=256)
    timeout_s: float = Field(default=60.0, gt=0)
    script: Path | None = None

    @model_validator(mode="after")
    def _openai_needs_a_target(self) -> EndpointSettings:
        if self.kind == "openai" and self.base_url is None and self.key() is None:
            raise ValueError("an openai endpoint needs base_url, or an API key for api.openai.com")
        return self

    def key(self) -> str | None:
        """The API key, from the named environment variable first."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if value:
                return value
        return self.api_key.get_secret_value() if self.api_key else None


def make_client(
    endpoint: EndpointSettings,
    *,
    name: str,
    role: str,
    max_tokens: int,
    temperature: float,
    gives_verdict: bool,
    stop_signal: threading.Event,
    embedded: object | None = None,
) -> ChatCompletionClient:
    """A model client for one role, stopping softly when ``stop_signal`` is set.

    ``role`` is the role card's name (or ``manager``); ``embedded`` is the
    ``EmbeddedModelSettings`` used when ``endpoint.kind == "embedded"``.
    """
    if endpoint.kind == "embedded":
        from agents.llama_client import EmbeddedModelSettings, LlamaChatClient, LlamaEngine

        settings = embedded if isinstance(embedded, EmbeddedModelSettings) else None
        engine = LlamaEngine.load(settings or EmbeddedModelSettings())
        return LlamaChatClient(
            engine,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=(settings or EmbeddedModelSettings()).repeat_penalty,
            reply_grammar=VERDICT_GRAMMAR if gives_verdict else None,
            stop_signal=stop_signal,
        )
    if endpoint.kind == "scripted":
        from agents.scripted import client_from_script, load_script

        return client_from_script(load_script(endpoint.script), role, stop_signal=stop_signal)
    if endpoint.kind == "openai":
        from agents.openai_client import OpenAIEndpointClient

        return OpenAIEndpointClient(
            endpoint,
            name=name,
            max_tokens=max_tokens,
            temperature=temperature,
            stop_signal=stop_signal,
        )
    raise ConfigError(f"endpoint {name!r}: unknown kind {endpoint.kind!r}")


async def check_endpoint(endpoint: EndpointSettings, name: str) -> None:
    """Fail in seconds, with one clear line, when an endpoint does not answer."""
    if endpoint.kind == "openai":
        from agents.openai_client import check_reachable

        await check_reachable(endpoint, name)
