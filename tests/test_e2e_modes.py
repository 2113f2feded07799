"""Pipeline and panel end to end on the real embedded model (SmolLM2-135M), offline.

The words are weak; what must hold is the shape: a plan before any work, every branch
recorded, the embedded model's branches one after another (its one context serialises them,
and the transcript says so), a stated stop, a transcript that loads and replays.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from roundtable.conversations import RunOptions, load_settings
from roundtable.conversations.runs import build_run
from roundtable.transcripts import (
    MessageEvent,
    StopEvent,
    TokenDelta,
    load,
    replay,
)
from roundtable.transcripts.events import AggregateEvent, BranchEvent, PlanEvent
from tests.support.runs import collect

pytestmark = pytest.mark.model
QUESTION = "Compare trams, buses and bike lanes for a town of 50,000 on cost and emissions"


@pytest.mark.timeout(900)
async def test_a_panel_on_the_embedded_model_plans_runs_its_branches_and_answers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "panel.jsonl"
    run = build_run(
        load_settings(), QUESTION, options=RunOptions(mode="panel"), transcript_path=path
    )
    events = await collect(run)

    plan = next(e for e in events if isinstance(e, PlanEvent))
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    if not plan.accepted:  # a refused plan falls back to a debate, saying why
        assert plan.fallback == "debate" and plan.reason.startswith("plan refused: ")
        assert stop.code in {"accepted", "max_turns"}
        return
    branches = [e for e in events if isinstance(e, BranchEvent)]
    starts = {e.branch: e.at for e in branches if e.phase == "start"}
    ends = {e.branch: e.at for e in branches if e.phase == "end"}
    assert set(ends) == {s.id for s in plan.steps}
    # one lane of width one: never two branches on the model at once
    intervals = sorted((starts[b], ends[b]) for b in starts)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(intervals))
    aggregate = next(e for e in events if isinstance(e, AggregateEvent))
    assert len(aggregate.answered) + len(aggregate.missing) == len(plan.steps)
    answer = [e for e in events if isinstance(e, MessageEvent)][-1]
    assert answer.speaker == "writer" and answer.content.strip()
    assert stop.code in {"completed", "partial"}, stop
    saved = load(path)
    replayed = [e async for e in replay(saved)]
    assert [e for e in replayed[1:] if not isinstance(e, TokenDelta)] == saved.events


@pytest.mark.timeout(600)
async def test_a_pipeline_on_the_embedded_model_runs_every_stage(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.jsonl"
    run = build_run(
        load_settings(), QUESTION, options=RunOptions(mode="pipeline"), transcript_path=path
    )
    events = await collect(run)

    speakers = [e.speaker for e in events if isinstance(e, MessageEvent)]
    assert speakers == ["human", "researcher", "analyst", "critic", "writer"]
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "completed", stop
    assert load(path).events[-1] == stop
