"""The group-chat manager: one debate, run turn by turn as an async stream of events.

The debate is an AutoGen ``SelectorGroupChat`` whose ``selector_func`` is our strategy
(``selection.choose``). It runs one agent turn per ``run_stream`` call (``max_turns=1``), the
pattern AutoGen documents for a human in the loop: between two turns we deliver what the
person typed, check the budgets and decide whether to stop, so nothing ever cancels the team
mid-turn (cancelling corrupts its state). A reply is cut short softly through the shared
``stop_signal`` that every model client of the conversation watches; a model that does not
answer it (a stalled stream) is cut hard ``STOP_GRACE_S`` later (``cutoff``), which fails the
turn like any agent error, so a turn ends within its deadline plus a second.

Every committed record goes to the transcript (fsynced) before it is yielded, so the
terminal, the browser and the tests see exactly what a replay will show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from autogen_agentchat.base import ChatAgent, TaskResult
from autogen_agentchat.base import Team as AgentTeam
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
    SelectSpeakerEvent,
    TextMessage,
)
from autogen_agentchat.teams import SelectorGroupChat
from autogen_core.models import AssistantMessage, ChatCompletionClient, LLMMessage, UserMessage

from roundtable.agents import RoleCard, Team, build_agent, call_scope, parse_verdict
from roundtable.common.errors import ConfigError, InfraError, ModelError, RoundtableError
from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TiktokenCounter, TokenCounter
from roundtable.conversations import observe
from roundtable.conversations.budget import Budget, Tally, budget_warnings, lateness, stop_reason
from roundtable.conversations.context import (
    SMOLLM2_EXACT_MARGIN,
    BudgetedContext,
    Margin,
    PruneReport,
)
from roundtable.conversations.cutoff import STOP_GRACE_S, Cutoff, guard
from roundtable.conversations.ledger import MANAGER, Ledger, Price
from roundtable.conversations.pruning import prune
from roundtable.conversations.recall import Recall, as_event_hits, memory_block
from roundtable.conversations.selection import PICK_MAX_TOKENS, Decision, Floor, choose
from roundtable.transcripts.events import (
    HUMAN,
    BranchEvent,
    ErrorEvent,
    ErrorFamily,
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    MemoryEvent,
    MessageEvent,
    NoticeEvent,
    ParentRef,
    PruneEvent,
    RoleSummary,
    SelectionEvent,
    StopCode,
    StopEvent,
    TokenDelta,
    Usage,
    now,
)
from roundtable.transcripts.store import Transcript, TranscriptWriter

MAX_QUESTION_CHARS = 20_000
PICK_HISTORY = 6
PICK_CHARS = 400
EXACT_MARGIN = SMOLLM2_EXACT_MARGIN
"""Counting with the model's own tokenizer: hold back only what the chat template adds."""
ESTIMATE_MARGIN = Margin(ratio=3.0, per_message=6, fixed=64)
"""Counting with tiktoken for a model whose tokenizer we do not have: measured worst case
for SmolLM2 is 3.0 model tokens per cl100k token (digit runs); other open models fall
within it, and OpenAI models count exactly."""
PICK_OVERHEAD = 400
"""Tokens held back for the manager's own instructions, candidates and a safety margin."""


class _Stamp(TypedDict):
    seq: int
    at: datetime
    turn: int


_E = TypeVar("_E", bound=Event)


@dataclass(frozen=True)
class Participant:
    """A role in this debate: its card and the model client that speaks for it."""

    card: RoleCard
    client: ChatCompletionClient
    endpoint: str = "default"
    model: str = "SmolLM2-135M-Instruct"
    price: Price | None = None
    """Dollars per 1,000 tokens, when the endpoint's price is configured."""
    window: int = 4096
    """The endpoint's context window: every prompt to this role fits it."""
    counter: TokenCounter | None = None
    """The model's own token counter when known (exact pruning); else tiktoken and a margin."""


@dataclass(frozen=True)
class Interjection:
    """Something the person typed; delivered at the next turn boundary."""

    text: str
    ask: str | None = None
    """A role the person wants to answer next (``/ask critic ...``)."""


def new_conversation_id() -> str:
    """Sortable by time, unique enough for one person's data folder."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def describe_failure(exc: BaseException) -> tuple[ErrorFamily, str]:
    """The family and one-line message of a failed turn.

    AutoGen re-raises an agent's exception as ``RuntimeError("<Type>: <message>\\nTraceback...")``,
    so the original family is recovered from that first line.
    """
    if isinstance(exc, RoundtableError):
        return _FAMILIES.get(type(exc).__name__, "model"), str(exc)
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    error_type, _, message = first.partition(": ")
    for name, family in _FAMILIES.items():
        if error_type == name or error_type.endswith(name):
            return family, message or first
    return "model", first if message else f"{type(exc).__name__}: {first}"


_FAMILIES: dict[str, ErrorFamily] = {
    "ConfigError": "config",
    "InfraError": "infra",
    "ModelError": "model",
}


def check_question(question: str) -> str:
    """The question, stripped; an empty or oversized one is a clear ConfigError."""
    text = question.strip()
    if not text:
        raise ConfigError("the question is empty: ask something")
    if len(text) > MAX_QUESTION_CHARS:
        raise ConfigError(
            f"the question is {len(text)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    return text


class Debate:
    """One conversation between the person and the specialists."""

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
        counter: TokenCounter | None = None,
    ) -> None:
        if len(participants) < 2:
            names = ", ".join(p.card.name for p in participants) or "none"
            raise ConfigError(f"a debate needs at least two roles; got {names}")
        self.question = check_question(question)
        """The question, or (continuing or forking) the person's new message."""
        self._prior = prior
        self._fork_at = fork_at
        if fork_at is not None and prior is None:
            raise ConfigError("a fork needs the transcript it branches from")
        parent = (
            ParentRef(conversation_id=prior.header.conversation_id, turn=fork_at)
            if prior is not None and fork_at is not None
            else None
        )
        self.participants = {p.card.name: p for p in participants}
        self.manager_client = manager_client
        self.budget = budget or Budget()
        self.stop_signal = stop_signal
        self.conversation_id = conversation_id or new_conversation_id()
        if prior is not None and fork_at is None:  # continuing: same file, same header
            self.conversation_id = prior.header.conversation_id
            self.header = prior.header
            transcript_path = prior.path
        else:
            self.header = Header(
                conversation_id=self.conversation_id,
                created_at=now(),
                question=prior.header.question if prior is not None else self.question,
                roles=[
                    RoleSummary(
                        name=p.card.name,
                        description=p.card.description,
                        endpoint=p.endpoint,
                        model=p.model,
                        max_tokens=p.card.model.max_tokens,
                    )
                    for p in participants
                ],
                max_turns=self.budget.max_turns,
                context_window=context_window,
                parent=parent,
                team=team,
            )
        self._transcript_path = transcript_path
        self._writer: TranscriptWriter | None = None
        self._inbox: asyncio.Queue[Interjection] = asyncio.Queue()
        self._user_stop: str | None = None
        self._floor = Floor(
            roster=[p.card.name for p in participants],
            descriptions={p.card.name: p.card.description for p in participants},
            turns_left=self.budget.max_turns,
            opener=team.holder("opens"),
            reviewer=team.holder("gives_verdict"),
            answerer=team.holder("answers"),
        )
        self._tally = Tally()
        self._ledger = Ledger(
            prices={
                **{p.card.name: p.price for p in participants if p.price is not None},
                **({MANAGER: manager_price} if manager_price is not None else {}),
            }
        )
        self._warned: set[str] = set()
        self._pick_seconds = 0.0
        self._turn = -1
        """The turn of the latest committed message; the question is turn 0."""
        self._last_selected: str | None = None
        self._fatal: str | None = None
        self._deadline_hit = False
        self._cutoff = Cutoff()
        self._late = ""
        """Why the current turn's deadline passed, in the words of its error event."""
        self._messages: list[MessageEvent | None] = []
        """Every committed message of the conversation, in order (restored ones included).

        Message ``i`` here is message ``i`` in every agent's model context, which is how
        pruning reports map back to transcript messages."""
        self._recall = recall
        self._memory_events: list[MemoryEvent] = []
        self._pruned: dict[str, set[int]] = {p.card.name: set() for p in participants}
        """Seqs of messages pruned from each agent's prompt (they are recalled, not shown)."""
        self._decision: Decision | None = None
        self._accepted: str | None = None
        """Who accepted what, once the verdict-giver has accepted: the run then stops."""
        self._counter: TokenCounter = counter or TiktokenCounter()
        self._window = context_window
        self._contexts = {p.card.name: self._context_for(p) for p in participants}
        self._prune_seen: dict[str, PruneReport | None] = {}
        self._agents = [
            build_agent(
                p.card, guard(p.client, self._cutoff), model_context=self._contexts[p.card.name]
            )
            for p in participants
        ]
        self._manager = guard(manager_client, self._cutoff) if manager_client else None
        members: list[ChatAgent | AgentTeam] = list(self._agents)
        self._team = SelectorGroupChat(
            members,
            model_client=manager_client or participants[0].client,
            selector_func=self._select,
            max_turns=1,
            emit_team_events=True,
        )

    def _context_for(self, participant: Participant) -> BudgetedContext:
        """The role's model context: pruned to its window, with one memory block."""
        name = participant.card.name
        exact = participant.counter is not None
        return BudgetedContext(
            window=participant.window,
            reserve=participant.card.model.max_tokens,
            system_prompt=participant.card.instructions,
            counter=participant.counter or self._counter,
            margin=EXACT_MARGIN if exact else ESTIMATE_MARGIN,
            on_prune=lambda items: self._on_pruned(name, items),
        )

    def _on_pruned(self, speaker: str, items: list[tuple[int, LLMMessage]]) -> None:
        """Turns just dropped from a prompt go to shared memory, once each."""
        for index, message in items:
            if index >= len(self._messages):
                continue
            event = self._messages[index]
            if event is None:  # an empty reply the agents saw but the transcript does not keep
                continue
            if str(message.content) != event.content:  # contexts and transcript out of step
                self._log("prune_unmapped", level=logging.WARNING, agent=speaker, index=index)
                continue
            self._pruned[speaker].add(event.seq)
            if self._recall is not None:
                self._recall.remember_pruned(event)

    def _flush_prune(self, speaker: str) -> list[Event]:
        """The speaker's prompt was pruned for this turn: record it once, before its reply."""
        context = self._contexts.get(speaker)
        report = context.last_prune if context is not None else None
        if report is None or self._prune_seen.get(speaker) is report:
            return []
        self._prune_seen[speaker] = report
        self._log(
            "prune",
            agent=speaker,
            kept=report.kept,
            dropped=report.dropped,
            tokens_before=report.tokens_before,
            tokens_after=report.tokens_after,
            budget=report.budget,
        )
        return [
            self._commit(
                PruneEvent(
                    **self._stamp(turn=self._turn + 1),
                    speaker=speaker,
                    kept=report.kept,
                    dropped=report.dropped,
                    tokens_before=report.tokens_before,
                    tokens_after=report.tokens_after,
                    budget=report.budget,
                )
            )
        ]

    # -- what the person can do while the debate runs ---------------------------------------

    def interject(self, text: str, *, ask: str | None = None, cut_short: bool = True) -> None:
        """Queue a human turn; with ``cut_short`` the reply being generated ends softly now."""
        if ask is not None and ask not in self.participants:
            raise ConfigError(
                f"no role {ask!r} in this debate; roles: {', '.join(self.participants)}"
            )
        self._inbox.put_nowait(Interjection(text=text, ask=ask))
        if cut_short:  # soft only: a stalled reply still ends at the turn's deadline
            self.stop_signal.set()

    def request_stop(self, reason: str = "stopped by the person") -> None:
        """End the debate at the next turn boundary; the current reply ends softly now."""
        self._user_stop = reason
        self._stop_now()

    def _stop_now(self) -> None:
        """End the reply softly now; a model that does not answer it is cut after the grace."""
        self.stop_signal.set()
        self._cutoff.after_stop()

    @property
    def transcript_path(self) -> Path:
        return self._transcript_path

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[LiveEvent]:
        """Run to a stated stop, yielding the header, every committed event and token deltas."""
        started = time.monotonic()
        try:
            earlier = await self._open()
            yield self.header
            for event in earlier:
                yield event
            pending: list[BaseChatMessage] = []
            question = self._commit_message(HUMAN, self.question)
            pending.append(TextMessage(source=HUMAN, content=self.question))
            yield question
            while True:
                for event, message in self._deliver_inbox():
                    pending.append(message)
                    yield event
                self._tally.elapsed_s = time.monotonic() - started
                ending = stop_reason(
                    self.budget, self._tally, accepted=self._accepted, user_stop=self._user_stop
                )
                if self._fatal is not None:
                    ending = ("error", self._fatal)
                if ending is not None:
                    yield self._stop(*ending)
                    return
                for _, warning in budget_warnings(self.budget, self._tally, self._warned):
                    yield self._commit(
                        NoticeEvent(**self._stamp(), code="budget_warning", message=warning)
                    )
                async for live in self._one_turn(pending, started):
                    yield live
                pending = []
        except InfraError as exc:
            with contextlib.suppress(InfraError):
                yield self._stop("error", str(exc))
            raise
        finally:
            if self._writer is not None:
                self._writer.close()
            if self._recall is not None:
                await self._recall.flush()

    async def _one_turn(
        self, task: list[BaseChatMessage], started: float
    ) -> AsyncIterator[LiveEvent]:
        self.stop_signal.clear()
        self._cutoff.clear()
        if self._user_stop is not None:
            self._stop_now()
        self._decision = None
        self._last_selected = None
        turn = self._turn + 1
        loop = asyncio.get_running_loop()
        left = self.budget.wall_clock_s - (time.monotonic() - started)
        self._deadline_hit = False
        limit = max(0.0, min(self.budget.turn_deadline_s, left))
        deadline = loop.call_later(limit, self._time_up)
        self._late = lateness(self.budget, limit)
        self._cutoff.cut_after(
            limit + STOP_GRACE_S, f"{self._late}; cut {STOP_GRACE_S:g} s after it"
        )
        began = time.monotonic()
        committed = False
        span = observe.TRACER.start_span(
            "roundtable.turn",
            attributes={
                "roundtable.conversation_id": self.conversation_id,
                "roundtable.turn": turn,
            },
        )
        self._log("turn_start")
        try:
            with call_scope(self.conversation_id, turn):
                async with contextlib.aclosing(self._team.run_stream(task=task or None)) as stream:
                    async for item in stream:
                        for event in self._flush_decision():
                            yield event
                        if isinstance(item, ModelClientStreamingChunkEvent | TextMessage):
                            for event in self._flush_prune(item.source):
                                yield event
                        if isinstance(item, ModelClientStreamingChunkEvent):
                            yield TokenDelta(turn=turn, speaker=item.source, text=item.content)
                        elif isinstance(item, TextMessage) and item.source in self.participants:
                            if not item.content.strip():
                                for event in self._empty_reply(item.source):
                                    yield event
                                committed = True  # handled: not a missing reply
                                continue
                            yield self._commit_reply(item, time.monotonic() - began)
                            committed = True
                        elif isinstance(item, TaskResult | SelectSpeakerEvent | BaseAgentEvent):
                            continue
        except (InfraError, ConfigError):
            raise
        except Exception as exc:  # an agent failed: record it, carry on without it
            # The team stays usable after an agent's error (checked in tests): no reset, which
            # would wipe every agent's memory of the debate.
            for event in self._flush_decision():
                yield event
            yield self._record_failure(exc)
            return
        finally:
            deadline.cancel()
            self._cutoff.clear()
            span.set_attribute("roundtable.agent", self._last_selected or "")
            span.end()
        if not committed:
            yield self._record_failure(ModelError("the turn produced no reply"))

    def _stop(self, code: StopCode, reason: str) -> StopEvent:
        self._log("stop", code=code, reason=reason, turns=self._tally.agent_turns)
        return self._commit(
            StopEvent(**self._stamp(), code=code, reason=reason, ledger=self._ledger.rows())
        )

    @property
    def ledger(self) -> list[LedgerRow]:
        """What each speaker has cost so far in this run."""
        return self._ledger.rows()

    async def _open(self) -> list[Event]:
        """Open the transcript; when continuing or forking, restore the debate so far.

        Agents get the earlier turns in their model context (their own as assistant turns),
        so a resumed or forked debate carries on from the transcript alone: no saved team
        state, nothing that grows with the length of the conversation.
        """
        prior = self._prior
        if prior is None:
            self._writer = TranscriptWriter.create(self._transcript_path, self.header)
            return []
        if self._fork_at is None:
            self._writer = TranscriptWriter.reopen(prior)
            earlier = list(prior.events)
        else:
            self._writer = TranscriptWriter.create(self._transcript_path, self.header)
            earlier = self._copy_until(prior.events, self._fork_at)
        for event in earlier:
            if isinstance(event, MessageEvent):
                await self._restore(event)
        return earlier if self._fork_at is not None else []

    def _copy_until(self, events: Sequence[Event], turn: int) -> list[Event]:
        """Commit the events of turns up to ``turn`` (no stop) to a fork, renumbered; a
        branch's pointer to its answer follows the answer to its new number."""
        renumbered: dict[int, int] = {}
        copied: list[Event] = []
        for event in events:
            if event.turn > turn or isinstance(event, StopEvent):
                continue
            update: dict[str, Any] = {"seq": self._writer_next()}
            if isinstance(event, BranchEvent) and event.message_seq is not None:
                update["message_seq"] = renumbered.get(event.message_seq)
            renumbered[event.seq] = update["seq"]
            copied.append(self._commit(event.model_copy(update=update)))
        return copied

    def _writer_next(self) -> int:
        assert self._writer is not None
        return self._writer.next_seq()

    async def _restore(self, event: MessageEvent) -> None:
        self._turn = max(self._turn, event.turn)
        self._floor.speakers.append(event.speaker)
        self._floor.last_verdict = event.verdict
        self._messages.append(event)
        for agent in self._agents:
            if agent.name == event.speaker:
                turn: LLMMessage = AssistantMessage(content=event.content, source=event.speaker)
            else:
                turn = UserMessage(content=event.content, source=event.speaker)
            await agent.model_context.add_message(turn)

    def _time_up(self) -> None:
        """The turn's deadline (or the debate's wall clock) passed: end the reply softly."""
        self._deadline_hit = True
        self.stop_signal.set()

    def _empty_reply(self, speaker: str) -> list[Event]:
        """An empty reply is not committed; the agents saw it, so keep their places aligned."""
        self._messages.append(None)
        participant = self.participants[speaker]
        if self._deadline_hit:
            return [self._record_failure(ModelError(self._late))]
        if getattr(participant.client, "last_interrupted", False):
            return []  # the person stepped in before the first word: nothing to record
        return [self._record_failure(ModelError(f"{speaker} gave an empty reply"))]

    # -- selection --------------------------------------------------------------------------

    async def _select(self, _thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
        """AutoGen's ``selector_func``: our strategy, with the decision kept for the transcript."""
        self._floor.turns_left = self.budget.max_turns - self._tally.agent_turns
        self._floor.tokens_left_ratio = 1 - self._tally.tokens / self.budget.max_tokens
        began = time.monotonic()
        decision = await choose(
            self._floor,
            self._manager,
            self._pick_history(),
            timeout_s=self.budget.turn_deadline_s / 2,
        )
        self._pick_seconds = time.monotonic() - began
        self._decision = decision
        self._floor.requested = None
        await self._remind(decision.speaker)
        self._log("model_call_start", agent=decision.speaker)
        return decision.speaker

    def _committed(self) -> list[MessageEvent]:
        return [m for m in self._messages if m is not None]

    def _pick_history(self) -> list[LLMMessage]:
        """The latest turns for the manager's pick, pruned to its window by the same rule."""
        recent: list[LLMMessage] = [
            UserMessage(content=m.content[:PICK_CHARS], source=m.speaker)
            for m in self._committed()[-PICK_HISTORY:]
        ]
        if not recent:
            return recent
        counts = [self._counter(str(m.content)) + PER_MESSAGE_OVERHEAD for m in recent]
        room = self._window - PICK_MAX_TOKENS - PICK_OVERHEAD
        kept = prune(counts, budget=max(room, 0), pinned=(), floor=0)
        return [recent[i] for i in kept.kept]

    async def _remind(self, speaker: str) -> None:
        """Recall shared memory for the speaker: one block in its prompt, one memory event."""
        if self._recall is None or not self._recall.settings.enabled:
            return
        committed = self._committed()
        in_prompt = [m.seq for m in committed if m.seq not in self._pruned[speaker]]
        began = time.monotonic()
        query, hits = await self._recall.recall(
            self.question, committed, in_prompt, any_pruned=bool(self._pruned[speaker])
        )
        self._log(
            "memory_query",
            agent=speaker,
            hits=len(hits),
            top_score=round(hits[0].score, 3) if hits else None,
            ms=round((time.monotonic() - began) * 1000, 1),
        )
        agent = next(a for a in self._agents if a.name == speaker)
        set_block = getattr(agent.model_context, "set_memory_block", None)
        if callable(set_block):
            set_block(memory_block(hits))
        self._memory_events.append(
            MemoryEvent(
                **self._stamp(turn=self._turn + 1),
                speaker=speaker,
                query=query,
                hits=as_event_hits(hits),
            )
        )

    def _flush_decision(self) -> list[Event]:
        decision, self._decision = self._decision, None
        if decision is None:
            return []
        events: list[Event] = [
            self._commit(
                ErrorEvent(
                    **self._stamp(turn=self._turn + 1),
                    family="model",
                    message=f"manager pick refused: {failure}",
                    attempt=n,
                )
            )
            for n, failure in enumerate(decision.failures, start=1)
        ]
        self._tally.tokens += decision.usage.total
        if decision.method in ("model", "fallback") and decision.usage.total:
            calls = len(decision.failures) + (1 if decision.method == "model" else 0)
            self._ledger.charge(MANAGER, decision.usage, self._pick_seconds, calls=calls)
        events.append(
            self._commit(
                SelectionEvent(
                    **self._stamp(turn=self._turn + 1),
                    candidates=decision.candidates,
                    speaker=decision.speaker,
                    method=decision.method,
                    reason=decision.reason,
                    usage=decision.usage,
                )
            )
        )
        self._log(
            "selection",
            agent=decision.speaker,
            method=decision.method,
            reason=decision.reason,
            candidates=decision.candidates,
            refused=len(decision.failures),
        )
        memory, self._memory_events = self._memory_events, []
        for event in memory:  # stamped when recalled: re-stamp in commit order
            events.append(self._commit(event.model_copy(update=dict(self._stamp(event.turn)))))
        return events

    # -- committing -------------------------------------------------------------------------

    def _deliver_inbox(self) -> list[tuple[Event, BaseChatMessage]]:
        delivered: list[tuple[Event, BaseChatMessage]] = []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if item.text.strip():
                event = self._commit_message(HUMAN, item.text.strip())
                delivered.append((event, TextMessage(source=HUMAN, content=item.text.strip())))
            if item.ask is not None:
                self._floor.requested = item.ask
        return delivered

    def _commit_reply(self, message: TextMessage, latency: float) -> MessageEvent:
        speaker = message.source
        participant = self.participants[speaker]
        usage = Usage(
            prompt_tokens=message.models_usage.prompt_tokens if message.models_usage else 0,
            completion_tokens=message.models_usage.completion_tokens if message.models_usage else 0,
        )
        verdict = parse_verdict(message.content) if participant.card.gives_verdict else None
        interrupted = bool(getattr(participant.client, "last_interrupted", False))
        previous_agent = self._floor.last_agent
        self._log(
            "model_call_end",
            agent=speaker,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_s=round(latency, 3),
            interrupted=interrupted,
        )
        event = self._commit_message(
            speaker,
            message.content,
            usage=usage,
            latency=latency,
            verdict=verdict,
            interrupted=interrupted,
        )
        self._floor.last_verdict = verdict
        answerer = self._floor.answerer
        # Without an answerer in the team, the verdict-giver accepts whatever was said last.
        if verdict == "ACCEPT" and answerer in (None, previous_agent):
            what = f"the {previous_agent}'s answer" if previous_agent else "the answer"
            self._accepted = f"the {speaker} accepted {what}"
        self._floor.excluded.clear()
        self._tally.agent_turns += 1
        self._tally.tokens += usage.total
        self._ledger.charge(speaker, usage, latency)
        self._tally.consecutive_errors = 0
        return event

    def _commit_message(
        self,
        speaker: str,
        content: str,
        *,
        usage: Usage | None = None,
        latency: float = 0.0,
        verdict: str | None = None,
        interrupted: bool = False,
    ) -> MessageEvent:
        if speaker == HUMAN and self._turn > 0:
            self._floor.last_verdict = None
        self._turn += 1
        event = MessageEvent(
            **self._stamp(),
            speaker=speaker,
            content=content,
            usage=usage or Usage(),
            latency_s=round(latency, 3),
            verdict=verdict,  # type: ignore[arg-type]
            interrupted=interrupted,
        )
        self._floor.speakers.append(speaker)
        self._messages.append(event)
        committed = self._commit(event)
        if self._recall is not None:
            self._recall.remember(committed)
        return committed

    def _record_failure(self, exc: BaseException) -> ErrorEvent:
        speaker = self._last_selected
        family, message = describe_failure(exc)
        self._log("turn_failed", level=logging.WARNING, agent=speaker, family=family, error=message)
        self._tally.consecutive_errors += 1
        if family == "config":  # a bad key or a missing model will not fix itself: stop now
            self._fatal = f"{speaker or 'a role'} cannot run: {message}"
        if speaker is not None:
            self._floor.excluded.add(speaker)
            if set(self._floor.excluded) >= set(self._floor.roster):
                self._floor.excluded.clear()
        return self._commit(
            ErrorEvent(
                **self._stamp(turn=self._turn + 1),
                family=family,
                speaker=speaker,
                message=message[:2000],
            )
        )

    def _commit(self, event: _E) -> _E:
        assert self._writer is not None
        if isinstance(event, SelectionEvent):
            self._last_selected = event.speaker
        self._writer.append(event)
        return event

    def _log(
        self, event: str, *, agent: str | None = None, level: int = logging.INFO, **fields: object
    ) -> None:
        observe.log(
            event,
            conversation_id=self.conversation_id,
            turn=self._turn + 1,
            agent=agent,
            level=level,
            **fields,
        )

    def _stamp(self, turn: int | None = None) -> _Stamp:
        assert self._writer is not None
        return {
            "seq": self._writer.next_seq(),
            "at": now(),
            "turn": self._turn if turn is None else turn,
        }
