"""The run bar's words: the turn as the person counts it, tokens spent, what is happening now.

A turn, for the person, is a reply they see: the first reply of a run is turn 1, and a
person's own message, or a turn that failed before its first word, is no turn. The speaker's
heading (``headings``) and the status line number turns with the same ``TurnCounter``, so
"Critic · turn 4" sits beside "Turn 4 of 8". A turn is counted when its first word shows, so
while an agent speaks the bar already names its turn.

Owns the wording of the status line; where it is drawn, and when, is ``render``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roundtable.transcripts import (
    HUMAN,
    AggregateEvent,
    LiveEvent,
    MessageEvent,
    PlanEvent,
    SelectionEvent,
)

PLANNING = "planning…"
CHOOSING = "manager choosing…"


@dataclass
class TurnCounter:
    """Numbers agent turns in the order their replies begin (see the module docstring)."""

    count: int = 0
    _numbers: dict[tuple[int, str], int] = field(default_factory=dict)

    def number(self, turn: int, speaker: str) -> int:
        """The person's number for the reply of ``speaker`` at transcript turn ``turn``."""
        key = (turn, speaker)
        if key not in self._numbers:
            self.count += 1
            self._numbers[key] = self.count
        return self._numbers[key]


@dataclass
class Progress:
    """Turns and tokens spent in this run, and what it is doing now, for the status line."""

    max_turns: int
    max_tokens: int
    tokens: int = 0
    capped: bool = True
    """Turns count against ``max_turns`` (a debate); a plan fixes them otherwise."""
    counter: TurnCounter = field(default_factory=TurnCounter)
    now: str = ""
    """What is happening now, e.g. "analyst speaking…"; empty: nothing worth saying."""

    @property
    def turns(self) -> int:
        return self.counter.count

    def add(self, event: LiveEvent) -> None:
        """Count ``event``'s tokens and say what comes next."""
        if isinstance(event, MessageEvent) and event.speaker != HUMAN:
            self.counter.number(event.turn, event.speaker)
            self.tokens += event.usage.total
            self.now = CHOOSING if self.capped else ""
        elif isinstance(event, SelectionEvent):
            self.tokens += event.usage.total
            self.now = f"{event.speaker} speaking…"
        elif isinstance(event, PlanEvent | AggregateEvent):
            self.tokens += event.usage.total
            self.now = ""

    def line(self) -> str:
        tokens = f"{self.tokens:,} of {self.max_tokens:,} tokens"
        if not self.capped:
            replies = f"{self.turns} {'reply' if self.turns == 1 else 'replies'}"
            head = f"{replies} · {tokens}"
        else:
            head = f"Turn {self.turns} of {self.max_turns} · {tokens}"
        return f"{head} · {self.now}" if self.now else head
