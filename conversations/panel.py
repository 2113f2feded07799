"""The ``panel`` mode: the manager plans, branches fan out in parallel, the team's reviewer
and answerer fan in.

1. Plan (``panel_plan``). The manager writes a ``plan.Plan`` with constrained output, checked
   against the role cards. A refused plan is retried once with the reason; refused again, it
   is recorded (``plan`` event, ``accepted=False``, every reason) and the run falls back to a
   ``debate`` that continues the same transcript. An accepted plan is recorded before any
   branch starts.
2. Fan out (``panel_fan_out``). Every sub-question is a branch in its own task, bounded per
   lane; a branch that fails or times out is recorded and the others go on. On Stop, replies
   end softly and any model still going ``STOP_GRACE_S`` later is cut.
3. Fan in (``panel_fan_in``). The reviewer compares the answers, the answerer answers the
   person with the disagreements and missing branches stated. The stop event is
   ``completed`` or ``partial``.

Owns the order of the phases, what the person can do while they run, and the fallback.
Does not own: the phases themselves (above), plans (``plan``), the transcript
(``recorder``), the inbox and the hard cut (``control``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

from autogen_core.models import ChatCompletionClient

from roundtable.agents import Team
from roundtable.common.errors import ConfigError
from roundtable.conversations.budget import Budget
from roundtable.conversations.control import RunControl
from roundtable.conversations.ledger import MANAGER, Price
from roundtable.conversations.modes import Run
from roundtable.conversations.panel_deps import Outcome, PanelDeps, PanelSettings
from roundtable.conversations.panel_fan_in import fan_in
from roundtable.conversations.panel_fan_out import fan_out
from roundtable.conversations.panel_plan import write_plan
from roundtable.conversations.participant import (
    Participant,
    check_question,
    header_for,
    new_conversation_id,
    prices_of,
)
from roundtable.conversations.recall import Recall
from roundtable.conversations.recorder import Recorder
from roundtable.conversations.tools import Toolbox
from roundtable.transcripts.events import HUMAN, Event, Header, LiveEvent, PlanEvent, StopEvent
from roundtable.transcripts.store import Transcript, load

__all__ = ["Fallback", "Panel", "PanelSettings"]

Fallback = Callable[[Transcript], Run]
"""Builds the run that takes over a transcript whose plan was refused (a continuing debate)."""


class Panel:
    """One planned, fanned-out run; a ``modes.Run``."""

    def __init__(
        self,
        *,
        team: Team,
        question: str,
        participants: Sequence[Participant],
        manager_client: ChatCompletionClient | None,
        transcript_path: Path,
        stop_signal: threading.Event,
        budget: Budget | None = None,
        settings: PanelSettings | None = None,
        lanes: Mapping[str, str] | None = None,
        limits: Mapping[str, int] | None = None,
        context_window: int = 4096,
        conversation_id: str | None = None,
        recall: Recall | None = None,
        manager_price: Price | None = None,
        fallback: Fallback | None = None,
        owner: str | None = None,
    ) -> None:
        """``lanes`` maps a role to its lane (default: its endpoint's name); ``limits`` caps
        the branches running at once in a lane (default ``settings.max_concurrency``)."""
        team.require("panel")
        self.question = check_question(question)
        self.participants = {p.card.name: p for p in participants}
        self.manager_client = manager_client
        self.stop_signal = stop_signal
        self.budget = budget or Budget()
        self.settings = settings or PanelSettings()
        self.conversation_id = conversation_id or new_conversation_id()
        self._transcript_path = transcript_path
        self._fallback = fallback
        self._delegate: Run | None = None
        self._control = RunControl(stop_signal, self.budget)
        header = header_for(
            self.conversation_id,
            self.question,
            participants,
            self.budget,
            context_window,
            team=team,
            owner=owner,
        )
        plans = team.holder("plans")
        planner = self.participants[plans].client if plans else manager_client
        self._deps = PanelDeps(
            question=self.question,
            participants=self.participants,
            settings=self.settings,
            record=Recorder(
                transcript_path,
                header,
                recall=recall,
                prices=prices_of(participants, manager_price),
            ),
            control=self._control,
            tools=Toolbox(recall),
            lanes={p.card.name: (lanes or {}).get(p.card.name, p.endpoint) for p in participants},
            limits=dict(limits or {}),
            reviewer=team.holder("gives_verdict") or "",
            answerer=team.holder("answers") or "",
            planner=self._control.guard(planner) if planner else None,
            plan_by=plans or MANAGER,
        )

    # -- what the person can do while it runs -----------------------------------------------

    @property
    def transcript_path(self) -> Path:
        return self._transcript_path

    def interject(self, text: str, *, ask: str | None = None, cut_short: bool = True) -> None:
        """Queue a message for the next phase (before the branches, before the comparison).

        Branches are never cut short for it: each answers its own sub-question. After a
        fallback, the debate that took over gets the message as it is.
        """
        if self._delegate is not None:
            self._delegate.interject(text, ask=ask, cut_short=cut_short)
            return
        if ask is not None:
            raise ConfigError("a panel follows its plan; /ask is for debates")
        self._control.put(text)

    def request_stop(self, reason: str = "stopped by the person") -> None:
        """Stop after the branches in flight; their replies end softly now."""
        self._control.request_stop(reason)
        if self._delegate is not None:
            self._delegate.request_stop(reason)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> AsyncIterator[LiveEvent]:
        """Header, plan, question, branches, comparison, answer, stop (or the fallback's run)."""
        return self._deps.record.reported(self._run())

    async def _run(self) -> AsyncGenerator[LiveEvent, None]:
        deps = self._deps
        record = deps.record
        self._control.start()
        self.stop_signal.clear()
        self._control.cutoff.clear()
        try:
            yield record.open()
            plan: Event | None = None
            async for plan in write_plan(deps, can_fall_back=self._fallback is not None):
                yield plan
            assert isinstance(plan, PlanEvent)
            if not plan.accepted:
                async for event in self._fall_back(plan):
                    yield event
                return
            yield record.message(HUMAN, self.question)
            for event in deps.deliver_inbox():
                yield event
            outcomes: dict[str, Outcome] = {}
            async for event in fan_out(deps, plan.steps, outcomes):
                yield event
            stop = self._ending()
            if stop is not None:
                yield stop
                return
            async for event in fan_in(deps, plan.steps, outcomes, self._ending):
                yield event
        finally:
            record.close()
            await record.flush()

    def _ending(self) -> StopEvent | None:
        """The stop, committed, when a budget or the person ends the run at this boundary."""
        ending = self._control.ending(self._deps.record.tokens)
        return self._deps.record.stop(*ending) if ending is not None else None

    async def _fall_back(self, plan: PlanEvent) -> AsyncIterator[LiveEvent]:
        """Hand the transcript to the fallback run (a debate that continues it)."""
        record = self._deps.record
        if self._fallback is None:
            yield record.message(HUMAN, self.question)
            yield record.stop("error", plan.reason)
            return
        record.close()
        delegate = self._fallback(load(self._transcript_path))
        self._delegate = delegate
        for item in self._control.take():
            delegate.interject(item.text, cut_short=False)
        if self._control.user_stop is not None:
            delegate.request_stop(self._control.user_stop)
        stream = delegate.run()
        try:
            async for event in stream:
                if not isinstance(event, Header):  # already shown: the same file's header
                    yield event
        finally:  # closed now, not when collected: its transcript closes with this run
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
