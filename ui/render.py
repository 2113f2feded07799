# mypy: disallow-untyped-calls=False
# (Chainlit ships py.typed, but Message.send, Step.send, user_session.get ... are unannotated.)
"""Run events as Chainlit messages and steps: one renderer for live runs and replays.

Each agent reply is its own ``cl.Message``, sent empty-but-named before the first token (a
message streamed before ``send()`` is saved with no time and sorts first on resume), then
streamed, then updated with the committed text. The agent's name is in the text (Chainlit shows
the author only as an avatar tooltip). Its heading numbers the turn as the run bar does and
says why the agent speaks (``headings``); the manager's whole decision and what memory recalled
for it are collapsed steps inside the message (a look-up with no hits is not shown). Errors and
prunings are small collapsed steps. A status message, the run bar (``runbar``), stays under the
latest message for the whole run, while agents speak too: the turn, the tokens, what happens
now, and the Stop button. A timeline of who spoke when grows as turns commit
(``pictures_view``). At the end, the answer card and the stop line with the final timeline,
the costs picture and, for a fork or a forked conversation, the tree of its forks (``ending``). Step
names use only letters, digits, spaces, dots and dashes: the browser asks
``/avatars/<step name>`` and Chainlit answers 400 to anything else.

A pipeline's or panel's plan, branches and comparison are steps drawn by ``plan_view``. A
panel's branches answer concurrently, but each answer arrives as its own committed message
(the panel streams no tokens for branches), so each is its own ``cl.Message``, never mixed
with another; the message is labelled with the branch it answers, at once when its role has
one branch running, else when that branch's end names the message (``message_seq``).

Live, the person's own messages are already on screen (they typed them), so human turns are
not drawn again; in a replay they are. Owns no debate logic: it only draws events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
)
from roundtable.ui.ending import EXPORT_ACTION, send_ending
from roundtable.ui.headings import details, memory_note, speaker_heading
from roundtable.ui.pictures_view import PicturesView
from roundtable.ui.plan_view import PlanView
from roundtable.ui.runbar import CHOOSING, PLANNING, Progress, TurnCounter

STOP_ACTION = "stop_debate"
__all__ = ["CAP_MARK", "EXPORT_ACTION", "STOP_ACTION", "ChainlitRenderer"]


CAP_MARK = " *… (cut at its token cap)*"
"""After a reply that reached its ``max_tokens`` mid-thought."""


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
    _counter: TurnCounter = field(default_factory=TurnCounter)
    """Numbers the headings' turns (the run bar's own counter, live)."""
    _why: dict[str, SelectionEvent] = field(default_factory=dict)
    """The manager's latest decision for each speaker, until its message shows it."""
    _recalled: dict[str, MemoryEvent] = field(default_factory=dict)
    """What memory gave each speaker (with hits), until its message shows it."""
    _pictures: PicturesView = field(default_factory=PicturesView)
    """The timeline drawn as turns commit, and the pictures of the ending."""
    forks: Callable[[str], cl.Image | None] | None = None
    """The tree of forks of a conversation, by its id (``pictures_view.fork_picture`` for
    this session's user), shown at the end when there is one; None: never."""

    def __post_init__(self) -> None:
        if self.budget is not None and self.progress is None:
            self.progress = Progress(
                self.budget.max_turns, self.budget.max_tokens, capped=self.mode == "debate"
            )
        if self.progress is not None:
            self._counter = self.progress.counter

    async def show(self, event: LiveEvent) -> None:
        """Draw one event."""
        if isinstance(event, Header):
            self._answer = Answer(event)
        elif not isinstance(event, TokenDelta):
            self._answer.see(event)
        self._pictures.see(event)  # a fork's re-sent turns too: they are part of its timeline
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
            if self.progress is not None:
                self.progress.now = PLANNING if self.mode == "panel" else CHOOSING
            if self.live:
                await self._show_status()
        elif isinstance(event, SelectionEvent):
            self._why[event.speaker] = event
            if self.live:
                await self._show_status()
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
            number = self._counter.number(event.turn, event.speaker)
            why, recalled = self._why.get(event.speaker), self._recalled.get(event.speaker)
            heading = speaker_heading(event.speaker, number, branch, why)
            message = cl.Message(content=heading, author=event.speaker)
            await message.send()  # before streaming: see the module docstring
            self._streams[key] = message
            await self._details(message, why, recalled)
            if self.progress is not None:
                self.progress.now = f"{event.speaker} speaking…"
            if self.live:
                await self._show_status()
        await message.stream_token(event.text)

    async def _message(self, event: MessageEvent) -> None:
        if event.speaker == HUMAN:
            if not self.live:
                await cl.Message(content=event.content, author="You", type="user_message").send()
            return
        branch = self.work.branch_of(event.speaker)
        number = self._counter.number(event.turn, event.speaker)
        # each shown once: the next message of this speaker has its own
        why, recalled = self._why.pop(event.speaker, None), self._recalled.pop(event.speaker, None)
        content = _message_text(event, branch, number, why) + memory_note(recalled)
        sources = source_elements(event, self._notes)
        message = self._streams.pop((event.turn, event.speaker), None)
        if message is None:
            await self._clear_status()
            message = cl.Message(content=content, author=event.speaker, elements=sources)
            await message.send()
            await self._details(message, why, recalled)
        else:  # ``update`` sends no elements: the citations go on their own
            message.content = content
            kept: list[Any] = [*(message.elements or []), *sources]
            message.elements = kept
            await message.update()
            for element in sources:
                await element.send(for_id=message.id)
        if branch is None and self.work.busy(event.speaker):
            self._unlabelled[event.seq] = (message, event)
        await self._pictures.refresh()  # above the run bar, which stays last
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
                number = self._counter.number(answer.turn, answer.speaker)
                message.content = _message_text(answer, event.branch, number)
                await message.update()
        else:
            await self._clear_status()
            await self.work.show_aggregate(event)
        await self._pictures.refresh_plan()
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
        """Kept for the speaker's message, which shows it; no hits: nothing to show."""
        self._notes.update((hit.id, hit) for hit in event.hits)
        if event.hits:
            self._recalled[event.speaker] = event
        else:
            self._recalled.pop(event.speaker, None)

    async def _details(
        self, message: cl.Message, why: SelectionEvent | None, recalled: MemoryEvent | None
    ) -> None:
        """The decision and the memory look-up behind ``message``, collapsed inside it."""
        shown = details(why, recalled)
        if shown is not None:
            await self._step(*shown, kind="tool", parent=message.id)

    async def _prune(self, event: PruneEvent) -> None:
        body = (
            f"Dropped {event.dropped} turn(s), kept {event.kept}: "
            f"{event.tokens_before:,} -> {event.tokens_after:,} tokens (budget {event.budget:,})"
        )
        await self._step(f"Pruned context for {event.speaker}", body, kind="tool")

    async def _stop(self, event: StopEvent) -> None:
        await self._end_streams(" *(cut short)*")
        await self._clear_status()
        progress = self.progress if self.live else None
        if progress is not None:
            progress.now = ""
        pictures = self._pictures.ending(event.ledger)
        conversation = self._answer.conversation_id
        if self.forks is not None and conversation:
            tree = await asyncio.to_thread(self.forks, conversation)
            pictures += [tree] if tree is not None else []
        await send_ending(event, self._answer, progress, self.mode, self._quality, pictures)
        self._quality = None

    # -- helpers ------------------------------------------------------------------------------

    async def _step(self, name: str, body: str, kind: str, parent: str | None = None) -> None:
        step = cl.Step(
            name=name,
            type=kind,  # type: ignore[arg-type]
            show_input=False,
            parent_id=parent,
        )
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


def _message_text(
    event: MessageEvent,
    branch: str | None,
    number: int | None = None,
    why: SelectionEvent | None = None,
) -> str:
    """A committed reply: its heading (turn ``number`` as the run bar counts), text, marks."""
    note = " *(cut short)*" if event.interrupted else (CAP_MARK if event.truncated else "")
    heading = speaker_heading(event.speaker, number or event.turn, branch, why)
    return heading + event.content + note
