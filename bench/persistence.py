"""Persistence per turn: appending and fsyncing one turn's events, early and late in a debate.

Roundtable appends each event of a turn (selection, memory, message) to the JSONL transcript
and fsyncs it. That must cost the same at turn 1,000 as at turn 10. The anchor is AutoGen's
way of saving a debate: ``team.save_state()`` every turn, whose size grows with the debate;
it is measured on a stock ``RoundRobinGroupChat`` of ``AssistantAgent``s that has run that
many turns, alone and with the write + fsync that would make it durable.

Before each measured append, a transcript of ``turn - 2`` turns is copied, synced, reopened
through ``load`` + ``TranscriptWriter.reopen`` and given turn ``turn - 1`` (all untimed), so
every repetition appends the same turn, warm, to a file of the same length. Repetitions are
interleaved. Disk fsyncs swing with other processes' I/O: read the median and the spread.

Owns the measurement only.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

from bench.figures import DISK, TMPFS, Row, row, scratch_dir
from roundtable.agents import ScriptedChatCompletionClient, resolve_team
from roundtable.transcripts import (
    Event,
    Header,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
    RoleSummary,
    SelectionEvent,
    TranscriptWriter,
    Usage,
    load,
)
from roundtable.transcripts.events import now
from roundtable.transcripts.store import DEFERRED_SYNC, encode

BENCH = "persistence"
TURNS = (10, 100, 1000)
REPEATS = 30
QUICK_REPEATS = 5
REPLY = (
    "Cities that priced or banned cars downtown saw traffic fall by a quarter to a third "
    "within two years, while footfall in shops held steady where transit improved first. "
) * 3
"""About 100 words, 540 characters: a typical capped reply of the embedded model."""
ROLES = ("researcher", "analyst", "critic", "writer")
ANCHOR_SAVE = "issue: save_state() 12.7 ms at 1,000 turns, 44-49 ms with assistant agents"
TARGET_FLAT = 1.2


# -- Roundtable: one turn's events appended to a transcript of a given length ---------------


def header() -> Header:
    return Header(
        conversation_id="bench-persistence",
        created_at=now(),
        question="Should our city ban private cars downtown?",
        roles=[
            RoleSummary(
                name=r, description=f"the {r}", endpoint="default", model="m", max_tokens=128
            )
            for r in ROLES
        ],
        max_turns=1000,
        context_window=4096,
    )


def turn_events(turn: int, first_seq: int) -> list[Event]:
    """A full turn as the engine commits it: the selection, the memory recalled, the reply."""
    speaker = ROLES[turn % len(ROLES)]
    at = now()
    hits = [
        MemoryHit(id=f"bench:{turn}:{i}", source=f"turn {i}", score=0.5, text=REPLY[:300])
        for i in range(3)
    ]
    return [
        SelectionEvent(
            seq=first_seq,
            at=at,
            turn=turn,
            candidates=[r for r in ROLES if r != speaker],
            speaker=speaker,
            method="model",
            reason="the analyst should weigh the evidence the researcher found",
            usage=Usage(prompt_tokens=240, completion_tokens=18),
        ),
        MemoryEvent(
            seq=first_seq + 1, at=at, turn=turn, speaker=speaker, query=REPLY[:400], hits=hits
        ),
        MessageEvent(
            seq=first_seq + 2,
            at=at,
            turn=turn,
            speaker=speaker,
            content=REPLY,
            usage=Usage(prompt_tokens=900, completion_tokens=120),
            latency_s=2.5,
        ),
    ]


EVENTS_PER_TURN = len(turn_events(1, 1))
FSYNCS_PER_TURN = sum(1 for e in turn_events(1, 1) if e.kind not in DEFERRED_SYNC)


def prefill(path: Path, turns: int) -> None:
    """A transcript of ``turns`` whole turns, written at once (not what is measured)."""
    lines = [encode(header())]
    for turn in range(1, turns + 1):
        lines += [encode(e) for e in turn_events(turn, (turn - 1) * EVENTS_PER_TURN + 1)]
    path.write_bytes(b"".join(lines))


def append_turn_us(template: Path, turn: int) -> float:
    """Time to append and fsync turn ``turn`` to a synced copy of ``template`` (turn - 2 turns).

    Turn ``turn - 1`` is appended first, untimed, so the measured turn finds the writer warm,
    as it is in a running debate.
    """
    path = template.with_name(f"{template.stem}-copy{template.suffix}")
    shutil.copyfile(template, path)
    with path.open("rb") as handle:
        os.fsync(handle.fileno())  # the copy's own data must not be flushed by the timed sync
    writer = TranscriptWriter.reopen(load(path))
    try:
        for event in turn_events(turn - 1, writer.next_seq()):
            writer.append(event)
        events = turn_events(turn, writer.next_seq())
        started = time.perf_counter()
        for event in events:
            writer.append(event)
        return (time.perf_counter() - started) * 1e6
    finally:
        writer.close()
        path.unlink()


# -- AutoGen: save_state() of a team that has run n turns ------------------------------------


async def stock_team(turns: int) -> Team:
    """A stock round-robin team of assistant agents, run for ``turns`` turns, then stopped."""
    cards = resolve_team(None).roles
    agents: list[ChatAgent | Team] = [
        AssistantAgent(
            name=c.name,
            description=c.description,
            model_client=ScriptedChatCompletionClient(default=REPLY, name=c.name),
            system_message=c.instructions,
            # Streaming changes how the team gets there, not the state it saves: off, faster.
            model_client_stream=False,
        )
        for c in cards
    ]
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(turns + 1))
    await team.run(task="Should our city ban private cars downtown?")
    return team


async def save_state_us(team: Team, target: Path | None) -> float:
    """``save_state()``, and with ``target`` also its JSON written and fsynced there."""
    started = time.perf_counter()
    state = await team.save_state()
    if target is not None:
        data = json.dumps(state).encode()
        with target.open("wb", buffering=0) as handle:
            handle.write(data)
            os.fsync(handle.fileno())
    return (time.perf_counter() - started) * 1e6


def save_state_sync(loop: asyncio.AbstractEventLoop, team: Team, target: Path | None) -> float:
    return loop.run_until_complete(save_state_us(team, target))


def state_kib(loop: asyncio.AbstractEventLoop, team: Team) -> float:
    return len(json.dumps(loop.run_until_complete(team.save_state())).encode()) / 1024


# -- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    turn: int
    measure: Callable[[], float]
    note: str = ""


def cases(disk: Path, tmpfs: Path | None, loop: asyncio.AbstractEventLoop) -> list[Case]:
    out: list[Case] = []
    for where, folder in (("disk", disk), ("tmpfs", tmpfs)):
        if folder is None:
            continue
        for turn in TURNS:
            template = folder / f"prefill-{turn}.jsonl"
            prefill(template, turn - 2)
            kib = template.stat().st_size / 1024
            size = f"{EVENTS_PER_TURN} events, {FSYNCS_PER_TURN} fsync(s); file {kib:.0f} KiB"
            name = f"roundtable append+fsync/{where}"
            out.append(Case(name, turn, partial(append_turn_us, template, turn), size))
    for turn in TURNS:
        team = loop.run_until_complete(stock_team(turn))
        size = f"state {state_kib(loop, team):.0f} KiB"
        target = disk / f"state-{turn}.json"
        out.append(
            Case("autogen save_state", turn, partial(save_state_sync, loop, team, None), size)
        )
        out.append(
            Case(
                "autogen save_state+write+fsync/disk",
                turn,
                partial(save_state_sync, loop, team, target),
                size,
            )
        )
    return out


def to_rows(todo: list[Case], samples: dict[tuple[str, int], list[float]]) -> list[Row]:
    out: list[Row] = []
    for case in todo:
        values = samples[(case.name, case.turn)]
        first = statistics.median(samples[(case.name, TURNS[0])])
        ours = case.name.startswith("roundtable")
        growing = case.turn > TURNS[0]
        out.append(
            row(
                BENCH,
                case.name,
                case.turn,
                values,
                unit=f"us per turn, at turn n; ratio vs turn {TURNS[0]}",
                ratio=statistics.median(values) / first,
                anchor="" if ours else ANCHOR_SAVE,
                target=f"ratio <= {TARGET_FLAT} (flat)" if ours and growing else "",
                note=f"{case.note}; runs={len(values)}",
            )
        )
    return out


def run(quick: bool) -> list[Row]:
    disk = scratch_dir(DISK, "roundtable-bench-")
    tmpfs = scratch_dir(TMPFS, "roundtable-bench-") if TMPFS.is_dir() else None
    loop = asyncio.new_event_loop()
    try:
        todo = cases(disk, tmpfs, loop)
        samples: dict[tuple[str, int], list[float]] = {(c.name, c.turn): [] for c in todo}
        for _ in range(QUICK_REPEATS if quick else REPEATS):
            for case in todo:  # interleaved: every case once per round
                gc.collect()
                samples[(case.name, case.turn)].append(case.measure())
        return to_rows(todo, samples)
    finally:
        loop.close()
        for folder in (disk, tmpfs):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
