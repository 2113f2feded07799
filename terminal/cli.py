"""The ``roundtable`` command: ask, replay, list (and, from other packages, ui and memory).

Every expected failure is one line on stderr and a non-zero exit code, never a traceback:
2 for a configuration mistake or bad input, 3 for an infrastructure fault, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from roundtable.agents import EndpointSettings, Team, find_team, load_team
from roundtable.common.errors import ConfigError, InfraError, RoundtableError
from roundtable.conversations.assemble import preflight, start_observing
from roundtable.conversations.modes import MODES
from roundtable.conversations.options import RunOptions
from roundtable.conversations.recall import open_memory, origin
from roundtable.conversations.runs import build_run
from roundtable.conversations.settings import Settings, load_settings
from roundtable.memory import MemoryStore
from roundtable.terminal.render import TerminalRenderer
from roundtable.transcripts.catalogue import catalogue
from roundtable.transcripts.replay import replay
from roundtable.transcripts.store import TornTailWarning, load


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    logging.getLogger("autogen_core").setLevel(logging.WARNING)
    logging.getLogger("autogen_agentchat").setLevel(logging.WARNING)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"roundtable: error: {exc}", file=sys.stderr)
        return 2
    except InfraError as exc:
        print(f"roundtable: error: {exc}", file=sys.stderr)
        return 3
    except RoundtableError as exc:
        print(f"roundtable: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roundtable", description="Four specialist agents debate your question."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", help="run a debate in the terminal")
    ask.add_argument("question")
    ask.add_argument("--max-turns", type=_positive, default=None)
    ask.add_argument("--transcript", type=Path, default=None, help="where to save it")
    ask.add_argument("--context-window", type=_positive, default=None)
    ask.add_argument("--roles", default=None, help="comma-separated subset of the roles")
    ask.add_argument(
        "--team",
        default=None,
        help="a team by name (see `roundtable teams`) or a team file (YAML); "
        "default: the configured team",
    )
    ask.add_argument(
        "--mode",
        choices=MODES,
        default="debate",
        help="debate (default); pipeline: the team's roles in order, each building on the last; "
        "panel: a plan, its sub-questions in parallel, then one answer",
    )
    ask.add_argument(
        "--demo", action="store_true", help="a scripted debate: no model, to see how it works"
    )
    ask.set_defaults(func=_ask)

    rep = commands.add_parser("replay", help="replay a saved transcript")
    rep.add_argument("path", type=Path)
    rep.add_argument("--speed", type=float, default=None, help="keep the pacing, N times faster")
    rep.set_defaults(func=_replay)

    lst = commands.add_parser("list", help="list saved transcripts")
    lst.set_defaults(func=_list)

    ui = commands.add_parser("ui", help="start the browser UI (http://127.0.0.1:8000)")
    ui.add_argument("--host", help="address to bind (default loopback)")
    ui.add_argument("--port", help="port (0: any free one)")
    ui.set_defaults(func=_ui)

    mem = commands.add_parser("memory", help="the team's shared memory")
    mem_commands = mem.add_subparsers(dest="memory_command", required=True)
    add = mem_commands.add_parser("add", help="add text or Markdown documents")
    add.add_argument("paths", nargs="+", type=Path)
    add.set_defaults(func=_memory_add)
    search = mem_commands.add_parser("search", help="search memory, best hits first")
    search.add_argument("query")
    search.add_argument("-k", type=_positive, default=5)
    search.add_argument("--min-score", type=float, default=0.0)
    search.set_defaults(func=_memory_search)
    stats = mem_commands.add_parser("stats", help="count entries by kind")
    stats.set_defaults(func=_memory_stats)
    return parser


def _ui(args: argparse.Namespace) -> int:
    # ui depends on conversations, never the reverse: it runs as its own module.
    options = [f"--{name}={value}" for name in ("host", "port") if (value := getattr(args, name))]
    return subprocess.call([sys.executable, "-m", "roundtable.ui", *options])


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _ask(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.context_window:
        overrides["context_window"] = args.context_window
    if args.demo:
        overrides["endpoints"] = {"default": EndpointSettings(kind="scripted")}
        overrides["roles"] = {}
    settings = load_settings(**overrides)
    start_observing(settings)
    roles = [r.strip() for r in args.roles.split(",")] if args.roles else None
    team_file = _team_file(args.team)
    options = RunOptions(
        mode=args.mode,
        team=None if team_file is not None or args.team is None else args.team,
        max_turns=args.max_turns,
        roles=roles,
    )
    ready = options.apply(settings, team=team_file)
    asyncio.run(preflight(ready.settings, ready.team))
    store = _open_memory_or_warn(settings)
    try:
        debate = build_run(
            settings,
            args.question,
            options,
            team=ready.team,
            transcript_path=args.transcript,
            memory=store,
        )
        render = TerminalRenderer()

        async def run() -> None:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, debate.request_stop, "stopped with Ctrl-C")
            async for event in debate.run():
                render(event)

        asyncio.run(run())
    finally:
        if store is not None:
            store.close()
    print(f"Transcript: {debate.transcript_path}", file=sys.stderr)
    return 0


def _team_file(spec: str | None) -> Team | None:
    """A team given as a path is loaded here; a name is left to the options."""
    if spec is None or ("/" not in spec and not spec.endswith((".yaml", ".yml"))):
        return None
    return load_team(find_team(spec))


def _open_memory_or_warn(settings: Settings) -> MemoryStore | None:
    """The memory store; a debate still runs without it when another process owns it."""
    if not settings.memory.enabled:
        return None
    try:
        return open_memory(settings.memory, settings.data_dir)
    except InfraError as exc:
        print(f"roundtable: warning: memory off for this run: {exc}", file=sys.stderr)
        return None


def _memory_add(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        passages = store.add_documents(args.paths)
    files = len({p.source for p in passages})
    print(f"Added {len(passages)} passage(s) from {files} file(s).")
    return 0


def _memory_search(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        hits = store.search(args.query, include_past=True, k=args.k, min_score=args.min_score)
    if not hits:
        print("No hits.")
    for hit in hits:
        text = " ".join(hit.text.split())
        print(f"{hit.score:.3f}  {origin(hit)}")
        print(f"       {text[:200]}{'...' if len(text) > 200 else ''}")
    return 0


def _memory_stats(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        stats = store.stats()
    print(f"messages: {stats.message}")
    print(f"documents (passages): {stats.document}")
    print(f"pruned turns: {stats.pruned}")
    print(f"conversations: {stats.conversations}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    if args.speed is not None and args.speed <= 0:
        raise ConfigError(f"--speed must be positive, got {args.speed}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornTailWarning)
        transcript = load(args.path)
    for warning in caught:
        print(f"roundtable: warning: {warning.message}", file=sys.stderr)
    render = TerminalRenderer()

    async def run() -> None:
        async for event in replay(transcript, speed=args.speed):
            render(event)

    asyncio.run(run())
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = catalogue(settings.transcripts_dir)
    if not rows:
        print(f"No transcripts in {settings.transcripts_dir}")
        return 0
    for row in rows:
        if row.problem:
            print(f"{row.path.name}  (unreadable: {row.problem})")
            continue
        when = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at else "?"
        print(f"{when}  {row.turns:>3} turns  {row.stop:<40.40}  {row.question[:60]}")
        print(f"                  {row.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
