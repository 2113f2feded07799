"""The steps that change the debate so far, each committing its events through the run's
``Recorder``: a message, an agent's reply, a failed turn, an empty reply, the manager's
decision, what the guards did, a pruned prompt, and turns dropped from a prompt going to
shared memory.

The record they change, ``DebateState``, and what the guards judge against (``guard_view``)
are ``debate_record``'s, re-exported here. They were split apart so the record reads as what a
debate is and these steps as what happens to it.

Does not own: the turn loop or AutoGen's team (``debate``), opening, continuing or forking a
transcript (``debate_open``), the transcript itself (``recorder``), what shared memory does
with a pruned turn (``recall``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from autogen_agentchat.messages import TextMessage
from autogen_core.models import LLMMessage

from roundtable.agents import parse_verdict
from roundtable.common.errors import Family, stops_run
from roundtable.conversations.citations import find_citations
from roundtable.conversations.context import PruneReport
from roundtable.conversations.debate_record import DebateState, guard_view
from roundtable.conversations.ledger import MANAGER
from roundtable.conversations.participant import Participant
from roundtable.conversations.recall import Recall
from roundtable.conversations.recorder import Recorder
from roundtable.transcripts.events import (
    HUMAN,
    Citation,
    ErrorEvent,
    Event,
    GuardEvent,
    MessageEvent,
    PruneEvent,
    SelectionEvent,
    Usage,
)

__all__ = [
    "DebateState",
    "commit_message",
    "commit_reply",
    "empty_reply",
    "flush_decision",
    "flush_guards",
    "flush_prune",
    "guard_view",
    "record_failure",
    "remember_pruned",
]


def commit_message(
    state: DebateState,
    record: Recorder,
    speaker: str,
    content: str,
    *,
    usage: Usage | None = None,
    latency: float = 0.0,
    verdict: str | None = None,
    interrupted: bool = False,
    truncated: bool = False,
    citations: list[Citation] | None = None,
) -> MessageEvent:
    """Commit a message as the next turn (remembered, and charged when an agent's)."""
    if speaker == HUMAN and record.turn > 0:
        state.floor.last_verdict = None
    event = record.message(
        speaker,
        content,
        usage=usage,
        latency_s=latency,
        verdict=verdict,  # type: ignore[arg-type]
        interrupted=interrupted,
        truncated=truncated,
        citations=citations,
    )
    state.floor.speakers.append(speaker)
    state.messages.append(event)
    return event


def commit_reply(
    state: DebateState,
    record: Recorder,
    participant: Participant,
    message: TextMessage,
    latency: float,
    truncated: bool = False,
) -> MessageEvent:
    """An agent's reply: committed, its verdict read, the tally and the floor moved on;
    ``truncated`` when it ended at its token cap."""
    speaker = message.source
    usage = Usage.of(message.models_usage)
    verdict = parse_verdict(message.content) if participant.card.gives_verdict else None
    interrupted = bool(getattr(participant.client, "last_interrupted", False))
    previous_agent = state.floor.last_agent
    record.log(
        "model_call_end",
        agent=speaker,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_s=round(latency, 3),
        interrupted=interrupted,
    )
    event = commit_message(
        state,
        record,
        speaker,
        message.content,
        usage=usage,
        latency=latency,
        verdict=verdict,
        interrupted=interrupted,
        truncated=truncated,
        citations=find_citations(message.content, state.prompt_notes.get(speaker, [])),
    )
    state.floor.last_verdict = verdict
    answerer = state.floor.answerer
    # Without an answerer in the team, the verdict-giver accepts whatever was said last.
    if verdict == "ACCEPT" and answerer in (None, previous_agent):
        what = f"the {previous_agent}'s answer" if previous_agent else "the answer"
        state.accepted = f"the {speaker} accepted {what}"
    state.floor.excluded.clear()
    state.tally.agent_turns += 1
    state.tally.consecutive_errors = 0
    return event


def record_failure(
    state: DebateState, record: Recorder, family: Family, message: str
) -> list[ErrorEvent]:
    """A failed turn: recorded, its speaker left out of the next pick, the run stopped when
    the policy says so (``common.errors.stops_run``).

    After the person's Stop nothing is recorded: their stop cuts the model call in flight (a
    model that does not end softly is cut ``STOP_GRACE_S`` later), and that is the stop,
    which the run's stop event records, not a failure to show in red."""
    speaker = state.last_selected
    if state.stopped:
        record.log("turn_stopped", agent=speaker, family=family, error=message)
        return []
    record.log("turn_failed", level=logging.WARNING, agent=speaker, family=family, error=message)
    state.tally.consecutive_errors += 1
    if stops_run(family):  # a bad key or a missing model will not fix itself: stop now
        state.fatal = f"{speaker or 'a role'} cannot run: {message}"
    if speaker is not None:
        state.floor.excluded.add(speaker)
        if set(state.floor.excluded) >= set(state.floor.roster):
            state.floor.excluded.clear()
    return [
        record.commit(
            ErrorEvent(
                **record.stamp(turn=record.turn + 1),
                family=family,
                speaker=speaker,
                message=message[:2000],
            )
        )
    ]


def empty_reply(
    state: DebateState, record: Recorder, participant: Participant, late: str | None
) -> list[Event]:
    """An empty reply is not committed; the agents saw it, so keep their places aligned.

    ``late`` is why the turn's deadline passed, when it has."""
    state.messages.append(None)
    if late is not None:
        return list(record_failure(state, record, "model", late))
    if getattr(participant.client, "last_interrupted", False):
        return []  # the person stepped in before the first word: nothing to record
    speaker = participant.card.name
    return list(record_failure(state, record, "model", f"{speaker} gave an empty reply"))


def flush_decision(state: DebateState, record: Recorder) -> list[Event]:
    """The manager's decision for this turn: its refusals, its selection, its memory."""
    decision, state.decision = state.decision, None
    if decision is None:
        return []
    turn = record.turn + 1
    events: list[Event] = [
        record.commit(
            ErrorEvent(
                **record.stamp(turn=turn),
                family="model",
                message=f"manager pick refused: {failure}",
                attempt=n,
            )
        )
        for n, failure in enumerate(decision.failures, start=1)
        if not state.stopped  # the person's stop cut the manager's call: see record_failure
    ]
    if decision.method in ("model", "fallback") and decision.usage.total:
        calls = len(decision.failures) + (1 if decision.method == "model" else 0)
        record.charge(MANAGER, decision.usage, state.pick_seconds, calls=calls)
    state.last_selected = decision.speaker
    if decision.dropped_reason is not None:
        events.append(
            record.commit(
                GuardEvent(
                    **record.stamp(turn=turn),
                    speaker=MANAGER,
                    rule="reason",
                    action="rewritten",
                    detail=f"the reason named another role: {decision.dropped_reason}"[:400],
                )
            )
        )
    events.append(
        record.commit(
            SelectionEvent(
                **record.stamp(turn=turn),
                candidates=decision.candidates,
                speaker=decision.speaker,
                method=decision.method,
                reason=decision.reason,
                usage=decision.usage,
            )
        )
    )
    record.log(
        "selection",
        agent=decision.speaker,
        method=decision.method,
        reason=decision.reason,
        candidates=decision.candidates,
        refused=len(decision.failures),
    )
    memory, state.memory_events = state.memory_events, []
    for event in memory:  # stamped when recalled: re-stamp in commit order
        events.append(record.commit(event.model_copy(update=dict(record.stamp(event.turn)))))
    return events


def flush_guards(state: DebateState, record: Recorder) -> list[Event]:
    """What the guards did for the reply under way, committed before the reply (or its
    failure)."""
    steps, state.guard_steps = state.guard_steps, []
    turn = record.turn + 1
    events: list[Event] = []
    for speaker, rule, action, detail in steps:
        record.log("guard", agent=speaker, rule=rule, action=action, detail=detail)
        events.append(
            record.commit(
                GuardEvent(
                    **record.stamp(turn=turn),
                    speaker=speaker,
                    rule=rule,
                    action=action,
                    detail=detail,
                )
            )
        )
    return events


def flush_prune(
    state: DebateState, record: Recorder, speaker: str, report: PruneReport | None
) -> list[Event]:
    """The speaker's prompt was pruned for this turn: record it once, before its reply."""
    if report is None or state.prune_seen.get(speaker) is report:
        return []
    state.prune_seen[speaker] = report
    event = PruneEvent(
        **record.stamp(turn=record.turn + 1),
        speaker=speaker,
        kept=report.kept,
        dropped=report.dropped,
        tokens_before=report.tokens_before,
        tokens_after=report.tokens_after,
        budget=report.budget,
    )
    record.log("prune", agent=speaker, **event.model_dump(include=_PRUNE_FIELDS))
    return [record.commit(event)]


_PRUNE_FIELDS = {"kept", "dropped", "tokens_before", "tokens_after", "budget"}


def remember_pruned(
    state: DebateState,
    record: Recorder,
    recall: Recall | None,
    speaker: str,
    items: Sequence[tuple[int, LLMMessage]],
) -> None:
    """Turns just dropped from ``speaker``'s prompt go to shared memory, once each."""
    for index, message in items:
        if index >= len(state.messages):
            continue
        event = state.messages[index]
        if event is None:  # an empty reply the agents saw but the transcript does not keep
            continue
        if str(message.content) != event.content:  # contexts and transcript out of step
            record.log("prune_unmapped", level=logging.WARNING, agent=speaker, index=index)
            continue
        state.pruned[speaker].add(event.seq)
        if recall is not None:
            recall.remember_pruned(event)
