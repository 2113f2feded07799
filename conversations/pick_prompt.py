"""What the manager reads before a pick: the history and its own instructions.

Owns: ``PickHistory``, the turns a pick reads, and ``pick_prompt``, the manager's whole prompt
(its words are ``agents/prompts/manager.yaml``). In the role-first layout a pick reads the
latest few turns, each cut short, after its instructions. In the shared-first layout
(``prompt_layout = "shared_first"`` on the manager's endpoint) it reads the conversation from
the question on, whole and rendered as the roles read it, pruned in blocks so that each pick's
prompt begins as the previous one did, and its instructions come last: a model server then
reads only the turns added since the previous pick.

Does not own: the choice (``conversations.selection``), pruning itself (``pruning``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autogen_core.models import LLMMessage, SystemMessage, UserMessage

from roundtable.agents import manager_prompts
from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TokenCounter
from roundtable.conversations.pruning import prune
from roundtable.transcripts.events import HUMAN, MessageEvent

PICK_MAX_TOKENS = 60
PICK_HISTORY = 6
"""The latest turns the manager reads before a pick (role-first)."""
PICK_CHARS = 400
"""Each of them cut to this (role-first)."""
PICK_OVERHEAD = 400
"""Tokens held back for the manager's own instructions, candidates and a safety margin."""
BLOCK_SHARE = 0.25
"""Shared-first: when the history must drop turns, it frees this share of the window."""


@dataclass
class PickHistory:
    """The history each pick of one run reads (see the module docstring)."""

    counter: TokenCounter
    window: int
    shared_first: bool = False
    _start: int = 0
    """Shared-first: where the previous pick's kept run of turns began."""
    _counts: dict[int, int] = field(default_factory=dict)
    """Shared-first: each message's count by its seq, counted once."""

    def __call__(self, messages: Sequence[MessageEvent]) -> list[LLMMessage]:
        """The turns the next pick reads, oldest first."""
        if self.shared_first:
            return self._shared(messages)
        recent: list[LLMMessage] = [
            UserMessage(content=m.content[:PICK_CHARS], source=m.speaker)
            for m in messages[-PICK_HISTORY:]
        ]
        counts = [self.counter(str(m.content)) + PER_MESSAGE_OVERHEAD for m in recent]
        kept = prune(counts, budget=self._room, pinned=(), floor=0) if recent else None
        return [recent[i] for i in kept.kept] if kept else []

    @property
    def _room(self) -> int:
        return max(self.window - PICK_MAX_TOKENS - PICK_OVERHEAD, 0)

    def _shared(self, messages: Sequence[MessageEvent]) -> list[LLMMessage]:
        if not messages:
            return []
        counts = [self._count(m) for m in messages]
        human = _latest_human(messages)
        result = prune(
            counts,
            budget=self._room,
            pinned={0, human, len(messages) - 1},
            start=self._start,
            slack=min(int(self.window * BLOCK_SHARE), self._room // 2),
        )
        self._start = result.run_start if result.dropped_count else 0
        cut = dict(result.truncated)
        return [_turn(messages[i], cut.get(i)) for i in result.kept]

    def _count(self, message: MessageEvent) -> int:
        count = self._counts.get(message.seq)
        if count is None:
            text = f"{message.speaker}: {message.content}"
            count = self._counts[message.seq] = self.counter(text) + PER_MESSAGE_OVERHEAD
        return count


def _latest_human(messages: Sequence[MessageEvent]) -> int:
    """The index of the person's latest message (the question's, 0, when there is none)."""
    return next((i for i in range(len(messages) - 1, 0, -1) if messages[i].speaker == HUMAN), 0)


def _turn(message: MessageEvent, allowance: int | None) -> UserMessage:
    """A turn as the roles read it; a pinned one too long for the room is cut to about its
    allowance (four characters a token)."""
    content = message.content if allowance is None else message.content[: max(allowance, 1) * 4]
    return UserMessage(content=content, source=message.speaker)


def pick_prompt(
    descriptions: dict[str, str],
    candidates: Sequence[str],
    history: Sequence[LLMMessage],
    *,
    instructions_last: bool = False,
) -> list[LLMMessage]:
    """The manager's own prompt: the candidates' descriptions, the history, the ask; with
    ``instructions_last`` the history comes first."""
    prompts = manager_prompts().pick
    team = "\n".join(f"- {name}: {descriptions[name]}" for name in candidates)
    system = SystemMessage(content=prompts.fill("system", team=team))
    ask = UserMessage(
        content=prompts.fill("ask", candidates=", ".join(candidates)), source="manager"
    )
    if instructions_last:
        return [*history, system, ask]
    return [system, *history, ask]
