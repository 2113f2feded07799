"""``roundtable replay``, ``roundtable list`` and ``roundtable transcripts export/import``.

``replay`` feeds a saved transcript to the same renderer a live run uses (or, with ``--json``,
prints its lines as they are: ``json_line``, which ``ask --json`` uses too); a torn last line is
a warning, not a failure. ``list`` shows every saved run with its owner, or one user's; with
``--tree``, each fork indented under the run it was forked from (``transcripts.fork_tree``). Both go
through the configured store (``ROUNDTABLE_DATABASE_URL``: PostgreSQL, else the data folder's
files); ``replay FILE.jsonl`` reads that file whatever the store. ``transcripts export --to DIR``
writes every run of the store to JSONL files in DIR; ``transcripts import DIR`` puts DIR's files
into the store. Both are idempotent (a run already there is skipped, a shorter one completed),
and a broken file is one line on stderr with nothing of it written.

Owns these commands only; the stores, the file format and replay are ``transcripts``'s.
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
from roundtable.transcripts.catalogue import TranscriptSummary
from roundtable.transcripts.events import LiveEvent, TokenDelta
from roundtable.transcripts.fork_tree import forest
from roundtable.transcripts.lines import TranscriptError
from roundtable.transcripts.replay import replay
from roundtable.transcripts.store import TornTailWarning, Transcript, encode, load
from roundtable.transcripts.stores import FileStore, TranscriptStore, open_store

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

    moves = commands.add_parser(
        "transcripts", help="move transcripts between the files and the database"
    )
    sub = moves.add_subparsers(dest="transcripts_command", required=True, help="export or import")
    export = sub.add_parser(
        "export", help="write every run of the configured store to JSONL files in a folder"
    )
    export.add_argument("--to", type=Path, required=True, help="the folder (created if missing)")
    export.set_defaults(func=_export)
    imports = sub.add_parser("import", help="put a folder's JSONL transcripts into the store")
    imports.add_argument("folder", type=Path, help="the folder of .jsonl transcripts")
    imports.set_defaults(func=_import)


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
        transcript = _load(args.path)
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
    store = _store()

    async def listed() -> list[TranscriptSummary]:
        try:
            return await (store.catalogue() if args.user is None else store.owned(args.user))
        finally:
            await store.close()

    rows = asyncio.run(listed())
    if not rows:
        whose = "" if args.user is None else f" of user {args.user!r}"
        print(f"No transcripts{whose} in {store.where}")
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


def _load(given: Path) -> Transcript:
    """A file as given, or a run id (``20261205-113135-372d27``) in the configured store."""
    if given.suffix or given.parent != Path(".") or given.exists():
        return load(given)
    store = _store()

    async def loaded() -> Transcript:
        try:
            return await store.load(given.name)
        finally:
            await store.close()

    return asyncio.run(loaded())


def _store() -> TranscriptStore:
    """The configured store: PostgreSQL when ``ROUNDTABLE_DATABASE_URL`` names it, else the
    data folder's files (checked to be a usable folder)."""
    settings = load_settings()
    store = open_store(settings.database_url, settings.transcripts_dir)
    if isinstance(store, FileStore):
        check_data_folder(settings.data_dir, settings.transcripts_dir)
    return store


def _export(args: argparse.Namespace) -> int:
    return asyncio.run(_move(_store(), FileStore(args.to), export=True))


def _import(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise ConfigError(f"{args.folder}: not a folder of transcripts")
    return asyncio.run(_move(FileStore(args.folder), _store(), export=False))


async def _move(source: TranscriptStore, target: TranscriptStore, *, export: bool) -> int:
    """Put every run of ``source`` into ``target`` (an export's folder is made by its first
    file); 1 when some could not be moved."""
    written = skipped = events = 0
    broken: list[str] = []
    try:
        for row in await source.catalogue():
            if row.problem is not None:
                broken.append(row.problem)
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a torn tail: its whole lines are moved
                    transcript = (  # a file is read as named (`ask --json > run.jsonl`)
                        load(row.path)
                        if isinstance(source, FileStore)
                        else await source.load(row.conversation_id)
                    )
                added = await target.put(transcript.header, transcript.events)
            except TranscriptError as exc:
                broken.append(str(exc))
                continue
            written, skipped = (written + 1, skipped) if added else (written, skipped + 1)
            events += added
    finally:
        await source.close()
        await target.close()
    for problem in broken:
        print(f"roundtable: skipped: {problem.splitlines()[0] if problem else ''}", file=sys.stderr)
    verb = "exported" if export else "imported"
    print(
        f"{verb} {written} transcripts ({events} events) to {target.where}; "
        f"{skipped} already there; {len(broken)} skipped"
    )
    return 1 if broken else 0
