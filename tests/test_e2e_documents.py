"""End to end on the embedded model: a document added for the run reaches the first speaker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from roundtable.transcripts import MemoryEvent, MessageEvent, load
from tests.support.docfiles import make_pdf
from tests.test_cli import ROUNDTABLE

pytestmark = pytest.mark.model


def test_a_passage_answering_the_question_reaches_the_first_speaker(
    data_dir: Path, tmp_path: Path
) -> None:
    brief = make_pdf(
        tmp_path / "brief.pdf",
        [
            ["The council meets on Tuesdays in the old town hall."],
            ["Building the proposed tram line would cost about 31 million euros per kilometre."],
        ],
    )
    path = tmp_path / "debate.jsonl"
    question = "How much would our tram line cost per km?"
    flags = ["--doc", str(brief), "--max-turns", "1", "--transcript", str(path)]

    result = subprocess.run(
        [ROUNDTABLE, "ask", question, *flags],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
    )

    assert result.returncode in (0, 4), result.stderr[-2000:]
    assert "Added 2 passage(s) from 1 file(s), 2 PDF page(s)." in result.stderr
    events = load(path).events
    first = next(e for e in events if isinstance(e, MessageEvent) and e.turn == 1)
    memory = next(e for e in events if isinstance(e, MemoryEvent))
    assert memory.speaker == first.speaker and memory.seq < first.seq
    assert memory.hits[0].n == 1 and memory.hits[0].page == 2
    assert "31 million euros per kilometre" in memory.hits[0].text
    # The document was for this run only.
    listed = subprocess.run([ROUNDTABLE, "memory", "list"], capture_output=True, text=True)
    assert listed.stdout.strip() == "No documents."
