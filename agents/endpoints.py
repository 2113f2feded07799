"""Where a role's words come from: the embedded model, or an OpenAI-compatible endpoint.

``EndpointSettings`` is the configuration record (read from settings at the composition
root); ``make_client`` turns one into a model client for one role of one conversation. The
vendor SDKs stay in their own modules: the ``llama_*`` modules (llama_cpp) and the
``openai_*`` ones (openai, through autogen-ext).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from roundtable.common.errors import ConfigError

VERDICT_GRAMMAR = r"""root ::= verdict ": " line
verdict ::= "ACCEPT" | "REVISE"
line ::= [^\n]+
"""
"""Forces a reply that starts with the verdict-giver's verdict (where the model takes a
grammar: the embedded model, llama.cpp's servers)."""

REVISE_GRAMMAR = r"""root ::= "REVISE: " word " " word " " word line
word ::= [A-Za-z0-9,'()-]+
line ::= [^\n]*
"""
"""A revision request with at least three words of point: used while the protocol guards
still require a revision (``Guards.min_revisions``)."""


class Price(BaseModel):
    """Dollars per million tokens, as providers list them. Cached prompt tokens (reused by
    the server from an earlier call) cost ``cached_prompt_per_1m`` when it is set, and the full
    prompt price otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_per_1m: float = Field(default=0.0, ge=0)
    completion_per_1m: float = Field(default=0.0, ge=0)
    cached_prompt_per_1m: float | None = Field(default=None, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """Dollars for one call's (or one speaker's summed) tokens."""
        cached = min(cached_tokens, prompt_tokens)
        cached_rate = (
            self.prompt_per_1m if self.cached_prompt_per_1m is None else (self.cached_prompt_per_1m)
        )
        return (
            (prompt_tokens - cached) * self.prompt_per_1m
            + cached * cached_rate
            + completion_tokens * self.completion_per_1m
        ) / 1_000_000


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
    script: Path | None = None
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    """How a structured reply (the manager's pick, a plan, a comparison) is asked of an
    ``openai`` endpoint: ``json_schema`` (OpenAI, vLLM, Ollama, llama.cpp's server),
    ``json_object`` with a schema (llama-cpp-python's server), ``prompt`` (the schema in words,
    the reply parsed and checked), or ``auto``: the first of these the server does not refuse,
    learnt once per endpoint (``structured_output.py``)."""

    price: Price | None = None
    """What a call costs; the cost ledger shows dollars per speaker when it is set."""
    prompt_layout: Literal["role_first", "shared_first"] = "shared_first"
    """How a debate lays out the prompts of the roles on this endpoint: ``role_first`` (each
    role's instructions, then the conversation) or ``shared_first`` (the conversation first,
    rendered alike for every role, then the role's instructions and memory), so that every
    call shares the longest prefix with the one before it (llama.cpp's prompt reuse, vLLM's
    prefix caching, OpenAI's cached input), the manager's picks too. ``role_first`` is for a
    server whose chat template refuses a system message after the first turn. See the README
    ("Prefix reuse")."""

    # Timeouts of one call (``openai`` only). A hang or a trickle always ends.
    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds until the first token of a reply (connecting and the prompt's processing
    included); a server still silent then is a timeout, retried like a connection fault."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds to open the connection."""
    idle_timeout_s: float = Field(default=30.0, gt=0)
    """The longest silence between two chunks of a streamed reply."""
    call_timeout_s: float | None = Field(default=None, gt=0)
    """The longest a whole call may take, rate-limit waits and retries included (None: no
    limit beyond the debate's per-turn deadline). When it passes, a reply already streaming
    ends softly, as the stop signal would end it; a call with no reply yet fails."""

    # Retries (``openai`` only), as the OpenAI SDK makes them.
    max_retries: int = Field(default=2, ge=0, le=10)
    """Retries after a connection fault, a timeout, HTTP 408/409/429 or 5xx; never once any
    text of the reply has been streamed."""
    backoff_initial_s: float = Field(default=0.5, ge=0)
    """The first retry's wait (less up to 25% jitter), doubling for each further retry."""
    backoff_max_s: float = Field(default=8.0, ge=0)
    retry_after_max_s: float = Field(default=120.0, ge=0)
    """A server's ``Retry-After`` is honoured up to this; a longer one fails the call."""

    # Rate limits (``openai`` only), shared by every client of this endpoint in the process.
    requests_per_minute: float | None = Field(default=None, gt=0)
    """Calls wait for capacity instead of failing; None: no limit."""
    tokens_per_minute: float | None = Field(default=None, gt=0)
    """Prompt plus ``max_tokens`` reserved per call, settled with the usage reported."""

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
    shape: str | None = None,
) -> ChatCompletionClient:
    """A model client for one role, stopping softly when ``stop_signal`` is set.

    ``role`` is the role card's name (or ``manager``); ``embedded`` is the
    ``EmbeddedModelSettings`` used when ``endpoint.kind == "embedded"``; ``shape`` is the
    card's reply grammar (the verdict grammar for a verdict-giver without one).
    """
    grammar = shape or (VERDICT_GRAMMAR if gives_verdict else None)
    if endpoint.kind == "embedded":
        from roundtable.agents.llama_client import (
            EmbeddedModelSettings,
            LlamaChatClient,
            LlamaEngine,
        )

        settings = embedded if isinstance(embedded, EmbeddedModelSettings) else None
        engine = LlamaEngine.load(settings or EmbeddedModelSettings())
        return LlamaChatClient(
            engine,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=(settings or EmbeddedModelSettings()).repeat_penalty,
            reply_grammar=grammar,
            stop_signal=stop_signal,
            caller=role,
        )
    if endpoint.kind == "scripted":
        from roundtable.agents.scripted import client_from_script, load_script

        return client_from_script(
            load_script(endpoint.script),
            role,
            stop_signal=stop_signal,
            gives_verdict=gives_verdict,
        )
    if endpoint.kind == "openai":
        from roundtable.agents.openai_client import OpenAIEndpointClient

        return OpenAIEndpointClient(
            endpoint,
            name=name,
            role=role,
            max_tokens=max_tokens,
            temperature=temperature,
            stop_signal=stop_signal,
            reply_grammar=grammar,
        )
    raise ConfigError(f"endpoint {name!r}: unknown kind {endpoint.kind!r}")


async def check_endpoint(endpoint: EndpointSettings, name: str) -> None:
    """Fail in seconds, with one clear line, when an endpoint does not answer."""
    if endpoint.kind == "openai":
        from roundtable.agents.endpoint_errors import check_reachable

        await check_reachable(endpoint, name)


def exact_counter(
    endpoint: EndpointSettings, embedded: object | None = None
) -> Callable[[str], int] | None:
    """The model's own token counter when we have its tokenizer (the embedded model), else None.

    Counting with the model's own tokenizer makes pruning exact; other endpoints are counted
    with tiktoken and a margin.
    """
    if endpoint.kind != "embedded":
        return None
    from roundtable.agents.llama_client import EmbeddedModelSettings, LlamaEngine

    settings = embedded if isinstance(embedded, EmbeddedModelSettings) else EmbeddedModelSettings()
    return LlamaEngine.load(settings).count
