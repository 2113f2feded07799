"""Retries, timeouts and call keys: ``agents.resilience`` alone, then through a real client
against the loopback chat server."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from autogen_core.models import CreateResult, UserMessage

from roundtable.agents.endpoint_errors import EndpointStatusError
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.openai_client import OpenAIEndpointClient
from roundtable.agents.ratelimit import forget_limiters
from roundtable.agents.resilience import (
    CallKey,
    EndpointFault,
    RetryPolicy,
    call_scope,
    new_call_key,
    parse_retry_after,
    retryable_status,
    retrying,
)
from roundtable.common.errors import ConfigError, InfraError, ModelError
from tests.support.chat_server import ChatServer, Reply, running_chat_server

pytestmark = pytest.mark.timeout(30)

QUESTION = [UserMessage(content="Is the sky blue?", source="user")]
LONG_REPLY = " ".join(f"word{i}" for i in range(40))
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.04}
"""Back-off in milliseconds, so retry tests run fast."""

MakeClient = Callable[..., OpenAIEndpointClient]


# -- the rules, alone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(400, False), (401, False), (404, False), (408, True), (409, True), (422, False)],
        *[(429, True), (500, True), (502, True), (503, True), (504, True)],
    ],
)
def test_retryable_statuses_are_the_sdks(status: int, retryable: bool) -> None:
    assert retryable_status(status) is retryable


def test_parse_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=7), usegmt=True)

    def parse(**headers: str) -> float | None:
        return parse_retry_after(headers, now=lambda: now)

    assert parse(**{"Retry-After": "3"}) == 3.0
    assert parse(**{"retry-after": "0.25"}) == 0.25
    assert parse(**{"Retry-After-Ms": "40", "Retry-After": "9"}) == 0.04
    assert parse(**{"Retry-After": later}) == 7.0
    assert parse(**{"Retry-After": earlier}) == 0.0
    assert parse(**{"Retry-After": "-5"}) == 0.0
    assert parse(**{"Retry-After": "soon"}) is None
    assert parse(**{"Retry-After": "inf"}) is None
    assert parse() is None


def fault(retry_after: float | None = None, *, retryable: bool = True) -> EndpointFault:
    return EndpointFault("x: HTTP 503", retryable=retryable, status=503, retry_after=retry_after)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=6, backoff_initial_s=0.5, backoff_max_s=4.0)
    rng = random.Random(7)
    delays = [policy.delay(n, fault(), rng) for n in range(1, 7)]

    nominal = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for delay, cap in zip(delays, nominal, strict=True):
        assert delay is not None and 0.75 * cap <= delay <= cap
    assert len(set(delays)) == 6  # jittered: no two alike
    again = [RetryPolicy(6, 0.5, 4.0).delay(n, fault(), random.Random(7)) for n in range(1, 7)]
    assert again[0] == delays[0]  # a seeded RNG reproduces the jitter


def test_retry_after_wins_over_backoff_up_to_its_cap() -> None:
    policy = RetryPolicy(max_retries=2, retry_after_max_s=10)
    rng = random.Random(1)

    assert policy.delay(1, fault(retry_after=3), rng) == 3
    assert policy.delay(1, fault(retry_after=11), rng) is None  # too long: fail now
    zero = policy.delay(1, fault(retry_after=0), rng)  # "now": the back-off still applies
    assert zero is not None and 0.375 <= zero <= 0.5
    assert policy.delay(3, fault(), rng) is None  # out of retries
    assert policy.delay(1, fault(retryable=False), rng) is None


async def test_retrying_replays_only_until_something_was_delivered() -> None:
    """The loop on its own: two faults before any text are retried; a fault after text is
    final, and the text is not repeated."""
    script: list[list[str | EndpointFault]] = [
        [fault()],
        ["", fault()],  # an empty piece is not text: still safe to retry
        ["Hello", " world", fault()],
        ["never reached"],
    ]
    attempts = 0
    pauses: list[float] = []

    async def attempt() -> AsyncGenerator[str, None]:
        nonlocal attempts
        plan = script[attempts]
        attempts += 1
        for step in plan:
            if isinstance(step, EndpointFault):
                raise step
            yield step

    async def pause(seconds: float) -> bool:
        pauses.append(seconds)
        return True

    seen: list[str] = []
    with pytest.raises(EndpointFault) as raised:
        async for item in retrying(
            attempt,
            policy=RetryPolicy(max_retries=5, backoff_initial_s=0.1),
            key=new_call_key(),
            delivered=bool,
            pause=pause,
            rng=random.Random(0),
        ):
            seen.append(item)

    assert seen == ["", "Hello", " world"]
    assert attempts == 3 and len(pauses) == 2
    assert str(raised.value) == "x: HTTP 503 (after 3 attempts)"


async def test_retrying_gives_up_when_the_pause_is_refused() -> None:
    async def attempt() -> AsyncGenerator[str, None]:
        raise fault()
        yield ""  # pragma: no cover

    async def refuse(seconds: float) -> bool:
        return False

    with pytest.raises(EndpointFault, match=r"gave up after 1 attempts: stopped, or out of time"):
        async for _ in retrying(
            attempt,
            policy=RetryPolicy(),
            key=new_call_key(),
            delivered=bool,
            pause=refuse,
            rng=random.Random(0),
        ):
            pass


def test_a_fault_survives_copy_and_pickle() -> None:
    import copy
    import pickle

    original = EndpointStatusError("x: HTTP 429", status=429, retry_after=2.0)
    for clone in (copy.copy(original), pickle.loads(pickle.dumps(original))):
        assert isinstance(clone, EndpointStatusError)
        assert (str(clone), clone.status, clone.retry_after, clone.retryable) == (
            "x: HTTP 429",
            429,
            2.0,
            True,
        )
    noted = original.noted("after 3 attempts")
    assert isinstance(noted, EndpointStatusError) and noted.status == 429
    assert str(noted) == "x: HTTP 429 (after 3 attempts)" and str(original) == "x: HTTP 429"


def test_call_keys_come_from_the_call_then_the_scope() -> None:
    bare = new_call_key(agent="critic")
    assert (bare.conversation_id, bare.turn, bare.agent) == (None, None, "critic")
    with call_scope("conv-1", 4):
        scoped = new_call_key(agent="critic")
        given = new_call_key("conv-2", agent="critic")
    assert (scoped.conversation_id, scoped.turn, scoped.agent) == ("conv-1", 4, "critic")
    assert str(scoped) == f"conv-1/4/critic#{scoped.call}"
    assert (given.conversation_id, given.turn) == ("conv-2", None)
    explicit = new_call_key(CallKey("conv-3", 2, "writer"))
    assert (str(explicit).split("#")[0], explicit.call != scoped.call) == ("conv-3/2/writer", True)
    assert new_call_key().conversation_id is None  # the scope ended


# -- through a real client --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    forget_limiters()
    yield
    forget_limiters()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with running_chat_server() as chat_server:
        yield chat_server


@pytest.fixture
async def make_client(server: ChatServer) -> AsyncIterator[MakeClient]:
    made: list[OpenAIEndpointClient] = []

    def make(
        *, stop_signal: threading.Event | None = None, **settings: Any
    ) -> OpenAIEndpointClient:
        endpoint = EndpointSettings(
            kind="openai", base_url=server.url, model="test-model", **{**FAST, **settings}
        )
        client = OpenAIEndpointClient(
            endpoint,
            name="default",
            role="analyst",
            max_tokens=64,
            temperature=0.0,
            stop_signal=stop_signal,
            rng=random.Random(0),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def collect(client: OpenAIEndpointClient, **kwargs: Any) -> tuple[list[str], CreateResult]:
    chunks: list[str] = []
    async for item in client.create_stream(QUESTION, **kwargs):
        if isinstance(item, CreateResult):
            return chunks, item
        chunks.append(item)
    raise AssertionError("no CreateResult")


@pytest.mark.parametrize(
    "failure",
    [
        Reply.fail(500, "boom"),
        Reply.fail(502),
        Reply.fail(503),
        Reply.fail(408),
        Reply.fail(409, "locked"),
        Reply.fail(429, "slow down", headers={"Retry-After": "0.01"}),
        Reply(reset=True),
        Reply("lost", chunks=["lost"], cut_after=0),  # dropped before the first token
        Reply("late", delay=float("inf")),
        Reply("late", chunk_delay=float("inf")),  # headers sent, then silence
    ],
    ids=["500", "502", "503", "408", "409", "429", "reset", "cut-early", "hang", "stall"],
)
async def test_retryable_faults_are_retried_and_the_reply_arrives_once(
    server: ChatServer, make_client: MakeClient, failure: Reply
) -> None:
    server.enqueue(failure, failure, "The sky is blue.")

    chunks, result = await collect(make_client(timeout_s=0.3))

    assert result.content == "".join(chunks) == "The sky is blue."
    assert len(server.chat_requests) == 3
    assert [r.succeeded for r in server.chat_requests] == [False, False, True]


async def test_retries_are_capped_and_the_last_fault_says_so(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.default = Reply.fail(503, "overloaded")

    with pytest.raises(EndpointStatusError) as raised:
        await make_client(max_retries=2).create(QUESTION)

    assert str(raised.value).endswith(": HTTP 503: overloaded (after 3 attempts)")
    assert raised.value.status == 503
    assert len(server.chat_requests) == 3


@pytest.mark.parametrize(
    ("reply", "family"),
    [
        (Reply.fail(401, "bad key"), ConfigError),
        (Reply.fail(403), ConfigError),
        (Reply.fail(404, "no such model", code="model_not_found"), ConfigError),
        (Reply.fail(400, "maximum context length exceeded"), ModelError),
        (Reply.fail(400, "bad temperature"), EndpointStatusError),
        (Reply.fail(429, "quota", headers={"Retry-After": "3600"}), EndpointStatusError),
    ],
    ids=["401", "403", "404", "context", "400", "retry-after-too-long"],
)
async def test_non_retryable_errors_surface_at_once(
    server: ChatServer, make_client: MakeClient, reply: Reply, family: type[Exception]
) -> None:
    server.enqueue(reply, "not reached")

    started = time.monotonic()
    with pytest.raises(family):
        await make_client().create(QUESTION)

    assert time.monotonic() - started < 1
    assert len(server.chat_requests) == 1


async def test_a_429_slows_the_endpoint_even_when_it_is_not_retried(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply.fail(429, "quota"))
    client = make_client(max_retries=0, backoff_initial_s=0.3)

    with pytest.raises(EndpointStatusError):
        await client.create(QUESTION)

    assert client.limiter.throttled == 1
    assert 0.1 < client.limiter.blocked_for() <= 0.3  # the next call, any role's, waits


async def test_retry_after_is_honoured(server: ChatServer, make_client: MakeClient) -> None:
    server.enqueue(Reply.fail(429, headers={"Retry-After": "0.4"}), "ok")

    started = time.monotonic()
    result = await make_client().create(QUESTION)

    assert result.content == "ok"
    assert 0.4 <= time.monotonic() - started < 1.5


async def test_a_break_after_the_first_token_is_never_retried(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply(LONG_REPLY, cut_after=2), "must not be sent")
    chunks: list[str] = []

    with pytest.raises(InfraError, match="connection lost mid-reply") as raised:
        async for item in make_client().create_stream(QUESTION):
            chunks.append(str(item))

    assert chunks == ["word0", " word1"]
    assert len(server.chat_requests) == 1
    assert isinstance(raised.value, EndpointFault) and not raised.value.retryable


async def test_a_trickle_ends_at_the_idle_timeout_and_is_not_retried(
    server: ChatServer, make_client: MakeClient
) -> None:
    # The server waits 0.35 s before each piece: within the first-token time (5 s) for the
    # first piece, over the idle limit (0.2 s) between the first and the second.
    server.enqueue(Reply("one two three", chunks=["one", " two", " three"], chunk_delay=0.35))
    client = make_client(idle_timeout_s=0.2, timeout_s=5)
    chunks: list[str] = []

    started = time.monotonic()
    with pytest.raises(InfraError) as raised:
        async for item in client.create_stream(QUESTION):
            chunks.append(str(item))

    assert chunks == ["one"]
    assert str(raised.value).endswith("the reply stalled mid-way (nothing for 0.2 s)")
    assert time.monotonic() - started < 1.5
    assert len(server.chat_requests) == 1  # text had been streamed: no retry


async def test_the_call_timeout_ends_a_slow_trickle_softly(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply(LONG_REPLY, chunk_delay=0.1))
    client = make_client(call_timeout_s=0.45, idle_timeout_s=1)

    started = time.monotonic()
    chunks, result = await collect(client)

    assert time.monotonic() - started < 0.45 + 0.3
    assert 2 <= len(chunks) < 40
    assert (result.content, client.last_interrupted) == ("".join(chunks), True)


async def test_the_call_timeout_bounds_retries_of_a_hang(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.default = Reply("late", delay=float("inf"))
    client = make_client(call_timeout_s=0.5, timeout_s=0.2, max_retries=5)

    started = time.monotonic()
    with pytest.raises(InfraError) as raised:
        await client.create(QUESTION)

    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.2
    assert "no answer within 0.2 s" in str(raised.value) or "0.5 s" in str(raised.value)
    assert 2 <= len(server.chat_requests) <= 3


async def test_the_stop_signal_ends_a_back_off_at_once(
    server: ChatServer, make_client: MakeClient
) -> None:
    """A stop (the turn's deadline, or the person) abandons a hung or failing call promptly."""
    server.default = Reply.fail(503)
    stop = threading.Event()
    client = make_client(stop_signal=stop, backoff_initial_s=30, backoff_max_s=30)
    threading.Timer(0.2, stop.set).start()

    started = time.monotonic()
    with pytest.raises(EndpointStatusError, match=r"gave up after 1 attempts"):
        await client.create(QUESTION)

    assert time.monotonic() - started < 0.6
    assert len(server.chat_requests) == 1


async def test_the_stop_signal_abandons_a_hung_request_with_retries_left(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.default = Reply("late", delay=float("inf"))
    stop = threading.Event()
    client = make_client(stop_signal=stop, timeout_s=60, max_retries=2)
    threading.Timer(0.2, stop.set).start()

    started = time.monotonic()
    chunks, result = await collect(client)

    assert time.monotonic() - started < 0.6
    assert (chunks, result.content, client.last_interrupted) == ([], "", True)
    request = server.chat_requests[0]
    assert request.done.wait(2) and request.disconnected  # the server saw us leave
    assert len(server.chat_requests) == 1


async def test_each_attempt_is_logged_under_the_call_key(
    server: ChatServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.enqueue(Reply.fail(500), Reply.fail(502), "ok", Reply.fail(503), "ok")
    client = make_client()
    caplog.set_level(logging.WARNING, logger="roundtable.model")

    await client.create(QUESTION, extra_create_args={"call_key": CallKey("conv-9", 3)})
    with call_scope("conv-9", 4):
        await client.create(QUESTION)

    retries = [r for r in caplog.records if r.getMessage() == "model_call_retry"]
    assert [(r.conversation_id, r.turn, r.agent) for r in retries] == [  # type: ignore[attr-defined]
        ("conv-9", 3, "analyst"),
        ("conv-9", 3, "analyst"),
        ("conv-9", 4, "analyst"),
    ]
    fields = [r.fields for r in retries]  # type: ignore[attr-defined]
    assert [(f["attempt"], f["status"]) for f in fields] == [(1, 500), (2, 502), (1, 503)]
    assert fields[0]["call"] == fields[1]["call"] != fields[2]["call"]
    assert "call_key" not in server.chat_requests[0].body  # ours, never sent


async def test_no_request_is_left_running_after_a_fault(
    server: ChatServer, make_client: MakeClient
) -> None:
    """Every request the client gave up on was closed: the server is done with all of them."""
    server.enqueue(
        Reply("late", delay=float("inf")),
        Reply("x", chunk_delay=float("inf")),
        "ok",
    )
    assert (await make_client(timeout_s=0.2).create(QUESTION)).content == "ok"
    await asyncio.sleep(0)
    for request in server.chat_requests:
        assert request.done.wait(2)
