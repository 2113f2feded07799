"""Per-endpoint rate limits: calls wait for capacity instead of failing.

Owns: ``EndpointLimiter``, two token buckets (requests per minute, tokens per minute) plus the
back-pressure a 429 puts on an endpoint; and ``limiter_for``, which hands every client of one
endpoint in this process (same name and base URL) the same limiter, so the agents that share one
API key share its quota.

Does not own: deciding to retry (``agents.resilience``), counting tokens (the client estimates
a call as its prompt plus ``max_tokens``, then settles with the usage the server reports).

How it works: a call *reserves* what it needs before it is sent. A bucket may go into debt, and
the reservation says how long to wait until the debt is paid back, so waiting callers are
served in arrival order and a call bigger than the bucket still goes through (after a longer
wait). Limits are off by default; the 429 back-pressure is always on: after a 429 nobody calls
the endpoint until its ``Retry-After`` (or the back-off) has passed, and configured rates run at
half speed for ``cooldown_s`` (halving again on each further 429, to 1/8 at most).

The state is plain arithmetic under a ``threading.Lock`` with no awaits inside, so one limiter
serves clients on any event loop or thread; the clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

BURST_S = 10.0
"""A bucket holds this many seconds of its rate: a burst up to a sixth of a minute's quota."""
COOLDOWN_S = 60.0
"""How long a 429 halves the configured rates."""
MIN_FACTOR = 0.125


@dataclass(frozen=True)
class Reservation:
    """What one call took from the buckets, and how long it must wait before it is sent."""

    requests: float
    tokens: float
    wait_s: float


class _Bucket:
    """A token bucket that may go into debt: ``level < 0`` is capacity already promised."""

    def __init__(self, per_minute: float, burst_s: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float, factor: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate * factor)
            self.updated = now

    def take(self, amount: float, factor: float) -> float:
        """Take ``amount``; the seconds until the bucket is out of debt again."""
        self.level -= amount
        return max(0.0, -self.level / (self.rate * factor))

    def give(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class EndpointLimiter:
    """Requests-per-minute and tokens-per-minute limits of one endpoint, and 429 back-pressure."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        burst_s: float = BURST_S,
        cooldown_s: float = COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.burst_s = burst_s
        self.cooldown_s = cooldown_s
        self._requests: _Bucket | None = None
        self._tokens: _Bucket | None = None
        self._limits: tuple[float | None, float | None] = (None, None)
        self._blocked_until = 0.0
        self._factor = 1.0
        self._slow_until = 0.0
        self.throttled = 0
        """How many 429s slowed this endpoint down."""
        self.configure(requests_per_minute, tokens_per_minute)

    @property
    def limits(self) -> tuple[float | None, float | None]:
        """(requests per minute, tokens per minute); None is unlimited."""
        return self._limits

    @property
    def factor(self) -> float:
        """The share of the configured rates in force now (below 1 after a 429)."""
        with self._lock:
            self._advance(self._clock())
            return self._factor

    def configure(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        """Set the limits (None: unlimited); a bucket whose limit is unchanged keeps its level."""
        with self._lock:
            now = self._clock()
            if requests_per_minute != self._limits[0]:
                self._requests = self._bucket(requests_per_minute, now)
            if tokens_per_minute != self._limits[1]:
                self._tokens = self._bucket(tokens_per_minute, now)
            self._limits = (requests_per_minute, tokens_per_minute)

    def _bucket(self, per_minute: float | None, now: float) -> _Bucket | None:
        if per_minute is None:
            return None
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, not {per_minute}")
        return _Bucket(per_minute, self.burst_s, now)

    @property
    def counts_tokens(self) -> bool:
        """Whether calls need a token estimate (only when tokens per minute is limited)."""
        return self._limits[1] is not None

    def reserve(self, tokens: float = 0) -> Reservation:
        """Take one request and ``tokens`` now; the reservation says how long to wait."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            wait = max(0.0, self._blocked_until - now)
            if self._requests is not None:
                wait = max(wait, self._requests.take(1, self._factor))
            if self._tokens is not None:
                wait = max(wait, self._tokens.take(tokens, self._factor))
            return Reservation(
                requests=1 if self._requests is not None else 0,
                tokens=tokens if self._tokens is not None else 0,
                wait_s=wait,
            )

    def cancel(self, reservation: Reservation) -> None:
        """Give back a reservation whose call was never sent."""
        with self._lock:
            self._advance(self._clock())
            if self._requests is not None:
                self._requests.give(reservation.requests)
            if self._tokens is not None:
                self._tokens.give(reservation.tokens)

    def settle(self, reservation: Reservation, tokens_used: float) -> None:
        """Correct the token estimate with what the call really used (refund or extra debt).

        A call that failed before any reply used no tokens: settle it with 0.
        """
        with self._lock:
            self._advance(self._clock())
            if self._tokens is not None and reservation.tokens:
                self._tokens.give(reservation.tokens - tokens_used)

    def throttle(self, delay_s: float) -> None:
        """The endpoint answered 429: nobody calls it for ``delay_s``, and rates slow down."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self.throttled += 1
            self._blocked_until = max(self._blocked_until, now + max(0.0, delay_s))
            self._factor = max(MIN_FACTOR, self._factor / 2)
            self._slow_until = now + self.cooldown_s

    def blocked_for(self) -> float:
        """Seconds until a 429's block ends (0 when there is none)."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    async def acquire(
        self, tokens: float, *, pause: Callable[[float], Awaitable[bool]]
    ) -> Reservation | None:
        """Wait (through ``pause``) until a call of ``tokens`` may be sent.

        Returns the reservation to ``settle`` later, or None when ``pause`` returned False (the
        call was stopped or ran out of time): the reservation is then given back.
        """
        reservation = self.reserve(tokens)
        wait = reservation.wait_s
        while wait > 0:
            if not await pause(wait):
                self.cancel(reservation)
                return None
            wait = self.blocked_for()  # a 429 from another call may have come in meanwhile
        return reservation

    def _advance(self, now: float) -> None:
        """Refill the buckets up to ``now``, ending a slow-down at its time exactly."""
        if self._factor < 1.0 and now >= self._slow_until:
            self._refill(self._slow_until)
            self._factor = 1.0
        self._refill(now)

    def _refill(self, now: float) -> None:
        for bucket in (self._requests, self._tokens):
            if bucket is not None:
                bucket.refill(now, self._factor)


_LIMITERS: dict[tuple[str, str], EndpointLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limiter_for(
    name: str,
    base_url: str,
    *,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
) -> EndpointLimiter:
    """The one limiter of endpoint ``name`` at ``base_url`` in this process.

    Clients built later with other limits for the same endpoint reconfigure it: settings are
    read once per process, so in practice they agree.
    """
    with _REGISTRY_LOCK:
        limiter = _LIMITERS.get((name, base_url))
        if limiter is None:
            limiter = EndpointLimiter(
                requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
            )
            _LIMITERS[(name, base_url)] = limiter
        elif limiter.limits != (requests_per_minute, tokens_per_minute):
            limiter.configure(requests_per_minute, tokens_per_minute)
        return limiter


def forget_limiters() -> None:
    """Drop every shared limiter (tests start from a clean state)."""
    with _REGISTRY_LOCK:
        _LIMITERS.clear()
