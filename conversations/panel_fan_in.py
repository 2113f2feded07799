"""A panel's last phase: the reviewer compares the answers, the answerer answers the person.

The reviewer's comparison is asked with constrained output (``aggregate.Comparison``, at
temperature 0, through ``structured.ask``) and recorded as an ``aggregate`` event with the
answered and missing branches; the answerer answers the person, and the disagreements and
missing branches are appended to its answer under plain headings, so partial success is
explicit whatever the model wrote. The stop event is ``completed`` or ``partial``.

Owns the fan-in's events. Does not own: the comparison's shape and wording (``aggregate``),
the branches (``panel_fan_out``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from roundtable.conversations.aggregate import (
    COMPARE_MAX_TOKENS,
    answer_notes,
    compare_prompt,
    comparison_schema,
    describe_conflicts,
    parse_comparison,
    synthesis_ask,
)
from roundtable.conversations.panel_deps import Failure, Outcome, PanelDeps
from roundtable.conversations.stage import task_messages
from roundtable.conversations.structured import ask
from roundtable.transcripts.events import (
    AggregateEvent,
    Conflict,
    ErrorEvent,
    Event,
    MissingBranch,
    PlanStep,
    StopCode,
    StopEvent,
    Usage,
)

Ending = Callable[[], StopEvent | None]
"""Commits the run's stop when it must stop at this boundary (a budget, the person)."""


async def fan_in(
    deps: PanelDeps, steps: Sequence[PlanStep], outcomes: Mapping[str, Outcome], ending: Ending
) -> AsyncIterator[Event]:
    """The reviewer's comparison, the aggregate event, the answerer's answer, the stop."""
    record = deps.record
    answered = [outcomes[s.id] for s in steps if outcomes[s.id].status == "ok"]
    missing = _missing(outcomes[s.id] for s in steps)
    if not answered:
        gaps = "; ".join(f"{m.branch} ({m.role}): {m.reason}" for m in missing)
        yield record.stop("error", f"no branch answered: {gaps}")
        return
    for event in deps.deliver_inbox():
        yield event
    conflicts: list[Conflict] = []
    compared = True
    review_text: str | None = None
    usage = Usage()
    if len(answered) >= 2:
        result: tuple[list[Conflict], Usage] | None = None
        async for item in _compare(deps, answered):
            if isinstance(item, tuple):
                result = item
            else:
                yield item
        compared = result is not None
        if result is not None:
            conflicts, usage = result
            review_text = describe_conflicts(conflicts, steps)
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
    stop = ending()
    if stop is not None:
        yield stop
        return
    brief = _Brief(steps, answered, missing, conflicts, compared, review_text)
    async for event in _write(deps, brief):
        yield event


def _missing(outcomes: Iterable[Outcome]) -> list[MissingBranch]:
    """The branches that did not answer, and why."""
    return [
        MissingBranch(
            branch=o.step.id,
            role=o.step.role,
            question=o.step.question,
            status=o.status,
            reason=o.reason or o.status,
        )
        for o in outcomes
        if o.status != "ok"
    ]


async def _compare(
    deps: PanelDeps, answered: Sequence[Outcome]
) -> AsyncIterator[Event | tuple[list[Conflict], Usage]]:
    """The reviewer's attempts: refusals as error events, then its message and the conflicts
    with their usage (nothing more when every attempt was refused)."""
    record, reviewer = deps.record, deps.reviewer
    judge = deps.participants[reviewer]
    ids = [o.step.id for o in answered]
    prompt = compare_prompt(
        deps.question, [(o.step, o.text) for o in answered], judge.card.instructions
    )
    answer = await ask(
        judge.client,
        lambda _last: prompt,
        schema=comparison_schema(ids),
        parse=lambda text: parse_comparison(text, ids),
        attempts=deps.settings.compare_attempts,
        limit=deps.timeout,
        extra={"max_tokens": COMPARE_MAX_TOKENS, "temperature": 0.0},
        explain=deps.control.explain,
    )
    for attempt, refusal in enumerate(answer.refusals, start=1):
        problem = refusal.reason
        if refusal.timed_out:
            problem = f"no comparison within {deps.timeout():.3g} s"
        record.log("compare_refused", agent=reviewer, attempt=attempt, reason=problem)
        yield record.commit(
            ErrorEvent(
                **record.stamp(turn=record.turn + 1),
                family=refusal.family,
                speaker=reviewer,
                message=f"comparison refused: {problem}"[:2000],
                attempt=attempt,
            )
        )
    if answer.value is None:
        record.charge(reviewer, answer.usage, answer.seconds, calls=answer.calls)
        return
    summary = describe_conflicts(answer.value, [o.step for o in answered])
    yield record.message(reviewer, summary, usage=answer.usage, latency_s=answer.seconds)
    yield answer.value, answer.usage


@dataclass(frozen=True)
class _Brief:
    """What the answerer is told and what its answer must state."""

    steps: Sequence[PlanStep]
    answered: Sequence[Outcome]
    missing: Sequence[MissingBranch]
    conflicts: Sequence[Conflict]
    compared: bool
    review_text: str | None


async def _write(deps: PanelDeps, brief: _Brief) -> AsyncIterator[Event]:
    """The answerer's answer with what it must state appended, then the stop event."""
    record, answerer = deps.record, deps.answerer
    inputs = [(o.step.role, f"[{o.step.id}] {o.step.question}\n{o.text}") for o in brief.answered]
    if brief.review_text is not None:
        inputs.append((deps.reviewer, brief.review_text))
    task = task_messages(
        deps.question,
        inputs=deps.with_notes(inputs),
        ask=synthesis_ask(brief.conflicts, brief.missing),
    )
    reply = await deps.reply(deps.participants[answerer], task)
    if isinstance(reply, Failure):
        yield record.commit(
            ErrorEvent(
                **record.stamp(turn=record.turn + 1),
                family=reply.family,
                speaker=answerer,
                message=reply.message,
            )
        )
        stopped = deps.control.user_stop
        if stopped is not None:
            yield record.stop("user_stop", stopped)
        else:
            yield record.stop(
                "error",
                f"the {answerer} failed ({reply.message[:300]}); the branches' answers are above",
            )
        return
    notes = answer_notes(brief.conflicts, brief.missing, brief.steps, compared=brief.compared)
    yield record.message(
        answerer,
        f"{reply.text}\n\n{notes}" if notes else reply.text,
        usage=reply.usage,
        latency_s=reply.latency_s,
        interrupted=reply.interrupted,
    )
    yield record.stop(*_verdict(answerer, brief))


def _verdict(answerer: str, brief: _Brief) -> tuple[StopCode, str]:
    """The stop's code and reason: how much of the plan the answer covers."""
    steps, missing = brief.steps, brief.missing
    code: StopCode = "partial" if missing else "completed"
    told = f"{len(brief.answered)} of {len(steps)} branches"
    if missing:
        gaps = ", ".join(f"{m.branch} ({m.status})" for m in missing)
        reason = f"the {answerer} answered from {told}; missing: {gaps}"
    else:
        reason = f"the {answerer} answered from all {len(steps)} branches"
    if brief.conflicts:
        reason += f"; {len(brief.conflicts)} disagreement(s) stated"
    return code, reason
