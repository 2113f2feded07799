"""The ``pipeline`` mode: the team's roles in its pipeline order, each building on the last.

A fixed plan (recorded as a ``plan`` event before any work) runs the run's roles in the
team's pipeline order.
Each stage is one ``branch`` start and end around the role's streamed reply, with every
earlier stage's answer in its prompt and its card's tools run first. A stage that fails (the
model raised, or gave nothing) stops the run at once, and the stop event says which stage
failed, why, and which stages did not run. What the person types is committed between stages
and every later stage sees it; a reply still generating after ``turn_deadline_s`` is cut short
softly through the shared ``stop_signal``, as in a debate, and so is every reply on Stop; a
stalled one is cut hard a grace later (``cutoff``) and fails its stage.

Does not own: one agent's turn (``stage``), the transcript (``recorder``), the inbox and the
deadlines (``control``), tools (``tools``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

from autogen_agentchat.messages import BaseChatMessage

from roundtable.agents import Team, parse_verdict
from roundtable.common.errors import ConfigError, Family, ModelError
from roundtable.conversations.budget import Budget
from roundtable.conversations.control import RunControl
from roundtable.conversations.ledger import Price
from roundtable.conversations.participant import (
    Participant,
    check_question,
    header_for,
    new_conversation_id,
    prices_of,
)
from roundtable.conversations.plan import fixed_steps
from roundtable.conversations.recall import Recall
from roundtable.conversations.recorder import Recorder
from roundtable.conversations.stage import Spoken, speak, task_messages
from roundtable.conversations.tools import Toolbox
from roundtable.transcripts.events import (
    HUMAN,
    Event,
    LiveEvent,
    PlanEvent,
    PlanStep,
    StopEvent,
    TokenDelta,
)


class Pipeline:
    """One run of the fixed pipeline; a ``modes.Run``."""

    def __init__(
        self,
        *,
        team: Team,
        question: str,
        participants: Sequence[Participant],
        transcript_path: Path,
        stop_signal: threading.Event,
        budget: Budget | None = None,
        context_window: int = 4096,
        conversation_id: str | None = None,
        recall: Recall | None = None,
        manager_price: Price | None = None,
        owner: str | None = None,
    ) -> None:
        if not participants:
            raise ConfigError("a pipeline needs at least one role")
        self.question = check_question(question)
        by_name = {p.card.name: p for p in participants}
        self.participants = {name: by_name[name] for name in team.pipeline_order if name in by_name}
        self.stop_signal = stop_signal
        self.budget = budget or Budget()
        self.conversation_id = conversation_id or new_conversation_id()
        self._transcript_path = transcript_path
        self._tools = Toolbox(recall)
        self._record = Recorder(
            transcript_path,
            header_for(
                self.conversation_id,
                self.question,
                list(self.participants.values()),
                self.budget,
                context_window,
                team=team,
                owner=owner,
            ),
            recall=recall,
            prices=prices_of(participants, manager_price),
        )
        self._control = RunControl(stop_signal, self.budget)

    @property
    def transcript_path(self) -> Path:
        return self._transcript_path

    def interject(self, text: str, *, ask: str | None = None, cut_short: bool = True) -> None:
        """Queue what the person typed; every stage from the next one on sees it.

        The stage in progress is never cut short for it (``cut_short`` is ignored): a stage
        cut before its first word would fail, and a failed stage ends the pipeline.
        """
        if ask is not None:
            raise ConfigError("a pipeline runs its roles in a fixed order; /ask is for debates")
        self._control.put(text)

    def request_stop(self, reason: str = "stopped by the person") -> None:
        self._control.request_stop(reason)

    def run(self) -> AsyncIterator[LiveEvent]:
        """The header, the plan, the question, then each stage to the writer's answer."""
        return self._record.reported(self._run())

    async def _run(self) -> AsyncGenerator[LiveEvent, None]:
        record = self._record
        self._control.start()
        try:
            yield record.open()
            steps = fixed_steps([p.card for p in self.participants.values()])
            yield record.commit(
                PlanEvent(
                    **record.stamp(turn=0),
                    mode="pipeline",
                    steps=steps,
                    accepted=True,
                    reason="the fixed pipeline: " + " -> ".join(s.role for s in steps),
                )
            )
            yield record.message(HUMAN, self.question)
            inputs: list[tuple[str, str]] = []
            for step in steps:
                for item in self._control.take():
                    if item.text:
                        yield record.message(HUMAN, item.text)
                        inputs.append((HUMAN, item.text))
                ending = self._control.ending(record.tokens)
                if ending is not None:
                    yield record.stop(*ending)
                    return
                last: LiveEvent | None = None
                async for last in self._stage(step, steps, inputs):
                    yield last
                if isinstance(last, StopEvent):  # the stage failed or was stopped
                    return
            yield record.stop(
                "completed",
                "the pipeline ran " + " -> ".join(s.role for s in steps) + " and the "
                f"{steps[-1].role} answered",
            )
        finally:
            record.close()
            await record.flush()

    async def _stage(
        self,
        step: PlanStep,
        steps: Sequence[PlanStep],
        inputs: list[tuple[str, str]],
    ) -> AsyncIterator[LiveEvent]:
        """One stage's events; a stage that ends the run yields its stop event last.

        On success the stage's answer is appended to ``inputs`` for the stages after it.
        """
        record = self._record
        participant = self.participants[step.role]
        yield record.branch(step, "start", "running")
        record.log("stage_start", agent=step.role, stage=step.id)
        tools = await self._tools.run_for(
            participant.card, self.question, exclude_ids=record.remembered
        )
        for found in tools:
            yield record.memory(step.role, found)
        task = task_messages(self.question, inputs=inputs, tools=tools, ask=step.question)
        began = time.monotonic()
        result: Spoken | tuple[Family, str] | None = None
        async for item in self._timed(participant, task):
            if isinstance(item, str):
                yield TokenDelta(turn=record.turn + 1, speaker=step.role, text=item)
            else:
                result = item
        took = time.monotonic() - began
        if isinstance(result, Spoken):
            message = record.message(
                step.role,
                result.text,
                usage=result.usage,
                latency_s=result.latency_s,
                verdict=parse_verdict(result.text) if participant.card.gives_verdict else None,
                interrupted=result.interrupted,
            )
            yield message
            inputs.append((step.role, result.text))
            yield record.branch(step, "end", "ok", latency_s=took, message_seq=message.seq)
            return
        failure = result or self._control.explain(ModelError("the stage gave no reply"))
        for event in self._failed(step, steps, failure, took):
            yield event

    def _failed(
        self, step: PlanStep, steps: Sequence[PlanStep], failure: tuple[Family, str], took: float
    ) -> list[Event]:
        """The end of a stage that gave no answer, and the run's stop: the person's, or an
        error naming the stages that did not run."""
        record = self._record
        stopped = self._control.user_stop
        if stopped is not None:
            return [
                record.branch(step, "end", "cancelled", latency_s=took, error=stopped),
                record.stop("user_stop", stopped),
            ]
        family, why = failure
        record.log("stage_failed", agent=step.role, stage=step.id, error=why)
        ended = record.branch(
            step, "end", "failed", latency_s=took, family=family, error=why[:2000]
        )
        rest = steps[steps.index(step) + 1 :]
        not_run = "; stages not run: " + ", ".join(f"{s.id} ({s.role})" for s in rest)
        reason = f"stage {step.id} ({step.role}) failed: {why[:500]}{not_run if rest else ''}"
        return [ended, record.stop("error", reason)]

    async def _timed(
        self, participant: Participant, task: Sequence[BaseChatMessage]
    ) -> AsyncIterator[str | Spoken | tuple[Family, str]]:
        """The stage's chunks, then its ``Spoken`` or how it failed (family, message).

        Past the per-reply deadline (or the run's wall clock) the reply is cut short softly,
        and hard ``STOP_GRACE_S`` later.
        """
        with self._control.reply():
            try:
                async for item in speak(participant, task, self._control.cutoff):
                    yield item
            except Exception as exc:  # the stage failed: the caller records it and stops
                yield self._control.explain(exc)
