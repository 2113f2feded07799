"""How a budgeted prompt's messages read: the text a model is shown for each, and the layout.

Owns: ``SharedLayout`` (the shared-first layout's settings: the conversation first, alike for
every caller on a model, the caller's instructions last); a caller's own turn as every other
caller sees it; the speaker prefix (``"analyst: "``); the text a message renders to, which is
what a token counter is given; a message with its text replaced (a cut turn); and the note
that stands where turns were pruned. Kept apart from ``context`` so that module is about the
budget alone, and these rules of rendering are read in one place.

Does not own: counting or charging anything, what is kept or dropped, or where the memory
block and the instructions go (``context``); pruning itself (``pruning``).
"""

from __future__ import annotations

from dataclasses import dataclass

from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

MARKER_SOURCE = "manager"
MARKER = "({n} earlier turns were pruned from this prompt; they remain in shared memory.)"


@dataclass(frozen=True)
class SharedLayout:
    """Prompts laid out for one shared prefix per model (``prompt_layout = "shared_first"``).

    The conversation comes first, every turn rendered alike for every caller (the caller's own
    turns too), and the caller's instructions last, after the memory block. Every caller on
    the model prunes alike: each holds back the largest tail among them (``peers``: each
    caller's instructions and reply reserve) and, when memory may be recalled, the memory
    block's whole room, so the kept turns, and the prefix, are the same for all of them.
    """

    peers: tuple[tuple[str, int], ...] = ()
    """Every caller on this model: its instructions and its reply's ``max_tokens``."""
    memory: bool = False
    """Whether a memory block may come (its room is then held back on every call)."""


def as_seen_by_all(message: LLMMessage) -> LLMMessage:
    """A caller's own turn as the other callers have it: another speaker's turn."""
    if isinstance(message, AssistantMessage) and isinstance(message.content, str):
        return UserMessage(content=message.content, source=message.source)
    return message


def pruned_note(dropped: int) -> UserMessage:
    """The note that stands where ``dropped`` turns were left out."""
    return UserMessage(content=MARKER.format(n=dropped), source=MARKER_SOURCE)


def speaker_prefix(message: LLMMessage) -> str:
    """How a model is told who spoke: ``"analyst: "`` before another speaker's turn."""
    if isinstance(message, UserMessage) and message.source:
        return f"{message.source}: "
    return ""


def render(message: LLMMessage) -> tuple[str, int]:
    """The text a model reads for this message (speaker name included), and its image count."""
    if isinstance(message, SystemMessage):
        return message.content, 0
    if isinstance(message, UserMessage):
        parts = [message.content] if isinstance(message.content, str) else message.content
        texts = [part for part in parts if isinstance(part, str)]
        return speaker_prefix(message) + "\n".join(texts), len(parts) - len(texts)
    if isinstance(message, AssistantMessage):
        if isinstance(message.content, str):
            return message.content, 0
        return "\n".join(f"{call.name}({call.arguments})" for call in message.content), 0
    if isinstance(message, FunctionExecutionResultMessage):
        return "\n".join(result.content for result in message.content), 0
    raise TypeError(f"unknown message type {type(message).__name__}")


def with_text(message: LLMMessage, text: str) -> LLMMessage:
    """``message`` with ``text`` in place of its own (a cut turn keeps its kind and speaker)."""
    if isinstance(message, UserMessage):
        return UserMessage(content=text, source=message.source)
    if isinstance(message, AssistantMessage):
        return AssistantMessage(content=text, source=message.source)
    if isinstance(message, FunctionExecutionResultMessage) and message.content:
        first = message.content[0].model_copy(update={"content": text})
        return FunctionExecutionResultMessage(content=[first])
    return SystemMessage(content=text)
