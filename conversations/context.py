"""An agent's model context that always fits its model's window: ``BudgetedContext``.

Owns: what one agent's prompt contains besides its system prompt. Each message is counted
once, when it is added, and its count cached; each turn ``get_messages`` keeps the question
(the first human message), the latest human message and the newest message, then the newest
turns that fit (``pruning.prune``, in blocks: the kept run's beginning stays put until it must
move, then moves a quarter of the window at once); dropped turns become one note from the
manager, the one memory block goes last (it changes every call: anywhere else it would end
the prefix a model server can reuse), and the whole prompt fits:
``system + memory + kept + note + reserve + margin <= window``. Dropped turns are handed once
each to ``on_prune`` (the debate indexes them into shared memory); ``last_prune`` says what the
latest call left out.

Counts come from the counter the caller passes (tiktoken's cl100k in production). A model
whose tokenizer or chat template differs needs a ``Margin`` (``conversations.margin``).

Does not own: counting itself (``common.tokens``), what each piece is charged (``charges``),
how a message renders to text and the shared-first layout's rules (``prompt_layout``),
retrieval (``memory``), the transcript's ``prune`` event (the debate builds it from
``last_prune``). It is not declarative (``dump_component`` fails): it holds a counter and a
callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autogen_core.model_context import ChatCompletionContext
from autogen_core.model_context._chat_completion_context import ChatCompletionContextState
from autogen_core.models import LLMMessage, SystemMessage, UserMessage
from pydantic import Field

from roundtable.common.errors import ConfigError
from roundtable.common.tokens import TokenCounter
from roundtable.conversations.charges import Charges
from roundtable.conversations.margin import (
    DEFAULT_MARGIN,
    SMOLLM2_EXACT_MARGIN,
    SMOLLM2_MARGIN,
    Margin,
    as_margin,
)
from roundtable.conversations.prompt_layout import (
    MARKER,
    SharedLayout,
    as_seen_by_all,
    pruned_note,
    render,
    speaker_prefix,
    with_text,
)
from roundtable.conversations.pruning import PruneResult, prune, shrink
from roundtable.transcripts.events import HUMAN

__all__ = [
    "DEFAULT_MARGIN",
    "MARKER",
    "SMOLLM2_EXACT_MARGIN",
    "SMOLLM2_MARGIN",
    "BudgetedContext",
    "Margin",
    "PruneReport",
    "SharedLayout",
]

SLACK_SHARE = 0.25
"""When pruning must drop more, it frees this share of the window at once (``pruning``)."""
MEMORY_SHARE = 0.5
"""The memory block may take at most this share of the room left after the system prompt."""
SHARED_MEMORY_SHARE = 0.25
"""In the shared-first layout the memory block's room is held back on every call (so every
caller prunes alike): a smaller share, so the conversation keeps most of the window."""

PruneListener = Callable[[list[tuple[int, LLMMessage]]], None]


@dataclass(frozen=True)
class PruneReport:
    """What the latest ``get_messages`` left out, in tokens as charged (margin included)."""

    kept: int
    dropped: int
    tokens_before: int
    """The whole prompt had nothing been pruned: system, memory, every message."""
    tokens_after: int
    """The prompt sent: system, memory, kept messages, the note."""
    budget: int
    """``window - reserve - margin.fixed``: what the prompt may take."""
    truncated: tuple[int, ...]
    """Indices of always-kept messages that were cut short to fit."""
    result: PruneResult = field(repr=False, compare=False)

    @property
    def dropped_indices(self) -> tuple[int, ...]:
        """Indices (into the messages added so far) left out; built on demand, O(n)."""
        return self.result.dropped


class BudgetedContextState(ChatCompletionContextState):
    """The base state (``messages``) plus what keeps ``on_prune`` from repeating itself."""

    memory_block: str | None = None
    notified_upto: int = 0
    not_notified: list[int] = Field(default_factory=list)


class BudgetedContext(ChatCompletionContext):
    """An AutoGen model context that prunes to a token budget; see the module docstring."""

    last_prune: PruneReport | None
    """What the latest ``get_messages`` dropped or cut; None when it sent everything whole."""
    _costs: list[int]
    _total: int
    _question: int | None
    _latest_human: int | None
    _memory: SystemMessage | None
    _memory_cost: int
    _notified_upto: int
    """Every unpinned message below this index has been handed to ``on_prune``..."""
    _not_notified: set[int]
    """...except these, which were pinned when the mark passed them."""
    _start: int
    """Where the previous prompt's run of kept turns began (0: nothing dropped)."""

    def __init__(
        self,
        *,
        window: int,
        reserve: int,
        system_prompt: str,
        counter: TokenCounter,
        margin: Margin | int | None = None,
        on_prune: PruneListener | None = None,
        block_share: float = SLACK_SHARE,
        shared: SharedLayout | None = None,
    ) -> None:
        """``block_share``: the share of the window a prune frees at once (0: just enough);
        ``shared``: lay the prompt out for a shared prefix (``SharedLayout``), in which case
        the agent must not send ``system_prompt`` itself: the context sends it last."""
        super().__init__()
        self._block_share = block_share
        self._margin = as_margin(margin)
        self._on_prune = on_prune
        self._window = window
        self._reserve = reserve
        self._shared = shared
        self._charges = Charges(counter, self._margin)
        self._system = self._charges.prompt(system_prompt)
        self._instructions = (
            SystemMessage(content=system_prompt) if shared is not None and system_prompt else None
        )
        self._held = max(
            [self._system + reserve]
            + [self._charges.prompt(text) + most for text, most in (shared.peers if shared else ())]
        )
        self._room = window - self._margin.fixed - self._held
        """What memory, messages and the note may take together."""
        self._check_room()
        share = MEMORY_SHARE if shared is None else SHARED_MEMORY_SHARE
        self._memory_cap = min(int(self._room * share), self._room - self._least_room())
        self._memory_held = self._memory_cap if shared is not None and shared.memory else None
        """The memory room every shared-first call holds back, whatever its block takes."""
        self._reset()

    # -- AutoGen's ChatCompletionContext ---------------------------------------------------

    async def add_message(self, message: LLMMessage) -> None:
        """Append and count the message, once; in the shared-first layout the caller's own
        turn is kept as every other caller sees it (``"<speaker>: ..."``)."""
        if self._shared is not None:
            message = as_seen_by_all(message)
        index = len(self._messages)
        self._messages.append(message)
        cost = self._charges.message(message)
        self._costs.append(cost)
        self._total += cost
        if isinstance(message, UserMessage) and message.source == HUMAN:
            if self._question is None:
                self._question = index
            self._latest_human = index

    async def get_messages(self) -> list[LLMMessage]:
        """The kept messages in order with the note where turns were cut, then the memory
        block (and, shared-first, the instructions)."""
        memory: list[LLMMessage] = [] if self._memory is None else [self._memory]
        if self._instructions is not None:
            memory.append(self._instructions)  # the caller's own text goes last
        if not self._messages:
            self.last_prune = None
            return memory
        result = self._prune()
        self._start = result.run_start if result.dropped_count else 0
        self._report(result)
        return self._assemble(result) + memory

    async def clear(self) -> None:
        """Forget every message and the memory block."""
        self._messages = []
        self._reset()

    async def save_state(self) -> Mapping[str, Any]:
        return BudgetedContextState(
            messages=self._messages,
            memory_block=None if self._memory is None else str(self._memory.content),
            notified_upto=self._notified_upto,
            not_notified=sorted(self._not_notified),
        ).model_dump()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Load a state this class or the base class saved; every message is counted again."""
        loaded = BudgetedContextState.model_validate(state)
        await self.clear()
        for message in loaded.messages:
            await self.add_message(message)
        self.set_memory_block(loaded.memory_block)
        self._notified_upto = min(loaded.notified_upto, len(self._messages))
        self._not_notified = set(loaded.not_notified)

    # -- ours -------------------------------------------------------------------------------

    def set_memory_block(self, text: str | None) -> None:
        """The one memory block, sent last; replaces the previous one. None or "" removes it.

        A block longer than its share of the window is cut (its start is kept: hits come best
        first).
        """
        if not text:
            self._memory, self._memory_cost = None, 0
            return
        room = self._memory_cap - self._charges.per_message
        text = shrink(text, room, self._charges.text) if room > 0 else ""
        if not text:
            self._memory, self._memory_cost = None, 0
            return
        self._memory = SystemMessage(content=text)
        self._memory_cost = self._charges.text(text) + self._charges.per_message

    @property
    def budget(self) -> int:
        """What the whole prompt may take: ``window - reserve - margin.fixed``."""
        return self._window - self._reserve - self._margin.fixed

    def message_cost(self, index: int) -> int:
        """The cached charge for message ``index`` (counted tokens, margin and overhead)."""
        return self._costs[index]

    # -- room -------------------------------------------------------------------------------

    def _least_room(self) -> int:
        """Room for the note and the three always-kept messages cut to their least."""
        human = self._charges.floor(UserMessage(content="", source=HUMAN))
        return self._charges.marker(10**6) + 3 * human

    def _check_room(self) -> None:
        if self._reserve < 0:
            raise ConfigError(
                f"reserve (the reply's max_tokens) must not be negative: {self._reserve}"
            )
        need = self._least_room()
        if self._room < need:
            held = (
                f"the system prompt ({self._system}), the reply's max_tokens ({self._reserve})"
                if self._held == self._system + self._reserve
                else f"the largest system prompt and reply of the model's callers ({self._held})"
            )
            raise ConfigError(
                f"context window of {self._window} tokens is too small: {held} and the margin "
                f"({self._margin.fixed}) leave {self._room}; the question, the latest human "
                f"message, the newest turn and the pruning note need at least {need}"
            )

    # -- pruning ----------------------------------------------------------------------------

    def _reset(self) -> None:
        self._costs = []
        self._total = 0
        self._question = None
        self._latest_human = None
        self._memory = None
        self._memory_cost = 0
        self._notified_upto = 0
        self._not_notified = set()
        self._start = 0
        self.last_prune = None

    def _pins(self) -> set[int]:
        pins = {len(self._messages) - 1}
        pins.update(i for i in (self._question, self._latest_human) if i is not None)
        return pins

    def _prune(self) -> PruneResult:
        # The note is charged first as if it named the largest number with as many digits as
        # there are messages, then checked with the real number (a counter need not count
        # every number of a length alike).
        charged = self._charges.marker(10 ** len(str(len(self._messages))) - 1)
        result = self._prune_with(charged)
        if result.dropped_count and self._charges.marker(result.dropped_count) > charged:
            result = self._prune_with(self._charges.marker(result.dropped_count))
        return result

    def _prune_with(self, marker: int) -> PruneResult:
        pins = self._pins()
        try:
            return prune(
                self._costs,
                budget=self._room
                - (self._memory_cost if self._memory_held is None else self._memory_held),
                pinned=pins,
                marker=marker,
                floor=max(self._charges.floor(self._messages[i]) for i in pins),
                total=self._total,
                start=self._start if self._block_share > 0 else 0,
                slack=min(int(self._window * self._block_share), self._room // 2),
            )
        except ValueError as exc:  # a speaker name too long for a window this small
            raise ConfigError(f"context window of {self._window} tokens: {exc}") from exc

    def _assemble(self, result: PruneResult) -> list[LLMMessage]:
        """Kept messages in order (cut ones cut), the note at the first gap."""
        cut = dict(result.truncated)
        out: list[LLMMessage] = []
        expected, marked = 0, False
        for index in result.kept:
            if index != expected and not marked:
                out.append(pruned_note(result.dropped_count))
                marked = True
            message = self._messages[index]
            out.append(self._cut(message, cut[index]) if index in cut else message)
            expected = index + 1
        return out  # the newest message is always kept: no gap after the last one

    def _cut(self, message: LLMMessage, allowance: int) -> LLMMessage:
        """The message with its text cut so that it costs at most ``allowance``."""
        prefix = speaker_prefix(message)
        body = render(message)[0][len(prefix) :]
        short = shrink(
            body, allowance - self._charges.per_message, lambda t: self._charges.text(prefix + t)
        )
        return with_text(message, short)

    def _report(self, result: PruneResult) -> None:
        if not result.dropped_count and not result.truncated:
            self.last_prune = None
            return
        start = result.run_start
        self._notify(start, set(self._pins()))
        fixed = self._system + self._memory_cost
        marker = self._charges.marker(result.dropped_count) if result.dropped_count else 0
        self.last_prune = PruneReport(
            kept=len(result.kept),
            dropped=result.dropped_count,
            tokens_before=fixed + result.tokens_before,
            tokens_after=fixed + result.tokens_after - result.marker + marker,
            budget=self.budget,
            truncated=tuple(i for i, _ in result.truncated),
            result=result,
        )

    def _notify(self, start: int, pins: set[int]) -> None:
        """Hand messages dropped for the first time to ``on_prune``; amortised O(1) a turn.

        Dropped now = every unpinned index below ``start``. Indices below the mark were all
        handed over already, except the ones pinned at the time (``_not_notified``).
        """
        upto = self._notified_upto
        fresh = [i for i in range(upto, start) if i not in pins]
        self._not_notified.update(i for i in range(upto, start) if i in pins)
        back = sorted(i for i in self._not_notified if i < start and i not in pins)
        self._not_notified.difference_update(back)
        self._notified_upto = max(upto, start)
        dropped = back + fresh
        if dropped and self._on_prune is not None:
            self._on_prune([(i, self._messages[i]) for i in dropped])
