"""Roles whose words come from an OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp).

Owns: the only imports of ``openai``'s client and ``autogen_ext.models.openai``; a
``ChatCompletionClient`` for one ``EndpointSettings`` that streams, stops softly when the stop
signal is set, counts tokens offline, and turns every SDK failure into one of our three error
families with one line naming the endpoint and its URL.

Also here: structured output negotiated per server (the form it takes, learnt from its first
refusal) and the reply grammar where the server takes one. Each call's streaming, timeouts,
retries and rate limit are ``agents.openai_stream``'s; the SDK itself makes no retries
(``max_retries=0``): ours know when a retry is safe.

Does not own: one call's HTTP exchange (``agents.openai_stream``), the wire format of messages
and chunks (``agents.openai_wire``), structured-output forms (``agents.structured_output``),
prompts, pruning, which endpoint a role uses (``agents.endpoints``).

Why not the stock client alone: autogen-ext's ``OpenAIChatCompletionClient`` builds the SDK
client and converts messages, and we reuse both; but its stream cannot be closed from outside
(stopping early leaves the HTTP response open, so the server keeps generating), it sends
speaker names only in the ``name`` field (which many local servers' chat templates ignore), and
its token counting asks tiktoken for the model's own encoding, which downloads.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import OpenAIChatCompletionClient
from pydantic import BaseModel

from roundtable.agents.endpoint_errors import NO_API_KEY, OPENAI_BASE_URL
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.openai_stream import EndpointStream
from roundtable.agents.openai_wire import endpoint_model_info, with_speaker_names
from roundtable.agents.ratelimit import EndpointLimiter, limiter_for
from roundtable.agents.structured_output import (
    NEGOTIATION,
    Form,
    FormatRefused,
    GrammarRefused,
    request_args,
    with_instruction,
)
from roundtable.common.errors import ConfigError
from roundtable.common.tokens import TiktokenCounter, TokenCounter

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "OpenAIEndpointClient",
    "endpoint_model_info",
    "with_speaker_names",
]

DEFAULT_CONTEXT_WINDOW = 8192


class OpenAIEndpointClient(ChatCompletionClient):
    """One role's client for one OpenAI-compatible endpoint.

    Every call streams (``create`` collects the stream), sends ``max_tokens`` and
    ``temperature``, and asks for usage in the stream; when the server reports none, usage
    is counted with tiktoken. Setting ``stop_signal`` ends the reply softly: the HTTP stream
    is closed and the text so far is the result (``last_interrupted`` tells).

    Resilience (settings in ``EndpointSettings``): a call waits for the endpoint's rate
    limiter, must see its first token within ``timeout_s`` and then no silence longer than
    ``idle_timeout_s``, and is retried (``max_retries``, jittered back-off, ``Retry-After``
    honoured) after a retryable fault as long as none of its text has been yielded. A call is
    named in logs by its ``CallKey``: ``extra_create_args={"call_key": ...}`` (a ``CallKey`` or
    a string), else the enclosing ``agents.resilience.call_scope``. ``rng`` makes the back-off
    jitter reproducible in tests; ``limiter`` replaces the endpoint's shared one.
    """

    def __init__(
        self,
        endpoint: EndpointSettings,
        *,
        name: str = "default",
        role: str | None = None,
        max_tokens: int,
        temperature: float,
        stop_signal: threading.Event | None = None,
        counter: TokenCounter | None = None,
        rng: random.Random | None = None,
        limiter: EndpointLimiter | None = None,
        reply_grammar: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.reply_grammar = reply_grammar
        """A GBNF grammar for free-text replies (the verdict-giver's), sent as ``grammar`` to
        servers that take it (llama.cpp's); structured calls use ``structured_output``."""
        self.name = name
        self.role = role
        self.url = endpoint.base_url or OPENAI_BASE_URL
        self.context_window = endpoint.context_window or DEFAULT_CONTEXT_WINDOW
        self.limiter = limiter or limiter_for(
            name,
            self.url,
            requests_per_minute=endpoint.requests_per_minute,
            tokens_per_minute=endpoint.tokens_per_minute,
        )
        self._inner = OpenAIChatCompletionClient(
            model=endpoint.model,
            base_url=self.url,
            api_key=endpoint.key() or NO_API_KEY,
            max_retries=0,
            max_tokens=max_tokens,
            temperature=temperature,
            model_info=endpoint_model_info(),
            include_name_in_message=True,
        )
        self._http = EndpointStream(
            endpoint,
            where=self.where,
            role=role,
            inner=self._inner,
            limiter=self.limiter,
            counter=counter or TiktokenCounter(),
            stop_signal=stop_signal,
            rng=rng or random.Random(),
        )
        self.last_form: Form | None = None
        """The structured-output form the last structured call was answered in."""

    @property
    def where(self) -> str:
        """How error messages name this endpoint."""
        return f"endpoint {self.name!r} at {self.url}"

    @property
    def _identity(self) -> tuple[str, str]:
        """What structured-output negotiation remembers a server by."""
        return (self.url, self.endpoint.model)

    @property
    def last_interrupted(self) -> bool:
        """Whether the latest call's reply was ended early (the stop signal, or its time)."""
        return self._http.last_interrupted

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        result: CreateResult | None = None
        async for item in self.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        ):
            if isinstance(item, CreateResult):
                result = item
        assert result is not None
        return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Stream one reply. A pydantic ``json_output`` is asked for in the form this endpoint
        accepts (``structured_output``; ``auto`` learns it from the first refusal)."""
        if not (isinstance(json_output, type) and issubclass(json_output, BaseModel)):
            async for item in self._free_text(
                messages, tools, tool_choice, json_output, extra_create_args, cancellation_token
            ):
                yield item
            return
        setting = self.endpoint.structured_output
        form = NEGOTIATION.form_for(self._identity, setting)
        while True:
            sent = with_instruction(list(messages), json_output) if form == "prompt" else messages
            stream = self._http.stream(
                sent,
                tools,
                tool_choice,
                None,
                extra_create_args,
                cancellation_token,
                format_args=request_args(form, json_output),
            )
            try:
                async with contextlib.aclosing(stream):
                    async for item in stream:
                        yield item
                self.last_form = form
                return
            except FormatRefused as refusal:
                following = (
                    NEGOTIATION.refuse(self._identity, form, str(refusal))
                    if setting == "auto"
                    else None
                )
                if following is None:
                    raise ConfigError(
                        f"{refusal}; this endpoint's structured_output = {setting!r} is "
                        "refused: set it to 'auto' (or 'prompt')"
                    ) from refusal
                form = following

    async def _free_text(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
        cancellation_token: CancellationToken | None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """A plain reply, under the reply grammar where the server takes one (a ``grammar`` in
        ``extra_create_args`` replaces the client's own for this call)."""
        args = dict(extra_create_args)
        wanted = args.pop("grammar", None) or self.reply_grammar
        grammar = wanted if NEGOTIATION.takes_grammar(self._identity) else None
        body = {"extra_body": {"grammar": grammar}} if grammar else None
        stream = self._http.stream(
            messages,
            tools,
            tool_choice,
            json_output,
            args,
            cancellation_token,
            format_args=body,
        )
        try:
            async with contextlib.aclosing(stream):
                async for item in stream:
                    yield item
        except GrammarRefused as refusal:
            NEGOTIATION.refuse_grammar(self._identity, str(refusal))
            async for item in self._free_text(
                messages, tools, tool_choice, json_output, extra_create_args, cancellation_token
            ):
                yield item

    async def close(self) -> None:
        await self._inner.close()

    def actual_usage(self) -> RequestUsage:
        return self._http.usage

    def total_usage(self) -> RequestUsage:
        return self._http.usage

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Tokens of the messages as sent (speaker prefixes included), counted offline."""
        return self._http.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.context_window - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities(vision=False, function_calling=False, json_output=True)

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info
