"""``agents.ratelimit``: the buckets on a fake clock, then shared by real clients."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest
from autogen_core.models import UserMessage

from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.openai_client import OpenAIEndpointClient
from roundtable.agents.ratelimit import EndpointLimiter, forget_limiters, limiter_for
from tests.support.chat_server import Reply, running_chat_server

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    """Time that moves only when a test (or a fake sleep) says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def pause(self, seconds: float) -> bool:
        """A ``pause`` for ``acquire`` that sleeps instantly."""
        self.now += seconds
        return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    forget_limiters()
    yield
    forget_limiters()


def test_no_limits_means_no_waiting(clock: FakeClock) -> None:
    limiter = EndpointLimiter(clock=clock)
    assert [limiter.reserve(10**6).wait_s for _ in range(1000)] == [0.0] * 1000
    assert not limiter.counts_tokens


def test_requests_per_minute_allow_a_burst_then_space_calls_out(clock: FakeClock) -> None:
    limiter = EndpointLimiter(requests_per_minute=60, burst_s=3, clock=clock)  # 1/s, burst 3

    waits = [limiter.reserve().wait_s for _ in range(6)]

    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]  # in arrival order, each a second later
    clock.now += 3.0
    assert limiter.reserve().wait_s == 1.0  # the debt is paid; the bucket is empty again
    clock.now += 60.0
    assert [limiter.reserve().wait_s for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled, capped


def test_tokens_per_minute_reserve_an_estimate_and_settle_the_truth(clock: FakeClock) -> None:
    limiter = EndpointLimiter(tokens_per_minute=6000, burst_s=1, clock=clock)  # 100/s, cap 100
    assert limiter.counts_tokens

    first = limiter.reserve(100)  # prompt + max_tokens
    assert first.wait_s == 0.0
    assert limiter.reserve(50).wait_s == pytest.approx(0.5)
    limiter.settle(first, 40)  # it used 40 of the 100: 60 come back
    assert limiter.reserve(10).wait_s == pytest.approx(0.0)

    big = limiter.reserve(1000)  # bigger than the bucket: goes through after the debt is paid
    assert big.wait_s == pytest.approx(10.0)
    limiter.settle(big, 1200)  # it used more than estimated: the next caller waits longer
    assert limiter.reserve(0).wait_s == pytest.approx(12.0)


def test_a_cancelled_reservation_gives_its_capacity_back(clock: FakeClock) -> None:
    limiter = EndpointLimiter(requests_per_minute=60, burst_s=1, clock=clock)
    limiter.reserve()
    waiting = limiter.reserve()
    assert waiting.wait_s == 1.0
    limiter.cancel(waiting)
    assert limiter.reserve().wait_s == 1.0  # not 2.0


def test_a_429_blocks_the_endpoint_and_halves_its_rate_for_a_while(clock: FakeClock) -> None:
    limiter = EndpointLimiter(requests_per_minute=60, burst_s=2, cooldown_s=30, clock=clock)
    assert [limiter.reserve().wait_s for _ in range(2)] == [0.0, 0.0]

    limiter.throttle(5.0)  # Retry-After: 5
    assert limiter.blocked_for() == 5.0
    assert limiter.factor == 0.5
    assert limiter.reserve().wait_s == 5.0  # blocked, and the bucket refills at 0.5/s
    clock.now += 5.0
    # 5 s at half rate refilled 2.5 requests, minus the one reserved above: 1.5.
    assert limiter.reserve().wait_s == 0.0
    assert limiter.reserve().wait_s == pytest.approx(1.0)  # 0.5 short, at 0.5/s
    clock.now += 30.0
    assert limiter.factor == 1.0  # the slow-down is over

    for _ in range(5):
        limiter.throttle(0)
    assert limiter.factor == 0.125  # repeated 429s halve down to a floor
    assert limiter.throttled == 6


def test_a_429_slows_an_endpoint_with_no_configured_limit(clock: FakeClock) -> None:
    limiter = EndpointLimiter(clock=clock)
    limiter.throttle(2.0)
    assert limiter.reserve().wait_s == 2.0
    clock.now += 2.0
    assert limiter.reserve().wait_s == 0.0


async def test_acquire_waits_through_a_block_that_arrives_while_waiting(clock: FakeClock) -> None:
    limiter = EndpointLimiter(requests_per_minute=60, burst_s=1, clock=clock)
    limiter.reserve()
    pauses: list[float] = []

    async def pause(seconds: float) -> bool:
        pauses.append(seconds)
        if len(pauses) == 1:
            limiter.throttle(4.0)  # another client got a 429 while we waited
        return await clock.pause(seconds)

    reservation = await limiter.acquire(0, pause=pause)

    assert reservation is not None
    assert pauses == [1.0, 3.0]  # the block began 1 s before our first wait ended


async def test_acquire_gives_back_capacity_when_the_wait_is_refused(clock: FakeClock) -> None:
    limiter = EndpointLimiter(requests_per_minute=60, burst_s=1, clock=clock)
    limiter.reserve()

    async def refuse(seconds: float) -> bool:
        return False

    assert await limiter.acquire(0, pause=refuse) is None
    assert limiter.reserve().wait_s == 1.0  # the refused call took nothing


async def test_many_waiters_are_served_at_the_configured_rate(clock: FakeClock) -> None:
    """Requests per minute hold over a long run, whatever the burst."""
    limiter = EndpointLimiter(requests_per_minute=120, burst_s=5, clock=clock)  # 2/s, burst 10
    sent: list[float] = []
    for _ in range(250):
        reservation = limiter.reserve()
        sent.append(clock.now + reservation.wait_s)
    span = sent[-1] - sent[0]
    assert span == pytest.approx((250 - 10) / 2)  # after the burst, 2 per second
    in_any_minute = max(sum(1 for t in sent if s <= t < s + 60) for s in sent)
    assert in_any_minute <= 120 + 10


def test_one_limiter_per_endpoint_name_and_url() -> None:
    a = limiter_for("big", "http://h/v1", requests_per_minute=60)
    assert limiter_for("big", "http://h/v1", requests_per_minute=60) is a
    assert limiter_for("big", "http://other/v1") is not a
    assert limiter_for("small", "http://h/v1") is not a
    again = limiter_for("big", "http://h/v1", requests_per_minute=30, tokens_per_minute=1000)
    assert again is a and a.limits == (30, 1000)


def test_limits_are_validated_in_settings() -> None:
    with pytest.raises(ValueError):
        EndpointSettings(kind="openai", base_url="http://h/v1", requests_per_minute=0)
    settings = EndpointSettings(kind="openai", base_url="http://h/v1")
    assert (settings.requests_per_minute, settings.tokens_per_minute) == (None, None)


QUESTION = [UserMessage(content="Is the sky blue?", source="user")]


async def test_clients_of_one_endpoint_share_its_limit_and_its_429s() -> None:
    """Two roles on one endpoint: one's 429 holds the other's next call back until the
    Retry-After has passed, and the requests-per-minute limit counts both."""
    with running_chat_server() as server:
        endpoint = EndpointSettings(
            kind="openai",
            base_url=server.url,
            model="test-model",
            requests_per_minute=600,  # 10/s; the burst allows 100
            backoff_initial_s=0.01,
        )
        clients = [
            OpenAIEndpointClient(
                endpoint, name="shared", max_tokens=16, temperature=0, rng=random.Random(n)
            )
            for n in range(2)
        ]
        try:
            assert clients[0].limiter is clients[1].limiter
            server.enqueue(Reply.fail(429, headers={"Retry-After": "0.5"}), "first", "second")
            first = asyncio.create_task(clients[0].create(QUESTION))
            while not server.chat_requests:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # the 429 has been answered: the endpoint is blocked
            started = time.monotonic()
            second = await clients[1].create(QUESTION)
            waited = time.monotonic() - started
            assert {(await first).content, second.content} == {"first", "second"}
            assert 0.3 <= waited < 1.5
            assert clients[0].limiter.throttled == 1
        finally:
            for client in clients:
                await client.close()


async def test_a_tokens_per_minute_limit_holds_calls_back() -> None:
    with running_chat_server(default="ok") as server:
        endpoint = EndpointSettings(
            kind="openai",
            base_url=server.url,
            model="test-model",
            tokens_per_minute=600,  # 10 tokens/s, a bucket of 100
        )
        client = OpenAIEndpointClient(endpoint, name="tpm", max_tokens=40, temperature=0)
        try:
            started = time.monotonic()
            for _ in range(3):  # each reserves its prompt (~10) + 40
                await client.create(QUESTION)
            # The server reports 6 tokens per call: settling refunds most of each estimate,
            # so three calls fit the bucket with no wait.
            assert time.monotonic() - started < 1.0
            limiter = client.limiter
            assert limiter.reserve(100).wait_s > 1.0  # but the bucket is not full either
        finally:
            await client.close()
