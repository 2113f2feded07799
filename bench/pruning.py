"""Per-turn cost of pruning an agent's prompt, as the conversation grows.

A turn is what an agent's context does each turn: add one message, then ``get_messages``.
``BudgetedContext`` counts each message once (when added) and prunes in O(kept), so its cost
should be flat from 100 to 10,000 messages. AutoGen's ``TokenLimitedChatCompletionContext``
recounts the whole list after every message it pops; it runs here at 100 and 300 messages
only (about 115 s a call at 1,000, see NOTES.md). Both count with the same offline tiktoken.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence

from autogen_core.model_context import ChatCompletionContext, TokenLimitedChatCompletionContext
from autogen_core.models import LLMMessage, UserMessage
from autogen_core.tools import Tool, ToolSchema

from roundtable.agents import ScriptedChatCompletionClient
from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TiktokenCounter
from roundtable.conversations.context import BudgetedContext

WINDOW = 4096
RESERVE = 256
SYSTEM = "You are the analyst in a small expert team. Weigh the facts; be brief."
SPEAKERS = ("researcher", "analyst", "critic", "writer")
COUNTER = TiktokenCounter()

Row = dict[str, object]


class OfflineCountingClient(ScriptedChatCompletionClient):
    """A model client whose ``count_tokens`` uses our offline tiktoken (OpenAI's downloads)."""

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return sum(PER_MESSAGE_OVERHEAD + COUNTER(_text(m)) for m in messages)


def _text(message: LLMMessage) -> str:
    return f"{getattr(message, 'source', '')}: {message.content}"


def message(n: int) -> LLMMessage:
    """Turn ``n`` of a debate: 60-100 tokens of plausible, varied text."""
    words = " ".join(f"point{n * 7 + k}" for k in range(n % 5))
    text = (
        f"On turn {n}, the evidence from city {n % 97} suggests traffic fell by {n % 40}% "
        f"after the ban, while shops reported mixed results and deliveries moved to early "
        f"mornings. Air quality improved measurably; noise complaints halved. {words} "
        "The main open question is access for older residents and people with disabilities."
    )
    return UserMessage(content=text, source=SPEAKERS[n % len(SPEAKERS)])


def question() -> LLMMessage:
    return UserMessage(content="Should our city ban private cars downtown?", source="human")


def ours() -> ChatCompletionContext:
    return BudgetedContext(window=WINDOW, reserve=RESERVE, system_prompt=SYSTEM, counter=COUNTER)


def autogens() -> ChatCompletionContext:
    limit = WINDOW - RESERVE - PER_MESSAGE_OVERHEAD - COUNTER(SYSTEM)
    return TokenLimitedChatCompletionContext(OfflineCountingClient(), token_limit=limit)


async def _per_turn_us(context: ChatCompletionContext, size: int, turns: int) -> list[float]:
    """Fill ``context`` to ``size`` messages (untimed), then time ``turns`` turns."""
    await context.add_message(question())
    for n in range(1, size):
        await context.add_message(message(n))
    timings: list[float] = []
    for n in range(size, size + turns):
        start = time.perf_counter_ns()
        await context.add_message(message(n))
        sent = await context.get_messages()
        timings.append((time.perf_counter_ns() - start) / 1000)
        assert len(sent) < size + turns  # it did prune
    return timings


def measure(
    name: str, factory: Callable[[], ChatCompletionContext], size: int, runs: int, turns: int
) -> Row:
    """Median per-turn cost over ``runs`` fresh contexts; min and max of the runs' medians."""
    medians = [
        statistics.median(asyncio.run(_per_turn_us(factory(), size, turns))) for _ in range(runs)
    ]
    return {
        "bench": "pruning",
        "case": name,
        "n": size,
        "median_us": round(statistics.median(medians), 1),
        "min_us": round(min(medians), 1),
        "max_us": round(max(medians), 1),
        "unit": "turn",
        "note": f"{runs} runs x {turns} turns; min-max of the runs' medians",
    }


def run(quick: bool) -> list[Row]:
    runs, turns = (3, 20) if quick else (7, 50)
    ours_rows = [measure("BudgetedContext", ours, n, runs, turns) for n in (100, 1_000, 10_000)]
    flat = _median(ours_rows[2]) / _median(ours_rows[0])
    slow = [(100, 1 if quick else 3, 2), (300, 1, 1 if quick else 2)]
    rows = ours_rows + [measure("TokenLimited (AutoGen)", autogens, n, r, t) for n, r, t in slow]
    rows.append(
        {
            "bench": "pruning",
            "case": "TokenLimited (AutoGen)",
            "n": 1_000,
            "note": "not run: about 115 s per call (NOTES.md)",
        }
    )
    rows.append(
        {
            "bench": "pruning",
            "case": "BudgetedContext flatness",
            "ratio": round(flat, 2),
            "note": "median per turn at 10,000 messages / at 100 (flat = 1.0)",
        }
    )
    return rows


def _median(row: Row) -> float:
    value = row["median_us"]
    assert isinstance(value, float)
    return value
