"""Chat history: Chainlit's SQLAlchemy data layer, its schema, and thread <-> transcript links.

SQLite in the data folder by default (``<data>/ui/history.db``), or any SQLAlchemy async URL
(``ROUNDTABLE_DATABASE_URL``, e.g. PostgreSQL with asyncpg; a plain ``postgresql://`` or
``postgres://`` URL gets the asyncpg driver). Chainlit does not create its tables;
``create_schema`` does, idempotently, with the columns Chainlit 2.12's ``SQLAlchemyDataLayer``
writes (quoted camelCase names; steps include command, modes, defaultOpen, autoCollapse).

On PostgreSQL (checked against a real server, ``tests/test_ui_postgres.py``): schema creation
only issues DDL for what is missing, so a role with no CREATE right starts fine on a schema an
administrator created, and it holds an advisory lock, so servers starting together do not race
on ``CREATE TABLE IF NOT EXISTS`` (PostgreSQL then fails with a duplicate ``pg_type`` key).
PostgreSQL refuses NUL characters in text, where Chainlit's layer would drop the whole step with
only a log line; ``HistoryDataLayer`` (``data_layer``) replaces them on every database.

A thread stores the transcript it shows in its metadata (``transcript``: a file name inside
the transcripts folder, never a path from the client); resuming rebuilds the debate from that
transcript. This module does not render anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from roundtable.common.errors import ConfigError
from roundtable.ui.titles import TitledDataLayer

TRANSCRIPT_KEY = "transcript"
REPLAYED_KEY = "replayed"

_TABLES = {
    "users": """CREATE TABLE IF NOT EXISTS users (
        "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE,
        "metadata" {json} NOT NULL, "createdAt" TEXT)""",
    "threads": """CREATE TABLE IF NOT EXISTS threads (
        "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT,
        "userId" TEXT REFERENCES users("id") ON DELETE CASCADE, "userIdentifier" TEXT,
        "tags" {list}, "metadata" {json})""",
    "steps": """CREATE TABLE IF NOT EXISTS steps (
        "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
        "threadId" TEXT NOT NULL REFERENCES threads("id") ON DELETE CASCADE,
        "parentId" TEXT, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN,
        "isError" BOOLEAN, "metadata" {json}, "tags" {list}, "input" TEXT, "output" TEXT,
        "createdAt" TEXT, "command" TEXT, "modes" {json}, "start" TEXT, "end" TEXT,
        "generation" {json}, "showInput" TEXT, "language" TEXT, "indent" INT,
        "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "icon" TEXT)""",
    "elements": """CREATE TABLE IF NOT EXISTS elements (
        "id" TEXT PRIMARY KEY, "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE,
        "type" TEXT, "url" TEXT, "chainlitKey" TEXT, "name" TEXT NOT NULL, "display" TEXT,
        "objectKey" TEXT, "size" TEXT, "page" INT, "language" TEXT, "forId" TEXT,
        "mime" TEXT, "props" {json}, "autoPlay" BOOLEAN, "playerConfig" {json})""",
    "feedbacks": """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL,
        "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE,
        "value" INT NOT NULL, "comment" TEXT)""",
}
_INDEXES = {  # name: (table, DDL)
    "steps_thread": ("steps", """CREATE INDEX IF NOT EXISTS steps_thread ON steps("threadId")"""),
    "threads_user": ("threads", """CREATE INDEX IF NOT EXISTS threads_user ON threads("userId")"""),
}
_SCHEMA_LOCK = 0x52544853434D41
"""PostgreSQL advisory lock key held while the schema is checked and created ("RTHSCMA")."""
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def database_url(data_dir: Path, configured: str | None) -> str:
    """The configured URL, else SQLite in ``<data_dir>/ui/history.db`` (folder created).

    A PostgreSQL URL without a driver (``postgresql://``, ``postgres://``, as hosting providers
    hand them out) gets asyncpg: SQLAlchemy would pick a synchronous driver, or no dialect at all.
    """
    if configured:
        try:
            parsed = make_url(configured)
        except ArgumentError as exc:  # the URL may hold a password: do not echo it
            raise ConfigError(
                "setting ROUNDTABLE_DATABASE_URL: not a database URL "
                "(e.g. postgresql+asyncpg://user:password@host/db)"
            ) from exc
        driver = _ASYNC_DRIVERS.get(parsed.drivername)
        if driver is None:
            return configured
        return parsed.set(drivername=driver).render_as_string(hide_password=False)
    folder = data_dir / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{folder / 'history.db'}"


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def schema(url: str) -> list[str]:
    """The DDL for this database: JSON and arrays are native on PostgreSQL, text on SQLite."""
    return [statement for _, statement in _statements(url, set(), set())]


def _statements(url: str, tables: set[str], indexes: set[str]) -> list[tuple[str, str]]:
    """(object, DDL) for each table and index not among those that exist."""
    postgres = _is_postgres(url)
    types = {"json": "JSONB" if postgres else "TEXT", "list": "TEXT[]" if postgres else "TEXT"}
    wanted = [(name, ddl.format(**types)) for name, ddl in _TABLES.items() if name not in tables]
    wanted += [(name, ddl) for name, (_, ddl) in _INDEXES.items() if name not in indexes]
    return wanted


def _existing(connection: Connection) -> tuple[set[str], set[str]]:
    """The history tables and indexes already in the connection's default schema."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names()) & set(_TABLES)
    indexes = {
        index["name"]
        for table in {table for table, _ in _INDEXES.values()} & tables
        for index in inspector.get_indexes(table)
        if index["name"]
    }
    return tables, indexes


async def create_schema(url: str) -> None:
    """Create the tables and indexes that are missing; safe on every start.

    Only missing objects get DDL: PostgreSQL checks the CREATE right on the schema even for
    ``CREATE TABLE IF NOT EXISTS`` of a table that exists, and a deployment's role may have no
    such right once the schema is in place. Concurrent starts wait on an advisory lock.
    """
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            if _is_postgres(url):
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK}
                )
            tables, indexes = await connection.run_sync(_existing)
            for _, statement in _statements(url, tables, indexes):
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


class HistoryDataLayer(TitledDataLayer):
    """Chainlit's SQLAlchemy data layer (titling threads by their question: ``titles``), minus
    NUL characters in what it writes.

    PostgreSQL rejects a NUL in text; Chainlit logs the error and drops the whole step, so a
    message containing one would be missing on resume. Each NUL becomes U+FFFD instead (on
    every database, so both keep the same history).
    """

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo=conninfo)
        if conninfo.startswith("sqlite"):
            self.engine = _sqlite_engine(conninfo)
            self.async_session = async_sessionmaker(bind=self.engine, expire_on_commit=False)

    async def execute_sql(
        self, query: str, parameters: dict[str, Any]
    ) -> list[dict[str, Any]] | int | None:
        clean = {key: _without_nul(value) for key, value in parameters.items()}
        return await super().execute_sql(query, clean)


SQLITE_WAIT_S = 600


def _sqlite_engine(url: str) -> AsyncEngine:
    """One shared SQLite connection, in WAL mode, waiting rather than failing when busy.

    With Chainlit's default pool, 20 concurrent browser sessions gave "database is locked" and
    "connection pool exhausted" errors and lost threads (tests/test_ui_concurrency.py). A write
    waits its turn for up to ``SQLITE_WAIT_S``: on a machine loaded 20 deep, 120 s was not
    always enough, and a history write given up is a step lost from the thread.
    """
    engine = create_async_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=SQLITE_WAIT_S,
        connect_args={"timeout": 60},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def data_layer(url: str) -> SQLAlchemyDataLayer:
    """The history data layer for ``url`` (as returned by ``database_url``)."""
    return HistoryDataLayer(conninfo=url)


def thread_metadata(thread: Mapping[str, Any]) -> dict[str, Any]:
    """A thread's metadata as a dict (SQLite hands it back as a JSON string)."""
    raw = thread.get("metadata") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, dict) else {}


def transcript_in(folder: Path, name: object) -> Path | None:
    """``folder/name`` when ``name`` is a plain ``*.jsonl`` file name that exists there."""
    if not isinstance(name, str) or not name.endswith(".jsonl") or Path(name).name != name:
        return None
    path = folder / name
    return path if path.is_file() else None
