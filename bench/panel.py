"""Fan-out speed-up of the ``panel`` mode: four branches on an endpoint that takes 1 s a reply.

A real loopback HTTP server speaks the OpenAI chat API (``tests/support/chat_server.py``) and
answers every request after a fixed delay: the manager's plan (four independent
sub-questions), each branch, the critic's comparison and the writer's answer. The same panel
runs through ``build_run`` on real ``OpenAIEndpointClient``s, twice per round:

* ``sequential``: the endpoint's lane is one wide (``max_concurrency=1``), so the branches run
  one after another, as they would on the embedded model;
* ``panel``: the lane is four wide, so the four branches run at once.

Branch time is from the first branch's start event to the last branch's end event, read from
the transcript; the whole run (plan and fan-in included) is reported beside it. The speed-up
is the median of the per-round ratios sequential / panel.

This module owns the measurement only.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.figures import DISK, Row, paired_ratio, row, scratch_dir
from roundtable.agents import EndpointSettings
from roundtable.conversations.options import RunOptions
from roundtable.conversations.panel import Panel, PanelSettings
from roundtable.conversations.runs import build_run
from roundtable.conversations.settings import load_settings
from roundtable.transcripts.events import BranchEvent
from tests.support.chat_server import Reply, Request, running_chat_server

BENCH = "panel"
BRANCHES = 4
DELAY_S = 1.0
REPEATS = 3
QUICK_REPEATS = 1
QUESTION = "Compare trams, buses and bike lanes for a town of 50,000 on cost and emissions"
TARGET = "panel branch time < 1.5 s (issue 7)"
PLAN = (
    '{"q1": {"role": "researcher", "needs": "research", "question": "What do trams cost?",'
    ' "depends_on": []},'
    ' "q2": {"role": "researcher", "needs": "research", "question": "What do buses cost?",'
    ' "depends_on": []},'
    ' "q3": {"role": "analyst", "needs": "analysis", "question": "Which emits least?",'
    ' "depends_on": []},'
    ' "q4": {"role": "analyst", "needs": "analysis", "question": "Which is quickest?",'
    ' "depends_on": []}}'
)


def responder(request: Request) -> Reply | None:
    """Every chat reply after ``DELAY_S``: the plan, a comparison, or an answer."""
    if not request.path.endswith("/chat/completions") or not isinstance(request.body, dict):
        return None
    schema = (request.body.get("response_format") or {}).get("json_schema", {}).get("name")
    if schema == "Plan":
        return Reply(PLAN, delay=DELAY_S)
    if schema == "Comparison":
        return Reply('{"disagreements": []}', delay=DELAY_S)
    return Reply("An answer from the endpoint.", delay=DELAY_S)


@dataclass(frozen=True)
class Timing:
    branch_s: float
    run_s: float


async def one_run(url: str, folder: Path, width: int) -> Timing:
    """One panel on the loopback endpoint with a lane ``width`` wide."""
    settings = load_settings(
        data_dir=folder,
        endpoints={"default": EndpointSettings(kind="openai", base_url=url, model="test-model")},
    )
    run = build_run(
        settings,
        QUESTION,
        options=RunOptions(mode="panel"),
        transcript_path=folder / f"panel-{width}-{time.monotonic_ns()}.jsonl",
        panel=PanelSettings(max_concurrency=width),
    )
    assert isinstance(run, Panel)
    began = time.perf_counter()
    try:
        branches = [e async for e in run.run() if isinstance(e, BranchEvent)]
    finally:  # in this loop: each run has its own, and a client closed later finds it gone
        took = time.perf_counter() - began
        for client in [*(p.client for p in run.participants.values()), run.manager_client]:
            if client is not None:
                await client.close()
    starts = [e.at for e in branches if e.phase == "start"]
    ends = [e.at for e in branches if e.phase == "end" and e.status == "ok"]
    if len(starts) != BRANCHES or len(ends) != BRANCHES:
        raise RuntimeError(f"expected {BRANCHES} branches to answer, got {len(ends)}")
    return Timing((max(ends) - min(starts)).total_seconds(), took)


def run(quick: bool) -> list[Row]:
    repeats = QUICK_REPEATS if quick else REPEATS
    folder = scratch_dir(DISK, "roundtable-bench-panel-")
    samples: dict[str, list[Timing]] = {"sequential": [], "panel": []}
    try:
        with running_chat_server(responder=responder) as server:
            for _ in range(repeats):
                for case, width in (("sequential", 1), ("panel", BRANCHES)):
                    samples[case].append(asyncio.run(one_run(server.url, folder, width)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    branch = {case: [t.branch_s for t in ts] for case, ts in samples.items()}
    whole = {case: [t.run_s for t in ts] for case, ts in samples.items()}
    speedup = paired_ratio(branch["sequential"], branch["panel"])
    anchor = f"{BRANCHES} branches x {DELAY_S:g} s = {BRANCHES * DELAY_S:g} s one after another"
    rows: list[Row] = []
    for case, width in (("sequential", 1), ("panel", BRANCHES)):
        extra: dict[str, Any] = {
            "run_median_s": round(statistics.median(whole[case]), 2),
        }
        rows.append(
            row(
                BENCH,
                f"{case} branch time (lane width {width})",
                BRANCHES,
                [s * 1e6 for s in branch[case]],
                unit="us of branch time (first start to last end)",
                ratio=speedup if case == "panel" else 1.0,
                anchor=anchor,
                target=TARGET if case == "panel" else "",
                note=f"runs={len(branch[case])}; ratio = speed-up over sequential",
                **extra,
            )
        )
    return rows
