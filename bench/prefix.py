"""Prefix reuse on the embedded model: a 24-turn debate, prompt processing real, replies scripted.

Four roles speak in turn and the manager makes a model pick before every turn, as a debate
on the embedded model does when no rule decides. The prompts are the engine's own: each
role's ``BudgetedContext`` and the manager's ``PickHistory`` and ``pick_prompt``, in each
layout. Each call runs real llama.cpp prompt processing on the shared ``Llama`` and generates
one token (the replies themselves are scripted, so every layout sees the same conversation).
Compared in the same run:

- ``role-first, no states`` (before issue #12): each caller's instructions first, then the
  conversation, and no saved states: llama.cpp reuses only the prefix of the previous call,
  which another caller's prompt never shares.
- ``role-first + states``: the same prompts, with a saved llama.cpp state per caller
  (``agents.llama_states``): a caller evaluates what was added since its own last call.
- ``shared-first``: ``prompt_layout = "shared_first"``: the conversation first, alike for
  every caller, each caller's instructions last (states kept too).

Reported per layout at turns 2, 12 and 24: prompt tokens, tokens evaluated (prompt minus
reused), the tokens new since the model's previous call (the prompt minus its longest common
prefix with the previous prompt on the model, any caller's), and the turn's latency (the
manager's pick plus the speaker's call). Ratios are against turn 2 of the same layout, and
turn 24 against ``role-first, no states`` at turn 24.

Owns the measurement only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage

from bench.figures import Row, row
from roundtable.agents.llama_client import (
    EmbeddedModelSettings,
    LlamaChatClient,
    LlamaEngine,
    render_messages,
)
from roundtable.agents.llama_states import common_prefix
from roundtable.agents.usage import cached_of
from roundtable.conversations.context import BudgetedContext, SharedLayout
from roundtable.conversations.margin import SMOLLM2_EXACT_MARGIN
from roundtable.conversations.pick_prompt import PickHistory, pick_prompt
from roundtable.transcripts.events import HUMAN, MessageEvent, now

BENCH = "prefix"
TURNS = 24
QUICK_TURNS = 12
WINDOW = 4096
REPLY_TOKENS = 128
ROLES = ("scout", "weigher", "checker", "scribe")
"""Bench-only names: the engine never sees them."""
INSTRUCTIONS = {
    name: f"You are the {name} of a small team debating a question. " + task
    for name, task in zip(
        ROLES,
        (
            "Bring the facts, figures and examples it needs, in three sentences.",
            "Weigh the options and their trade-offs, in three sentences.",
            "Find the weakest point of the latest answer and say REVISE: <point> or ACCEPT.",
            "Write the answer for the person, with its conditions, in three sentences.",
        ),
        strict=True,
    )
}
QUESTION = "Should our city ban private cars from the old town centre?"
REPLY = (
    "{name} on turn {turn}: the old town gets {n} thousand visitors a day; buses carry "
    "{m} percent of them, delivery vans need morning windows, and residents with disabilities "
    "need permits. A trial on weekends would show the effect on shops before a full ban."
)


class EnginePrompts:
    """The prompts the debate engine builds in one layout, for the same conversation."""

    def __init__(self, engine: LlamaEngine, *, shared: bool) -> None:
        self.shared = shared
        peers = tuple((INSTRUCTIONS[r], REPLY_TOKENS) for r in ROLES)
        self.contexts = {
            r: BudgetedContext(
                window=WINDOW,
                reserve=REPLY_TOKENS,
                system_prompt=INSTRUCTIONS[r],
                counter=engine.count,
                margin=SMOLLM2_EXACT_MARGIN,
                shared=SharedLayout(peers=peers) if shared else None,
            )
            for r in ROLES
        }
        self.picks = PickHistory(engine.count, WINDOW, shared_first=shared)
        self.events = [MessageEvent(seq=1, at=now(), turn=0, speaker=HUMAN, content=QUESTION)]

    async def start(self) -> None:
        for ctx in self.contexts.values():
            await ctx.add_message(UserMessage(content=QUESTION, source=HUMAN))

    async def said(self, speaker: str, text: str) -> None:
        """A committed turn, added to every role's context as AutoGen adds it."""
        for role, ctx in self.contexts.items():
            own = role == speaker
            await ctx.add_message(
                AssistantMessage(content=text, source=speaker)
                if own
                else UserMessage(content=text, source=speaker)
            )
        seq = len(self.events) + 1
        self.events.append(
            MessageEvent(seq=seq, at=now(), turn=seq - 1, speaker=speaker, content=text)
        )

    async def role(self, role: str) -> list[LLMMessage]:
        """The role's prompt as its agent sends it (role-first: its system message first)."""
        body = await self.contexts[role].get_messages()
        return body if self.shared else [SystemMessage(content=INSTRUCTIONS[role]), *body]

    def manager(self) -> list[LLMMessage]:
        descriptions = {r: INSTRUCTIONS[r] for r in ROLES}
        history = self.picks(self.events)
        return pick_prompt(descriptions, ROLES, history, instructions_last=self.shared)


@dataclass
class Turn:
    turn: int
    prompt: int
    evaluated: int
    fresh: int
    """Prompt tokens not in the model's previous prompt (its longest common prefix)."""
    seconds: float


@dataclass
class Trace:
    layout: str
    turns: list[Turn] = field(default_factory=list)

    def at(self, turn: int) -> Turn:
        return next(t for t in self.turns if t.turn == turn)


async def _debate(name: str, *, shared: bool, cache_mb: int, turns: int) -> Trace:
    engine = LlamaEngine.load(EmbeddedModelSettings(n_ctx=WINDOW, state_cache_mb=cache_mb))
    engine.llama.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves it unannotated
    with engine.lock:
        engine.states.clear()  # each layout starts cold
    clients = {
        c: LlamaChatClient(
            engine, max_tokens=1, temperature=0.0, repeat_penalty=1.0, caller=f"{name}-{c}"
        )
        for c in (*ROLES, "manager")
    }
    prompts = EnginePrompts(engine, shared=shared)
    await prompts.start()
    trace = Trace(name)
    for turn in range(1, turns + 1):
        speaker = ROLES[(turn - 1) % len(ROLES)]
        started = time.perf_counter()
        pick = prompts.manager()
        await clients["manager"].create(pick)
        mine = await prompts.role(speaker)
        result = await clients[speaker].create(mine)
        seconds = time.perf_counter() - started
        tokens = engine.prompt_tokens(render_messages(mine))
        fresh = len(tokens) - common_prefix(tokens, engine.prompt_tokens(render_messages(pick)))
        prompt = result.usage.prompt_tokens
        trace.turns.append(Turn(turn, prompt, prompt - cached_of(result.usage), fresh, seconds))
        await prompts.said(speaker, REPLY.format(name=speaker, turn=turn, n=turn + 11, m=turn + 30))
    return trace


def run(quick: bool) -> list[Row]:
    turns = QUICK_TURNS if quick else TURNS
    marks = (2, turns // 2, turns)
    traces = [
        asyncio.run(_debate("role-first, no states", shared=False, cache_mb=0, turns=turns)),
        asyncio.run(_debate("role-first + states", shared=False, cache_mb=512, turns=turns)),
        asyncio.run(_debate("shared-first", shared=True, cache_mb=512, turns=turns)),
    ]
    before = traces[0].at(turns)
    rows: list[Row] = []
    for trace in traces:
        first = trace.at(2)
        for mark in marks:
            t = trace.at(mark)
            rows.append(
                row(
                    BENCH,
                    f"{trace.layout} turn {mark}",
                    t.prompt,
                    [t.seconds * 1e6],
                    unit="turn (pick + reply's prompt)",
                    ratio=t.seconds / first.seconds,
                    anchor=f"{trace.layout} turn 2",
                    target="turn 24 <= 1.5x turn 2" if mark == turns else "",
                    evaluated=t.evaluated,
                    new_since_models_last=t.fresh,
                    vs_before=round(before.seconds / t.seconds, 2) if mark == turns else None,
                    note="n = prompt tokens",
                )
            )
    return rows
