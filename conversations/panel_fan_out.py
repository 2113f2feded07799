"""A panel's second phase: every sub-question is a branch, run in its own task.

Independent branches run at once, bounded per lane: a lane is an endpoint (the embedded model
is one lane of width 1, as its single context serialises calls anyway, so the transcript
shows the branches one after the other, which is what happened). A branch that depends on
others waits for them and is skipped when one of them did not answer. A branch that fails or
exceeds ``branch_timeout_s`` is cancelled and recorded; the others go on. Events from
concurrent branches are committed and yielded in one order.

Owns the scheduling of branches and each branch's events (``branch`` start and end, its
tools' memory events, its answer). Does not own: the plan (``panel_plan``), what follows
(``panel_fan_in``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

from roundtable.conversations.panel_deps import Failure, Outcome, PanelDeps
from roundtable.conversations.stage import task_messages
from roundtable.transcripts.events import Event, PlanStep


@dataclass(frozen=True)
class _Done:
    """A branch task has finished (``error``: it crashed, which is our fault: re-raised)."""

    error: BaseException | None = None


async def fan_out(
    deps: PanelDeps, steps: Sequence[PlanStep], outcomes: dict[str, Outcome]
) -> AsyncIterator[Event]:
    """Run every branch in its own task; yield their events in commit order."""
    queue: asyncio.Queue[Event | _Done] = asyncio.Queue()
    finished = {step.id: asyncio.Event() for step in steps}
    lanes = {
        lane: asyncio.Semaphore(deps.limits.get(lane, deps.settings.max_concurrency))
        for lane in set(deps.lanes.values())
    }

    async def branch(step: PlanStep) -> None:
        error: BaseException | None = None
        outcome = Outcome(step, "cancelled", reason="the run ended first")
        try:
            for dep in step.depends_on:
                await finished[dep].wait()
            outcome = await _branch(deps, step, outcomes, lanes, queue.put_nowait)
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
    deps: PanelDeps,
    step: PlanStep,
    outcomes: Mapping[str, Outcome],
    lanes: Mapping[str, asyncio.Semaphore],
    emit: Callable[[Event], None],
) -> Outcome:
    """One branch, its inputs finished: wait for its lane, run its tools, get its answer."""
    record = deps.record
    unanswered = [d for d in step.depends_on if outcomes[d].status != "ok"]
    if unanswered:
        why = f"it needs {', '.join(unanswered)}, which did not answer"
        emit(record.branch(step, "end", "skipped", error=why))
        return Outcome(step, "skipped", reason=why)
    async with lanes[deps.lanes[step.role]]:
        stopped = deps.control.user_stop
        if stopped is not None:
            emit(record.branch(step, "end", "cancelled", error=stopped))
            return Outcome(step, "cancelled", reason=stopped)
        emit(record.branch(step, "start", "running"))
        record.log("branch_start", agent=step.role, branch=step.id)
        began = time.monotonic()
        outcome, message = await _answer(deps, step, outcomes, emit)
    took = time.monotonic() - began
    record.log("branch_end", agent=step.role, branch=step.id, status=outcome.status)
    emit(
        record.branch(
            step,
            "end",
            outcome.status,
            latency_s=took,
            message_seq=message,
            family=outcome.family,
            error=outcome.reason or None,
        )
    )
    return outcome


async def _answer(
    deps: PanelDeps, step: PlanStep, outcomes: Mapping[str, Outcome], emit: Callable[[Event], None]
) -> tuple[Outcome, int | None]:
    """The branch's answer as a committed message, or how it failed."""
    record = deps.record
    participant = deps.participants[step.role]
    tools = await deps.tools.run_for(participant.card, step.question, exclude_ids=record.remembered)
    for found in tools:
        emit(record.memory(step.role, found))
    inputs = [
        (outcomes[d].step.role, f"[{d}] {outcomes[d].step.question}\n{outcomes[d].text}")
        for d in step.depends_on
    ]
    task = task_messages(
        deps.question,
        inputs=deps.with_notes(inputs),
        tools=tools,
        ask=f"Answer only your part of the question ({step.id}): {step.question}",
    )
    reply = await deps.reply(participant, task)
    if isinstance(reply, Failure):
        if reply.timed_out:
            return Outcome(step, "timeout", reason=reply.message), None
        if deps.control.user_stop is not None:
            return Outcome(step, "cancelled", reason=deps.control.user_stop), None
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
