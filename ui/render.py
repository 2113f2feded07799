# mypy: disallow-untyped-calls=False
# (Chainlit ships py.typed, but Message.send, Step.send, user_session.get ... are unannotated.)
"""Run events as Chainlit messages and steps: one renderer for live runs and replays.

Each agent reply is its own ``cl.Message``, sent empty-but-named before the first token (a
message streamed before ``send()`` is saved with no time and sorts first on resume), then
streamed, then updated with the committed text. The agent's name is in the text (Chainlit shows
the author only as an avatar tooltip). The manager's choice, errors, memory look-ups and
prunings are small collapsed steps. A status message, always the last thing in the chat, says
where the debate is and carries the Stop button; at the end it becomes the stop reason with the
export buttons. Step names use only letters, digits, spaces, dots and dashes: the browser
asks ``/avatars/<step name>`` and Chainlit answers 400 to anything else.

A pipeline's or panel's plan, branches and comparison are steps drawn by ``plan_view``. A
panel's branches answer concurrently, but each answer arrives as its own committed message
(the panel streams no tokens for branches), so each is its own ``cl.Message``, never mixed
with another; the message is labelled with the branch it answers, at once when its role has
one branch running, else when that branch's end names the message (``message_seq``).

Live, the person's own messages are already on screen (they typed them), so human turns are
not drawn again; in a replay they are. Owns no debate logic: it only draws events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import chainlit as cl

from roundtable.conversations import Budget
from roundtable.transcripts import (
    HUMAN,
    AggregateEvent,
    Answer,
    BranchEvent,
    ErrorEvent,
    GuardEvent,
    Header,
    LedgerRow,
    LiveEvent,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
    Mode,
    PlanEvent,
    PruneEvent,
    QualityEvent,
    QualityReport,
    SelectionEvent,
    StopEvent,
    TokenDelta,
    quality_lines,
)
from roundtable.ui.plan_view import PlanView

STOP_ACTION = "stop_debate"
EXPORT_ACTION = "export_transcript"


@dataclass
class Progress:
    """Turns and tokens spent in this run, for the status line."""

    max_turns: int
    max_tokens: int
    turns: int = 0
    tokens: int = 0
    capped: bool = True
    """Turns count against ``max_turns`` (a debate); a plan fixes them otherwise."""

    def add(self, event: LiveEvent) -> None:
        if isinstance(event, MessageEvent) and event.speaker != HUMAN:
            self.turns += 1
            self.tokens += event.usage.total
        elif isinstance(event, SelectionEvent | PlanEvent | AggregateEvent):
            self.tokens += event.usage.total

    def line(self) -> str:
        tokens = f"{self.tokens:,} of {self.max_tokens:,} tokens"
        if not self.capped:
            return f"{self.turns} {'reply' if self.turns == 1 else 'replies'} · {tokens}"
        return f"Turn {self.turns} of {self.max_turns} · {tokens}"


CAP_MARK = " *… (cut at its token cap)*"
"""After a reply that reached its ``max_tokens`` mid-thought."""


def speaker_heading(speaker: str, turn: int, branch: str | None = None) -> str:
    """The first line of an agent's message: its name in bold, its turn, and the branch of a
    plan it answers."""
    where = f" · {branch}" if branch else ""
    return f"**{speaker.capitalize()}** · turn {turn}{where}\n\n"


def selection_text(event: SelectionEvent) -> tuple[str, str]:
    """The step's name and body for a manager decision."""
    name = f"Manager picks {event.speaker} by {event.method}"
    body = f"{event.reason}\n\nCandidates: {', '.join(event.candidates)}"
    return name, body


def stop_text(event: StopEvent, progress: Progress | None, mode: Mode = "debate") -> str:
    spent = f"\n\n{progress.line()}" if progress is not None else ""
    ledger = f"\n\n{ledger_table(event.ledger)}" if event.ledger else ""
    ended = "finished" if event.code in ("completed", "partial") else "stopped"
    return f"**{mode.capitalize()} {ended}** ({event.code}): {event.reason}{spent}{ledger}"


def quality_text(report: QualityReport | None) -> str:
    """The run's quality report as a compact list under the stop line (none: nothing)."""
    if report is None:
        return ""
    return "\n\n**Quality**\n" + "".join(f"\n- {line}" for line in quality_lines(report))


def ledger_table(rows: Sequence[LedgerRow]) -> str:
    """The cost ledger as a small Markdown table: one row per speaker (the manager's own picks
    included), a total when there are several, and dollars only when an endpoint is priced."""
    priced = any(row.cost_usd is not None for row in rows)
    lines = [
        "| Cost ledger | calls | tokens in + out | seconds |" + (" USD |" if priced else ""),
        "|---|--:|--:|--:|" + ("--:|" if priced else ""),
    ]

    def line(
        name: str, calls: int, prompt: int, completion: int, seconds: float, cached: int
    ) -> str:
        reused = f" ({cached:,} cached)" if cached else ""
        return f"| {name} | {calls} | {prompt:,}{reused} + {completion:,} | {seconds:.1f} |"

    for row in rows:
        cost = "" if not priced else f" {_dollars(row.cost_usd)} |"
        lines.append(
            line(
                row.speaker,
                row.calls,
                row.prompt_tokens,
                row.completion_tokens,
                row.seconds,
                row.cached_tokens,
            )
            + cost
        )
    if len(rows) > 1:
        known = [row.cost_usd for row in rows if row.cost_usd is not None]
        cost = "" if not priced else f" {_dollars(sum(known))} |"
        total = line(
            "total",
            sum(row.calls for row in rows),
            sum(row.prompt_tokens for row in rows),
            sum(row.completion_tokens for row in rows),
            sum(row.seconds for row in rows),
            sum(row.cached_tokens for row in rows),
        )
        lines.append(total + cost)
    return "\n".join(lines)


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


@dataclass
class ChainlitRenderer:
    """Draws one run (or one replay) into the current Chainlit session."""

    live: bool
    budget: Budget | None = None
    announce: bool = True
    """Show the header (question, roles); off when continuing a conversation already shown."""
    skip_through: int | None = None
    """A fork re-sends the parent's turns up to here; they are already on screen."""
    progress: Progress | None = None
    mode: Mode = "debate"
    """The run's mode; a replay learns it from the transcript's plan."""
    work: PlanView = field(default_factory=PlanView)
    _streams: dict[tuple[int, str], cl.Message] = field(default_factory=dict)
    _unlabelled: dict[int, tuple[cl.Message, MessageEvent]] = field(default_factory=dict)
    """Branch answers drawn before it was known which branch they answer, by seq."""
    _status: cl.Message | None = None
    _notes: dict[str, MemoryHit] = field(default_factory=dict)
    """Every passage recalled so far, by id: a reply's citations point into it."""
    _quality: QualityReport | None = None
    """The run's quality report, shown after its stop line."""
    _answer: Answer = field(default_factory=lambda: Answer(None))
    """The run's answer so far: shown first when the run stops."""

    def __post_init__(self) -> None:
        if self.budget is not None and self.progress is None:
            self.progress = Progress(
                self.budget.max_turns, self.budget.max_tokens, capped=self.mode == "debate"
            )

    async def show(self, event: LiveEvent) -> None:
        """Draw one event."""
        if isinstance(event, Header):
            self._answer = Answer(event)
        elif not isinstance(event, TokenDelta):
            self._answer.see(event)
        turn = getattr(event, "turn", None)
        if (
            self.skip_through is not None
            and not isinstance(event, Header | StopEvent)
            and isinstance(turn, int)
            and turn <= self.skip_through
        ):
            return
        if self.progress is not None:
            self.progress.add(event)
        if isinstance(event, TokenDelta):
            await self._token(event)
        elif isinstance(event, MessageEvent):
            await self._message(event)
        elif isinstance(event, Header):
            await self._header(event)
            if self.live:
                await self._show_status()
        elif isinstance(event, SelectionEvent):
            await self._clear_status()
            name, body = selection_text(event)
            await self._step(name, body, kind="tool")
        elif isinstance(event, ErrorEvent):
            await self._error(event)
        elif isinstance(event, MemoryEvent):
            await self._memory(event)
        elif isinstance(event, PruneEvent):
            await self._prune(event)
        elif isinstance(event, GuardEvent):
            body = f"{event.speaker}: {event.detail}"
            await self._step(f"Guard: {event.rule} ({event.action})", body, kind="tool")
        elif isinstance(event, PlanEvent | BranchEvent | AggregateEvent):
            await self._work(event)
        elif isinstance(event, QualityEvent):
            self._quality = event.report
        elif isinstance(event, StopEvent):
            await self._stop(event)

    async def note(self, text: str) -> None:
        """A line from Roundtable itself (not an agent)."""
        await cl.Message(content=text, author="Roundtable").send()

    async def failure(self, text: str) -> None:
        """The run could not go on (a configuration or infrastructure fault)."""
        await self._end_streams(" *(cut off)*")
        await self._clear_status()
        await cl.ErrorMessage(content=text, author="Roundtable").send()

    # -- events -------------------------------------------------------------------------------

    async def _header(self, header: Header) -> None:
        if not self.announce:
            return
        roles = ", ".join(role.name for role in header.roles)
        where = "Replaying" if not self.live else self.mode.capitalize()
        limit = f"Up to {header.max_turns} turns · " if self.mode == "debate" else ""
        parent = (
            f"\n\nForked from {header.parent.conversation_id} at turn {header.parent.turn}."
            if header.parent is not None
            else ""
        )
        body = (
            f"Question: {header.question}\n\nRoles: {roles}\n\n"
            f"{limit}conversation {header.conversation_id}{parent}"
        )
        await self._step(f"{where} {header.conversation_id}", body, kind="run")

    async def _token(self, event: TokenDelta) -> None:
        key = (event.turn, event.speaker)
        message = self._streams.get(key)
        if message is None:
            await self._clear_status()
            branch = self.work.branch_of(event.speaker)
            message = cl.Message(
                content=speaker_heading(event.speaker, event.turn, branch), author=event.speaker
            )
            await message.send()  # before streaming: see the module docstring
            self._streams[key] = message
        await message.stream_token(event.text)

    async def _message(self, event: MessageEvent) -> None:
        if event.speaker == HUMAN:
            if not self.live:
                await cl.Message(content=event.content, author="You", type="user_message").send()
            return
        branch = self.work.branch_of(event.speaker)
        content = _message_text(event, branch)
        sources = source_elements(event, self._notes)
        message = self._streams.pop((event.turn, event.speaker), None)
        if message is None:
            await self._clear_status()
            message = cl.Message(content=content, author=event.speaker, elements=sources)
            await message.send()
        else:
            message.content = content
            message.elements = cast(list[Any], sources)
            await message.update()
        if branch is None and self.work.busy(event.speaker):
            self._unlabelled[event.seq] = (message, event)
        if self.live:
            await self._show_status()

    async def _work(self, event: PlanEvent | BranchEvent | AggregateEvent) -> None:
        """A plan (its mode is now the run's), a branch starting or ending, the comparison."""
        if isinstance(event, PlanEvent):
            await self._clear_status()
            self.mode = event.mode if event.accepted else (event.fallback or self.mode)
            await self.work.show_plan(event)
        elif isinstance(event, BranchEvent):
            await self.work.show_branch(event)
            drawn = self._unlabelled.pop(event.message_seq or 0, None)
            if drawn is not None:  # now we know which branch that message answered
                message, answer = drawn
                message.content = _message_text(answer, event.branch)
                await message.update()
        else:
            await self._clear_status()
            await self.work.show_aggregate(event)
        if self.live and not isinstance(event, BranchEvent):
            await self._show_status()

    async def _error(self, event: ErrorEvent) -> None:
        await self._end_streams(" *(failed)*")
        who = f" in {event.speaker}" if event.speaker else ""
        step = cl.Step(name=f"Error {event.family}{who}", type="tool", show_input=False)
        step.is_error = True
        step.output = event.message
        await step.send()

    async def _memory(self, event: MemoryEvent) -> None:
        self._notes.update((hit.id, hit) for hit in event.hits)
        hits = "\n\n".join(
            f"[{hit.n or i}] {hit.score:.2f} · {hit.source}: {hit.text[:300]}"
            for i, hit in enumerate(event.hits, start=1)
        )
        body = f"Query: {event.query}\n\n{hits or 'no passages'}"
        await self._step(f"Memory for {event.speaker} {len(event.hits)} hits", body, "retrieval")

    async def _prune(self, event: PruneEvent) -> None:
        body = (
            f"Dropped {event.dropped} turn(s), kept {event.kept}: "
            f"{event.tokens_before:,} -> {event.tokens_after:,} tokens (budget {event.budget:,})"
        )
        await self._step(f"Pruned context for {event.speaker}", body, kind="tool")

    async def _stop(self, event: StopEvent) -> None:
        await self._end_streams(" *(cut short)*")
        await self._clear_status()
        actions = [
            cl.Action(name=EXPORT_ACTION, payload={"fmt": "md"}, label="Download Markdown"),
            cl.Action(name=EXPORT_ACTION, payload={"fmt": "json"}, label="Download JSON"),
        ]
        progress = self.progress if self.live else None
        answer = self._answer.message
        if answer is not None:  # the answer first: the ledger and the rest under it
            body = f"### Answer\n\n{answer.content}\n\n*{self._answer.byline()}*"
            await cl.Message(content=body, author="Roundtable").send()
        text = stop_text(event, progress, self.mode) + quality_text(self._quality)
        self._quality = None
        await cl.Message(content=text, author="Roundtable", actions=actions).send()

    # -- helpers ------------------------------------------------------------------------------

    async def _step(self, name: str, body: str, kind: str) -> None:
        step = cl.Step(name=name, type=kind, show_input=False)  # type: ignore[arg-type]
        step.output = body
        await step.send()

    async def _show_status(self) -> None:
        if self.progress is None:
            return
        await self._clear_status()
        label = f"Stop the {self.mode}"
        stop = cl.Action(name=STOP_ACTION, payload={}, label=label, icon="square")
        self._status = cl.Message(
            content=f"*{self.progress.line()}* · type to step in",
            author="Roundtable",
            actions=[stop],
        )
        await self._status.send()

    async def _clear_status(self) -> None:
        status, self._status = self._status, None
        if status is not None:
            await status.remove()

    async def _end_streams(self, note: str) -> None:
        for message in self._streams.values():
            message.content += note
            await message.update()
        self._streams.clear()


def source_elements(event: MessageEvent, notes: dict[str, MemoryHit]) -> list[cl.Text]:
    """A side element per valid citation, named as cited (``[n]``): Chainlit turns each
    ``[n]`` of the reply into a link that opens the passage. Invalid ones get none."""
    elements: list[cl.Text] = []
    for citation in event.citations:
        hit = notes.get(citation.hit_id or "")
        if citation.valid and hit is not None:
            elements.append(
                cl.Text(name=f"[{citation.n}]", content=passage_text(hit), display="side")
            )
    return elements


def passage_text(hit: MemoryHit) -> str:
    """A passage as its side element shows it: where it is from, then its text."""
    place = [hit.source]
    if hit.heading:
        place.append(f"section {hit.heading}")
    if hit.line:
        place.append(f"line {hit.line}")
    return f"**{' · '.join(place)}**\n\n{hit.text}"


def _message_text(event: MessageEvent, branch: str | None) -> str:
    note = " *(cut short)*" if event.interrupted else (CAP_MARK if event.truncated else "")
    return speaker_heading(event.speaker, event.turn, branch) + event.content + note
