"""What the benchmark modules share: result rows, percentiles, and where scratch files go.

A row is one line of the runner's table (and of ``bench/results/latest.json``). Times are in
microseconds whatever was measured (a turn, an append, a query, a token), so ``median_us``,
``min_us`` and ``max_us`` always mean the same thing; ``unit`` says per what.

Owns no measurement; each ``bench/<concern>.py`` module measures one concern.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]

TMPFS = Path("/dev/shm")
"""Memory-backed on Linux: what an fsync costs when there is no disk behind it."""
DISK = Path("/var/tmp")
"""Disk-backed by convention (unlike /tmp, which is tmpfs on many distributions)."""


def row(
    bench: str,
    case: str,
    n: int | None,
    values_us: Sequence[float],
    *,
    unit: str,
    ratio: float | None = None,
    anchor: str = "",
    target: str = "",
    note: str = "",
    **extra: Any,
) -> Row:
    """One table row: the median and the min-max of ``values_us`` (empty: no time figure)."""
    return {
        "bench": bench,
        "case": case,
        "n": n,
        "median_us": _round(statistics.median(values_us)) if values_us else None,
        "min_us": _round(min(values_us)) if values_us else None,
        "max_us": _round(max(values_us)) if values_us else None,
        "ratio": None if ratio is None else round(ratio, 2),
        "anchor": anchor,
        "target": target,
        "unit": unit,
        "note": note,
        **extra,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank: a value that was actually measured."""
    if not values:
        raise ValueError("percentile of no values")
    ranked = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ranked)))
    return ranked[rank - 1]


def paired_ratio(ours: Sequence[float], anchor: Sequence[float]) -> float:
    """Median of the per-round ratios: each repetition is compared with the anchor run beside
    it, so load that comes and goes on a shared machine cancels out."""
    return statistics.median(a / b for a, b in zip(ours, anchor, strict=True))


def scratch_dir(base: Path, prefix: str) -> Path:
    """A fresh directory under ``base`` (the system default when ``base`` is missing)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base if base.is_dir() else None))


def _round(value: float) -> float:
    return round(value, 1)
