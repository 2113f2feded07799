"""The group-chat manager: one debate, run turn by turn as an async stream of events.

The debate is an AutoGen ``SelectorGroupChat`` whose ``selector_func`` is our strategy
(``selection.choose``). It runs one agent turn per ``run_stream`` call (``max_turns=1``), the
pattern AutoGen documents for a human in the loop, every turn on the one AutoGen runtime the
debate starts (``team_runtime``): between two turns we deliver what the person typed, check
the budgets and decide whether to stop, so nothing ever cancels the team mid-turn (cancelling
corrupts its state). A reply is cut short softly through the shared ``stop_signal`` that every
model client of the conversation watches; a model that does not answer it (a stalled stream) is
cut hard ``STOP_GRACE_S`` later (``control``, ``cutoff``), which fails the turn like any agent
error, so a turn ends within its deadline plus a second.

Every committed record goes to the transcript (fsynced) before it is yielded, so the
terminal, the browser and the tests see exactly what a replay will show.

Owns the turn loop and the dependencies of a debate (its agents, team, contexts, manager).
Does not own: the state of the debate so far and the steps that commit to it
(``debate_state``), opening, continuing or forking (``debate_open``), the transcript
(``recorder``), the inbox and the deadlines (``control``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

from autogen_agentchat.base import ChatAgent, TaskResult
from autogen_agentchat.base import Team as AgentTeam
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
    TextMessage,
)
from autogen_agentchat.teams import SelectorGroupChat
from autogen_core.models import ChatCompletionClient

from roundtable.agents import Team, call_scope
from roundtable.common.errors import ConfigError, InfraError, ModelError
from roundtable.common.tokens import OnceCounter, TiktokenCounter, TokenCounter
from roundtable.conversations import observe
from roundtable.conversations.budget import Budget, Tally, budget_warnings, stop_reason
from roundtable.conversations.control import RunControl
from roundtable.conversations.debate_cast import take_seat
from roundtable.conversations.debate_open import Origin, debate_header, open_debate
from roundtable.conversations.debate_recall import remind
from roundtable.conversations.debate_state import (
    DebateState,
    commit_message,
    commit_reply,
    empty_reply,
    flush_decision,
    flush_guards,
    flush_prune,
    record_failure,
)
from roundtable.conversations.guards import RETRY_MARK
from roundtable.conversations.ledger import Price
from roundtable.conversations.participant import (
    Participant,
    check_question,
    new_conversation_id,
    prices_of,
)
from roundtable.conversations.pick_prompt import PickHistory
from roundtable.conversations.recall import Recall
from roundtable.conversations.recorder import Recorder
from roundtable.conversations.selection import choose
from roundtable.conversations.team_runtime import DebateRuntime, IdleEnd, settle
from roundtable.transcripts.events import (
    HUMAN,
    Event,
    LedgerRow,
    LiveEvent,
    NoticeEvent,
    StopCode,
    StopEvent,
    TokenDelta,
)
from roundtable.transcripts.store import Transcript


class Debate:
    """One conversation between the person and the specialists; a ``modes.Run``."""

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
        context_window: int = 4096,
        conversation_id: str | None = None,
        prior: Transcript | None = None,
        fork_at: int | None = None,
        recall: Recall | None = None,
        manager_price: Price | None = None,
        manager_shared_first: bool = False,
        counter: TokenCounter | None = None,
        owner: str | None = None,
    ) -> None:
        if len(participants) < 2:
            names = ", ".join(p.card.name for p in participants) or "none"
            raise ConfigError(f"a debate needs at least two roles; got {names}")
        self.question = check_question(question)
        """The question, or (continuing or forking) the person's new message."""
        self._origin = Origin(prior, fork_at)
        self.participants = {p.card.name: p for p in participants}
        self.manager_client = manager_client
        self.budget = budget or Budget()
        self.stop_signal = stop_signal
        self.conversation_id = conversation_id or new_conversation_id()
        if prior is not None and self._origin.continues:  # same file, same header
            self.conversation_id = prior.header.conversation_id
            transcript_path = prior.path
        self.header = debate_header(
            self._origin,
            self.conversation_id,
            self.question,
            participants,
            self.budget,
            context_window,
            team,
            owner,
        )
        self._transcript_path = transcript_path
        self._control = RunControl(stop_signal, self.budget)
        self._record = Recorder(
            transcript_path,
            self.header,
            recall=recall,
            prices=prices_of(participants, manager_price),
        )
        self._recall = recall
        self._state = DebateState.new(team, [p.card for p in participants], self.budget)
        self._counter: TokenCounter = OnceCounter(counter or TiktokenCounter())
        self._pick_history = PickHistory(
            self._counter, context_window, shared_first=manager_shared_first
        )
        self._seats = {
            p.card.name: take_seat(
                p,
                peers=participants,
                state=self._state,
                record=self._record,
                recall=recall,
                control=self._control,
                counter=self._counter,
                guards=team.guards,
            )
            for p in participants
        }
        self._agents = [seat.agent for seat in self._seats.values()]
        self._manager = self._control.guard(manager_client) if manager_client else None
        members: list[ChatAgent | AgentTeam] = list(self._agents)
        self._runtime = DebateRuntime()
        self._team = SelectorGroupChat(  # one turn per run_stream: we decide between turns
            members,
            model_client=manager_client or participants[0].client,
            selector_func=self._select,
            max_turns=1,
            emit_team_events=True,
            runtime=self._runtime,
        )

    # -- what the person can do while the debate runs ---------------------------------------

    def interject(self, text: str, *, ask: str | None = None, cut_short: bool = True) -> None:
        """Queue a human turn; with ``cut_short`` the reply being generated ends softly now."""
        if ask is not None and ask not in self.participants:
            raise ConfigError(
                f"no role {ask!r} in this debate; roles: {', '.join(self.participants)}"
            )
        self._control.put(text, ask=ask, cut_short=cut_short)

    def request_stop(self, reason: str = "stopped by the person") -> None:
        """End the debate at the next turn boundary; the current reply ends softly now."""
        self._state.stopped = True
        self._control.request_stop(reason)

    @property
    def transcript_path(self) -> Path:
        return self._transcript_path

    @property
    def ledger(self) -> list[LedgerRow]:
        """What each speaker has cost so far in this run."""
        return self._record.rows()

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> AsyncIterator[LiveEvent]:
        """Run to a stated stop, yielding the header, every committed event and token deltas."""
        return self._record.reported(self._run())

    async def _run(self) -> AsyncGenerator[LiveEvent, None]:
        self._control.start()
        self._runtime.start()
        state, record = self._state, self._record
        try:
            earlier = await open_debate(self._origin, record, state, self._agents)
            yield self.header
            for event in earlier:
                yield event
            state.opened = len(state.messages)
            yield commit_message(state, record, HUMAN, self.question)
            pending: list[BaseChatMessage] = [TextMessage(source=HUMAN, content=self.question)]
            while True:
                for event, message in self._deliver_inbox():
                    pending.append(message)
                    yield event
                ending = self._ending()
                if ending is not None:
                    yield self._stop(*ending)
                    return
                for _, warning in budget_warnings(self.budget, self._tally(), state.warned):
                    yield record.commit(
                        NoticeEvent(**record.stamp(), code="budget_warning", message=warning)
                    )
                async for live in self._one_turn(pending):
                    yield live
                pending = []
        except InfraError as exc:
            with contextlib.suppress(InfraError):
                yield self._stop("error", str(exc))
            raise
        finally:
            try:
                await self._runtime.close_debate()
            finally:
                record.close()
                await record.flush()

    def _ending(self) -> tuple[StopCode, str] | None:
        """Why the debate stops at this boundary, if it does."""
        if self._state.fatal is not None:
            return "error", self._state.fatal
        tally = self._tally()
        tally.elapsed_s = self._control.elapsed()
        return stop_reason(
            self.budget, tally, accepted=self._state.accepted, user_stop=self._control.user_stop
        )

    def _tally(self) -> Tally:
        tally = self._state.tally
        tally.tokens = self._record.tokens
        return tally

    async def _one_turn(self, task: list[BaseChatMessage]) -> AsyncIterator[LiveEvent]:
        """One agent turn: the manager's pick, then the reply streamed and committed, or the
        failure recorded."""
        state, record = self._state, self._record
        state.new_turn()
        turn = record.turn + 1
        began = time.monotonic()
        replied = False
        span = observe.TRACER.start_span(
            "roundtable.turn",
            attributes={
                "roundtable.conversation_id": self.conversation_id,
                "roundtable.turn": turn,
            },
        )
        record.log("turn_start")
        await settle(self._runtime)
        idle = IdleEnd(self._team, self._runtime)  # the turn's end if no termination comes
        try:
            with self._control.reply(), call_scope(self.conversation_id, turn):
                try:
                    async with contextlib.aclosing(self._team.run_stream(task=task or None)) as run:
                        async for item in run:
                            idle.watch()
                            events, handled = self._on_item(item, turn, began)
                            replied = replied or handled
                            for event in events:
                                yield event
                except (InfraError, ConfigError):
                    raise
                except Exception as exc:  # an agent failed: record it, carry on without it
                    # The team stays usable after an agent's error (checked in tests): no
                    # reset, which would wipe every agent's memory of the debate.
                    for event in (*flush_decision(state, record), *flush_guards(state, record)):
                        yield event
                    for event in record_failure(state, record, *self._control.explain(exc)):
                        yield event
                    return
        finally:
            idle.close()
            span.set_attribute("roundtable.agent", state.last_selected or "")
            span.end()
        if not replied:
            failure = ModelError("the turn produced no reply")
            for event in record_failure(state, record, *self._control.explain(failure)):
                yield event

    def _on_item(
        self, item: BaseAgentEvent | BaseChatMessage | TaskResult, turn: int, began: float
    ) -> tuple[list[LiveEvent], bool]:
        """What one item of the team's stream commits, and whether it was the reply."""
        state, record = self._state, self._record
        events: list[LiveEvent] = list(flush_decision(state, record))
        if _ends_a_try(item):  # the guards' steps, between the tries they judged
            events.extend(flush_guards(state, record))
        if isinstance(item, ModelClientStreamingChunkEvent | TextMessage):
            seat = self._seats.get(item.source)
            report = seat.context.last_prune if seat is not None else None
            events.extend(flush_prune(state, record, item.source, report))
        if isinstance(item, ModelClientStreamingChunkEvent):
            events.append(TokenDelta(turn=turn, speaker=item.source, text=item.content))
        elif isinstance(item, TextMessage) and item.source in self.participants:
            participant = self.participants[item.source]
            if item.content.strip():
                latency = time.monotonic() - began
                cut = self._seats[item.source].client.last_finish == "length"
                events.append(commit_reply(state, record, participant, item, latency, cut))
            else:
                late = self._control.late if self._control.deadline_hit else None
                events.extend(empty_reply(state, record, participant, late))
            return events, True
        return events, False

    def _stop(self, code: StopCode, reason: str) -> StopEvent:
        return self._record.stop(code, reason, turns=self._state.tally.agent_turns)

    def _deliver_inbox(self) -> list[tuple[Event, BaseChatMessage]]:
        delivered: list[tuple[Event, BaseChatMessage]] = []
        for item in self._control.take():
            if item.text:
                event = commit_message(self._state, self._record, HUMAN, item.text)
                delivered.append((event, TextMessage(source=HUMAN, content=item.text)))
            if item.ask is not None:
                self._state.floor.requested = item.ask
        return delivered

    # -- selection --------------------------------------------------------------------------

    async def _select(self, _thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
        """AutoGen's ``selector_func``: our strategy, with the decision kept for the transcript."""
        floor, tally = self._state.floor, self._tally()
        floor.max_turns = self.budget.max_turns
        floor.turns_left = self.budget.max_turns - tally.agent_turns
        floor.tokens_left_ratio = 1 - tally.tokens / self.budget.max_tokens
        began = time.monotonic()
        decision = await choose(
            floor,
            self._manager,
            self._pick_history(self._state.committed()),
            timeout_s=self.budget.turn_deadline_s / 2,
            instructions_last=self._pick_history.shared_first,
        )
        self._state.pick_seconds = time.monotonic() - began
        self._state.decision = decision
        floor.requested = None
        await remind(
            self._recall,
            self.question,
            decision.speaker,
            self._seats[decision.speaker],
            self._state,
            self._record,
        )
        self._record.log("model_call_start", agent=decision.speaker)
        return decision.speaker


def _ends_a_try(item: BaseAgentEvent | BaseChatMessage | TaskResult) -> bool:
    """The reply (its last try ended) or the mark streamed before a retry."""
    if isinstance(item, ModelClientStreamingChunkEvent):
        return item.content == RETRY_MARK
    return isinstance(item, TextMessage)
