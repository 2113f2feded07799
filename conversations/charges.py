"""What each part of a budgeted prompt is charged, in tokens: ``Charges``.

Owns: turning a text or a message into the tokens it is charged (counted by the caller's
counter, times the margin's ratio, plus each message's overhead and the margin's share of it;
an image part at a flat rate), and the two charges a context asks for again and again, cached:
the least a kept message can be cut to (its speaker name) and the pruning note for a number of
dropped turns. Kept apart from ``context`` so that module is about what fits, not how much
each piece weighs.

Does not own: counting itself (``common.tokens``), the margin's values (``margin``), how a
message renders to text (``prompt_layout``), what is kept or dropped (``context``,
``pruning``).
"""

from __future__ import annotations

import math

from autogen_core.models import LLMMessage

from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TokenCounter
from roundtable.conversations.margin import Margin
from roundtable.conversations.prompt_layout import pruned_note, render, speaker_prefix
from roundtable.conversations.pruning import ELLIPSIS

IMAGE_TOKENS = 1_000
"""What an image part is counted as (no Roundtable model reads images)."""


class Charges:
    """One context's charges: its counter and margin, and the charges it has cached."""

    def __init__(self, counter: TokenCounter, margin: Margin) -> None:
        self._counter = counter
        self._margin = margin
        self._names: dict[str, int] = {}
        self._markers: dict[int, int] = {}

    @property
    def per_message(self) -> int:
        """What every message costs besides its text."""
        return PER_MESSAGE_OVERHEAD + self._margin.per_message

    def text(self, text: str) -> int:
        """A text's charge, without a message's overhead (nothing for no text)."""
        return math.ceil(self._counter(text) * self._margin.ratio) if text else 0

    def prompt(self, text: str) -> int:
        """A system prompt's charge (nothing for no prompt)."""
        return self.text(text) + self.per_message if text else 0

    def message(self, message: LLMMessage) -> int:
        """A message's charge as a model reads it: speaker name, text, images, overhead."""
        text, images = render(message)
        return self.text(text) + images * IMAGE_TOKENS + self.per_message

    def floor(self, message: LLMMessage) -> int:
        """The least a kept message can be cut to: its overhead and speaker name."""
        prefix = speaker_prefix(message)
        if prefix not in self._names:
            self._names[prefix] = self.text(prefix + ELLIPSIS) + self.per_message
        return self._names[prefix]

    def marker(self, dropped: int) -> int:
        """The note's cost, counted once per number (a turn usually brings one new number)."""
        cost = self._markers.get(dropped)
        if cost is None:
            cost = self._markers[dropped] = self.message(pruned_note(dropped))
        return cost
