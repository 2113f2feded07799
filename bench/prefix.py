"""Prefix reuse on the embedded model: a 24-turn debate, prompt processing real, replies scripted.

Four roles speak in turn and the manager makes a model pick before every turn, as a debate
on the embedded model does when no rule decides. Each call runs real llama.cpp prompt
processing on the shared ``Llama`` and generates one token (the replies themselves are
scripted, so every layout sees the same conversation). Three ways of building prompts are
compared in the same run:

- ``role-first``: each caller's own instructions first, then the conversation (today's prompts),
  with no saved states: llama.cpp reuses only the prefix of the previous call, which another
  caller's prompt never shares.
- ``role-first+states``: the same prompts, with a saved llama.cpp state per caller
  (``agents.llama_states``): a caller evaluates only what was added since its own last call.
- ``shared-first``: the conversation first, each caller's instructions last (built here only,
  to measure the alternative): every call shares the previous call's prefix.

Reported per layout at turns 2, 12 and 24: prompt tokens, tokens evaluated (prompt minus
reused), the tokens added since the caller's previous call, and the turn's latency (the
manager's pick plus the speaker's call). Ratios are against turn 2 of the same layout, and
turn 24 against ``role-first`` at turn 24.

Owns the measurement only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from autogen_core.models import LLMMessage, SystemMessage, UserMessage

from bench.figures import Row, row
from roundtable.agents.llama_client import EmbeddedModelSettings, LlamaChatClient, LlamaEngine
from roundtable.agents.usage import cached_of

BENCH = "prefix"
TURNS = 24
QUICK_TURNS = 12
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
MANAGER = "You choose who speaks next in a team discussion. Answer with one name."
QUESTION = "Should our city ban private cars from the old town centre?"
REPLY = (
    "{name} on turn {turn}: the old town gets {n} thousand visitors a day; buses carry "
    "{m} percent of them, delivery vans need morning windows, and residents with disabilities "
    "need permits. A trial on weekends would show the effect on shops before a full ban."
)
Layout = Callable[[str, list[tuple[str, str]]], list[LLMMessage]]


def role_first(caller: str, turns: list[tuple[str, str]]) -> list[LLMMessage]:
    """Today's prompt: the caller's instructions, then the question and the turns."""
    system = MANAGER if caller == "manager" else INSTRUCTIONS[caller]
    return [SystemMessage(content=system), *_conversation(turns)]


def shared_first(caller: str, turns: list[tuple[str, str]]) -> list[LLMMessage]:
    """The alternative: the question and the turns, then the caller's instructions."""
    system = MANAGER if caller == "manager" else INSTRUCTIONS[caller]
    return [*_conversation(turns), SystemMessage(content=system)]


def _conversation(turns: list[tuple[str, str]]) -> list[LLMMessage]:
    return [UserMessage(content=QUESTION, source="human")] + [
        UserMessage(content=text, source=speaker) for speaker, text in turns
    ]


@dataclass
class Turn:
    turn: int
    prompt: int
    evaluated: int
    added: int
    """Prompt tokens added since this caller's previous prompt (its whole prompt the first
    time)."""
    seconds: float


@dataclass
class Trace:
    layout: str
    turns: list[Turn] = field(default_factory=list)

    def at(self, turn: int) -> Turn:
        return next(t for t in self.turns if t.turn == turn)


async def _debate(layout: Layout, cache_mb: int, turns: int, name: str) -> Trace:
    settings = EmbeddedModelSettings(n_ctx=4096, state_cache_mb=cache_mb)
    engine = LlamaEngine.load(settings)
    engine.llama.reset()
    with engine.lock:
        engine.states.clear()  # each layout starts cold
    callers = (*ROLES, "manager")
    clients = {
        c: LlamaChatClient(
            engine, max_tokens=1, temperature=0.0, repeat_penalty=1.0, caller=f"{name}-{c}"
        )
        for c in callers
    }
    last_prompt: dict[str, int] = {}
    said: list[tuple[str, str]] = []
    trace = Trace(name)
    for turn in range(1, turns + 1):
        speaker = ROLES[(turn - 1) % len(ROLES)]
        started = time.perf_counter()
        await clients["manager"].create(layout("manager", said))
        result = await clients[speaker].create(layout(speaker, said))
        seconds = time.perf_counter() - started
        prompt = result.usage.prompt_tokens
        evaluated = prompt - cached_of(result.usage)
        added = prompt - last_prompt.get(speaker, 0)
        last_prompt[speaker] = prompt
        trace.turns.append(Turn(turn, prompt, evaluated, added, seconds))
        said.append((speaker, REPLY.format(name=speaker, turn=turn, n=turn + 11, m=turn + 30)))
    return trace


def run(quick: bool) -> list[Row]:
    turns = QUICK_TURNS if quick else TURNS
    marks = (2, turns // 2, turns)
    traces = [
        asyncio.run(_debate(role_first, 0, turns, "role-first")),
        asyncio.run(_debate(role_first, 512, turns, "role-first+states")),
        asyncio.run(_debate(shared_first, 0, turns, "shared-first")),
    ]
    today = traces[0].at(turns)
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
                    added_since_callers_last=t.added,
                    vs_today=round(today.seconds / t.seconds, 2) if mark == turns else None,
                    note="n = prompt tokens",
                )
            )
    return rows
