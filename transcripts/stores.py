"""Where transcripts are kept: the ``TranscriptStore`` protocol, the file store, and the choice.

A store appends committed events durably (on disk, or in a committed transaction, before
``append`` returns), loads a transcript's events in order, lists summaries from an index
(every run, or one owner's: a user never sees another's), and takes a whole transcript at
once (``put``, for import and export: all of it or nothing, idempotent).

``FileStore`` is the JSONL folder, its format and behaviour unchanged (``store``,
``catalogue``); ``PostgresStore`` (``postgres``) keeps the same records in PostgreSQL.
``open_store`` picks one from ``ROUNDTABLE_DATABASE_URL``: a PostgreSQL URL selects the
database, anything else (empty, SQLite for the UI's history) keeps the files.

Owns the protocol and the file store; does not own the file format (``store``) nor the SQL.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from roundtable.common.owners import owns
from roundtable.common.secrets import keep_url
from roundtable.transcripts.catalogue import TranscriptSummary, catalogue
from roundtable.transcripts.events import SCHEMA_VERSION, Event, Header
from roundtable.transcripts.lines import TranscriptError
from roundtable.transcripts.store import Transcript, TranscriptWriter, encode, load, save

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class TranscriptStore(Protocol):
    """What the engine and the readers need of a place that keeps transcripts."""

    where: str
    """Where it keeps them, for messages (never a password)."""

    async def create(self, header: Header) -> None:
        """Start a new transcript; an existing one of that id is refused (``ConfigError``)."""

    async def append(self, conversation_id: str, event: Event) -> None:
        """Commit one event durably before returning; a ``seq`` that does not follow the last
        one (a duplicate) is refused with ``ValueError`` and nothing is written."""

    async def load(self, conversation_id: str) -> Transcript:
        """The header and every event, in ``seq`` order; ``TranscriptError`` if absent."""

    async def catalogue(self) -> list[TranscriptSummary]:
        """Every run, newest first, from the index (no transcript is read whole)."""

    async def owned(self, owner: str | None) -> list[TranscriptSummary]:
        """``owner``'s loadable runs only, newest first."""

    async def put(self, header: Header, events: Sequence[Event]) -> int:
        """Keep a whole transcript: all of it or nothing. Already kept: nothing is written;
        kept shorter: the missing events are added; kept differently: ``TranscriptError``.
        Returns how many events were written."""

    async def close(self) -> None: ...


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL database (any driver suffix SQLAlchemy knows)."""
    if not url:
        return False
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return False
    return scheme in POSTGRES_SCHEMES or scheme.startswith("postgresql+")


def open_store(database_url: str | None, folder: Path) -> TranscriptStore:
    """The PostgreSQL store when ``database_url`` is a PostgreSQL URL, else the files in
    ``folder``. The URL's password is kept out of every error (``common.secrets``)."""
    keep_url(database_url)
    if database_url and is_postgres_url(database_url):
        from roundtable.transcripts.postgres import PostgresStore  # asyncpg only when used

        return PostgresStore(database_url)
    return FileStore(folder)


def check_id(conversation_id: str) -> str:
    """A run id that is a plain file name (no folder, no dot file): else ``TranscriptError``."""
    if not _SAFE_ID.fullmatch(conversation_id):
        raise TranscriptError(f"{conversation_id[:80]!r}: not a run id")
    return conversation_id


def current(header: Header) -> Header:
    """``header`` as a store keeps it: its events are kept as current models, so the header
    says the current schema version (an upgraded old file is not upgraded twice)."""
    return header.model_copy(update={"schema_version": SCHEMA_VERSION})


def differs(kept: Sequence[Event], given: Sequence[Event]) -> int | None:
    """The first ``seq`` where two versions of a transcript disagree, over what both have."""
    for old, new in zip(kept, given, strict=False):
        if encode(old) != encode(new):
            return new.seq
    return None


class FileStore:
    """The JSONL transcripts in one folder, one file per run (``store``'s format)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)
        self._writers: dict[str, TranscriptWriter] = {}

    def path(self, conversation_id: str) -> Path:
        return self.folder / f"{check_id(conversation_id)}.jsonl"

    async def create(self, header: Header) -> None:
        path = self.path(header.conversation_id)
        self._writers[header.conversation_id] = TranscriptWriter.create(path, header)

    async def append(self, conversation_id: str, event: Event) -> None:
        writer = self._writers.get(conversation_id)
        if writer is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                writer = TranscriptWriter.reopen(load(self.path(conversation_id)))
            self._writers[conversation_id] = writer
        writer.append(event)

    async def load(self, conversation_id: str) -> Transcript:
        path = self.path(conversation_id)
        if not path.is_file():
            raise TranscriptError(f"no transcript {conversation_id!r} in {self.folder}")
        return load(path)

    async def catalogue(self) -> list[TranscriptSummary]:
        return catalogue(self.folder)

    async def owned(self, owner: str | None) -> list[TranscriptSummary]:
        return [s for s in catalogue(self.folder) if s.problem is None and owns(owner, s.owner)]

    async def put(self, header: Header, events: Sequence[Event]) -> int:
        path = self.path(header.conversation_id)
        if not path.exists():
            _save_whole(path, header, events)
            return len(events)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept = load(path)
        same = current(kept.header) == current(header)
        if not same or (seq := differs(kept.events, events)) is not None:
            where = "header" if not same else f"event {seq}"
            raise TranscriptError(f"{path}: differs from the transcript given ({where})")
        missing = list(events[len(kept.events) :])
        if missing:
            writer = TranscriptWriter.reopen(kept)
            try:
                for event in missing:
                    writer.append(event)
            finally:
                writer.close()
        return len(missing)

    async def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def _save_whole(path: Path, header: Header, events: Sequence[Event]) -> None:
    """Write the whole transcript under a temporary name, then link it into place: a reader
    (or a crash) never sees part of it."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        save(temp, header, events)
        try:
            os.link(temp, path)
        except FileExistsError as exc:
            raise TranscriptError(f"{path}: appeared while it was being written") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
