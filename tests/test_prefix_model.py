"""Prefix reuse on the real embedded model, in the default shared-first layout: after the
first turn, each role reads only what is new since the model's previous call (the latest
reply, when no manager call came between) and its own instructions, never the conversation
again."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from roundtable.agents import Guards, resolve_team
from roundtable.agents.llama_client import EmbeddedModelSettings, LlamaEngine
from roundtable.conversations import Budget, RunOptions, build_run, load_settings
from roundtable.transcripts import HUMAN, MessageEvent, SelectionEvent, load

pytestmark = pytest.mark.model

TEMPLATE_TOKENS = 16
"""SmolLM2's chat template around a turn and before the reply (measured: 5 + 1 + 3), with
room for a tokenizer boundary merge."""


async def test_each_turn_reads_only_the_new_turn_and_its_own_instructions(
    tmp_path: Path,
) -> None:
    settings = load_settings(memory={"enabled": False})
    assert settings.endpoints["default"].prompt_layout == "shared_first"  # the default
    team = resolve_team(None).model_copy(update={"guards": Guards(enabled=False)})
    path = tmp_path / "t.jsonl"
    run = build_run(
        settings,
        "Should our town build a swimming pool or improve its library?",
        RunOptions(max_turns=6),
        team=team,
        budget=Budget(max_turns=6, turn_deadline_s=120),
        transcript_path=path,
    )
    [event async for event in run.run()]
    events = load(path).events
    engine = LlamaEngine.load(EmbeddedModelSettings())
    said = [e for e in events if isinstance(e, MessageEvent)]
    checked = 0
    for before, message in itertools.pairwise(said):
        if message.speaker == HUMAN or before.speaker == HUMAN:
            continue
        pick = next(
            e for e in events if isinstance(e, SelectionEvent) and before.seq < e.seq < message.seq
        )
        read = message.usage.prompt_tokens - message.usage.cached_tokens
        tail = engine.count(team.card(message.speaker).instructions) + TEMPLATE_TOKENS
        # a model pick read the latest reply already; a rule's pick made no call
        new = 0 if pick.method == "model" else engine.count(before.content) + TEMPLATE_TOKENS
        assert read <= new + tail, (message.speaker, pick.method, read, new, tail)
        assert message.usage.cached_tokens > 0
        checked += 1
    assert checked >= 3
