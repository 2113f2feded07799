"""``roundtable teams``: list the teams, show one as YAML to copy and edit, check team files.

``show`` prints the team file itself, comments and all, so ``roundtable teams show default >
mine.yaml`` gives a file to edit that loads back as the same team. ``check`` prints one line
per file: ``PATH: ok`` or the file's problem as ``PATH:LINE: field 'F': message``, and exits 2
when any file has one.

Owns these commands only; team files and their rules are ``agents.team``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from roundtable.agents import Team, builtin_teams_dir, find_team, load_team, team_files
from roundtable.common.bounded import MAX_CONFIG_BYTES, read_text
from roundtable.common.errors import ConfigError
from roundtable.conversations.modes import MODES
from roundtable.conversations.settings import load_settings

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    """Add ``teams`` and its subcommands to the top-level subparsers."""
    teams = commands.add_parser("teams", help="list, show and check teams")
    sub = teams.add_subparsers(
        dest="teams_command", required=True, metavar="COMMAND", help="what to do"
    )
    lst = sub.add_parser("list", help="every team: name, size, description, where it comes from")
    lst.set_defaults(func=_list)
    show = sub.add_parser("show", help="print a team file (to copy and edit)")
    show.add_argument("team", help="a team by name, or a team file")
    show.set_defaults(func=_show)
    check = sub.add_parser("check", help="validate team files")
    check.add_argument("paths", nargs="+", type=Path, help="team files (YAML)")
    check.set_defaults(func=_check)


def _list(args: argparse.Namespace) -> int:
    settings = load_settings()
    shipped = builtin_teams_dir()
    for name, path in team_files(settings.teams_dir).items():
        where = "shipped" if path.parent == shipped else str(path)
        try:
            team = load_team(path)
        except ConfigError as exc:
            print(f"{name:<12}  ? roles  {where}  (invalid: {exc})")
            continue
        print(f"{name:<12} {len(team.roles):>2} roles  {where}  {team.description}".rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = load_settings()
    path = find_team(args.team, settings.teams_dir)
    load_team(path)  # a broken file is refused, not shown as if it were a team
    sys.stdout.write(read_text(path, MAX_CONFIG_BYTES, "team file"))
    return 0


def _check(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        try:
            team = load_team(path)
        except ConfigError as exc:
            failed += 1
            print(exc)
            continue
        print(f"{path}: ok ({summary(team)})")
    return 2 if failed else 0


def summary(team: Team) -> str:
    """``team NAME, N roles, modes: ...`` (the modes the team can run)."""
    modes = []
    for mode in MODES:
        try:
            team.require(mode)
        except ConfigError:
            continue
        modes.append(mode)
    return f"team {team.name}, {len(team.roles)} roles, modes: {', '.join(modes)}"
