"""``roundtable replay`` and ``roundtable list``: saved transcripts, shown again or listed.

``replay`` feeds a saved transcript to the same renderer a live run uses (or, with ``--json``,
prints its lines as they are: ``json_line``, which ``ask --json`` uses too); a torn last line is
a warning, not a failure. ``list`` shows every saved run with its owner, or one user's; with
``--tree``, each fork indented under the run it was forked from (``transcripts.fork_tree``).

Owns these commands only; the file format, its loading and replay are ``transcripts``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roundtable.common.errors import ConfigError
from roundtable.common.owners import owner_key, owns
from roundtable.conversations.datafolder import check_data_folder
from roundtable.conversations.settings import load_settings
from roundtable.terminal.render import TerminalRenderer
from roundtable.transcripts.catalogue import catalogue, owned
from roundtable.transcripts.events import LiveEvent, TokenDelta
from roundtable.transcripts.fork_tree import forest
from roundtable.transcripts.replay import replay
from roundtable.transcripts.store import TornTailWarning, encode, load

__all__ = ["JSON_HELP", "add_commands", "json_line"]

JSON_HELP = "print the transcript's JSON lines (header, then events; no token deltas) only"
USER_HELP = (
    "only this user's transcripts (`local`: the local user's); without it the CLI, run by "
    "whoever owns the data folder, sees every owner's, each line naming its owner"
)


def add_commands(commands: Any) -> None:
    """Add ``replay`` and ``list`` to the top-level subparsers."""
    rep = commands.add_parser("replay", help="replay a saved transcript")
    rep.add_argument(
        "path", type=Path, help="the transcript file (.jsonl), or a run id in the data folder"
    )
    rep.add_argument("--speed", type=float, default=None, help="keep the pacing, N times faster")
    rep.add_argument("--json", action="store_true", help=JSON_HELP)
    rep.add_argument("--user", default=None, help=USER_HELP)
    rep.set_defaults(func=_replay)

    lst = commands.add_parser("list", help="list saved transcripts, with their owners")
    lst.add_argument("--user", default=None, help=USER_HELP)
    lst.add_argument(
        "--tree",
        action="store_true",
        help="each fork indented under the transcript it was forked from",
    )
    lst.set_defaults(func=_list)


def json_line(event: LiveEvent) -> None:
    """One transcript line on stdout; token deltas are left out (the message holds them)."""
    if not isinstance(event, TokenDelta):
        sys.stdout.write(encode(event).decode("utf-8"))
        sys.stdout.flush()


def _replay(args: argparse.Namespace) -> int:
    if args.speed is not None and args.speed <= 0:
        raise ConfigError(f"--speed must be positive, got {args.speed}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornTailWarning)
        transcript = load(_transcript_path(args.path))
    if args.user is not None and not owns(args.user, transcript.header.owner):
        raise ConfigError(f"{args.path}: not a transcript of user {args.user!r}")
    for warning in caught:
        print(f"roundtable: warning: {warning.message}", file=sys.stderr)
    show: Callable[[LiveEvent], None] = json_line if args.json else TerminalRenderer()

    async def run() -> None:
        async for event in replay(transcript, speed=args.speed):
            show(event)

    asyncio.run(run())
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = load_settings()
    check_data_folder(settings.data_dir, settings.transcripts_dir)
    folder = settings.transcripts_dir
    rows = catalogue(folder) if args.user is None else owned(folder, args.user)
    if not rows:
        whose = "" if args.user is None else f" of user {args.user!r}"
        print(f"No transcripts{whose} in {folder}")
        return 0
    depths: dict[int, int] = {}
    if args.tree:
        placed = forest(rows)  # unreadable files and a second file of one id: after the trees
        depths = {id(node.summary): node.depth for node in placed}
        rows = [node.summary for node in placed] + [r for r in rows if id(r) not in depths]
    for row in rows:
        if row.problem:
            print(f"{row.path.name}  (unreadable: {row.problem})")
            continue
        when = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at else "?"
        owner = owner_key(row.owner)
        depth = depths.get(id(row), 0)
        indent = "  " * min(depth - 1, 20) + "└ " if depth else ""
        forked = f"  (forked at turn {row.fork_turn})" if depth else ""
        print(
            f"{indent}{when}  {row.turns:>3} turns  {owner:<12.12}  {row.stop:<40.40}  "
            f"{(row.fork_text if depth and row.fork_text else row.question)[:60]}{forked}"
        )
        print(f"{' ' * len(indent)}                  {row.path}")
    return 0


def _transcript_path(given: Path) -> Path:
    """A file as given, or a run id (``20261205-113135-372d27``) in the data folder."""
    if given.suffix or given.parent != Path(".") or given.exists():
        return given
    return load_settings().transcripts_dir / f"{given.name}.jsonl"
