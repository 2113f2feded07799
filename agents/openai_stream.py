"""One endpoint's streamed HTTP calls: timeouts, retries, the rate limit and a soft stop.

Owns: sending one chat completion request through the OpenAI SDK and streaming its reply
within the first-token, idle and whole-call times (``agents.call_clock``); retrying retryable
faults only while nothing of the reply has been yielded (``agents.resilience``); waiting for
and settling the endpoint's rate limiter (``agents.ratelimit``); the reply's usage (the
server's, else counted offline); and every SDK failure as one line in one of our three error
families (``agents.endpoint_errors``).

Does not own: which structured-output form or grammar a call carries (the client,
``agents.openai_client``, negotiates it and passes ``format_args``), the wire format of
messages (``agents.openai_wire``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage, RequestUsage
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import OpenAIChatCompletionClient
from openai.lib._parsing import type_to_response_format_param
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

from roundtable.agents.call_clock import OUT_OF_TIME, STOPPED, TIMED_OUT, CallClock, Ended
from roundtable.agents.endpoint_errors import cause, refusal_of, sdk_failure
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.openai_wire import (
    cached_prompt_tokens,
    finish_reason,
    text_of,
    with_speaker_names,
)
from roundtable.agents.ratelimit import EndpointLimiter, Reservation
from roundtable.agents.resilience import EndpointFault, RetryPolicy, new_call_key, retrying
from roundtable.agents.usage import CachedUsage, add_usage
from roundtable.common.errors import RoundtableError
from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TokenCounter

LOGGER = logging.getLogger("roundtable.model")


@dataclass
class _Reading:
    """What one request's stream has brought so far."""

    pieces: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    finish: str | None = None
    reported: RequestUsage | None = None

    def take(self, chunk: ChatCompletionChunk) -> str | None:
        """Record a chunk; its reply text, if it has any."""
        if chunk.usage is not None:
            self.reported = CachedUsage(
                prompt_tokens=chunk.usage.prompt_tokens,
                completion_tokens=chunk.usage.completion_tokens,
                cached_tokens=cached_prompt_tokens(chunk),
            )
        if not chunk.choices:
            return None
        choice = chunk.choices[0]
        self.finish = choice.finish_reason or self.finish
        extra = choice.delta.model_extra or {}
        if isinstance(extra.get("reasoning_content"), str):
            self.thoughts.append(extra["reasoning_content"])
        if choice.delta.content:
            self.pieces.append(choice.delta.content)
        return choice.delta.content or None


class EndpointStream:
    """The streamed calls of one client to one endpoint (see the module docstring).

    ``last_interrupted`` tells whether the latest call's reply was ended early (the stop
    signal, or the call's time); ``usage`` sums every call's.
    """

    def __init__(
        self,
        endpoint: EndpointSettings,
        *,
        where: str,
        role: str | None,
        inner: OpenAIChatCompletionClient,
        limiter: EndpointLimiter,
        counter: TokenCounter,
        stop_signal: threading.Event | None,
        rng: random.Random,
    ) -> None:
        self.endpoint = endpoint
        self.where = where
        self.role = role
        self.limiter = limiter
        self.policy = RetryPolicy(
            max_retries=endpoint.max_retries,
            backoff_initial_s=endpoint.backoff_initial_s,
            backoff_max_s=endpoint.backoff_max_s,
            retry_after_max_s=endpoint.retry_after_max_s,
        )
        self.last_interrupted = False
        self.usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._inner = inner
        self._counter = counter
        self._stop_signal = stop_signal
        self._rng = rng
        # Our own waits enforce the first-token and idle timeouts (and see the stop signal);
        # the SDK's read timeout is only a backstop behind them.
        backstop = max(endpoint.timeout_s, endpoint.idle_timeout_s) + 1.0
        self._sdk: openai.AsyncOpenAI = inner._client
        self._sdk.timeout = openai.Timeout(backstop, connect=endpoint.connect_timeout_s)

    @property
    def _secrets(self) -> list[str]:
        """What must never appear in an error message (the key, if any)."""
        key = self.endpoint.key()
        return [key] if key else []

    async def stream(
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
        clock = CallClock(key, self.endpoint.call_timeout_s, self._stop_signal)

        def attempt() -> AsyncGenerator[str | CreateResult, None]:
            return self._attempt(
                clock, params.messages, args, estimate, messages, tools, cancellation_token
            )

        stream = retrying(
            attempt,
            policy=self.policy,
            key=key,
            delivered=lambda item: isinstance(item, str),
            pause=clock.pause,
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
        clock: CallClock,
        sdk_messages: Sequence[Any],
        args: Mapping[str, Any],
        estimate: int,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        cancellation_token: CancellationToken | None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """One HTTP request: wait for capacity, send, stream the reply, account for it."""
        reservation = await self.limiter.acquire(estimate, pause=clock.pause)
        if reservation is None:
            if not clock.stopping():
                raise EndpointFault(
                    f"{self.where}: no rate-limit capacity within the call's "
                    f"{self.endpoint.call_timeout_s:g} s",
                    retryable=False,
                )
            self.last_interrupted = True  # stopped while waiting: nothing was sent
            yield self._result(messages, tools, _Reading(finish="stop"), reservation=None)
            return
        settled = False
        try:
            async for item in self._request(
                clock, sdk_messages, args, messages, tools, cancellation_token, reservation
            ):
                if isinstance(item, CreateResult):
                    settled = True
                yield item
        finally:
            if not settled:  # failed or abandoned: tokens were not (knowingly) used
                self.limiter.settle(reservation, 0)

    async def _request(
        self,
        clock: CallClock,
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
        first_token_by = time.monotonic() + self.endpoint.timeout_s
        reading = _Reading()
        opened = await self._open(clock, sdk_messages, args, first_token_by, cancellation_token)
        if opened is not None:
            read = self._read(opened, clock, reading, first_token_by, cancellation_token)
            async with contextlib.aclosing(read):
                async for piece in read:
                    yield piece
        yield self._result(messages, tools, reading, reservation)

    async def _open(
        self,
        clock: CallClock,
        sdk_messages: Sequence[Any],
        args: Mapping[str, Any],
        first_token_by: float,
        cancellation_token: CancellationToken | None,
    ) -> openai.AsyncStream[ChatCompletionChunk] | None:
        """The response stream, once the server answers; None when the call was stopped."""
        try:
            opened = await clock.wait_for(
                lambda: self._sdk.chat.completions.create(
                    messages=sdk_messages, stream=True, **args
                ),
                first_token_by,
                cancellation_token,
            )
        except openai.OpenAIError as exc:
            failure = self._failure(exc, started=False)
            refusal = refusal_of(failure, args)
            if refusal is not None:
                raise refusal from None
            raise failure from cause(exc)
        if opened is TIMED_OUT:
            raise self._no_answer()
        if opened is OUT_OF_TIME:
            raise self._out_of_time()
        if isinstance(opened, Ended):
            self.last_interrupted = True
            return None
        stream: openai.AsyncStream[ChatCompletionChunk] = opened
        return stream

    async def _read(
        self,
        stream: openai.AsyncStream[ChatCompletionChunk],
        clock: CallClock,
        reading: _Reading,
        first_token_by: float,
        cancellation_token: CancellationToken | None,
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text as it comes, until the stream ends, is stopped or stalls."""
        idle_s = self.endpoint.idle_timeout_s
        try:
            while True:
                progressing = bool(reading.pieces or reading.thoughts)
                until = time.monotonic() + idle_s if progressing else first_token_by
                try:
                    chunk = await clock.wait_for(stream.__anext__, until, cancellation_token)
                except StopAsyncIteration:
                    break
                if isinstance(chunk, Ended):
                    if self._ended(chunk, reading, progressing):
                        break
                    continue
                text = reading.take(chunk)
                if text:
                    yield text
        except openai.OpenAIError as exc:
            failure = self._failure(exc, started=bool(reading.pieces), answered=True)
            raise failure from cause(exc)
        finally:
            await stream.close()

    def _ended(self, ended: Ended, reading: _Reading, progressing: bool) -> bool:
        """A wait for the next chunk ended without one: True to end the reply softly (what
        came so far is the result), or raise the fault."""
        if ended is STOPPED:
            self.last_interrupted = True
            return True
        if ended is OUT_OF_TIME:
            if not reading.pieces:
                raise self._out_of_time()
            self.last_interrupted = True  # the call's time is up: end softly
            return True
        if progressing:
            raise EndpointFault(
                f"{self.where}: the reply stalled mid-way (nothing for "
                f"{self.endpoint.idle_timeout_s:g} s)",
                retryable=not reading.pieces,
            )
        raise self._no_answer()

    def _result(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        reading: _Reading,
        reservation: Reservation | None,
    ) -> CreateResult:
        """The call's result; its usage is added to the client's and settled with the limiter."""
        finish = reading.finish
        if self.last_interrupted or (self._stopping() and finish is None):
            self.last_interrupted, finish = True, "stop"
        content = "".join(reading.pieces)
        sent = reservation is not None
        usage = reading.reported or RequestUsage(
            prompt_tokens=self.count_tokens(messages, tools=tools) if sent else 0,
            completion_tokens=self._counter(content) if content else 0,
        )
        if reservation is not None:
            self.limiter.settle(reservation, usage.prompt_tokens + usage.completion_tokens)
        self.usage = add_usage(self.usage, usage)
        return CreateResult(
            finish_reason=finish_reason(finish),
            content=content,
            usage=usage,
            cached=False,
            thought="".join(reading.thoughts) or None,
        )

    def _no_answer(self) -> EndpointFault:
        return EndpointFault(
            f"{self.where}: no answer within {self.endpoint.timeout_s:g} s", retryable=True
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

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Tokens of the messages as sent (speaker prefixes included), counted offline."""
        total = sum(
            PER_MESSAGE_OVERHEAD + self._counter(text_of(m)) for m in with_speaker_names(messages)
        )
        for tool in tools:
            schema = tool.schema if isinstance(tool, Tool) else tool
            total += self._counter(json.dumps(schema))
        return total
