"""A panel's first phase: the manager writes the plan, or the run falls back.

Owns asking for the plan (``structured.ask``, at temperature 0: a structured decision should
not depend on a sampling draw; on the embedded model, sampled plans were often junk),
recording each refused attempt but the last as an ``error`` event, and the ``plan`` event:
accepted with its steps, or refused with every reason and the fallback it leads to.

Does not own: what a plan is and how it is checked (``plan``), running it (``panel``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roundtable.conversations.panel_deps import PanelDeps
from roundtable.conversations.plan import (
    PLAN_MAX_TOKENS,
    PlanRefused,
    check_plan,
    parse_plan,
    plan_prompt,
    plan_schema,
    raw_steps,
)
from roundtable.conversations.structured import Answer, Refusal, ask
from roundtable.transcripts.events import ErrorEvent, Event, PlanEvent, PlanStep

NO_PLANNER = "no manager model is configured to write a plan"


async def write_plan(deps: PanelDeps, *, can_fall_back: bool) -> AsyncIterator[Event]:
    """Refused attempts as error events, then the plan event (accepted or refused)."""
    record, planner = deps.record, deps.plan_by
    answer: Answer[list[PlanStep]] = Answer()
    if deps.planner is not None:
        answer = await _ask(deps)
    for attempt, refusal in enumerate(answer.refusals, start=1):
        why = _why(deps, refusal)
        record.log("plan_refused", agent=planner, attempt=attempt, reason=why)
        if attempt < deps.settings.plan_attempts:  # the last is in the plan event
            yield record.commit(
                ErrorEvent(
                    **record.stamp(turn=0),
                    family="model",
                    speaker=planner,
                    message=f"plan refused: {why}"[:2000],
                    attempt=attempt,
                )
            )
    if answer.calls:
        record.charge(planner, answer.usage, answer.seconds, calls=answer.calls)
    steps = answer.value
    if steps is not None:
        independent = sum(1 for s in steps if not s.depends_on)
        record.log("plan", agent=planner, steps=len(steps), independent=independent)
        reason = f"the manager's plan: {len(steps)} sub-question(s), {independent} independent"
        yield record.commit(
            PlanEvent(
                **record.stamp(turn=0),
                mode="panel",
                steps=steps,
                accepted=True,
                reason=reason,
                usage=answer.usage,
            )
        )
        return
    last = answer.refusals[-1] if answer.refusals else None
    refused = _why(deps, last) if last is not None else NO_PLANNER
    instead = "; falling back to a debate" if can_fall_back else ""
    yield record.commit(
        PlanEvent(
            **record.stamp(turn=0),
            mode="panel",
            steps=_written(last),
            accepted=False,
            reason=f"plan refused: {refused}{instead}",
            fallback="debate" if can_fall_back else None,
            usage=answer.usage,
        )
    )


async def _ask(deps: PanelDeps) -> Answer[list[PlanStep]]:
    assert deps.planner is not None
    cards = [p.card for p in deps.participants.values()]
    return await ask(
        deps.planner,
        lambda last: plan_prompt(deps.question, cards, _why(deps, last) if last else None),
        schema=plan_schema(cards),
        parse=lambda text: check_plan(parse_plan(text), cards),
        attempts=deps.settings.plan_attempts,
        limit=deps.timeout,
        extra={"max_tokens": PLAN_MAX_TOKENS, "temperature": 0.0},
        explain=lambda exc: (
            "model",
            f"the manager's model failed: {deps.control.explain(exc)[1]}",
        ),
    )


def _why(deps: PanelDeps, refusal: Refusal) -> str:
    if refusal.timed_out:
        return f"the manager wrote no plan within {deps.timeout():.3g} s"
    return refusal.reason


def _written(refusal: Refusal | None) -> list[PlanStep]:
    """The steps of the last plan as written (unchecked), when it could be read at all."""
    if refusal is None or refusal.text is None:
        return []
    try:
        return raw_steps(parse_plan(refusal.text))
    except PlanRefused:
        return []
