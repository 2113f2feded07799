"""Transcripts in PostgreSQL: the same header and event records as the JSONL files, as JSON.

Two tables live beside Chainlit's history tables in the database ``ROUNDTABLE_DATABASE_URL``
names. ``roundtable_events`` holds every event, keyed ``(conversation_id, seq)``, its body the
exact JSON line the file store writes (type ``json``, not ``jsonb``: the text is kept as
written, key order and ``\\u0000`` included, so an export is byte for byte the file it came
from). ``roundtable_runs`` is the index: one row per run with its header and what a listing
shows (question, owner, created_at, turns, stop, mode, parent and fork), kept up to date by each
append in the same transaction, so listing 10,000 runs reads 10,000 small rows and no event.

``append`` locks the run's row, checks that the ``seq`` follows the last one (a duplicate is
refused, never doubled) and commits before it returns: with PostgreSQL's default
``synchronous_commit`` the event is on disk by then. The schema is created and migrated on
first use by numbered migrations under an advisory lock (servers starting together wait for
each other); a role without the CREATE right works on a schema already in place.

The URL's password never appears in an error (``common.secrets``). Owns the SQL; the records
are ``events``'s, the protocol is ``stores``'s. asyncpg rather than SQLAlchemy: two tables
and a handful of statements need no ORM, and the next steps want what asyncpg gives directly
(LISTEN/NOTIFY for live events, one pool shared with a job queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from roundtable.common.errors import ConfigError, InfraError
from roundtable.common.owners import owner_key
from roundtable.common.secrets import error_text, keep_url
from roundtable.transcripts.catalogue import TranscriptSummary, fork_said
from roundtable.transcripts.events import (
    HUMAN,
    SCHEMA_VERSION,
    Event,
    Header,
    MessageEvent,
    PlanEvent,
    StopEvent,
)
from roundtable.transcripts.lines import TranscriptError, parse_event, parse_header
from roundtable.transcripts.store import Transcript
from roundtable.transcripts.stores import check_id, current, differs

NO_STOP = "(no stop: interrupted run)"
HIDDEN = "the database of ROUNDTABLE_DATABASE_URL"
_PLAIN_HOST = re.compile(r"[A-Za-z0-9._-]*")
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9_.$-]*)?")
_SCHEMA_LOCK = 0x52545453  # "RTTS": an advisory lock of our own, apart from the UI history's

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE roundtable_runs (
        conversation_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        question TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        turns INTEGER NOT NULL DEFAULT 0,
        stop TEXT,
        mode TEXT NOT NULL DEFAULT 'debate',
        planned BOOLEAN NOT NULL DEFAULT FALSE,
        parent TEXT,
        fork_turn INTEGER,
        fork_text TEXT NOT NULL DEFAULT '',
        last_seq INTEGER NOT NULL DEFAULT 0,
        header JSON NOT NULL
    );
    CREATE INDEX roundtable_runs_newest ON roundtable_runs (created_at DESC, conversation_id);
    CREATE INDEX roundtable_runs_owner ON roundtable_runs (owner, created_at DESC);
    CREATE TABLE roundtable_events (
        conversation_id TEXT NOT NULL
            REFERENCES roundtable_runs (conversation_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        kind TEXT NOT NULL,
        body JSON NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    );
    """,
)
"""Numbered schema migrations: migration ``n`` is ``MIGRATIONS[n - 1]``; never edit one that
has shipped, add the next."""


def dsn(url: str) -> str:
    """``url`` as asyncpg takes it: any ``postgresql+driver`` / ``postgres`` scheme becomes
    ``postgresql``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def shown(url: str) -> str:
    """Where ``url`` points (scheme, host, port, database), for messages: never its user or
    password, and nothing at all of a URL that does not parse cleanly (an unescaped ``@`` or
    ``/`` in a password moves it into the host or the path)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return HIDDEN
    if not _PLAIN_HOST.fullmatch(host) or not _PLAIN_PATH.fullmatch(parts.path):
        return HIDDEN
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}{parts.path}"


class PostgresStore:
    """Transcripts in the PostgreSQL database at ``url`` (tables created on first use)."""

    def __init__(self, url: str) -> None:
        keep_url(url)
        self._dsn = dsn(url)
        self.where = shown(dsn(url))
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        """The connection pool, opened (and the schema migrated) on first use."""
        async with self._opening:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4)
                except ValueError:  # a malformed URL: its text may quote the password
                    raise ConfigError(
                        "setting ROUNDTABLE_DATABASE_URL: not a usable PostgreSQL URL "
                        "(not shown: it may hold a password)"
                    ) from None
                except asyncpg.InterfaceError as exc:  # idem
                    raise InfraError(
                        f"cannot open the transcript database {self.where}: {type(exc).__name__}"
                    ) from None
                except (OSError, asyncpg.PostgresError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise InfraError(
                        f"cannot open the transcript database {self.where}: {error_text(why)}"
                    ) from None
                try:
                    await migrate(pool)
                except asyncpg.PostgresError as exc:  # e.g. no right to create the tables
                    await pool.close()
                    raise InfraError(
                        f"cannot create the transcript tables in {self.where}: {error_text(exc)}"
                    ) from None
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self, transaction: str | None = None) -> AsyncIterator[Any]:
        """A pooled connection (in a transaction of that isolation, committed on leaving);
        a fault of the database or the network becomes an ``InfraError`` without the URL's
        password, a unique key violated (a writer racing this one) a ``ValueError``."""
        pool = await self.pool()
        try:
            async with pool.acquire() as conn:
                if transaction is None:
                    yield conn
                else:
                    async with conn.transaction(isolation=transaction):
                        yield conn
        except asyncpg.UniqueViolationError as exc:
            raise ValueError(f"already kept: {error_text(exc)}") from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise InfraError(f"transcript database {self.where}: {error_text(exc)}") from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def create(self, header: Header) -> None:
        async with self._connection() as conn:
            done = await conn.execute(
                "INSERT INTO roundtable_runs (conversation_id, owner, question, created_at,"
                " parent, fork_turn, header) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (conversation_id) DO NOTHING",
                *_run_row(header),
            )
        if done.endswith(" 0"):
            raise ConfigError(f"transcript {header.conversation_id} already exists")

    async def append(self, conversation_id: str, event: Event) -> None:
        async with self._connection("read_committed") as conn:
            await _append(conn, conversation_id, [event])

    async def load(self, conversation_id: str) -> Transcript:
        async with self._connection("repeatable_read") as conn:
            header = await conn.fetchval(
                "SELECT header FROM roundtable_runs WHERE conversation_id = $1", conversation_id
            )
            if header is None:
                raise TranscriptError(f"no transcript {conversation_id!r} in {self.where}")
            rows = await conn.fetch(
                "SELECT seq, body FROM roundtable_events WHERE conversation_id = $1 ORDER BY seq",
                conversation_id,
            )
        where = Path(conversation_id)
        return Transcript(
            path=where,
            header=parse_header(where, header.encode("utf-8")),
            events=[
                parse_event(where, row["seq"], row["body"].encode("utf-8"), SCHEMA_VERSION)
                for row in rows
            ],
        )

    async def catalogue(self) -> list[TranscriptSummary]:
        return await self._listed("", ())

    async def owned(self, owner: str | None) -> list[TranscriptSummary]:
        return await self._listed("WHERE owner = $1", (owner_key(owner),))

    async def _listed(self, where: str, args: Sequence[Any]) -> list[TranscriptSummary]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, owner, question, created_at, turns, stop, mode,"
                " parent, fork_turn, fork_text"
                f" FROM roundtable_runs {where} ORDER BY created_at DESC, conversation_id DESC",
                *args,
            )
        return [
            TranscriptSummary(
                path=Path(row["conversation_id"]),
                conversation_id=row["conversation_id"],
                question=row["question"],
                created_at=row["created_at"],
                turns=row["turns"],
                stop=row["stop"] or NO_STOP,
                mode=row["mode"],
                owner=_owner(row["owner"]),
                parent=row["parent"],
                fork_turn=row["fork_turn"],
                fork_text=row["fork_text"],
            )
            for row in rows
        ]

    async def put(self, header: Header, events: Sequence[Event]) -> int:
        check_id(header.conversation_id)
        async with self._connection("read_committed") as conn:
            await conn.execute(
                "INSERT INTO roundtable_runs (conversation_id, owner, question, created_at,"
                " parent, fork_turn, header) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (conversation_id) DO NOTHING",
                *_run_row(header),
            )
            kept = await conn.fetchval(
                "SELECT header FROM roundtable_runs WHERE conversation_id = $1 FOR UPDATE",
                header.conversation_id,
            )
            where = Path(header.conversation_id)
            if parse_header(where, kept.encode("utf-8")) != current(header):
                raise TranscriptError(
                    f"{header.conversation_id}: differs from the one kept (header)"
                )
            rows = await conn.fetch(
                "SELECT seq, body FROM roundtable_events WHERE conversation_id = $1 ORDER BY seq",
                header.conversation_id,
            )
            old = [
                parse_event(where, row["seq"], row["body"].encode("utf-8"), SCHEMA_VERSION)
                for row in rows
            ]
            if (seq := differs(old, events)) is not None:
                raise TranscriptError(
                    f"{header.conversation_id}: differs from the one kept (event {seq})"
                )
            missing = list(events[len(old) :])
            await _append(conn, header.conversation_id, missing)
        return len(missing)


def _owner(key: str) -> str | None:
    return None if key == owner_key(None) else key


def _run_row(header: Header) -> tuple[Any, ...]:
    kept = current(header)
    return (
        check_id(header.conversation_id),
        owner_key(header.owner),
        header.question,
        header.created_at,
        header.parent.conversation_id if header.parent is not None else None,
        header.parent.turn if header.parent is not None else None,
        kept.model_dump_json(),
    )


async def _append(conn: asyncpg.Connection, conversation_id: str, events: Sequence[Event]) -> None:
    """Add ``events`` after the run's last one and update its index row (the caller's
    transaction makes it all or nothing)."""
    if not events:
        return
    run = await conn.fetchrow(
        "SELECT last_seq, fork_turn, fork_text FROM roundtable_runs"
        " WHERE conversation_id = $1 FOR UPDATE",
        conversation_id,
    )
    if run is None:
        raise TranscriptError(f"no transcript {conversation_id!r}: create it first")
    last: int = run["last_seq"]
    turns, stop, mode, said = 0, None, None, _fork_text(run["fork_turn"], run["fork_text"], events)
    for event in events:
        if event.seq != last + 1:
            raise ValueError(f"event seq {event.seq} does not follow {last}")
        last = event.seq
        if isinstance(event, MessageEvent) and event.speaker != HUMAN:
            turns += 1
        elif isinstance(event, StopEvent):
            stop = f"{event.code}: {event.reason}"
        elif isinstance(event, PlanEvent) and mode is None:
            mode = event.mode
    await conn.executemany(
        "INSERT INTO roundtable_events (conversation_id, seq, kind, body) VALUES ($1, $2, $3, $4)",
        [(conversation_id, e.seq, e.kind, e.model_dump_json()) for e in events],
    )
    await conn.execute(
        "UPDATE roundtable_runs SET last_seq = $2, turns = turns + $3,"
        " stop = coalesce($4, stop),"
        " mode = CASE WHEN planned OR $5::text IS NULL THEN mode ELSE $5 END,"
        " planned = planned OR $5::text IS NOT NULL, fork_text = $6"
        " WHERE conversation_id = $1",
        conversation_id,
        last,
        turns,
        stop,
        mode,
        said,
    )


def _fork_text(fork_turn: int | None, kept: str, events: Sequence[Event]) -> str:
    """A fork's text as the file catalogue has it, found once (empty when not a fork)."""
    if fork_turn is None or kept:
        return kept
    return fork_said(fork_turn, events)


async def migrate(pool: asyncpg.Pool) -> None:
    """Apply the migrations this database lacks, once, whoever starts first."""
    async with pool.acquire() as conn:
        if await _version(conn) >= len(MIGRATIONS):
            return  # in place: no DDL, so a role without the CREATE right works too
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS roundtable_schema"
                " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for number in range(await _version(conn) + 1, len(MIGRATIONS) + 1):
                await conn.execute(MIGRATIONS[number - 1])
                await conn.execute("INSERT INTO roundtable_schema (version) VALUES ($1)", number)


async def _version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('roundtable_schema') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM roundtable_schema"))
