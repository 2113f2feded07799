"""``roundtable ask``: one run in the terminal, printed as it happens and saved as a transcript.

The question is an argument, or stdin with ``-`` (bounded: a huge input is refused before it is
held whole). ``--json`` prints the transcript's own lines instead (``transcripts.json_line``);
``--doc`` files join memory for this run only. Ctrl-C asks the run to stop at its next
boundary, and the run's stop code becomes the exit code (``exits.EXIT_CODES``).

Owns this command only; building and running a run is ``conversations``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from roundtable.common.errors import ConfigError
from roundtable.conversations.assemble import preflight, start_observing
from roundtable.conversations.datafolder import check_data_folder
from roundtable.conversations.library import collect, configure
from roundtable.conversations.modes import MODES
from roundtable.conversations.participant import MAX_QUESTION_CHARS
from roundtable.conversations.settings import load_settings
from roundtable.terminal.arguments import positive
from roundtable.terminal.exits import EPILOG, EXIT_CODES
from roundtable.terminal.memory import add_run_documents, open_memory_or_warn
from roundtable.terminal.render import TerminalRenderer
from roundtable.terminal.transcripts import JSON_HELP, json_line
from roundtable.transcripts.events import LiveEvent

__all__ = ["add_command"]

STDIN_SLACK = 4096
"""Characters of surrounding whitespace a question read from stdin may carry beyond the limit."""


def add_command(commands: Any) -> None:
    """Add ``ask`` to the top-level subparsers."""
    ask = commands.add_parser(
        "ask",
        help="run a debate in the terminal",
        description="The team takes QUESTION (a debate, a pipeline or a panel); the run is "
        "printed as it happens and saved as a transcript.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ask.add_argument(
        "question",
        help=f"the question; - reads it from stdin (at most {MAX_QUESTION_CHARS} characters)",
    )
    ask.add_argument(
        "--max-turns",
        type=positive,
        default=None,
        metavar="N",
        help="stop after N agent turns at most",
    )
    ask.add_argument(
        "--transcript",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to save it (default: the data folder)",
    )
    ask.add_argument(
        "--context-window",
        type=positive,
        default=None,
        metavar="TOKENS",
        help="tokens of every model's window (overrides the endpoints')",
    )
    ask.add_argument(
        "--roles", default=None, metavar="A,B", help="comma-separated subset of the team's roles"
    )
    ask.add_argument(
        "--team",
        default=None,
        metavar="NAME|PATH",
        help="a team by name (see `roundtable teams list`) or a team file (YAML); "
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
    ask.add_argument("--json", action="store_true", help=JSON_HELP)
    ask.add_argument(
        "--doc",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a document for this run only (PDF, DOCX, HTML, Markdown, text); repeatable",
    )
    ask.set_defaults(func=_ask)


def _ask(args: argparse.Namespace) -> int:
    question = _read_stdin(sys.stdin) if args.question == "-" else args.question
    overrides: dict[str, object] = {}
    if args.context_window:
        overrides["context_window"] = args.context_window
    settings = load_settings(**overrides)
    check_data_folder(settings.data_dir, settings.transcripts_dir)
    start_observing(settings)
    setup = configure(
        team=args.team,
        mode=args.mode,
        max_turns=args.max_turns,
        roles=[r.strip() for r in args.roles.split(",")] if args.roles else None,
        settings=settings,
        demo=args.demo,
    )
    asyncio.run(preflight(setup.settings, setup.cast))
    store = open_memory_or_warn(setup.settings)
    added: list[str] = []
    try:
        if args.doc:
            added = add_run_documents(store, args.doc)
        run = setup.build(question, transcript=args.transcript, memory=store)
        show: Callable[[LiveEvent], None] = json_line if args.json else TerminalRenderer()

        async def drive() -> int:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, run.request_stop, "stopped with Ctrl-C")
            result = await collect(run, on_event=show)
            return EXIT_CODES[result.stop.code]

        code = asyncio.run(drive())
    finally:
        if store is not None:
            for source in added:
                store.remove_document(source)
            store.close()
    print(f"Transcript: {run.transcript_path}", file=sys.stderr)
    return code


def _read_stdin(stream: TextIO) -> str:
    """The question piped in, bounded: a huge input is refused before it is held whole."""
    try:
        text = stream.read(MAX_QUESTION_CHARS + STDIN_SLACK)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the question on stdin is not UTF-8 text (byte {exc.start})") from exc
    if len(text.strip()) > MAX_QUESTION_CHARS or len(text) == MAX_QUESTION_CHARS + STDIN_SLACK:
        raise ConfigError(
            f"the question on stdin is longer than the limit of {MAX_QUESTION_CHARS} characters"
        )
    if not text.strip():
        raise ConfigError("the question on stdin is empty: ask something")
    return text
