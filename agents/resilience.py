"""Model-call resilience: which faults are retried, how long to wait, and the retry loop.

Owns: ``EndpointFault`` (an infrastructure fault that knows whether sending the same request
again is safe), the ``RetryPolicy`` (capped attempts, jittered exponential back-off, the
server's ``Retry-After`` honoured), ``parse_retry_after``, the retry loop ``retrying`` around
one streamed call, and the call key ``(conversation, turn, agent)`` that names a call in logs.

Does not own: HTTP, the vendor SDK or its error types (``agents.openai_client`` maps them to
``EndpointFault``), rate limits (``agents.ratelimit``), the per-turn deadline (the debate sets
the stop signal; clients poll it).

The rule that keeps retries from duplicating a message: a call is retried only while nothing of
its reply has reached the caller. Once a piece of text has been yielded, a later fault ends the
call with an ``InfraError``; the debate records it as an ``error`` event and carries on.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from roundtable.common.errors import InfraError

LOGGER = logging.getLogger("roundtable.model")

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Request timeout, conflict (a lock), too many requests; every 5xx is retryable too."""

T = TypeVar("T")


class EndpointFault(InfraError):
    """An endpoint fault (an HTTP error status, a refused or dropped connection, a timeout).

    ``retryable`` says whether sending the same request again is safe and may succeed: it is
    never true once any text of the reply has reached the caller. ``status`` is the HTTP status
    (None for connection faults and timeouts); ``retry_after`` the seconds the server asked us
    to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        # Copies and pickles keep the type and attributes (``__init__`` has required keywords).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def noted(self, note: str) -> EndpointFault:
        """The same fault with ``note`` appended to its one-line message (a copy)."""
        fault = copy.copy(self)
        fault.args = (f"{self} ({note})",)
        return fault


def retryable_status(status: int) -> bool:
    """The statuses the OpenAI SDK retries: 408, 409, 429 and every 5xx."""
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or an HTTP date).

    Header names are matched case-insensitively. A date in the past is 0; anything unreadable
    is None (the back-off applies).
    """
    lower = {name.lower(): value for name, value in headers.items()}
    millis = _number(lower.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lower.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return max(0.0, number) if number is not None and math.isfinite(number) else None


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and after how long, a retryable fault is tried again.

    The defaults are the OpenAI SDK's: 2 retries, back-off 0.5 s doubling to at most 8 s, each
    wait shortened by up to 25% at random (so clients that failed together do not come back
    together), and a server's ``Retry-After`` honoured up to 2 minutes. A longer
    ``Retry-After`` is not waited for inside a turn: the fault surfaces at once.
    """

    max_retries: int = 2
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 120.0

    def delay(self, retry: int, fault: EndpointFault, rng: random.Random) -> float | None:
        """Seconds before retry number ``retry`` (1-based), or None when it must not happen."""
        if not fault.retryable or retry > self.max_retries:
            return None
        if fault.retry_after is not None:
            if fault.retry_after > self.retry_after_max_s:
                return None
            if fault.retry_after > 0:
                return fault.retry_after
        backoff = min(self.backoff_initial_s * 2.0 ** (retry - 1), self.backoff_max_s)
        return backoff * (1 - 0.25 * rng.random())


@dataclass(frozen=True)
class CallKey:
    """Names one model call in logs: which conversation, which turn, which agent."""

    conversation_id: str | None = None
    turn: int | None = None
    agent: str | None = None
    call: str = ""
    """A process-unique id, shared by all attempts of the call."""

    def __str__(self) -> str:
        where = "/".join(str(p) for p in (self.conversation_id, self.turn, self.agent) if p)
        return f"{where}#{self.call}" if where else f"#{self.call}"

    def log_extra(self, **fields: object) -> dict[str, object]:
        """``extra=`` for a log record, in the shape ``conversations.observe`` writes."""
        return {
            "conversation_id": self.conversation_id,
            "turn": self.turn,
            "agent": self.agent,
            "fields": {"call": self.call, **fields},
        }


_SCOPE: ContextVar[CallKey | None] = ContextVar("roundtable_call_scope", default=None)
_CALL_IDS = itertools.count(1)


@contextlib.contextmanager
def call_scope(
    conversation_id: str, turn: int | None = None, agent: str | None = None
) -> Iterator[None]:
    """Model calls made inside this block (and in tasks started from it, such as AutoGen's
    agent handlers during ``team.run_stream``) carry this key.

    Usable around a ``yield`` in an async generator: the key lives in the consuming task's
    context. If the generator is closed from another context, the key is cleared instead.
    """
    token = _SCOPE.set(CallKey(conversation_id, turn, agent))
    try:
        yield
    finally:
        try:
            _SCOPE.reset(token)
        except ValueError:  # closed from another context than the one it was opened in
            _SCOPE.set(None)


def new_call_key(given: object = None, *, agent: str | None = None) -> CallKey:
    """The key of a new call: ``given`` (a ``CallKey`` or a string from ``extra_create_args``),
    else the enclosing ``call_scope``, else only a fresh id."""
    call = f"c{next(_CALL_IDS)}"
    if isinstance(given, CallKey):
        return CallKey(given.conversation_id, given.turn, given.agent or agent, call)
    if isinstance(given, str) and given:
        return CallKey(given, None, agent, call)
    scope = _SCOPE.get()
    if scope is None:
        return CallKey(agent=agent, call=call)
    return CallKey(scope.conversation_id, scope.turn, scope.agent or agent, call)


async def retrying(
    attempt: Callable[[], AsyncGenerator[T, None]],
    *,
    policy: RetryPolicy,
    key: CallKey,
    delivered: Callable[[T], bool],
    pause: Callable[[float], Awaitable[bool]],
    rng: random.Random,
    on_fault: Callable[[EndpointFault, float | None], None] | None = None,
) -> AsyncGenerator[T, None]:
    """Yield what ``attempt()`` yields, starting it again after a retryable ``EndpointFault``.

    ``delivered(item)`` tells whether an item carries reply text to the caller: after the first
    one, no retry happens. ``pause(seconds)`` waits between attempts and returns False when the
    call must end instead (stopped, or past its deadline): the last fault is then raised.
    ``on_fault(fault, delay)`` hears each fault (rate limiters slow down on a 429), with the
    wait before its retry, or None when there will be none. The fault that ends the call says
    how many attempts were made.
    """
    retry = 0
    began = time.monotonic()
    while True:
        started = False
        try:
            stream = attempt()
            async with contextlib.aclosing(stream):
                async for item in stream:
                    started = started or delivered(item)
                    yield item
            return
        except EndpointFault as fault:
            retry += 1
            delay = None if started else policy.delay(retry, fault, rng)
            if on_fault is not None:
                on_fault(fault, delay)
            if delay is None:
                final = _final(fault, retry, started, policy)
                if final is fault:
                    raise
                raise final from fault
            LOGGER.warning(
                "model_call_retry",
                extra=key.log_extra(
                    error=str(fault),
                    status=fault.status,
                    attempt=retry,
                    max_retries=policy.max_retries,
                    delay_s=round(delay, 3),
                    elapsed_s=round(time.monotonic() - began, 3),
                ),
            )
            if not await pause(delay):
                note = f"gave up after {retry} attempts: stopped, or out of time"
                raise fault.noted(note) from fault


def _final(
    fault: EndpointFault, attempts: int, started: bool, policy: RetryPolicy
) -> EndpointFault:
    """The fault that ends a call, its message saying why there was no (further) retry."""
    too_long = fault.retry_after is not None and fault.retry_after > policy.retry_after_max_s
    if fault.retryable and not started and too_long:
        return fault.noted(f"Retry-After {fault.retry_after:g} s is longer than we wait")
    return fault if attempts == 1 else fault.noted(f"after {attempts} attempts")


def _rebuild(cls: type[EndpointFault], args: tuple[object, ...], state: dict[str, object]) -> Any:
    fault = cls.__new__(cls, *args)
    fault.args = args
    fault.__dict__.update(state)
    return fault
