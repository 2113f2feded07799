"""Saved transcripts: one append-only JSONL file per conversation.

Line 1 is the ``Header``; every further line is one ``Event``. The writer flushes and fsyncs
each line before the debate moves on, so a crash loses at most the reply being generated.
The loader validates every line and rejects a malformed file whole, naming the file, line and
field; only a torn last line (a crash mid-write) is dropped, with a warning. Old schema
versions are upgraded by numbered functions in ``UPGRADES``.

This module owns the file format; it does not run debates or render anything.
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, ValidationError

from common.errors import ConfigError, InfraError
from conversations.events import EVENT_ADAPTER, SCHEMA_VERSION, Event, Header

MAX_LINE_BYTES = 4_000_000
MAX_DEPTH = 32

UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""``UPGRADES[n]`` turns a version-n record into version n+1. None yet: version 1 is the first."""


class TranscriptError(ConfigError):
    """A transcript file that cannot be loaded; the message names file, line and field."""


class TornTailWarning(UserWarning):
    """The last line was cut short by a crash and was dropped."""


class Transcript(BaseModel):
    """A loaded transcript: its header and every event, in order."""

    model_config = ConfigDict(frozen=True)

    path: Path
    header: Header
    events: list[Event]
    torn_tail: bool = False


def encode(record: Header | Event) -> bytes:
    """One record as its line, newline included. The same bytes every time for the same record."""
    return record.model_dump_json().encode("utf-8") + b"\n"


class TranscriptWriter:
    """Appends events to one transcript, durably, one line at a time."""

    def __init__(self, path: Path, header: Header) -> None:
        self.path = path
        self.header = header
        self._file: BinaryIO | None = None
        self._seq = 0

    @classmethod
    def create(cls, path: Path, header: Header) -> TranscriptWriter:
        """Start a new transcript; refuses to overwrite an existing file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cls(path, header)
        try:
            writer._file = path.open("xb")
        except FileExistsError as exc:
            raise ConfigError(f"transcript {path} already exists") from exc
        writer._append(encode(header))
        return writer

    @classmethod
    def reopen(cls, transcript: Transcript) -> TranscriptWriter:
        """Continue a loaded transcript: a torn tail is cut off before anything is appended."""
        writer = cls(transcript.path, transcript.header)
        writer._seq = transcript.events[-1].seq if transcript.events else 0
        good = len(encode(transcript.header)) + sum(len(encode(e)) for e in transcript.events)
        writer._file = transcript.path.open("r+b")
        writer._file.truncate(good)
        writer._file.seek(good)
        return writer

    def next_seq(self) -> int:
        """The ``seq`` the next event must carry."""
        return self._seq + 1

    def append(self, event: Event) -> None:
        """Write one event and make it durable before returning."""
        if event.seq != self._seq + 1:
            raise ValueError(f"event seq {event.seq} does not follow {self._seq}")
        self._append(encode(event))
        self._seq = event.seq

    def _append(self, line: bytes) -> None:
        assert self._file is not None, "writer is closed"
        try:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise InfraError(f"storage full: cannot write transcript {self.path}") from exc
            raise InfraError(f"cannot write transcript {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def load(path: Path) -> Transcript:
    """Read and validate a whole transcript, or raise ``TranscriptError`` naming what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TranscriptError(f"{path}: cannot read ({exc.strerror})") from exc
    lines = data.split(b"\n")
    # Every committed line ends with a newline (written and fsynced together), so the piece
    # after the last newline is empty, or a line a crash cut short: never a committed one.
    complete, tail = lines[:-1], lines[-1]
    torn = bool(tail)
    if not complete and torn:
        raise TranscriptError(f"{path}:1: header line is incomplete")
    if not complete:
        raise TranscriptError(f"{path}: empty file, expected a header line")
    header = _parse_header(path, complete[0])
    events: list[Event] = []
    for number, raw in enumerate(complete[1:], start=2):
        event = _parse_event(path, number, raw, header.schema_version)
        _check_order(path, number, events, event)
        events.append(event)
    if torn:
        warnings.warn(
            f"{path}: last line was cut short (crash mid-write) and was dropped",
            TornTailWarning,
            stacklevel=2,
        )
    return Transcript(path=path, header=header, events=events, torn_tail=torn)


def save(path: Path, header: Header, events: Iterable[Event]) -> None:
    """Write a whole transcript at once (used for exports and tests)."""
    writer = TranscriptWriter.create(path, header)
    try:
        for event in events:
            writer.append(event)
    finally:
        writer.close()


def _parse_header(path: Path, raw: bytes) -> Header:
    obj = _decode(path, 1, raw)
    version = obj.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TranscriptError(f"{path}:1: field 'schema_version': missing or not an integer")
    if version > SCHEMA_VERSION:
        raise TranscriptError(
            f"{path}:1: field 'schema_version': {version} is newer than this Roundtable "
            f"understands ({SCHEMA_VERSION}); upgrade Roundtable"
        )
    if version < 1:
        raise TranscriptError(f"{path}:1: field 'schema_version': {version} is not a version")
    obj = _upgrade(obj, version)
    try:
        return Header.model_validate(obj)
    except ValidationError as exc:
        raise TranscriptError(_describe(path, 1, exc)) from exc


def _parse_event(path: Path, number: int, raw: bytes, version: int) -> Event:
    obj = _upgrade(_decode(path, number, raw), version)
    try:
        return EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise TranscriptError(_describe(path, number, exc, tagged=True)) from exc


def _decode(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise TranscriptError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptError(f"{path}:{number}: not valid UTF-8 at byte {exc.start}") from exc
    if _depth(text) > MAX_DEPTH:
        raise TranscriptError(f"{path}:{number}: nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise TranscriptError(f"{path}:{number}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise TranscriptError(f"{path}:{number}: expected a JSON object")
    return obj


def _depth(text: str) -> int:
    """Deepest bracket nesting, counted without parsing (strings may hold brackets: harmless)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _upgrade(obj: dict[str, Any], version: int) -> dict[str, Any]:
    for step in range(version, SCHEMA_VERSION):
        obj = UPGRADES[step](obj)
    return obj


def _check_order(path: Path, number: int, events: list[Event], event: Event) -> None:
    previous = events[-1].seq if events else 0
    if event.seq <= previous:
        problem = "duplicate" if any(e.seq == event.seq for e in events) else "out of order"
        raise TranscriptError(f"{path}:{number}: field 'seq': {event.seq} is {problem}")


def _describe(path: Path, number: int, exc: ValidationError, *, tagged: bool = False) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if tagged and loc:  # the union's first location is the event kind, not a field
        loc = loc[1:]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = ["kind"]
    field = ".".join(loc) or "record"
    return f"{path}:{number}: field {field!r}: {err['msg']}"
