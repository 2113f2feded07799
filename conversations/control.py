"""Run control: what the person and the clock do to a run while it runs, for every mode.

Owns: the inbox of what the person typed (``Interjection``), the person's Stop, the shared
``stop_signal`` every model client of the run watches, the per-reply deadline (a soft stop at
the turn deadline or the run's wall clock, whichever comes first) and the hard cut
``STOP_GRACE_S`` after it (``cutoff.Cutoff``); the stop checks at a boundary that a pipeline and
a panel share (``ending``); and how a failed reply is described (``describe_failure``): the
original exception a guarded client raised is kept on the cutoff and sorted with
``isinstance`` (``common.errors.family_of``), not recovered from AutoGen's wrapping text.

Does not own: what a mode does between replies (``debate``, ``pipeline``, ``panel``), nor the
transcript (``recorder``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from autogen_core.models import ChatCompletionClient

from roundtable.common.errors import FAMILIES, Family, RoundtableError, family_of
from roundtable.common.secrets import error_text
from roundtable.conversations.budget import Budget, Tally, lateness, stop_reason
from roundtable.conversations.cutoff import STOP_GRACE_S, Cutoff, guard
from roundtable.transcripts.events import StopCode


@dataclass(frozen=True)
class Interjection:
    """Something the person typed; delivered at the next turn boundary."""

    text: str
    ask: str | None = None
    """A role the person wants to answer next (``/ask critic ...``)."""


def describe_failure(
    exc: BaseException, original: BaseException | None = None
) -> tuple[Family, str]:
    """The family and one-line message of a failed reply, without any configured secret
    (``common.secrets.error_text``): the message becomes an error event, a stop reason, an
    API answer and a webhook body.

    ``original`` is what the model client raised (kept by its guard). AutoGen re-raises an
    agent's exception as ``RuntimeError("<Type>: <message>\\nTraceback...")``: when ``exc`` is
    that wrapping of ``original``, the original decides. Reading the type's name from the first
    line is the last resort, for exceptions that never passed through a guard.
    """
    family, message = _describe(exc, original)
    return family, error_text(message)


def _describe(exc: BaseException, original: BaseException | None = None) -> tuple[Family, str]:
    if original is not None and _wraps(exc, original):
        exc = original
        if not isinstance(exc, RoundtableError):
            return "model", f"{type(exc).__name__}: {exc}"
    if isinstance(exc, RoundtableError):
        return family_of(exc), str(exc)
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    error_type, _, message = first.partition(": ")
    for base, family in FAMILIES.items():  # the last resort: the type's name as AutoGen wrote it
        if error_type.endswith(base.__name__):
            return family, message or first
    return "model", first if message else f"{type(exc).__name__}: {first}"


def _wraps(exc: BaseException, original: BaseException) -> bool:
    if exc is original:
        return True
    first = str(exc).strip().partition("\n")[0]
    return isinstance(exc, RuntimeError) and first.startswith(f"{type(original).__name__}:")


class RunControl:
    """The steering of one run: inbox, Stop, the soft stop and the hard cut of each reply."""

    def __init__(self, stop_signal: threading.Event, budget: Budget) -> None:
        self.stop_signal = stop_signal
        self.budget = budget
        self.cutoff = Cutoff()
        self.user_stop: str | None = None
        """Why the person stopped the run, once they have."""
        self.started = time.monotonic()
        self.deadline_hit = False
        """Whether the current reply's deadline has passed."""
        self.late = ""
        """Why the current reply's deadline passed, in the words of its error event."""
        self._inbox: asyncio.Queue[Interjection] = asyncio.Queue()

    def guard(self, client: ChatCompletionClient) -> ChatCompletionClient:
        """``client`` cut by this run's cutoff, its failures remembered for ``explain``."""
        return guard(client, self.cutoff)

    def start(self) -> None:
        """The run starts now: its wall clock counts from here."""
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- what the person does -----------------------------------------------------------------

    def put(self, text: str, *, ask: str | None = None, cut_short: bool = False) -> None:
        """Queue what the person typed; with ``cut_short`` the reply in progress ends softly."""
        self._inbox.put_nowait(Interjection(text=text, ask=ask))
        if cut_short:  # soft only: a stalled reply still ends at its deadline
            self.stop_signal.set()

    def take(self) -> list[Interjection]:
        """Everything queued since the last boundary, oldest first, text stripped."""
        taken: list[Interjection] = []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            taken.append(Interjection(text=item.text.strip(), ask=item.ask))
        return taken

    def request_stop(self, reason: str) -> None:
        """The person's Stop: the run ends at its next boundary, the reply ends softly now."""
        self.user_stop = reason
        self.stop_now()

    def stop_now(self) -> None:
        """End the reply softly now; a model that does not answer it is cut after the grace."""
        self.stop_signal.set()
        self.cutoff.after_stop()

    # -- one reply ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reply(self) -> Iterator[None]:
        """Arm the deadline of one reply: a soft stop at the turn deadline (or the wall
        clock), a hard cut ``STOP_GRACE_S`` later; both disarmed when the reply ends."""
        self.stop_signal.clear()
        self.cutoff.clear()
        self.cutoff.failure = None
        if self.user_stop is not None:
            self.stop_now()
        self.deadline_hit = False
        left = self.budget.wall_clock_s - self.elapsed()
        limit = max(0.0, min(self.budget.turn_deadline_s, left))
        deadline = asyncio.get_running_loop().call_later(limit, self._time_up)
        self.late = lateness(self.budget, limit)
        self.cutoff.cut_after(limit + STOP_GRACE_S, f"{self.late}; cut {STOP_GRACE_S:g} s after it")
        try:
            yield
        finally:
            deadline.cancel()
            self.cutoff.clear()

    def _time_up(self) -> None:
        self.deadline_hit = True
        self.stop_signal.set()

    def explain(self, exc: BaseException) -> tuple[Family, str]:
        """``describe_failure`` of ``exc``, with the original a guarded client raised."""
        return describe_failure(exc, self.cutoff.failure)

    def time_limit(self, cap: float) -> float:
        """A call's time limit: ``cap``, never past the run's wall clock."""
        return max(0.001, min(cap, self.budget.wall_clock_s - self.elapsed()))

    def ending(self, tokens: int) -> tuple[StopCode, str] | None:
        """Whether a pipeline or panel must stop at this boundary, as (code, reason): the one
        stop rule (``budget.stop_reason``), with no turns counted (the plan fixes them)."""
        tally = Tally(tokens=tokens, elapsed_s=self.elapsed())
        return stop_reason(self.budget, tally, accepted=None, user_stop=self.user_stop)
