"""``roundtable memory``: the team's shared memory from the terminal, and the store a run opens.

``add``, ``list``, ``remove``, ``search`` and ``stats`` each open the store, do one thing and
close it. ``open_memory_or_warn`` is how ``ask`` and ``mcp`` open it: a run goes on without
memory (with a warning) when another process owns the store. ``add_run_documents`` adds
``ask --doc`` files for one run and says which to remove after it.

Owns these commands only; the store and its rules are ``memory``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from roundtable.common.errors import ConfigError
from roundtable.conversations.assemble import open_memory_if_possible
from roundtable.conversations.recall import open_memory, origin
from roundtable.conversations.settings import Settings, load_settings
from roundtable.memory import MemoryStore, describe_added
from roundtable.terminal.arguments import positive

__all__ = ["add_commands", "add_run_documents", "open_memory_or_warn"]


def add_commands(commands: Any) -> None:
    """Add ``memory`` and its subcommands to the top-level subparsers."""
    mem = commands.add_parser("memory", help="the team's shared memory")
    mem_commands = mem.add_subparsers(
        dest="memory_command", required=True, metavar="COMMAND", help="what to do"
    )
    add = mem_commands.add_parser("add", help="add documents (PDF, DOCX, HTML, Markdown, text)")
    add.add_argument("paths", nargs="+", type=Path, help="the files to add")
    add.set_defaults(func=_add)
    listing = mem_commands.add_parser("list", help="the documents in memory")
    listing.set_defaults(func=_list)
    remove = mem_commands.add_parser("remove", help="forget a document's passages")
    remove.add_argument("source", help="the document's path, as `memory list` shows it")
    remove.set_defaults(func=_remove)
    search = mem_commands.add_parser("search", help="search memory, best hits first")
    search.add_argument("query", help="what to look for")
    search.add_argument("-k", type=positive, default=5, help="how many hits at most")
    search.add_argument(
        "--min-score", type=float, default=0.0, help="leave out hits scoring lower (0-1)"
    )
    search.set_defaults(func=_search)
    stats = mem_commands.add_parser("stats", help="count entries by kind")
    stats.set_defaults(func=_stats)


def open_memory_or_warn(settings: Settings) -> MemoryStore | None:
    """The memory store; a debate still runs without it when another process owns it (the
    terminal says so on stderr)."""
    return open_memory_if_possible(settings, warn=_warn_memory_off)


def _warn_memory_off(reason: str) -> None:
    print(f"roundtable: warning: memory off for this run: {reason}", file=sys.stderr)


def add_run_documents(store: MemoryStore | None, paths: list[Path]) -> list[str]:
    """Add ``--doc`` files for one run; the sources to remove after it (those not kept before)."""
    if store is None:
        raise ConfigError("--doc needs shared memory, which is off for this run")
    kept = {entry.source for entry in store.list_documents()}
    added = store.add_files(paths)
    print(describe_added(added), file=sys.stderr)
    return [document.source for document, _ in added if document.source not in kept]


def _add(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        added = store.add_files(args.paths)
    if not any(passages for _, passages in added):  # never "Added 0 passage(s)" and exit 0
        raise ConfigError("memory: nothing added: the files hold no text")
    print(describe_added(added))
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        entries = store.list_documents()
    if not entries:
        print("No documents.")
    for entry in entries:
        print(f"{entry.passages:5d} passage(s)  {entry.sha256[:12]}  {entry.source}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        removed = store.remove_document(args.source)
    if not removed:
        raise ConfigError(f"memory: no document {args.source} (see `roundtable memory list`)")
    print(f"Removed {removed} passage(s) of {args.source}.")
    return 0


def _search(args: argparse.Namespace) -> int:
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


def _stats(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        stats = store.stats()
    print(f"messages: {stats.message}")
    print(f"documents (passages): {stats.document}")
    print(f"pruned turns: {stats.pruned}")
    print(f"conversations: {stats.conversations}")
    return 0
