"""The ``panel`` mode: the manager plans, branches fan out in parallel, the critic and the
writer fan in.

1. Plan. The manager writes a ``plan.Plan`` with constrained output (``plan.plan_schema``: a
   JSON schema, a grammar on the embedded model), checked against the role cards. A refused
   plan is retried once with the reason; refused again, it is recorded (``plan`` event,
   ``accepted=False``, every reason) and the run falls back to a ``debate`` that continues
   the same transcript. An accepted plan is recorded before any branch starts.
2. Fan out. Every sub-question is a branch (``branch`` start/end events) in its own task.
   Independent branches run at once, bounded per lane: a lane is an endpoint (the embedded
   model is one lane of width 1, as its single context serialises calls anyway, so the
   transcript shows the branches one after the other, which is what happened). A branch that
   depends on others waits for them and is skipped when one of them did not answer. A branch
   that fails or exceeds ``branch_timeout_s`` is cancelled and recorded; the others go on.
   On Stop, replies end softly and any model still going ``STOP_GRACE_S`` later is cut.
   Events from concurrent branches are committed and yielded in one order.
   The plan and the comparison are asked at temperature 0: a structured decision should not
   depend on a sampling draw (on the embedded model, sampled plans were often junk).
3. Fan in. The critic compares the answers (constrained output, ``aggregate.Comparison``)
   and its findings are recorded as an ``aggregate`` event; the writer answers the person,
   and the disagreements and missing branches are appended to its answer under plain
   headings, so partial success is explicit whatever the model wrote. The stop event is
   ``completed`` or ``partial``.

Does not own: plans (``plan``), the comparison's shape and wording (``aggregate``), one
agent's turn and the transcript bookkeeping (``stage``), tools (``tools``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from autogen_agentchat.messages import BaseChatMessage
from autogen_core.models import ChatCompletionClient, RequestUsage
from pydantic import BaseModel, ConfigDict, Field

from roundtable.agents import Team
from roundtable.common.errors import ConfigError
from roundtable.conversations.aggregate import (
    COMPARE_MAX_TOKENS,
    ComparisonRefused,
    answer_notes,
    compare_prompt,
    comparison_schema,
    describe_conflicts,
    parse_comparison,
    synthesis_ask,
)
from roundtable.conversations.budget import Budget
from roundtable.conversations.cutoff import Cutoff, guard
from roundtable.conversations.debate import (
    Interjection,
    Participant,
    check_question,
    describe_failure,
    new_conversation_id,
)
from roundtable.conversations.ledger import MANAGER, Price
from roundtable.conversations.modes import Run
from roundtable.conversations.plan import (
    PLAN_MAX_TOKENS,
    PlanRefused,
    check_plan,
    parse_plan,
    plan_prompt,
    plan_schema,
    raw_steps,
)
from roundtable.conversations.recall import Recall
from roundtable.conversations.stage import (
    Recorder,
    Spoken,
    header_for,
    spoken,
    stop_at_boundary,
    task_messages,
)
from roundtable.conversations.tools import Toolbox
from roundtable.transcripts.events import (
    HUMAN,
    AggregateEvent,
    BranchEvent,
    BranchStatus,
    Conflict,
    ErrorEvent,
    ErrorFamily,
    Event,
    Header,
    LiveEvent,
    MissingBranch,
    PlanEvent,
    PlanStep,
    StopCode,
    Usage,
)
from roundtable.transcripts.store import Transcript, load

Fallback = Callable[[Transcript], Run]
"""Builds the run that takes over a transcript whose plan was refused (a continuing debate)."""


class PanelSettings(BaseModel):
    """How a panel runs its branches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: int = Field(default=4, ge=1, le=64)
    """Branches running at once on one endpoint (the embedded model always runs one)."""
    branch_timeout_s: float = Field(default=180.0, gt=0)
    """A branch (or the manager's plan, the critic's comparison, the writer's answer) still
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


@dataclass(frozen=True)
class _Done:
    """A branch task has finished (``error``: it crashed, which is our fault: re-raised)."""

    error: BaseException | None = None


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
    ) -> None:
        """``lanes`` maps a role to its lane (default: its endpoint's name); ``limits`` caps
        the branches running at once in a lane (default ``settings.max_concurrency``)."""
        team.require("panel")
        self._reviewer = team.holder("gives_verdict") or ""
        self._answerer = team.holder("answers") or ""
        self._planner = team.holder("plans")
        self.question = check_question(question)
        self.participants = {p.card.name: p for p in participants}
        self.manager_client = manager_client
        self.stop_signal = stop_signal
        self.budget = budget or Budget()
        self.settings = settings or PanelSettings()
        self.conversation_id = conversation_id or new_conversation_id()
        self._lanes = {
            p.card.name: (lanes or {}).get(p.card.name, p.endpoint) for p in participants
        }
        self._limits = dict(limits or {})
        self._transcript_path = transcript_path
        self._fallback = fallback
        self._delegate: Run | None = None
        self._tools = Toolbox(recall)
        prices = {p.card.name: p.price for p in participants if p.price is not None}
        if manager_price is not None:
            prices[MANAGER] = manager_price
        self._record = Recorder(
            transcript_path,
            header_for(
                self.conversation_id,
                self.question,
                participants,
                self.budget,
                context_window,
                team=team,
            ),
            recall=recall,
            prices=prices,
        )
        self._inbox: asyncio.Queue[Interjection] = asyncio.Queue()
        self._notes: list[str] = []
        """What the person said during the run: every later prompt includes it."""
        self._user_stop: str | None = None
        self._started = 0.0
        self._cutoff = Cutoff()
        planner = self.participants[self._planner].client if self._planner else manager_client
        self._manager = guard(planner, self._cutoff) if planner else None
        self._plan_by = self._planner or MANAGER
        """Who writes the plan (the ledger line, the events' speaker)."""

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
        self._inbox.put_nowait(Interjection(text=text))

    def request_stop(self, reason: str = "stopped by the person") -> None:
        """Stop after the branches in flight; their replies end softly now."""
        self._user_stop = reason
        self.stop_signal.set()
        self._cutoff.after_stop()
        if self._delegate is not None:
            self._delegate.request_stop(reason)

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[LiveEvent]:
        """Header, plan, question, branches, comparison, answer, stop (or the fallback's run)."""
        record = self._record
        self._started = time.monotonic()
        self.stop_signal.clear()
        self._cutoff.clear()
        try:
            yield record.open()
            plan: Event | None = None
            async for plan in self._plan():
                yield plan
            assert isinstance(plan, PlanEvent)
            if not plan.accepted:
                async for event in self._fall_back(plan):
                    yield event
                return
            steps = plan.steps
            yield record.message(HUMAN, self.question)
            for event in self._deliver_inbox():
                yield event
            outcomes: dict[str, Outcome] = {}
            async for event in self._fan_out(steps, outcomes):
                yield event
            ending = self._ending()
            if ending is not None:
                yield record.stop(*ending)
                return
            async for event in self._fan_in(steps, outcomes):
                yield event
        finally:
            record.close()
            await record.flush()

    # -- 1. plan ----------------------------------------------------------------------------

    async def _plan(self) -> AsyncIterator[Event]:
        """Refused attempts as error events, then the plan event (accepted or refused)."""
        record = self._record
        cards = [p.card for p in self.participants.values()]
        began = time.monotonic()
        usage = Usage()
        refused = "no manager model is configured to write a plan"
        written: list[PlanStep] = []
        attempts = self.settings.plan_attempts if self._manager is not None else 0
        for attempt in range(1, attempts + 1):
            assert self._manager is not None
            prompt = plan_prompt(self.question, cards, refused if attempt > 1 else None)
            written = []
            try:
                async with asyncio.timeout(self._timeout()):
                    result = await self._manager.create(
                        prompt,
                        json_output=plan_schema(cards),
                        extra_create_args={"max_tokens": PLAN_MAX_TOKENS, "temperature": 0.0},
                    )
                usage = _add(usage, result.usage)
                plan = parse_plan(result.content if isinstance(result.content, str) else "")
                written = raw_steps(plan)
                steps = check_plan(plan, cards)
            except PlanRefused as exc:
                refused = exc.reason
            except TimeoutError:
                refused = f"the manager wrote no plan within {self._timeout():.3g} s"
            except Exception as exc:  # the manager's model failing is model misbehaviour
                refused = f"the manager's model failed: {describe_failure(exc)[1]}"
            else:
                record.charge(self._plan_by, usage, time.monotonic() - began, calls=attempt)
                independent = sum(1 for s in steps if not s.depends_on)
                record.log("plan", agent=self._plan_by, steps=len(steps), independent=independent)
                yield record.commit(
                    PlanEvent(
                        **record.stamp(turn=0),
                        mode="panel",
                        steps=steps,
                        accepted=True,
                        reason=(
                            f"the manager's plan: {len(steps)} sub-question(s), "
                            f"{independent} independent"
                        ),
                        usage=usage,
                    )
                )
                return
            record.log("plan_refused", agent=self._plan_by, attempt=attempt, reason=refused)
            if attempt < attempts:
                yield record.commit(
                    ErrorEvent(
                        **record.stamp(turn=0),
                        family="model",
                        speaker=self._plan_by,
                        message=f"plan refused: {refused}"[:2000],
                        attempt=attempt,
                    )
                )
        if attempts:
            record.charge(self._plan_by, usage, time.monotonic() - began, calls=attempts)
        instead = "; falling back to a debate" if self._fallback is not None else ""
        yield record.commit(
            PlanEvent(
                **record.stamp(turn=0),
                mode="panel",
                steps=written,
                accepted=False,
                reason=f"plan refused: {refused}{instead}",
                fallback="debate" if self._fallback is not None else None,
                usage=usage,
            )
        )

    async def _fall_back(self, plan: PlanEvent) -> AsyncIterator[LiveEvent]:
        """Hand the transcript to the fallback run (a debate that continues it)."""
        record = self._record
        if self._fallback is None:
            yield record.message(HUMAN, self.question)
            yield record.stop("error", plan.reason)
            return
        record.close()
        delegate = self._fallback(load(self._transcript_path))
        self._delegate = delegate
        while not self._inbox.empty():
            delegate.interject(self._inbox.get_nowait().text, cut_short=False)
        if self._user_stop is not None:
            delegate.request_stop(self._user_stop)
        stream = delegate.run()
        try:
            async for event in stream:
                if not isinstance(event, Header):  # already shown: the same file's header
                    yield event
        finally:  # closed now, not when collected: its transcript closes with this run
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    # -- 2. fan out -------------------------------------------------------------------------

    async def _fan_out(
        self, steps: Sequence[PlanStep], outcomes: dict[str, Outcome]
    ) -> AsyncIterator[Event]:
        """Run every branch in its own task; yield their events in commit order."""
        queue: asyncio.Queue[Event | _Done] = asyncio.Queue()
        finished = {step.id: asyncio.Event() for step in steps}
        lanes = {
            lane: asyncio.Semaphore(self._limits.get(lane, self.settings.max_concurrency))
            for lane in set(self._lanes.values())
        }

        async def branch(step: PlanStep) -> None:
            error: BaseException | None = None
            outcome = Outcome(step, "cancelled", reason="the run ended first")
            try:
                outcome = await self._branch(step, outcomes, finished, lanes, queue.put_nowait)
            except Exception as exc:  # our own fault (e.g. the transcript's disk): re-raised
                error = exc
            finally:
                outcomes[step.id] = outcome
                finished[step.id].set()
                queue.put_nowait(_Done(error))

        tasks = [asyncio.create_task(branch(step), name=f"branch-{step.id}") for step in steps]
        try:
            left = len(tasks)
            while left:
                item = await queue.get()
                if isinstance(item, _Done):
                    left -= 1
                    if item.error is not None:
                        raise item.error
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _branch(
        self,
        step: PlanStep,
        outcomes: Mapping[str, Outcome],
        finished: Mapping[str, asyncio.Event],
        lanes: Mapping[str, asyncio.Semaphore],
        emit: Callable[[Event], None],
    ) -> Outcome:
        """One branch: wait for its inputs and its lane, run its tools, get its answer."""
        record = self._record
        for dep in step.depends_on:
            await finished[dep].wait()
        unanswered = [d for d in step.depends_on if outcomes[d].status != "ok"]
        if unanswered:
            why = f"it needs {', '.join(unanswered)}, which did not answer"
            emit(record.commit(self._branch_event(step, "end", "skipped", error=why)))
            return Outcome(step, "skipped", reason=why)
        async with lanes[self._lanes[step.role]]:
            if self._user_stop is not None:
                emit(
                    record.commit(
                        self._branch_event(step, "end", "cancelled", error=self._user_stop)
                    )
                )
                return Outcome(step, "cancelled", reason=self._user_stop)
            emit(record.commit(self._branch_event(step, "start", "running")))
            record.log("branch_start", agent=step.role, branch=step.id)
            began = time.monotonic()
            outcome, message = await self._answer(step, outcomes, emit)
        took = time.monotonic() - began
        record.log("branch_end", agent=step.role, branch=step.id, status=outcome.status)
        emit(
            record.commit(
                self._branch_event(
                    step,
                    "end",
                    outcome.status,
                    latency_s=took,
                    message_seq=message,
                    family=outcome.family,
                    error=outcome.reason or None,
                )
            )
        )
        return outcome

    async def _answer(
        self, step: PlanStep, outcomes: Mapping[str, Outcome], emit: Callable[[Event], None]
    ) -> tuple[Outcome, int | None]:
        """The branch's answer as a committed message, or how it failed."""
        record = self._record
        participant = self.participants[step.role]
        tools = await self._tools.run_for(
            participant.card, step.question, exclude_ids=record.remembered
        )
        for found in tools:
            emit(record.memory(step.role, found))
        inputs = [
            (outcomes[d].step.role, f"[{d}] {outcomes[d].step.question}\n{outcomes[d].text}")
            for d in step.depends_on
        ]
        inputs.extend((HUMAN, note) for note in self._notes)
        task = task_messages(
            self.question,
            inputs=inputs,
            tools=tools,
            ask=f"Answer only your part of the question ({step.id}): {step.question}",
        )
        reply = await self._timed(participant, task)
        if isinstance(reply, Failure):
            if reply.timed_out:
                return Outcome(step, "timeout", reason=reply.message), None
            if self._user_stop is not None:
                return Outcome(step, "cancelled", reason=self._user_stop), None
            return Outcome(step, "failed", reason=reply.message, family=reply.family), None
        message = record.message(
            step.role,
            reply.text,
            usage=reply.usage,
            latency_s=reply.latency_s,
            interrupted=reply.interrupted,
        )
        emit(message)
        return Outcome(step, "ok", text=reply.text), message.seq

    # -- 3. fan in --------------------------------------------------------------------------

    async def _fan_in(
        self, steps: Sequence[PlanStep], outcomes: Mapping[str, Outcome]
    ) -> AsyncIterator[Event]:
        """The critic's comparison, the aggregate event, the writer's answer, the stop."""
        record = self._record
        answered = [outcomes[s.id] for s in steps if outcomes[s.id].status == "ok"]
        missing = [
            MissingBranch(
                branch=o.step.id,
                role=o.step.role,
                question=o.step.question,
                status=o.status,
                reason=o.reason or o.status,
            )
            for o in (outcomes[s.id] for s in steps)
            if o.status != "ok"
        ]
        if not answered:
            gaps = "; ".join(f"{m.branch} ({m.role}): {m.reason}" for m in missing)
            yield record.stop("error", f"no branch answered: {gaps}")
            return
        for event in self._deliver_inbox():
            yield event
        conflicts: list[Conflict] = []
        compared = True
        critic_text: str | None = None
        usage = Usage()
        if len(answered) >= 2:
            result: tuple[list[Conflict], Usage] | None = None
            async for item in self._compare(answered):
                if isinstance(item, tuple):
                    result = item
                else:
                    yield item
            compared = result is not None
            if result is not None:
                conflicts, usage = result
                critic_text = describe_conflicts(conflicts, steps)
        yield record.commit(
            AggregateEvent(
                **record.stamp(),
                answered=[o.step.id for o in answered],
                missing=missing,
                conflicts=conflicts,
                compared=compared,
                usage=usage,
            )
        )
        ending = self._ending()
        if ending is not None:
            yield record.stop(*ending)
            return
        async for event in self._write(steps, answered, missing, conflicts, compared, critic_text):
            yield event

    async def _compare(
        self, answered: Sequence[Outcome]
    ) -> AsyncIterator[Event | tuple[list[Conflict], Usage]]:
        """The critic's attempts: refusals as error events, then its message and the
        conflicts with their usage (nothing more when every attempt was refused)."""
        record = self._record
        critic = self.participants[self._reviewer]
        ids = [o.step.id for o in answered]
        prompt = compare_prompt(
            self.question, [(o.step, o.text) for o in answered], critic.card.instructions
        )
        usage = Usage()
        began = time.monotonic()
        attempts = self.settings.compare_attempts
        for attempt in range(1, attempts + 1):
            family: ErrorFamily = "model"
            try:
                async with asyncio.timeout(self._timeout()):
                    result = await critic.client.create(
                        prompt,
                        json_output=comparison_schema(ids),
                        extra_create_args={"max_tokens": COMPARE_MAX_TOKENS, "temperature": 0.0},
                    )
                usage = _add(usage, result.usage)
                text = result.content if isinstance(result.content, str) else ""
                conflicts = parse_comparison(text, ids)
            except ComparisonRefused as exc:
                problem = str(exc)
            except TimeoutError:
                problem = f"no comparison within {self._timeout():.3g} s"
            except Exception as exc:
                family, problem = describe_failure(exc)
            else:
                took = time.monotonic() - began
                summary = describe_conflicts(conflicts, [o.step for o in answered])
                yield record.message(self._reviewer, summary, usage=usage, latency_s=took)
                yield conflicts, usage
                return
            record.log("compare_refused", agent=self._reviewer, attempt=attempt, reason=problem)
            yield record.commit(
                ErrorEvent(
                    **record.stamp(turn=record.turn + 1),
                    family=family,
                    speaker=self._reviewer,
                    message=f"comparison refused: {problem}"[:2000],
                    attempt=attempt,
                )
            )
        record.charge(self._reviewer, usage, time.monotonic() - began, calls=attempts)

    async def _write(
        self,
        steps: Sequence[PlanStep],
        answered: Sequence[Outcome],
        missing: Sequence[MissingBranch],
        conflicts: Sequence[Conflict],
        compared: bool,
        critic_text: str | None,
    ) -> AsyncIterator[Event]:
        """The writer's answer with what it must state appended, then the stop event."""
        record = self._record
        inputs = [(o.step.role, f"[{o.step.id}] {o.step.question}\n{o.text}") for o in answered]
        if critic_text is not None:
            inputs.append((self._reviewer, critic_text))
        inputs.extend((HUMAN, note) for note in self._notes)
        task = task_messages(self.question, inputs=inputs, ask=synthesis_ask(conflicts, missing))
        reply = await self._timed(self.participants[self._answerer], task)
        if isinstance(reply, Failure):
            yield record.commit(
                ErrorEvent(
                    **record.stamp(turn=record.turn + 1),
                    family=reply.family,
                    speaker=self._answerer,
                    message=reply.message,
                )
            )
            if self._user_stop is not None:
                yield record.stop("user_stop", self._user_stop)
            else:
                yield record.stop(
                    "error",
                    f"the {self._answerer} failed ({reply.message[:300]}); "
                    "the branches' answers are above",
                )
            return
        notes = answer_notes(conflicts, missing, steps, compared=compared)
        yield record.message(
            self._answerer,
            f"{reply.text}\n\n{notes}" if notes else reply.text,
            usage=reply.usage,
            latency_s=reply.latency_s,
            interrupted=reply.interrupted,
        )
        code: StopCode = "partial" if missing else "completed"
        told = f"{len(answered)} of {len(steps)} branches"
        if missing:
            gaps = ", ".join(f"{m.branch} ({m.status})" for m in missing)
            reason = f"the {self._answerer} answered from {told}; missing: {gaps}"
        else:
            reason = f"the {self._answerer} answered from all {len(steps)} branches"
        if conflicts:
            reason += f"; {len(conflicts)} disagreement(s) stated"
        yield record.stop(code, reason)

    # -- helpers ----------------------------------------------------------------------------

    async def _timed(
        self, participant: Participant, task: Sequence[BaseChatMessage]
    ) -> Spoken | Failure:
        """One reply within ``_timeout()``; past it the call is cancelled (every client ends
        its generation cleanly on cancellation)."""
        limit = self._timeout()
        try:
            async with asyncio.timeout(limit) as deadline:
                return await spoken(participant, task, self._cutoff)
        except TimeoutError as exc:
            if deadline.expired():
                return Failure("model", f"no answer within {limit:.3g} s", timed_out=True)
            return Failure(*describe_failure(exc))
        except Exception as exc:  # the model failed: recorded by the caller, the run goes on
            family, message = describe_failure(exc)
            return Failure(family, message[:2000])

    def _deliver_inbox(self) -> list[Event]:
        events: list[Event] = []
        while not self._inbox.empty():
            text = self._inbox.get_nowait().text.strip()
            if text:
                self._notes.append(text)
                events.append(self._record.message(HUMAN, text))
        return events

    def _ending(self) -> tuple[StopCode, str] | None:
        return stop_at_boundary(
            self.budget,
            tokens=self._record.tokens,
            started=self._started,
            user_stop=self._user_stop,
        )

    def _timeout(self) -> float:
        """A call's time limit: the branch timeout, never past the run's wall clock."""
        left = self.budget.wall_clock_s - (time.monotonic() - self._started)
        return max(0.001, min(self.settings.branch_timeout_s, left))

    def _branch_event(
        self,
        step: PlanStep,
        phase: Literal["start", "end"],
        status: BranchStatus,
        *,
        latency_s: float = 0.0,
        message_seq: int | None = None,
        family: ErrorFamily | None = None,
        error: str | None = None,
    ) -> BranchEvent:
        return BranchEvent(
            **self._record.stamp(),
            phase=phase,
            branch=step.id,
            role=step.role,
            question=step.question,
            status=status,
            latency_s=round(latency_s, 3),
            message_seq=message_seq,
            family=family,
            error=error,
        )


def _add(usage: Usage, more: RequestUsage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens + more.prompt_tokens,
        completion_tokens=usage.completion_tokens + more.completion_tokens,
    )
