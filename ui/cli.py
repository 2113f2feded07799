"""``roundtable ui`` / ``python -m roundtable.ui``: start the browser UI and print its address.

Also ``python -m roundtable.ui hash-password`` to make a password hash for ``ROUNDTABLE_USERS``.
``add_ui_command`` plugs the same options into another argparse tree without importing
Chainlit (it is imported only by the server process).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from roundtable.common.errors import ConfigError
from roundtable.conversations import check_data_folder, load_settings
from roundtable.ui.auth import hash_password
from roundtable.ui.config import load_ui_settings
from roundtable.ui.server import DEFAULT_HOST, DEFAULT_PORT, free_port, launch, url
from roundtable.ui.supervise import Supervisor


def add_ui_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ui`` to a subcommand parser; its ``func(args) -> int`` runs it."""
    parser = subparsers.add_parser("ui", help="start the browser UI")
    _ui_options(parser)
    parser.set_defaults(func=run_ui)


def _ui_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")


def run_ui(args: argparse.Namespace) -> int:
    """Start the server, print its URL, wait until it ends (Ctrl-C stops it)."""
    settings = load_settings()
    check_data_folder(settings.data_dir, settings.transcripts_dir)
    users = load_ui_settings().all_users(settings.data_dir)
    port = free_port(args.host) if args.port == 0 else args.port
    # A TERM or INT to us (a service manager, `kill`, Ctrl-C) reaches the server and is
    # waited for: handled from before the server starts, so it never orphans it.
    with Supervisor() as supervisor:
        teams = (settings.teams_dir, settings.team)
        process = launch(args.host, port, users, settings.data_dir, teams=teams)
        supervisor.adopt(process)
        print(f"Roundtable UI: {url(args.host, port)}  (data: {settings.data_dir})", flush=True)
        return supervisor.wait()


def _hash(args: argparse.Namespace) -> int:
    password = getpass.getpass("Password: ")
    if not password or password != getpass.getpass("Again: "):
        print("ui: error: the passwords are empty or differ", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m roundtable.ui", description="Roundtable's browser UI."
    )
    _ui_options(parser)
    parser.set_defaults(func=run_ui)
    commands = parser.add_subparsers(dest="command")
    hashing = commands.add_parser("hash-password", help="print a hash for ROUNDTABLE_USERS")
    hashing.set_defaults(func=_hash)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"roundtable ui: error: {exc}", file=sys.stderr)
        return 2
