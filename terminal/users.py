"""``roundtable users``: users and their API tokens, kept in ``<data_dir>/users.json``.

``add NAME`` reads the password from stdin (one line) when stdin is not a terminal, else asks
twice with a hidden prompt; ``list`` and ``remove NAME`` manage users (removing one revokes
their tokens). ``token NAME`` issues an API token and prints it once (only its SHA-256 is
kept); ``tokens`` lists token ids and users, never a token; ``revoke ID`` revokes one. Users
added here log in to the browser beside ``ROUNDTABLE_USERS``; a token's API calls see only
that user's runs.

Owns these commands only; the file and its rules are ``common.accounts``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from roundtable.common.accounts import (
    accounts_path,
    add_user,
    check_name,
    issue_token,
    read_accounts,
    remove_user,
    revoke_token,
)
from roundtable.common.errors import ConfigError
from roundtable.common.passwords import hash_password
from roundtable.conversations.settings import load_settings

__all__ = ["add_commands"]

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024


def add_commands(commands: Any) -> None:
    """Add ``users`` and its subcommands to the top-level subparsers."""
    users = commands.add_parser("users", help="users of the browser UI and their API tokens")
    sub = users.add_subparsers(
        dest="users_command", required=True, metavar="COMMAND", help="what to do"
    )
    commands_of: list[tuple[str, str, str | None, Callable[[argparse.Namespace], int]]] = [
        ("add", "add a user (password from stdin or a prompt)", "the user's name", _add),
        ("list", "the users, one a line", None, _list),
        ("remove", "remove a user and revoke their tokens", "the user's name", _remove),
        ("token", "issue an API token for a user (printed once)", "the token's user", _token),
        ("tokens", "the issued tokens: id, user, date (never a token)", None, _tokens),
        ("revoke", "revoke a token by its id (as `tokens` lists it)", "the token's id", _revoke),
    ]
    for name, text, argument, func in commands_of:
        parser = sub.add_parser(name, help=text)
        if argument is not None:
            parser.add_argument("id" if name == "revoke" else "name", help=argument)
        parser.set_defaults(func=func)


def _path() -> Any:
    return accounts_path(load_settings().data_dir)


def _add(args: argparse.Namespace) -> int:
    name = check_name(args.name)
    password = _read_password(name)
    new = add_user(_path(), name, hash_password(password))
    print(f"{'Added' if new else 'Changed the password of'} user {name}.")
    return 0


def _read_password(name: str) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline(MAX_PASSWORD_CHARS + 2).rstrip("\r\n")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ConfigError(f"the password must be at most {MAX_PASSWORD_CHARS} characters")
    return password


def _list(_args: argparse.Namespace) -> int:
    accounts = read_accounts(_path())
    for name in sorted(accounts.users):
        tokens = sum(1 for t in accounts.tokens if t.user == name)
        print(f"{name}  ({tokens} token(s))")
    if not accounts.users:
        print("No users (the browser serves the local user alone).")
    return 0


def _remove(args: argparse.Namespace) -> int:
    if not remove_user(_path(), args.name):
        raise ConfigError(f"no user {args.name!r} (see `roundtable users list`)")
    print(f"Removed user {args.name} and revoked their tokens.")
    return 0


def _token(args: argparse.Namespace) -> int:
    token, record = issue_token(_path(), args.name)
    print(f"Token {record.id} for {record.user} (shown once; keep it secret):", file=sys.stderr)
    print(token)
    return 0


def _tokens(_args: argparse.Namespace) -> int:
    accounts = read_accounts(_path())
    for record in accounts.tokens:
        print(f"{record.id}  {record.user}  {record.created_at:%Y-%m-%d %H:%M}")
    if not accounts.tokens:
        print("No tokens.")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = revoke_token(_path(), args.id)
    if record is None:
        raise ConfigError(f"no token {args.id!r} (see `roundtable users tokens`)")
    print(f"Revoked token {record.id} of {record.user}.")
    return 0
