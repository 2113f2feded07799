"""The terminal view of a debate: the same renderer for a live run and a replay.

Streamed text is printed as it arrives under the speaker's name, which carries why it speaks
(the manager's reason in plain words, ``transcripts.why_line``); memory look-ups that found
something, prunings, errors, a pipeline's or panel's plan, branches and
comparison, and the stop reason are printed as short marked lines. Colour only when the
output is a terminal and ``NO_COLOR`` is unset or empty (https://no-color.org).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TextIO

from roundtable.transcripts.events import (
    HUMAN,
    AggregateEvent,
    BranchEvent,
    ErrorEvent,
    GuardEvent,
    Header,
    LedgerRow,
    LiveEvent,
    MemoryEvent,
    MessageEvent,
    NoticeEvent,
    PlanEvent,
    PlanStep,
    PruneEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
    TokenDelta,
)
from roundtable.transcripts.summary import Answer, quality_lines, why_line

_PALETTE = tuple(f"\033[{code}m" for code in (36, 33, 35, 32, 34, 96, 93, 95))
"""Speaker colours, given out in the order of the team's roles (a team has at most 8)."""
_HUMAN_COLOUR = "\033[1m"
_CAP = " [… cut at its token cap]"
_DIM, _RED, _RESET = "\033[2m", "\033[31m", "\033[0m"
_CONTROL = re.compile(r"\x1b\[[0-9;]{0,16}m|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""A colour code, or any other control character (escape sequences start with ESC or a C1)."""


class TerminalRenderer:
    """Prints live events to a text stream."""

    def __init__(self, out: TextIO | None = None, *, colour: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.colour = wants_colour(self.out) if colour is None else colour
        self._streaming: tuple[int, str] | None = None
        self._colours: dict[str, str] = {HUMAN: _HUMAN_COLOUR}
        self._quality: QualityEvent | None = None
        """The run's quality report, shown after its stop line and ledger."""
        self._answer = Answer(None)
        """The run's answer so far, shown under the stop line."""
        self._why: dict[str, SelectionEvent] = {}
        """The manager's latest decision for each speaker, until its speaker line shows it."""

    def __call__(self, event: LiveEvent) -> None:
        if isinstance(event, Header):
            self._answer = Answer(event)
        elif not isinstance(event, TokenDelta):
            self._answer.see(event)
        if isinstance(event, TokenDelta):
            self._token(event)
            return
        if isinstance(event, MessageEvent):
            self._message(event)
            return
        self._end_stream()
        if isinstance(event, Header):
            for index, role in enumerate(event.roles):
                self._colours[role.name] = _PALETTE[index % len(_PALETTE)]
            self._line(f"Question: {event.question}", _DIM)
            roles = ", ".join(r.name for r in event.roles)
            if event.team is not None:
                roles = f"{roles} (team {event.team.name})"
            self._line(
                f"Roles: {roles} | max {event.max_turns} turns | {event.conversation_id}", _DIM
            )
        elif isinstance(event, SelectionEvent):
            self._why[event.speaker] = event  # on the speaker's line, when it speaks
        elif isinstance(event, MemoryEvent) and event.hits:  # no hits: nothing to say
            sources = ", ".join(dict.fromkeys(hit.source for hit in event.hits))
            self._line(f"  {event.speaker} recalls {len(event.hits)} passage(s): {sources}", _DIM)
        elif isinstance(event, PruneEvent):
            self._line(
                f"  pruned {event.dropped} turn(s) for {event.speaker}: "
                f"{event.tokens_before} -> {event.tokens_after} tokens (budget {event.budget})",
                _DIM,
            )
        elif isinstance(event, GuardEvent):
            self._line(
                f"  guard: {event.speaker} {event.rule} ({event.action}): {event.detail}", _DIM
            )
        elif isinstance(event, ErrorEvent):
            who = f" {event.speaker}" if event.speaker else ""
            self._line(f"  ! {event.family} error{who}: {event.message}", _RED)
        elif isinstance(event, NoticeEvent):
            self._line(f"  note: {event.message}", _DIM)
        elif isinstance(event, PlanEvent | BranchEvent | AggregateEvent):
            self._work(event)
        elif isinstance(event, QualityEvent):
            self._quality = event
        elif isinstance(event, StopEvent):
            self._line(f"Stopped ({event.code}): {event.reason}", "\033[1m")
            answer = self._answer.message
            if answer is not None:
                self._line(f"{self._answer.title}, {self._answer.byline()}:", "\033[1m")
                self._write("".join(f"  {line}\n" for line in answer.content.splitlines()))
                if (review := self._answer.disputed) is not None:
                    self._line(f"Still disputed by the {review.speaker}:", "\033[1m")
                    self._write("".join(f"  {line}\n" for line in review.content.splitlines()))
            for row in event.ledger:
                self._line(ledger_line(row), _DIM)
            if self._quality is not None:
                for line in quality_lines(self._quality.report):
                    self._line(f"  quality: {line}", _DIM)
                self._quality = None

    def _work(self, event: PlanEvent | BranchEvent | AggregateEvent) -> None:
        """A pipeline's or panel's plan, branches and aggregation."""
        if isinstance(event, PlanEvent):
            if event.accepted:
                self._line(f"Plan ({event.mode}): {event.reason}", "\033[1m")
            else:
                self._line(f"  ! {event.reason}", _RED)
            for step in event.steps:
                self._line(plan_line(step), _DIM)
        elif isinstance(event, BranchEvent) and event.phase == "start":
            self._line(f"  > {event.branch} ({event.role}) started", _DIM)
        elif isinstance(event, BranchEvent):
            why = f": {event.error}" if event.error else ""
            colour = _DIM if event.status == "ok" else _RED
            took = "" if event.status == "skipped" else f" after {event.latency_s:.1f} s"
            self._line(f"  < {event.branch} ({event.role}) {event.status}{took}{why}", colour)
        elif isinstance(event, AggregateEvent):
            self._line(
                f"  compared: {len(event.answered)} answered, {len(event.missing)} missing, "
                f"{len(event.conflicts)} disagreement(s)"
                + ("" if event.compared else " (the comparison was unusable)"),
                _DIM,
            )
            for conflict in event.conflicts:
                self._line(f"    ! {conflict.topic} [{', '.join(conflict.branches)}]", _DIM)

    def _token(self, event: TokenDelta) -> None:
        key = (event.turn, event.speaker)
        if self._streaming != key:
            self._end_stream()
            self._write(self._speaker(event.speaker))
            self._streaming = key
            self._write(event.text.lstrip("\n"))  # a retry's mark starts a new line anyway
            return
        self._write(event.text)

    def _message(self, event: MessageEvent) -> None:
        mark = " [cut short]" if event.interrupted else (_CAP if event.truncated else "")
        if self._streaming == (event.turn, event.speaker):
            self._streaming = None
            self._write(mark + "\n")
            return
        self._end_stream()
        self._write(f"{self._speaker(event.speaker)}{event.content}{mark}\n")

    def _end_stream(self) -> None:
        if self._streaming is not None:
            self._write("\n")
            self._streaming = None

    def _speaker(self, speaker: str) -> str:
        """The start of a reply: the speaker's name, and on its own line why it speaks."""
        why = self._why.pop(speaker, None)
        if why is None:
            return self._name(speaker) + " "
        reason = f"— {why_line(why)}"
        return (
            f"{self._name(speaker)} {_DIM}{reason}{_RESET}\n"
            if self.colour
            else (f"{self._name(speaker)} {reason}\n")
        )

    def _name(self, speaker: str) -> str:
        label = f"[{speaker}]"
        colour = self._colours.get(speaker, "")
        return f"{colour}{label}{_RESET}" if self.colour and colour else label

    def _line(self, text: str, colour: str) -> None:
        self._write(f"{colour}{text}{_RESET}\n" if self.colour else f"{text}\n")

    def _write(self, text: str) -> None:
        self.out.write(visible(text, self.colour))
        self.out.flush()


def visible(text: str, colour: bool) -> str:
    """``text`` as the terminal may get it: transcript text is hostile (a replayed file, a model's
    reply), so no control character reaches the terminal but a colour code (only when colouring)
    and a line break (a carriage return becomes one: it could overwrite a line already shown);
    an escape sequence that could retitle the window, move the cursor or write the clipboard is
    dropped whole or left as harmless printable text."""

    def kept(match: re.Match[str]) -> str:
        code = match.group(0)
        if code == "\r":
            return "\n"
        return code if colour and code.startswith("\x1b[") else ""

    return _CONTROL.sub(kept, text.replace("\r\n", "\n"))


def wants_colour(out: TextIO) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set to anything (https://no-color.org)."""
    return out.isatty() and not os.environ.get("NO_COLOR")


def plan_line(step: PlanStep) -> str:
    """One step of a plan."""
    after = f", after {', '.join(step.depends_on)}" if step.depends_on else ""
    return f"  {step.id} {step.role} ({step.needs}{after}): {step.question}"


def ledger_line(row: LedgerRow) -> str:
    """One line of the cost ledger."""
    cost = f", ${row.cost_usd:.4f}" if row.cost_usd is not None else ""
    cached = f" ({row.cached_tokens} cached)" if row.cached_tokens else ""
    return (
        f"  cost {row.speaker}: {row.calls} call(s), {row.prompt_tokens}+{row.completion_tokens}"
        f" tokens{cached}, {row.seconds:.1f} s{cost}"
    )
