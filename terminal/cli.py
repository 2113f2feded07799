"""The ``roundtable`` command: ask, replay, list, teams, users; from other packages: ui, memory.

Every expected failure is one line on stderr and a non-zero exit code, never a traceback.
The exit code says how a run ended (``EXIT_CODES``, also in ``--help``):

====  =========================================================================
0     answered: accepted (debate) or completed (pipeline, panel)
1     the run failed: stop code ``error`` or ``no_speaker`` (or a model fault)
2     a configuration mistake or bad input (a setting, a team file, a flag), or a data folder
      that is not a writable folder (a file, a read-only disk): ``ask``, ``list`` and ``ui``
3     an infrastructure fault (a model endpoint unreachable, a disk full)
4     a budget ran out: ``max_turns``, ``token_budget`` or ``wall_clock``
5     a partial answer: a panel answered with some branches missing
130   the person stopped it: Ctrl-C (``user_stop``), as the shell's SIGINT code
====  =========================================================================

``--json`` prints one JSON object per line and nothing else on stdout: the transcript's own
lines (the header, then every committed event), so the output is itself a transcript file.
Token deltas are never printed as JSON: the ``message`` event holds the whole text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

from roundtable.common.errors import ConfigError, InfraError, RoundtableError
from roundtable.common.owners import owner_key, owns
from roundtable.conversations.assemble import preflight, start_observing
from roundtable.conversations.datafolder import check_data_folder
from roundtable.conversations.library import collect, configure
from roundtable.conversations.modes import MODES
from roundtable.conversations.observe import adopt_libraries
from roundtable.conversations.participant import MAX_QUESTION_CHARS
from roundtable.conversations.recall import open_memory, origin
from roundtable.conversations.settings import Settings, load_settings
from roundtable.evaluation import add_command as add_eval
from roundtable.memory import MemoryStore, describe_added
from roundtable.terminal import teams, users
from roundtable.terminal.render import TerminalRenderer
from roundtable.transcripts.catalogue import catalogue, owned
from roundtable.transcripts.events import LiveEvent, StopCode, TokenDelta
from roundtable.transcripts.replay import replay
from roundtable.transcripts.store import TornTailWarning, encode, load

ANSWERED, FAILED, CONFIG, INFRA, BUDGET, PARTIAL, STOPPED = 0, 1, 2, 3, 4, 5, 130
EXIT_CODES: dict[StopCode, int] = {
    "accepted": ANSWERED,
    "completed": ANSWERED,
    "error": FAILED,
    "no_speaker": FAILED,
    "max_turns": BUDGET,
    "token_budget": BUDGET,
    "wall_clock": BUDGET,
    "partial": PARTIAL,
    "user_stop": STOPPED,
}
"""The exit code of each way a run ends."""
EPILOG = """exit codes:
  0    answered (accepted, completed)
  1    the run failed (error, no_speaker)
  2    a configuration mistake or bad input, or a data folder that is not writable
  3    an infrastructure fault (a model endpoint unreachable, a disk full)
  4    a budget ran out (max_turns, token_budget, wall_clock)
  5    a partial answer (a panel with branches missing)
  130  stopped by the person (Ctrl-C, user_stop)
"""
JSON_HELP = "print the transcript's JSON lines (header, then events; no token deltas) only"
USER_HELP = (
    "only this user's transcripts (`local`: the local user's); without it the CLI, run by "
    "whoever owns the data folder, sees every owner's, each line naming its owner"
)
STDIN_SLACK = 4096
"""Characters of surrounding whitespace a question read from stdin may carry beyond the limit."""


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
        type=_positive,
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
        type=_positive,
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
    lst.set_defaults(func=_list)

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

    mem = commands.add_parser("memory", help="the team's shared memory")
    mem_commands = mem.add_subparsers(
        dest="memory_command", required=True, metavar="COMMAND", help="what to do"
    )
    add = mem_commands.add_parser("add", help="add documents (PDF, DOCX, HTML, Markdown, text)")
    add.add_argument("paths", nargs="+", type=Path, help="the files to add")
    add.set_defaults(func=_memory_add)
    listing = mem_commands.add_parser("list", help="the documents in memory")
    listing.set_defaults(func=_memory_list)
    remove = mem_commands.add_parser("remove", help="forget a document's passages")
    remove.add_argument("source", help="the document's path, as `memory list` shows it")
    remove.set_defaults(func=_memory_remove)
    search = mem_commands.add_parser("search", help="search memory, best hits first")
    search.add_argument("query", help="what to look for")
    search.add_argument("-k", type=_positive, default=5, help="how many hits at most")
    search.add_argument(
        "--min-score", type=float, default=0.0, help="leave out hits scoring lower (0-1)"
    )
    search.set_defaults(func=_memory_search)
    stats = mem_commands.add_parser("stats", help="count entries by kind")
    stats.set_defaults(func=_memory_stats)
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
    store = _open_memory_or_warn(settings)
    try:
        serve_stdio(settings, store)
    finally:
        if store is not None:
            store.close()
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


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
    store = _open_memory_or_warn(setup.settings)
    added: list[str] = []
    try:
        if args.doc:
            added = _add_run_documents(store, args.doc)
        run = setup.build(question, transcript=args.transcript, memory=store)
        show: Callable[[LiveEvent], None] = _json_line if args.json else TerminalRenderer()

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


def _json_line(event: LiveEvent) -> None:
    """One transcript line on stdout; token deltas are left out (the message holds them)."""
    if not isinstance(event, TokenDelta):
        sys.stdout.write(encode(event).decode("utf-8"))
        sys.stdout.flush()


def _open_memory_or_warn(settings: Settings) -> MemoryStore | None:
    """The memory store; a debate still runs without it when another process owns it."""
    if not settings.memory.enabled:
        return None
    try:
        return open_memory(settings.memory, settings.data_dir)
    except InfraError as exc:
        print(f"roundtable: warning: memory off for this run: {exc}", file=sys.stderr)
        return None


def _add_run_documents(store: MemoryStore | None, paths: list[Path]) -> list[str]:
    """Add ``--doc`` files for one run; the sources to remove after it (those not kept before)."""
    if store is None:
        raise ConfigError("--doc needs shared memory, which is off for this run")
    kept = {entry.source for entry in store.list_documents()}
    added = store.add_files(paths)
    print(describe_added(added), file=sys.stderr)
    return [document.source for document, _ in added if document.source not in kept]


def _memory_add(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        added = store.add_files(args.paths)
    if not any(passages for _, passages in added):  # never "Added 0 passage(s)" and exit 0
        raise ConfigError("memory: nothing added: the files hold no text")
    print(describe_added(added))
    return 0


def _memory_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        entries = store.list_documents()
    if not entries:
        print("No documents.")
    for entry in entries:
        print(f"{entry.passages:5d} passage(s)  {entry.sha256[:12]}  {entry.source}")
    return 0


def _memory_remove(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_memory(settings.memory, settings.data_dir) as store:
        removed = store.remove_document(args.source)
    if not removed:
        raise ConfigError(f"memory: no document {args.source} (see `roundtable memory list`)")
    print(f"Removed {removed} passage(s) of {args.source}.")
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
        transcript = load(_transcript_path(args.path))
    if args.user is not None and not owns(args.user, transcript.header.owner):
        raise ConfigError(f"{args.path}: not a transcript of user {args.user!r}")
    for warning in caught:
        print(f"roundtable: warning: {warning.message}", file=sys.stderr)
    show: Callable[[LiveEvent], None] = _json_line if args.json else TerminalRenderer()

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
    for row in rows:
        if row.problem:
            print(f"{row.path.name}  (unreadable: {row.problem})")
            continue
        when = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at else "?"
        owner = owner_key(row.owner)
        print(
            f"{when}  {row.turns:>3} turns  {owner:<12.12}  {row.stop:<40.40}  {row.question[:60]}"
        )
        print(f"                  {row.path}")
    return 0


def _transcript_path(given: Path) -> Path:
    """A file as given, or a run id (``20261205-113135-372d27``) in the data folder."""
    if given.suffix or given.parent != Path(".") or given.exists():
        return given
    return load_settings().transcripts_dir / f"{given.name}.jsonl"


if __name__ == "__main__":
    sys.exit(main())
