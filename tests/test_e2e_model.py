"""End to end on the real embedded model (SmolLM2-135M via llama.cpp), offline.

The model's words are weak and vary; what must hold is the shape: a stated stop, three or
more roles speaking, every choice valid and explained, a transcript that validates and
replays, and replies that really stream.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from roundtable.conversations import Budget, build_debate, load_settings
from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    MessageEvent,
    SelectionEvent,
    StopEvent,
    TokenDelta,
    load,
)

pytestmark = pytest.mark.model
ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
QUESTION = "Should our city ban private cars downtown?"


def test_a_debate_on_the_embedded_model_runs_to_a_stated_stop(tmp_path: Path) -> None:
    path = tmp_path / "debate.jsonl"
    result = subprocess.run(
        [ROUNDTABLE, "ask", QUESTION, "--max-turns", "8", "--transcript", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
    )
    assert result.returncode in (0, 4), result.stderr[-2000:]  # accepted, or out of turns
    transcript = load(path)
    events = transcript.events
    roster = [role.name for role in transcript.header.roles]

    agents = [e.speaker for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert 2 <= len(agents) <= 8
    assert len(set(agents)) >= 3, agents
    assert all(a != b for a, b in itertools.pairwise(agents)), agents

    selections = [e for e in events if isinstance(e, SelectionEvent)]
    assert len(selections) == len(agents)
    for selection, speaker in zip(selections, agents, strict=True):
        assert selection.speaker == speaker
        assert selection.speaker in selection.candidates
        assert set(selection.candidates) <= set(roster)
        assert selection.reason.strip()

    stop = events[-1]
    assert isinstance(stop, StopEvent)
    assert stop.code in {"accepted", "max_turns"}, stop
    assert result.returncode == {"accepted": 0, "max_turns": 4}[stop.code]
    assert f"Stopped ({stop.code}): {stop.reason}" in result.stdout
    for name in set(agents):
        assert f"[{name}]" in result.stdout

    replayed = subprocess.run(
        [ROUNDTABLE, "replay", str(path)], capture_output=True, text=True, timeout=120
    )
    assert replayed.returncode == 0, replayed.stderr
    assert f"Stopped ({stop.code})" in replayed.stdout


COUNCIL = Path(__file__).parent / "teams" / "council.yaml"


def test_a_team_with_new_names_debates_on_the_embedded_model(tmp_path: Path) -> None:
    """The issue's own check: three roles that no code knows, from a team file, to a stop."""
    path = tmp_path / "council.jsonl"
    question = "Should we adopt a four-day week?"
    result = subprocess.run(
        [
            ROUNDTABLE,
            "ask",
            question,
            "--team",
            str(COUNCIL),
            "--max-turns",
            "6",
            "--transcript",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
    )
    transcript = load(path)
    events = transcript.events
    stop = events[-1]
    assert isinstance(stop, StopEvent), result.stderr[-2000:]
    assert stop.code in {"accepted", "max_turns"}, stop
    assert transcript.header.team is not None and transcript.header.team.name == "council"
    roster = ["historian", "ecologist", "judge"]
    assert [r.name for r in transcript.header.roles] == roster

    agents = [e.speaker for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert set(agents) == set(roster), agents  # every role spoke
    selections = [e for e in events if isinstance(e, SelectionEvent)]
    assert selections[0].speaker == "historian" and selections[0].method == "rule"
    for selection in selections:  # every pick valid: among the allowed, from the roster
        assert selection.speaker in selection.candidates
        assert set(selection.candidates) <= set(roster)
    refused = [e for e in events if isinstance(e, ErrorEvent) and "pick refused" in e.message]
    assert refused == []
    verdicts = [e.verdict for e in events if isinstance(e, MessageEvent) and e.speaker == "judge"]
    assert verdicts and all(v in ("ACCEPT", "REVISE") for v in verdicts)

    replayed = subprocess.run(
        [ROUNDTABLE, "replay", str(path)], capture_output=True, text=True, timeout=120
    )
    assert replayed.returncode == 0, replayed.stderr
    for name in roster:
        assert f"[{name}]" in replayed.stdout


async def test_replies_stream_token_by_token_from_the_model(tmp_path: Path) -> None:
    debate = build_debate(
        load_settings(),
        QUESTION,
        roles=["researcher", "critic"],
        budget=Budget(max_turns=1),
        transcript_path=tmp_path / "t.jsonl",
    )
    events = [e async for e in debate.run()]
    reply = next(e for e in events if isinstance(e, MessageEvent) and e.speaker == "researcher")
    deltas = [e.text for e in events if isinstance(e, TokenDelta) and e.speaker == "researcher"]
    assert len(deltas) > 5
    assert "".join(deltas) == reply.content
    assert reply.usage.completion_tokens > 5
    assert reply.usage.completion_tokens <= 120  # the card's cap
    assert reply.usage.prompt_tokens > 20
