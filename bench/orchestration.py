"""Orchestration overhead per turn: Roundtable's ``Debate`` against stock AgentChat teams.

Every model is a zero-latency ``ScriptedChatCompletionClient`` replying with the same short
text, so what is left is orchestration. The variants, interleaved round by round:

* ``roundtable/disk`` and ``roundtable/tmpfs``: a ``Debate`` as the engine has it (rules, then
  a scripted manager pick; every prompt pruned to its window, counted with tiktoken; one
  ``run_stream`` per turn; every event written, one fsync per turn; memory off), its transcript on
  disk or on tmpfs so the cost of fsync shows;
* ``stock/selector``: ``SelectorGroupChat`` with a ``selector_func`` and streaming agents;
* ``stock/round_robin``: ``RoundRobinGroupChat`` with the same agents: the target's anchor.

The stock agents keep AutoGen's default unbounded context, so their prompts (and the scripted
client's word count over them) grow with the debate; Roundtable's are pruned.

A turn is timed from one agent model call to the next (the producer's side: the stock teams
queue their output, so the consumer's side would show a backlog draining, not turns); the
first turn (team start-up) is left out. Wall time is the figure; CPU time, steadier when
other processes share the cores, is in the note. Drift is the mean of the last 10% of turns
over the first 10% (flat = 1.0).

Owns the measurement only; it changes nothing in the engine.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import re
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import LLMMessage

from bench.figures import DISK, TMPFS, Row, paired_ratio, row, scratch_dir
from roundtable.agents import RoleCard, ScriptedChatCompletionClient, build_agent, resolve_team
from roundtable.conversations import Budget, Debate, Participant

BENCH = "orchestration"
REPEATS = {50: 5, 200: 3, 1000: 3}
QUICK_REPEATS = {50: 2, 200: 2}
QUESTION = "Should our city ban private cars downtown?"
REPLY_WORDS = 10
"""Words per scripted reply: the scripted client streams one chunk per word."""
ANCHOR = "stock/round_robin, same run (issue: stock AgentChat 1.1-1.4 ms/turn, flat)"
TARGET_RATIO = 1.2
"""Issue 12: at most 1.2x stock `RoundRobinGroupChat` per turn."""
TARGET_DRIFT = 1.2
STOCK = "stock/round_robin"


@dataclass
class Stamps:
    """Wall and CPU clocks at each agent model call: one per turn, in order."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def take(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())


VOCABULARY = [
    stem + end
    for stem in ("tram", "bus", "lane", "fare", "park", "road", "toll", "bike")
    for end in ("s", "ed", "ing", "er", "way", "side", "line", "stop")
]


def replies_for(role: str) -> Callable[[], str]:
    """Replies of ``REPLY_WORDS`` words, each new (two words naming the role and the call, the rest
    drawn, seeded by the role), so that the protocol guards' copy rule passes every one, as it
    passes a real model's: at most 3 of a reply's 8 word trigrams can repeat an earlier turn.
    The critic never accepts, so runs go the distance."""
    head = ("REVISE: a gap remains in" if role == "critic" else f"As the {role}, I note").split()
    draw, calls = random.Random(role), itertools.count(1)

    def reply() -> str:
        call = next(calls)
        tail = draw.sample(VOCABULARY, REPLY_WORDS - len(head))
        tail[0], tail[3] = f"{role}{_letters(call)}", f"m{_letters(call)}"
        return " ".join(head + tail)

    return reply


def _letters(number: int) -> str:
    """``number`` in letters (the guards' words are letters only): 1 -> b, 26 -> bb..."""
    digits = ""
    while True:
        number, digit = divmod(number, 26)
        digits = chr(ord("a") + digit) + digits
        if number == 0:
            return digits


def scripted(
    role: str, stamps: Stamps, signal: threading.Event | None = None
) -> ScriptedChatCompletionClient:
    """A zero-latency role model that stamps the clocks at every call."""
    next_reply = replies_for(role)

    def reply(_messages: Sequence[LLMMessage]) -> str:
        stamps.take()
        return next_reply()

    return ScriptedChatCompletionClient(fallback=reply, stop_signal=signal, name=role)


_CHOICES = re.compile(r"Choose one of: (.+)\.$")


def manager_picks() -> Callable[[Sequence[LLMMessage]], str]:
    """A scripted manager: each pick takes the next allowed candidate in turn."""
    counter = itertools.count()

    def pick(messages: Sequence[LLMMessage]) -> str:
        match = _CHOICES.search(str(messages[-1].content))
        if match is None:
            raise RuntimeError("the manager's prompt no longer ends with its candidates")
        candidates = match.group(1).split(", ")
        speaker = candidates[next(counter) % len(candidates)]
        return f'{{"speaker": "{speaker}", "reason": "it is their turn"}}'

    return pick


# -- the variants: each runs one debate of n agent turns ------------------------------------


async def roundtable(cards: list[RoleCard], n: int, folder: Path) -> Stamps:
    signal = threading.Event()
    stamps = Stamps()
    debate = Debate(
        team=resolve_team(None).only([c.name for c in cards]),
        question=QUESTION,
        participants=[Participant(card=c, client=scripted(c.name, stamps, signal)) for c in cards],
        manager_client=ScriptedChatCompletionClient(fallback=manager_picks(), name="manager"),
        transcript_path=folder / f"debate-{n}-{time.monotonic_ns()}.jsonl",
        stop_signal=signal,
        budget=Budget(max_turns=n, max_tokens=10**15, wall_clock_s=10**9, turn_deadline_s=10**9),
    )
    try:
        async for _event in debate.run():
            pass  # a consumer that does nothing: what is left is the engine's own work
    finally:
        debate.transcript_path.unlink(missing_ok=True)
    return stamps


def rotation(roster: list[str]) -> Callable[[Sequence[BaseAgentEvent | BaseChatMessage]], str]:
    """A ``selector_func`` as cheap as a selection can be: the roster in turn."""
    counter = itertools.count()

    def select(_thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
        return roster[next(counter) % len(roster)]

    return select


def stock_agents(cards: list[RoleCard], stamps: Stamps) -> list[ChatAgent | Team]:
    return [build_agent(card, scripted(card.name, stamps)) for card in cards]


async def stock_selector(cards: list[RoleCard], n: int, _folder: Path) -> Stamps:
    stamps = Stamps()
    team = SelectorGroupChat(
        stock_agents(cards, stamps),
        model_client=ScriptedChatCompletionClient(name="manager"),  # never called
        selector_func=rotation([c.name for c in cards]),
        termination_condition=MaxMessageTermination(n + 1),  # the task counts as one
    )
    await consume(team)
    return stamps


async def stock_round_robin(cards: list[RoleCard], n: int, _folder: Path) -> Stamps:
    stamps = Stamps()
    team = RoundRobinGroupChat(
        stock_agents(cards, stamps), termination_condition=MaxMessageTermination(n + 1)
    )
    await consume(team)
    return stamps


async def consume(team: Team) -> None:
    """Run the team to its end, reading its whole stream (chunks included) as a UI would."""
    async for _item in team.run_stream(task=QUESTION):
        pass


@dataclass(frozen=True)
class Variant:
    case: str
    run: Callable[[list[RoleCard], int, Path], Coroutine[Any, Any, Stamps]]
    folder: Path


# -- figures ------------------------------------------------------------------------------


def per_turn_us(clock: list[float]) -> float:
    return (clock[-1] - clock[0]) * 1e6 / (len(clock) - 1)


def drift(clock: list[float]) -> float:
    """Mean of the last 10% of turns over the mean of the first 10% (at least 3 turns each)."""
    turns = [b - a for a, b in itertools.pairwise(clock)]
    tenth = max(3, len(turns) // 10)
    return statistics.fmean(turns[-tenth:]) / statistics.fmean(turns[:tenth])


@dataclass
class Sample:
    """One (variant, size) over its repetitions."""

    wall_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    drift_wall: list[float] = field(default_factory=list)
    drift_cpu: list[float] = field(default_factory=list)

    def add(self, stamps: Stamps) -> None:
        self.wall_us.append(per_turn_us(stamps.wall))
        self.cpu_us.append(per_turn_us(stamps.cpu))
        self.drift_wall.append(drift(stamps.wall))
        self.drift_cpu.append(drift(stamps.cpu))


def measure(variants: list[Variant], repeats: dict[int, int]) -> dict[tuple[str, int], Sample]:
    """Every variant at every size, interleaved: one round runs each once, order rotated."""
    cards = resolve_team(None).roles
    samples = {(v.case, n): Sample() for v in variants for n in repeats}
    for round_ in range(max(repeats.values())):
        shift = round_ % len(variants)
        order = variants[shift:] + variants[:shift]
        for n, count in repeats.items():
            if round_ >= count:
                continue
            for variant in order:
                gc.collect()
                stamps = asyncio.run(variant.run(cards, n, variant.folder))
                if len(stamps.wall) != n:
                    raise RuntimeError(f"{variant.case} ran {len(stamps.wall)} turns, not {n}")
                samples[(variant.case, n)].add(stamps)
    return samples


def rows(variants: list[Variant], samples: dict[tuple[str, int], Sample]) -> list[Row]:
    out: list[Row] = []
    for n in sorted({n for _, n in samples}):
        stock = samples[(STOCK, n)]
        for variant in variants:
            s = samples[(variant.case, n)]
            ours = variant.case.startswith("roundtable")
            cpu_ratio = paired_ratio(s.cpu_us, stock.cpu_us)
            out.append(
                row(
                    BENCH,
                    f"{variant.case} per turn",
                    n,
                    s.wall_us,
                    unit="us/turn (wall); ratio vs stock/round_robin",
                    ratio=paired_ratio(s.wall_us, stock.wall_us),
                    anchor=ANCHOR,
                    target=f"ratio <= {TARGET_RATIO}" if ours else "",
                    note=f"cpu {statistics.median(s.cpu_us):.0f} us/turn "
                    f"(ratio {cpu_ratio:.2f}); runs={len(s.wall_us)}",
                )
            )
            out.append(
                row(
                    BENCH,
                    f"{variant.case} drift",
                    n,
                    [],
                    unit="last 10% / first 10% of turns (wall)",
                    ratio=statistics.median(s.drift_wall),
                    anchor="1.0 = flat",
                    target=f"<= {TARGET_DRIFT}" if ours else "",
                    note=f"wall {min(s.drift_wall):.2f}-{max(s.drift_wall):.2f}; "
                    f"cpu {statistics.median(s.drift_cpu):.2f} "
                    f"({min(s.drift_cpu):.2f}-{max(s.drift_cpu):.2f})",
                )
            )
    return out


def run(quick: bool) -> list[Row]:
    disk = scratch_dir(DISK, "roundtable-bench-")
    tmpfs = scratch_dir(TMPFS, "roundtable-bench-") if TMPFS.is_dir() else None
    variants = [Variant("roundtable/disk", roundtable, disk)]
    if tmpfs is not None:
        variants.append(Variant("roundtable/tmpfs", roundtable, tmpfs))
    variants += [
        Variant("stock/selector", stock_selector, disk),
        Variant(STOCK, stock_round_robin, disk),
    ]
    try:
        return rows(variants, measure(variants, QUICK_REPEATS if quick else REPEATS))
    finally:
        for folder in (disk, tmpfs):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
