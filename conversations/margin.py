"""Room a prompt holds back for a model whose tokenizer or chat template differs from ours.

Prompts are counted with one counter (tiktoken's cl100k in production); a ``Margin`` turns a
count into what the model may really read. ``SMOLLM2_MARGIN`` is measured against the
embedded model's own tokenizer in ``tests/test_context.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from roundtable.common.errors import ConfigError


@dataclass(frozen=True)
class Margin:
    """Room held back for a model whose tokenizer or chat template differs from the counter.

    A message of ``c`` counted tokens is charged ``ceil(c * ratio) + PER_MESSAGE_OVERHEAD +
    per_message``; the prompt as a whole ``fixed`` more.
    """

    ratio: float = 1.0
    per_message: int = 0
    fixed: int = 0

    def __post_init__(self) -> None:
        if self.ratio < 1.0 or self.per_message < 0 or self.fixed < 0:
            raise ConfigError(f"margin must not be negative or shrink counts: {self}")


SMOLLM2_MARGIN = Margin(ratio=3.0, per_message=2, fixed=32)
"""cl100k counts for SmolLM2-135M (measured in tests/test_context.py, model-token / cl100k):
English 1.00, code 1.09, CJK 1.65-1.75, Cyrillic 1.66, Thai 2.0, Korean 2.24, digit runs 3.00
(SmolLM2 makes one token per digit, cl100k one per three: 3.0 is the ceiling for numbers).
Its template puts 5 tokens around each message (+1 for boundary merges) and 3 before the
reply; 32 fixed also covers the 22-token default system prompt it adds when there is none.
Not covered: long runs of one symbol (``;`` x 64 is 4 cl100k tokens and 64 SmolLM2 tokens);
for a guarantee on any text, count with the model's own tokenizer and ``SMOLLM2_EXACT_MARGIN``.
"""

SMOLLM2_EXACT_MARGIN = Margin(ratio=1.0, per_message=2, fixed=32)
"""For counts from SmolLM2's own tokenizer (``LlamaEngine.count``): the template only."""

DEFAULT_MARGIN = SMOLLM2_MARGIN
"""The embedded model is the default model; a safe default for it is generous elsewhere."""


def as_margin(margin: Margin | int | None) -> Margin:
    """A margin from a setting: None is the default, an int only fixed room."""
    if margin is None:
        return DEFAULT_MARGIN
    if isinstance(margin, Margin):
        return margin
    if margin < 0:
        raise ConfigError(f"margin must not be negative, got {margin}")
    return Margin(fixed=margin)


EXACT_MARGIN = SMOLLM2_EXACT_MARGIN
"""Counting with the model's own tokenizer: hold back only what the chat template adds."""
ESTIMATE_MARGIN = Margin(ratio=3.0, per_message=6, fixed=64)
"""Counting with tiktoken for a model whose tokenizer we do not have: measured worst case
for SmolLM2 is 3.0 model tokens per cl100k token (digit runs); other open models fall
within it, and OpenAI models count exactly."""
