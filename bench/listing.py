"""Listing saved runs: ``roundtable list`` (and ``GET /api/runs``) over 10,000 transcripts.

The anchor is what listing did before the summary index: read and validate every file
(``summarise`` on each ``*.jsonl``). Ours is ``catalogue`` with the index (``.index.json``)
already built, the steady state: it stats every file and reads none that did not change.
The first listing, which builds the index, is shown too (it reads every file once, as the
anchor does, and writes the index). Each transcript is a short debate (header and 16 events).

Repetitions alternate anchor and ours; the ratio is the median of the paired ratios. Scratch
files go to tmpfs (``/dev/shm``) so the figure is the work, not a disk's cache state.

Owns the measurement only.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.figures import TMPFS, Row, paired_ratio, row, scratch_dir
from roundtable.transcripts.catalogue import catalogue, summarise
from roundtable.transcripts.index import INDEX_NAME
from roundtable.transcripts.lines import TranscriptError
from roundtable.transcripts.store import encode, load

GOLDEN = Path(__file__).parents[1] / "tests" / "golden" / "debate-v3.jsonl"


def fill(folder: Path, runs: int) -> None:
    """``runs`` transcripts (the golden debate under new ids and times), written directly."""
    golden = load(GOLDEN)
    body = b"".join(encode(event) for event in golden.events)
    for n in range(runs):
        header = golden.header.model_copy(
            update={
                "conversation_id": f"run-{n:05d}",
                "created_at": golden.header.created_at + timedelta(seconds=n),
                "owner": None if n % 3 else f"user{n % 7}",
            }
        )
        (folder / f"run-{n:05d}.jsonl").write_bytes(encode(header) + body)


def anchor(folder: Path) -> int:
    """Before the index: every file read and summarised."""
    return len([summarise(path) for path in folder.glob("*.jsonl")])


def indexed(folder: Path) -> int:
    """Ours: the catalogue, through the summary index."""
    return len(catalogue(folder))


def timed(work: Callable[[Path], int], folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    count = work(folder)
    return (time.perf_counter() - start) * 1e6, count


def run(quick: bool) -> list[Row]:
    runs, repeats = (2_000, 3) if quick else (10_000, 5)
    folder = scratch_dir(TMPFS, "roundtable-listing-")
    try:
        fill(folder, runs)
        first, listed = timed(indexed, folder)
        if listed != runs or not (folder / INDEX_NAME).is_file():
            raise TranscriptError(f"listed {listed} of {runs} runs")
        ours, theirs = [], []
        for _ in range(repeats):
            theirs.append(timed(anchor, folder)[0])
            ours.append(timed(indexed, folder)[0])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    name = "listing"
    return [
        row(name, "anchor: read every file", runs, theirs, unit="listing"),
        row(name, "first listing (builds the index)", runs, [first], unit="listing"),
        row(
            name,
            "catalogue with the index",
            runs,
            ours,
            unit="listing",
            ratio=paired_ratio(ours, theirs),
            anchor="read every file",
        ),
    ]
