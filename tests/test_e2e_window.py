"""End to end on the embedded model with a small window: pruning and memory, no overflow.

With no verdict-giver among the roles nothing can accept an answer (a team without an
answerer would end on its verdict-giver's ACCEPT), so the debate runs all its turns in a
1,024-token window: prompts must be pruned, pruned turns go to shared memory, and no call may
fail with a context error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    MemoryEvent,
    MessageEvent,
    PruneEvent,
    StopEvent,
    load,
)

pytestmark = pytest.mark.model
ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
TURNS = 20
"""SmolLM2's replies here usually run 45-120 tokens, but CI once saw twenty short ones fit the
window whole; the question therefore carries about 360 tokens of background, so that twenty
replies of any usual length overflow the 872-token conversation budget."""
BACKGROUND = " ".join(
    f"Fact {n}: the {topic} survey of district {n} counted {100 + 7 * n} residents who answered "
    f"and {20 + 3 * n} shops that reported a change in weekday visitors."
    for n in range(1, 13)
    for topic in ("traffic",)
)
QUESTION = f"Should our city ban private cars downtown? Background: {BACKGROUND}"


def test_twenty_turns_in_a_1024_token_window(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(
        "# Parking\n\nDowntown parking garages are full on weekdays; a new one would cost "
        "30 million euros.\n\n# Buses\n\nThe downtown bus line carries 12,000 riders a day.\n"
    )
    env = os.environ.copy()
    added = subprocess.run(
        [ROUNDTABLE, "memory", "add", str(notes)], capture_output=True, text=True, env=env
    )
    assert added.returncode == 0, added.stderr
    path = tmp_path / "window.jsonl"
    result = subprocess.run(
        [
            ROUNDTABLE,
            "ask",
            QUESTION,
            "--max-turns",
            str(TURNS),
            "--context-window",
            "1024",
            "--roles",
            "researcher,analyst",
            "--transcript",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    assert result.returncode == 4, result.stderr[-2000:]  # max_turns: the budget exit code
    events = load(path).events
    replies = [e for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert len(replies) == TURNS
    assert not [e for e in events if isinstance(e, ErrorEvent) and e.speaker is not None]
    prunes = [e for e in events if isinstance(e, PruneEvent)]
    assert prunes, "a 1,024-token window must prune a 20-turn debate"
    for prune in prunes:  # a prune drops turns, or cuts one that alone is too long
        assert prune.tokens_after < prune.tokens_before
        assert prune.tokens_after <= prune.budget < 1024
    assert any(prune.dropped > 0 for prune in prunes)
    memory = [e for e in events if isinstance(e, MemoryEvent)]
    assert len(memory) == TURNS
    assert any(hit.source.startswith("document") for m in memory for hit in m.hits)
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "max_turns"
    stats = subprocess.run([ROUNDTABLE, "memory", "stats"], capture_output=True, text=True, env=env)
    pruned = int(stats.stdout.split("pruned turns:")[1].split()[0])
    assert pruned >= 1  # turns dropped from a prompt went to shared memory
