"""Roles whose words come from an OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp).

Owns: the only imports of ``openai`` and ``autogen_ext.models.openai``; a
``ChatCompletionClient`` for one ``EndpointSettings`` that streams, stops softly when the stop
signal is set, counts tokens offline, keeps speaker names in the text, and turns every SDK
failure into one of our three error families with one line naming the endpoint and its URL;
and ``check_reachable``, the start-up pre-flight.

Also here: the call's resilience, wired from ``agents.resilience`` and ``agents.ratelimit``:
timeouts (to the first token, between chunks, for the whole call), retries of retryable faults
only while nothing of the reply has been streamed, and the endpoint's shared rate limiter.
The SDK itself makes no retries (``max_retries=0``): ours know when a retry is safe.

Does not own: the retry rules (``agents.resilience``), rate limiting (``agents.ratelimit``),
prompts, pruning, which endpoint a role uses (``agents.endpoints``).

Why not the stock client alone: autogen-ext's ``OpenAIChatCompletionClient`` builds the SDK
client and converts messages, and we reuse both; but its stream cannot be closed from outside
(stopping early leaves the HTTP response open, so the server keeps generating), it sends
speaker names only in the ``name`` field (which many local servers' chat templates ignore), and
its token counting asks tiktoken for the model's own encoding, which downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, TypeVar

import openai
from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FinishReasons,
    LLMMessage,
    ModelCapabilities,
    ModelFamily,
    ModelInfo,
    RequestUsage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import OpenAIChatCompletionClient
from openai.lib._parsing import type_to_response_format_param
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

from roundtable.agents.endpoint_errors import (
    NO_API_KEY,
    OPENAI_BASE_URL,
    EndpointStatusError,
    cause,
    sdk_failure,
)
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.ratelimit import EndpointLimiter, Reservation, limiter_for
from roundtable.agents.resilience import (
    CallKey,
    EndpointFault,
    RetryPolicy,
    new_call_key,
    retrying,
)
from roundtable.agents.structured_output import (
    NEGOTIATION,
    Form,
    FormatRefused,
    GrammarRefused,
    refused,
    request_args,
    with_instruction,
)
from roundtable.agents.usage import CachedUsage, add_usage
from roundtable.common.errors import ConfigError, RoundtableError
from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TiktokenCounter, TokenCounter

DEFAULT_CONTEXT_WINDOW = 8192
STOP_POLL_S = 0.05
"""How often a wait on the server looks at the stop signal."""
TIMEOUT_GRACE_S = 0.02
"""How long past a timeout a reply already received may take to be read."""
LOGGER = logging.getLogger("roundtable.model")

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


T = TypeVar("T")


class _Ended:
    """What a wait returns instead of a result: why it ended (see the three below)."""

    def __init__(self, why: str) -> None:
        self.why = why


_STOPPED = _Ended("the stop signal was set")
_TIMED_OUT = _Ended("the step's own timeout passed")
_OUT_OF_TIME = _Ended("the whole call's time (call_timeout_s) is up")


class _Call:
    """One logical call: its key and the moment it runs out of time (``math.inf``: never)."""

    def __init__(self, key: CallKey, timeout_s: float | None) -> None:
        self.key = key
        self.deadline = time.monotonic() + timeout_s if timeout_s is not None else math.inf


def endpoint_model_info() -> ModelInfo:
    """What we assume of any model behind an OpenAI-compatible endpoint, whatever its name."""
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=True,
        family=ModelFamily.UNKNOWN,
        structured_output=True,
        # Passed through as they are: merging would raise on a system message mid-history.
        multiple_system_messages=True,
    )


def with_speaker_names(messages: Sequence[LLMMessage]) -> list[LLMMessage]:
    """Messages as sent: another speaker's turn starts with ``"<speaker>: "``.

    AutoGen hands other agents' turns to a model as ``UserMessage(source=<speaker>)``. The
    stock client puts the speaker only in the OpenAI ``name`` field, which many local servers'
    chat templates ignore, so the content carries it too. Sources are made valid for ``name``
    (letters, digits, ``_``, ``-``), which the stock client otherwise enforces by raising.
    """
    prepared: list[LLMMessage] = []
    for message in messages:
        if isinstance(message, UserMessage):
            content = message.content
            prefix = f"{message.source}: "
            if message.source and isinstance(content, str) and not content.startswith(prefix):
                content = prefix + content
            message = UserMessage(content=content, source=_valid_name(message.source))
        elif isinstance(message, AssistantMessage):
            message = message.model_copy(update={"source": _valid_name(message.source)})
        prepared.append(message)
    return prepared


def _valid_name(source: str) -> str:
    return _INVALID_NAME_CHARS.sub("_", source)[:64] or "user"


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
        self.last_interrupted = False
        self.policy = RetryPolicy(
            max_retries=endpoint.max_retries,
            backoff_initial_s=endpoint.backoff_initial_s,
            backoff_max_s=endpoint.backoff_max_s,
            retry_after_max_s=endpoint.retry_after_max_s,
        )
        self.limiter = limiter or limiter_for(
            name,
            self.url,
            requests_per_minute=endpoint.requests_per_minute,
            tokens_per_minute=endpoint.tokens_per_minute,
        )
        self._rng = rng or random.Random()
        self._stop_signal = stop_signal
        self._counter: TokenCounter = counter or TiktokenCounter()
        # Our own waits enforce the first-token and idle timeouts (and see the stop signal);
        # the SDK's read timeout is only a backstop behind them.
        backstop = max(endpoint.timeout_s, endpoint.idle_timeout_s) + 1.0
        self._inner = OpenAIChatCompletionClient(
            model=endpoint.model,
            base_url=self.url,
            api_key=endpoint.key() or NO_API_KEY,
            timeout=backstop,
            max_retries=0,
            max_tokens=max_tokens,
            temperature=temperature,
            model_info=endpoint_model_info(),
            include_name_in_message=True,
        )
        self._sdk: openai.AsyncOpenAI = self._inner._client
        self._sdk.timeout = openai.Timeout(backstop, connect=endpoint.connect_timeout_s)
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self.last_form: Form | None = None
        """The structured-output form the last structured call was answered in."""

    @property
    def where(self) -> str:
        """How error messages name this endpoint."""
        return f"endpoint {self.name!r} at {self.url}"

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
            stream = self._stream(
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
        stream = self._stream(
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

    @property
    def _secrets(self) -> list[str]:
        """What must never appear in an error message (the key, if any)."""
        key = self.endpoint.key()
        return [key] if key else []

    @property
    def _identity(self) -> tuple[str, str]:
        """What structured-output negotiation remembers a server by."""
        return (self.url, self.endpoint.model)

    async def _stream(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
        cancellation_token: CancellationToken | None,
        *,
        format_args: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        create_args = dict(extra_create_args)
        key = new_call_key(create_args.pop("call_key", None), agent=self.role)
        params = self._inner._process_create_args(
            with_speaker_names(messages), tools, tool_choice, json_output, create_args
        )
        args = dict(params.create_args)
        if params.response_format is not None:
            # The plain endpoint takes the JSON schema; the SDK's parse helpers would also
            # validate the reply, which is the caller's business (a bad pick is a ModelError).
            args["response_format"] = type_to_response_format_param(params.response_format)
        args.update(format_args or {})
        args.setdefault("stream_options", {"include_usage": True})
        if params.tools:
            args["tools"] = params.tools
        estimate = 0
        if self.limiter.counts_tokens:
            estimate = self.count_tokens(messages, tools=tools) + int(args.get("max_tokens") or 0)

        self.last_interrupted = False
        call = _Call(key, self.endpoint.call_timeout_s)

        def attempt() -> AsyncGenerator[str | CreateResult, None]:
            return self._attempt(
                call, params.messages, args, estimate, messages, tools, cancellation_token
            )

        stream = retrying(
            attempt,
            policy=self.policy,
            key=key,
            delivered=lambda item: isinstance(item, str),
            pause=partial(self._pause, call),
            rng=self._rng,
            on_fault=self._on_fault,
        )
        try:
            async with contextlib.aclosing(stream):
                async for item in stream:
                    yield item
        except EndpointFault as fault:
            LOGGER.warning(
                "model_call_failed", extra=key.log_extra(error=str(fault), status=fault.status)
            )
            raise

    async def _attempt(
        self,
        call: _Call,
        sdk_messages: Sequence[Any],
        args: Mapping[str, Any],
        estimate: int,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        cancellation_token: CancellationToken | None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """One HTTP request: wait for capacity, send, stream the reply, account for it."""
        reservation = await self.limiter.acquire(estimate, pause=partial(self._pause, call))
        if reservation is None:
            if not self._stopping():
                raise EndpointFault(
                    f"{self.where}: no rate-limit capacity within the call's "
                    f"{self.endpoint.call_timeout_s:g} s",
                    retryable=False,
                )
            self.last_interrupted = True  # stopped while waiting: nothing was sent
            yield self._result(messages, tools, [], [], "stop", None, reservation=None)
            return
        settled = False
        try:
            async for item in self._request(
                call, sdk_messages, args, messages, tools, cancellation_token, reservation
            ):
                if isinstance(item, CreateResult):
                    settled = True
                yield item
        finally:
            if not settled:  # failed or abandoned: tokens were not (knowingly) used
                self.limiter.settle(reservation, 0)

    async def _request(
        self,
        call: _Call,
        sdk_messages: Sequence[Any],
        args: Mapping[str, Any],
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        cancellation_token: CancellationToken | None,
        reservation: Reservation,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Send one request and stream its reply, within the first-token, idle and call times.

        The first token (text, or a thinking model's reasoning) must come within
        ``timeout_s``; after it, no silence may last ``idle_s``. A timeout before any text was
        yielded is retryable; after, it is not (the caller has part of the reply already).
        """
        timeout_s, idle_s = self.endpoint.timeout_s, self.endpoint.idle_timeout_s
        first_token_by = time.monotonic() + timeout_s
        pieces: list[str] = []
        thoughts: list[str] = []
        finish: str | None = None
        reported: RequestUsage | None = None
        try:
            opened = await self._wait_for(
                lambda: self._sdk.chat.completions.create(
                    messages=sdk_messages, stream=True, **args
                ),
                call,
                first_token_by,
                cancellation_token,
            )
        except openai.OpenAIError as exc:
            failure = self._failure(exc, started=False)
            sent = args.get("response_format")
            if (
                isinstance(failure, EndpointStatusError)
                and isinstance(sent, dict)
                and refused(failure.status or 0, str(failure))
            ):
                form: Form = "json_object" if sent.get("type") == "json_object" else "json_schema"
                raise FormatRefused(str(failure), form=form, status=failure.status or 0) from None
            if (
                isinstance(failure, EndpointStatusError)
                and "grammar" in args.get("extra_body", {})
                and refused(failure.status or 0, str(failure))
            ):
                raise GrammarRefused(str(failure), status=failure.status or 0) from None
            raise failure from cause(exc)
        if opened is _TIMED_OUT:
            raise EndpointFault(f"{self.where}: no answer within {timeout_s:g} s", retryable=True)
        if opened is _OUT_OF_TIME:
            raise self._out_of_time()
        if not isinstance(opened, _Ended):
            stream: openai.AsyncStream[ChatCompletionChunk] = opened
            try:
                while True:
                    progressing = bool(pieces or thoughts)
                    until = time.monotonic() + idle_s if progressing else first_token_by
                    try:
                        chunk = await self._wait_for(
                            stream.__anext__, call, until, cancellation_token
                        )
                    except StopAsyncIteration:
                        break
                    if chunk is _STOPPED:
                        break
                    if chunk is _OUT_OF_TIME:
                        if not pieces:
                            raise self._out_of_time()
                        self.last_interrupted = True  # the call's time is up: end softly
                        break
                    if chunk is _TIMED_OUT:
                        if progressing:
                            raise EndpointFault(
                                f"{self.where}: the reply stalled mid-way (nothing for "
                                f"{idle_s:g} s)",
                                retryable=not pieces,
                            )
                        raise EndpointFault(
                            f"{self.where}: no answer within {timeout_s:g} s", retryable=True
                        )
                    assert not isinstance(chunk, _Ended)
                    if chunk.usage is not None:
                        reported = CachedUsage(
                            prompt_tokens=chunk.usage.prompt_tokens,
                            completion_tokens=chunk.usage.completion_tokens,
                            cached_tokens=cached_prompt_tokens(chunk),
                        )
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    finish = choice.finish_reason or finish
                    extra = choice.delta.model_extra or {}
                    if isinstance(extra.get("reasoning_content"), str):
                        thoughts.append(extra["reasoning_content"])
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        yield choice.delta.content
            except openai.OpenAIError as exc:
                failure = self._failure(exc, started=bool(pieces), answered=True)
                raise failure from cause(exc)
            finally:
                await stream.close()
        yield self._result(messages, tools, pieces, thoughts, finish, reported, reservation)

    def _result(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        pieces: list[str],
        thoughts: list[str],
        finish: str | None,
        reported: RequestUsage | None,
        reservation: Reservation | None,
    ) -> CreateResult:
        """The call's result; its usage is added to the client's and settled with the limiter."""
        if self.last_interrupted or (self._stopping() and finish is None):
            self.last_interrupted, finish = True, "stop"
        content = "".join(pieces)
        sent = reservation is not None
        usage = reported or RequestUsage(
            prompt_tokens=self.count_tokens(messages, tools=tools) if sent else 0,
            completion_tokens=self._counter(content) if content else 0,
        )
        if reservation is not None:
            self.limiter.settle(reservation, usage.prompt_tokens + usage.completion_tokens)
        self._usage = add_usage(self._usage, usage)
        return CreateResult(
            finish_reason=_finish_reason(finish),
            content=content,
            usage=usage,
            cached=False,
            thought="".join(thoughts) or None,
        )

    def _out_of_time(self) -> EndpointFault:
        return EndpointFault(
            f"{self.where}: no reply within the call's {self.endpoint.call_timeout_s:g} s",
            retryable=False,
        )

    def _on_fault(self, fault: EndpointFault, delay: float | None) -> None:
        """A 429 slows the whole endpoint down, for every client sharing its limiter: nobody
        calls it before this call's retry (or, with no retry, a first back-off)."""
        if fault.status == 429:
            self.limiter.throttle(delay if delay is not None else self.policy.backoff_initial_s)

    def _stopping(self) -> bool:
        return self._stop_signal is not None and self._stop_signal.is_set()

    async def _pause(self, call: _Call, seconds: float) -> bool:
        """Sleep ``seconds``, watching the stop signal; False, at once, when the call is
        stopped or the sleep would outlast the call's time."""
        end = time.monotonic() + seconds
        if end > call.deadline:
            return False
        while not self._stopping():
            left = end - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, STOP_POLL_S))
        return False

    async def _wait_for(
        self,
        step: Callable[[], Awaitable[T]],
        call: _Call,
        until: float,
        cancellation_token: CancellationToken | None,
    ) -> T | _Ended:
        """Await ``step()`` unless the stop signal is set first or while it waits (so a
        stalled server cannot hold an interrupt back), or time runs out: ``until`` for this
        step, the call's deadline for the whole call. Then the step is cancelled."""
        if self._stopping():
            self.last_interrupted = True
            return _STOPPED
        task = asyncio.ensure_future(step())
        if cancellation_token is not None:
            cancellation_token.link_future(task)
        try:
            while True:
                now = time.monotonic()
                limit = min(until, call.deadline)
                if now >= limit:
                    # A busy event loop can wake us at the deadline with the data already
                    # received: give it a moment to be read before calling it a timeout.
                    done, _ = await asyncio.wait({task}, timeout=TIMEOUT_GRACE_S)
                    if done:
                        return task.result()
                    return _OUT_OF_TIME if call.deadline <= until else _TIMED_OUT
                done, _ = await asyncio.wait({task}, timeout=min(limit - now, STOP_POLL_S))
                if done:
                    return task.result()
                if self._stopping():
                    self.last_interrupted = True
                    return _STOPPED
        finally:
            if not task.done():
                task.cancel()  # stop reading: the stream is closed next
                await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # mark it retrieved: result() above re-raised it if it mattered

    def _failure(
        self, exc: openai.OpenAIError, *, started: bool, answered: bool = False
    ) -> RoundtableError:
        """One clear line in the right family for an SDK error (``endpoint_errors``)."""
        return sdk_failure(
            exc,
            where=self.where,
            endpoint=self.endpoint,
            secrets=self._secrets,
            started=started,
            answered=answered,
        )

    async def close(self) -> None:
        await self._inner.close()

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Tokens of the messages as sent (speaker prefixes included), counted offline."""
        total = sum(
            PER_MESSAGE_OVERHEAD + self._counter(_text_of(m)) for m in with_speaker_names(messages)
        )
        for tool in tools:
            schema = tool.schema if isinstance(tool, Tool) else tool
            total += self._counter(json.dumps(schema))
        return total

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


def _finish_reason(reason: str | None) -> FinishReasons:
    known: dict[str, FinishReasons] = {
        "stop": "stop",
        "length": "length",
        "content_filter": "content_filter",
        "tool_calls": "function_calls",
        "function_call": "function_calls",
    }
    return known.get(reason or "stop", "unknown")


def _text_of(message: LLMMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(
        part if isinstance(part, str) else getattr(part, "content", None) or str(part)
        for part in content
    )


def cached_prompt_tokens(chunk: ChatCompletionChunk) -> int:
    """Prompt tokens the server reused, in the shape it reports them: OpenAI's, vLLM's and
    llama.cpp's ``usage.prompt_tokens_details.cached_tokens``, or llama.cpp's ``timings.cache_n``;
    0 when the server says nothing (Ollama). Hostile values count as nothing."""
    usage = chunk.usage
    details = usage.prompt_tokens_details if usage is not None else None
    cached = details.cached_tokens if details is not None else None
    if cached is None:
        timings = (chunk.model_extra or {}).get("timings")
        cached = timings.get("cache_n") if isinstance(timings, dict) else None
    if not isinstance(cached, int) or isinstance(cached, bool) or cached < 0:
        return 0
    return min(cached, usage.prompt_tokens) if usage is not None else 0
