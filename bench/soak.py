"""A long-running server's memory: RSS at idle, after 1, 100 and 1,000 API runs (#15, finding 10).

``roundtable ui`` on the scripted model with memory on, started as a person would, answers runs
through its HTTP API, 8 at a time, each to its end (``tests/support/soak.py``). The server's
resident set is read from ``/proc`` after each checkpoint. The target: less than 50 MB of
growth from run 100 to run 1,000 (about 3 MB per run before: Chroma kept the index of each
conversation's own collection in memory; see ``memory/store.py``).

This module owns the measurement only. ``--quick``: 1, 20 and 120 runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.figures import Row
from tests.support.soak import CONCURRENCY, MAX_TURNS, drive, rss_mb, soak_server

CHECKPOINTS = (1, 100, 1000)
QUICK_CHECKPOINTS = (1, 20, 120)
TARGET_MB = 50.0


def run(quick: bool) -> list[Row]:
    checkpoints = QUICK_CHECKPOINTS if quick else CHECKPOINTS
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="roundtable-soak-") as folder,
        soak_server(Path(folder) / "data", memory=True) as server,
    ):
        started = time.monotonic()
        rows.append({"runs": 0, "rss_mb": round(rss_mb(server.pid), 1), "elapsed_s": 0.0})
        for checkpoint in checkpoints:
            drive(server, checkpoint - server.done)
            elapsed = round(time.monotonic() - started, 1)
            rows.append(
                {"runs": server.done, "rss_mb": round(rss_mb(server.pid), 1), "elapsed_s": elapsed}
            )
    growth = float(rows[-1]["rss_mb"]) - float(rows[-2]["rss_mb"])
    verdict = "met" if growth < TARGET_MB else "MISSED"
    rows.append(
        {
            "runs": f"{rows[-2]['runs']} -> {rows[-1]['runs']}",
            "rss_mb": f"+{growth:.1f}",
            "elapsed_s": f"target < {TARGET_MB:.0f} MB: {verdict}",
            "note": f"scripted model, memory on, {CONCURRENCY} at a time, {MAX_TURNS} turns",
        }
    )
    return rows
