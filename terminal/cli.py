"""The ``roundtable`` command: its parser, its entry point, and ``ui`` and ``mcp``.

Each group of subcommands lives in its own module and adds itself to the parser: ``ask``,
``transcripts`` (``replay``, ``list``), ``teams``, ``users``, ``memory``; ``eval`` comes from
``evaluation``. This module owns the top level only: the order of the commands, ``--version``,
and ``main``, which turns every expected failure into one line on stderr and a non-zero exit
code, never a traceback. The exit code says how a run ended (``exits``, also in ``--help``).

``--json`` prints one JSON object per line and nothing else on stdout: the transcript's own
lines (the header, then every committed event), so the output is itself a transcript file.
Token deltas are never printed as JSON: the ``message`` event holds the whole text.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from roundtable.common.errors import ConfigError, InfraError, RoundtableError
from roundtable.conversations.observe import adopt_libraries
from roundtable.conversations.settings import load_settings
from roundtable.evaluation import add_command as add_eval
from roundtable.terminal import ask, memory, teams, transcripts, users
from roundtable.terminal.exits import CONFIG, EPILOG, EXIT_CODES, FAILED, INFRA, STOPPED

__all__ = ["EPILOG", "EXIT_CODES", "main", "version"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    # AutoGen logs each failed reply with a traceback, which Python would print on stderr for
    # want of a handler; the run records the fault, so its loggers join ours (debug at most).
    adopt_libraries()
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"roundtable: error: {exc}", file=sys.stderr)
        return CONFIG
    except InfraError as exc:
        print(f"roundtable: error: {exc}", file=sys.stderr)
        return INFRA
    except RoundtableError as exc:
        print(f"roundtable: error: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:  # Ctrl-C before a run started (a run stops itself softly)
        print("roundtable: stopped", file=sys.stderr)
        return STOPPED


def version() -> str:
    """The installed version of Roundtable."""
    try:
        return metadata.version("roundtable")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roundtable",
        description="A team of specialist agents debates your question.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"roundtable {version()}", help="show the version"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )
    ask.add_command(commands)
    transcripts.add_commands(commands)
    teams.add_commands(commands)
    users.add_commands(commands)
    add_eval(commands)

    ui = commands.add_parser("ui", help="start the browser UI (http://127.0.0.1:8000)")
    ui.add_argument("--host", help="address to bind (default loopback)")
    ui.add_argument("--port", help="port (0: any free one)")
    ui.set_defaults(func=_ui)

    mcp = commands.add_parser(
        "mcp",
        help="serve Roundtable to an MCP client over stdio (tools: ask, list_runs, ...)",
        description="An MCP server on stdin/stdout for agent tools: ask a team, list runs, "
        "read transcripts (also as resources), add documents to memory.",
    )
    mcp.set_defaults(func=_mcp)

    memory.add_commands(commands)
    return parser


def _ui(args: argparse.Namespace) -> int:
    """Become the UI launcher (``python -m roundtable.ui``): ui depends on conversations,
    never the reverse, so it runs as its own module; replacing this process, rather than
    waiting on a child, lets a SIGTERM to ``roundtable ui`` reach the launcher, which passes it
    on to Chainlit (a child would be orphaned, with the server still running)."""
    options = [f"--{name}={value}" for name in ("host", "port") if (value := getattr(args, name))]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "roundtable.ui", *options])


def _mcp(args: argparse.Namespace) -> int:
    """Serve MCP over stdio until the client hangs up; stdout is the protocol's alone."""
    from roundtable.api.mcp_server import serve_stdio  # the MCP SDK loads for this only

    settings = load_settings()
    store = memory.open_memory_or_warn(settings)
    try:
        serve_stdio(settings, store)
    finally:
        if store is not None:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
