"""What the phases of a panel share: its settings, its dependencies, and one timed reply.

Owns: ``PanelSettings``; ``PanelDeps``, the record of a panel's dependencies that the plan
(``panel_plan``), the fan-out (``panel_fan_out``) and the fan-in (``panel_fan_in``) are given,
with the person's notes so far; ``Outcome`` (how a branch ended); ``Failure`` (a reply that did
not come); and ``reply``, one role's reply within the branch timeout.

Does not own: the order of the phases (``panel``), the transcript (``recorder``), the Stop and
the hard cut (``control``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autogen_agentchat.messages import BaseChatMessage
from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel, ConfigDict, Field

from roundtable.conversations.control import RunControl
from roundtable.conversations.participant import Participant
from roundtable.conversations.recorder import Recorder
from roundtable.conversations.stage import Spoken, spoken
from roundtable.conversations.tools import Toolbox
from roundtable.transcripts.events import HUMAN, BranchStatus, ErrorFamily, Event, PlanStep


class PanelSettings(BaseModel):
    """How a panel runs its branches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: int = Field(default=4, ge=1, le=64)
    """Branches running at once on one endpoint (the embedded model always runs one)."""
    branch_timeout_s: float = Field(default=180.0, gt=0)
    """A branch (or the manager's plan, the reviewer's comparison, the answerer's answer) still
    running after this long is cancelled and reported."""
    plan_attempts: int = Field(default=2, ge=1, le=5)
    compare_attempts: int = Field(default=2, ge=1, le=5)


@dataclass(frozen=True)
class Outcome:
    """How one branch ended."""

    step: PlanStep
    status: BranchStatus
    text: str = ""
    reason: str = ""
    family: ErrorFamily | None = None


@dataclass(frozen=True)
class Failure:
    """A reply that did not come: its error family and a one-line reason."""

    family: ErrorFamily
    message: str
    timed_out: bool = False


@dataclass
class PanelDeps:
    """A panel's dependencies, and what the person said during the run (``notes``)."""

    question: str
    participants: Mapping[str, Participant]
    settings: PanelSettings
    record: Recorder
    control: RunControl
    tools: Toolbox
    lanes: Mapping[str, str]
    """Each role's lane: branches in one lane share its concurrency limit."""
    limits: Mapping[str, int]
    reviewer: str
    answerer: str
    planner: ChatCompletionClient | None
    """The client that writes the plan (guarded), or None when nobody can plan."""
    plan_by: str
    """Who writes the plan (the ledger line, the events' speaker)."""
    notes: list[str] = field(default_factory=list)
    """What the person said during the run: every later prompt includes it."""

    def timeout(self) -> float:
        """A call's time limit: the branch timeout, never past the run's wall clock."""
        return self.control.time_limit(self.settings.branch_timeout_s)

    def deliver_inbox(self) -> list[Event]:
        """What the person typed since the last phase, committed and kept as notes."""
        events: list[Event] = []
        for item in self.control.take():
            if item.text:
                self.notes.append(item.text)
                events.append(self.record.message(HUMAN, item.text))
        return events

    def with_notes(self, inputs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        return [*inputs, *((HUMAN, note) for note in self.notes)]

    async def reply(
        self, participant: Participant, task: Sequence[BaseChatMessage]
    ) -> Spoken | Failure:
        """One reply within ``timeout()``; past it the call is cancelled (every client ends
        its generation cleanly on cancellation)."""
        limit = self.timeout()
        try:
            async with asyncio.timeout(limit) as deadline:
                return await spoken(participant, task, self.control.cutoff)
        except TimeoutError as exc:
            if deadline.expired():
                return Failure("model", f"no answer within {limit:.3g} s", timed_out=True)
            return Failure(*self.control.explain(exc))
        except Exception as exc:  # the model failed: recorded by the caller, the run goes on
            family, message = self.control.explain(exc)
            return Failure(family, message[:2000])
