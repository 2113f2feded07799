"""Run every benchmark module in ``bench`` and print one table per module.

Usage: ``python -m bench [--quick] [MODULE ...]``. Results (with the machine and time) go to
``bench/results/latest.json``; naming modules replaces only theirs there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import bench

Row = dict[str, object]
RESULTS = Path(__file__).parent / "results" / "latest.json"


def modules() -> list[str]:
    """Every benchmark module in this package (one with a ``run``), by name."""
    names = (info.name for info in pkgutil.iter_modules(bench.__path__))
    return sorted(name for name in names if not name.startswith("_") and _runner(name))


def _runner(name: str) -> Callable[[bool], list[Row]] | None:
    """The module's ``run``; None for helper modules shared by the benchmarks."""
    run = getattr(importlib.import_module(f"bench.{name}"), "run", None)
    return cast(Callable[[bool], list[Row]], run) if callable(run) else None


def run_module(name: str, *, quick: bool) -> list[Row]:
    run = _runner(name)
    if run is None:
        raise SystemExit(f"bench.{name} has no run(quick) function")
    return run(quick)


def table(rows: Sequence[Row]) -> str:
    """Rows as aligned text columns, in the order the keys first appear."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    cells = [[_cell(row.get(key, "")) for key in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller cases")
    parser.add_argument("modules", nargs="*", help=f"default: all ({', '.join(modules())})")
    args = parser.parse_args(argv)
    names = args.modules or modules()
    results: dict[str, list[Row]] = {}
    for name in names:
        print(f"== {name}", flush=True)
        results[name] = run_module(name, quick=args.quick)
        print(table(results[name]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    record = _previous() if args.modules else {}
    record.update(
        at=at,
        quick=args.quick,
        machine={"python": sys.version.split()[0], "platform": platform.platform()},
        cpus=os.cpu_count(),
    )
    record.setdefault("results", {}).update(results)
    runs = record.setdefault("runs", {})
    runs.update({name: {"at": at, "quick": args.quick} for name in results})
    RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"saved {RESULTS}")
    return 0


def _previous() -> dict[str, Any]:
    """The last results, so that running some modules keeps the others' figures (each
    module's own time and mode are under ``runs``)."""
    try:
        previous = json.loads(RESULTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


if __name__ == "__main__":
    raise SystemExit(main())
