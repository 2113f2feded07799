"""Benchmarks: ``python -m bench`` runs every module here and writes ``bench/results/latest.json``.

Each module exposes ``run(quick: bool) -> list[dict[str, object]]``: one row per measured case.
Figures are printed and saved, never asserted: timed tests are flaky on shared machines.
"""
