"""The benchmarks still run: a bench that no longer matches the engine fails here, not months
later. Only that they run and report every case; their figures are read from ``bench/``."""

from __future__ import annotations

from bench import orchestration


def test_the_orchestration_bench_runs_every_variant_the_whole_way() -> None:
    """It raises if a variant's debate ends before its turns (the protocol guards once
    rejected its identical scripted replies at turn 12 of 50)."""
    rows = orchestration.run(True)
    per_turn = {row["case"] for row in rows if row["case"].endswith("per turn")}
    assert per_turn == {
        "roundtable/disk per turn",
        "roundtable/tmpfs per turn",
        "stock/selector per turn",
        "stock/round_robin per turn",
    }
    assert all(row["ratio"] is not None and row["ratio"] > 0 for row in rows)
