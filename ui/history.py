"""Chat history: Chainlit's SQLAlchemy data layer, its schema, and thread <-> transcript links.

SQLite in the data folder by default (``<data>/ui/history.db``), or any SQLAlchemy async URL
(``ROUNDTABLE_DATABASE_URL``, e.g. PostgreSQL with asyncpg). Chainlit does not create its
tables; ``create_schema`` does, idempotently, with the columns Chainlit 2.12's
``SQLAlchemyDataLayer`` writes (quoted camelCase names; steps include command, modes,
defaultOpen, autoCollapse).

A thread stores the transcript it shows in its metadata (``transcript``: a file name inside
the transcripts folder, never a path from the client); resuming rebuilds the debate from that
transcript. This module does not render anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

TRANSCRIPT_KEY = "transcript"
REPLAYED_KEY = "replayed"

_DDL = [
    """CREATE TABLE IF NOT EXISTS users (
        "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE,
        "metadata" {json} NOT NULL, "createdAt" TEXT)""",
    """CREATE TABLE IF NOT EXISTS threads (
        "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT,
        "userId" TEXT REFERENCES users("id") ON DELETE CASCADE, "userIdentifier" TEXT,
        "tags" {list}, "metadata" {json})""",
    """CREATE TABLE IF NOT EXISTS steps (
        "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
        "threadId" TEXT NOT NULL REFERENCES threads("id") ON DELETE CASCADE,
        "parentId" TEXT, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN,
        "isError" BOOLEAN, "metadata" {json}, "tags" {list}, "input" TEXT, "output" TEXT,
        "createdAt" TEXT, "command" TEXT, "modes" {json}, "start" TEXT, "end" TEXT,
        "generation" {json}, "showInput" TEXT, "language" TEXT, "indent" INT,
        "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "icon" TEXT)""",
    """CREATE TABLE IF NOT EXISTS elements (
        "id" TEXT PRIMARY KEY, "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE,
        "type" TEXT, "url" TEXT, "chainlitKey" TEXT, "name" TEXT NOT NULL, "display" TEXT,
        "objectKey" TEXT, "size" TEXT, "page" INT, "language" TEXT, "forId" TEXT,
        "mime" TEXT, "props" {json}, "autoPlay" BOOLEAN, "playerConfig" {json})""",
    """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL,
        "threadId" TEXT REFERENCES threads("id") ON DELETE CASCADE,
        "value" INT NOT NULL, "comment" TEXT)""",
    """CREATE INDEX IF NOT EXISTS steps_thread ON steps("threadId")""",
    """CREATE INDEX IF NOT EXISTS threads_user ON threads("userId")""",
]


def database_url(data_dir: Path, configured: str | None) -> str:
    """The configured URL, else SQLite in ``<data_dir>/ui/history.db`` (folder created)."""
    if configured:
        return configured
    folder = data_dir / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{folder / 'history.db'}"


def schema(url: str) -> list[str]:
    """The DDL for this database: JSON and arrays are native on PostgreSQL, text on SQLite."""
    postgres = url.startswith("postgresql")
    types = {"json": "JSONB" if postgres else "TEXT", "list": "TEXT[]" if postgres else "TEXT"}
    return [statement.format(**types) for statement in _DDL]


async def create_schema(url: str) -> None:
    """Create the tables if missing; safe on every start."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in schema(url):
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


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
