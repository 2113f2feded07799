"""The ``roundtable eval`` command: its options and what it does with them.

``terminal/cli.py`` only adds this subcommand (``add_command``); the work is here. Settings
for each ``--config FILE`` are read the way ``ROUNDTABLE_CONFIG`` would read that file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roundtable.common.errors import ConfigError
from roundtable.conversations import Settings, load_settings
from roundtable.evaluation.questions import load_questions
from roundtable.evaluation.report import build, write
from roundtable.evaluation.rescore import CONFIG, rescore
from roundtable.evaluation.runner import Config, Plan, run_all

MAX_REPEAT = 100


def add_command(commands: Any) -> None:
    """Add ``eval`` to the ``roundtable`` command's subcommands."""
    ev = commands.add_parser(
        "eval",
        help="run a question set and report debate quality (or score saved transcripts)",
        description="Run every question of QUESTIONS (YAML) and write the transcripts, "
        "report.md, report.json and chart.svg into --out.",
    )
    ev.add_argument("questions", nargs="?", type=Path, help="the question set (YAML)")
    ev.add_argument(
        "--team", default=None, metavar="NAME|PATH", help="the team (default: configured)"
    )
    ev.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE.toml",
        help="a settings file to run with; give two to compare them (default: current settings)",
    )
    ev.add_argument("--repeat", type=int, default=1, metavar="N", help="run each question N times")
    ev.add_argument("--out", type=Path, default=None, metavar="DIR", help="where to write")
    ev.add_argument(
        "--judge", default=None, metavar="ENDPOINT", help="an endpoint that scores each answer"
    )
    ev.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        metavar="DIR",
        help="score the saved transcripts in DIR instead of running (QUESTIONS then gives "
        "reference answers)",
    )
    ev.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run (or score) and write the report; the report's path on stdout."""
    out: Path = args.out or Path(f"eval-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    questions = load_questions(args.questions) if args.questions is not None else None
    if args.transcripts is not None:
        runs, skipped = rescore(args.transcripts, questions)
        for line in skipped:
            print(f"roundtable: skipped {line}", file=sys.stderr)
        report = build(str(args.transcripts), [CONFIG], 1, runs, [], skipped)
    else:
        if questions is None:
            raise ConfigError("eval needs a question file (QUESTIONS) or --transcripts DIR")
        if not 1 <= args.repeat <= MAX_REPEAT:
            raise ConfigError(f"--repeat must be 1 to {MAX_REPEAT}, got {args.repeat}")
        configs = _configs(args.config, args.judge)
        plan = Plan(questions, configs, out, args.team, args.repeat, args.judge)
        runs, base = asyncio.run(run_all(plan, lambda line: print(line, file=sys.stderr)))
        names = [c.name for c in configs]
        report = build(str(args.questions), names, args.repeat, runs, base)
    for path in write(report, out):
        print(path)
    return 0


def _configs(files: list[Path], judge: str | None) -> list[Config]:
    if len(files) > 2:
        raise ConfigError("--config: give at most two settings files to compare")
    configs = [Config("current", load_settings())] if not files else []
    for index, path in enumerate(files):
        name = (
            path.stem if not configs or configs[0].name != path.stem else f"{path.stem}-{index + 1}"
        )
        configs.append(Config(name, settings_from(path)))
    for config in configs:
        if judge is not None and judge not in config.settings.endpoints:
            raise ConfigError(f"--judge {judge}: no such endpoint in {config.name}'s settings")
    return configs


def settings_from(path: Path) -> Settings:
    """The settings with ``path`` as the settings file (as ``ROUNDTABLE_CONFIG`` gives it)."""
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    with _env("ROUNDTABLE_CONFIG", str(path)):
        return load_settings()


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before
