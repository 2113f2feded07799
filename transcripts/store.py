"""Saved transcripts: one append-only JSONL file per conversation.

Line 1 is the ``Header``; every further line is one ``Event``. Each line is written before the
run moves on (the kernel has it: killing the process loses nothing written), and fsynced
before the run moves on when it commits something (a message, an error, a stop, a plan, a
branch, an aggregate); a step on the way to one (the manager's pick, a memory lookup, a prune,
a notice) is made durable by the fsync of the event that follows it. One fsync per turn, not
per event; a power cut loses at most the turn being generated.
The loader validates every line and rejects a malformed file whole, naming the file, line and
field (each line is parsed by ``transcripts.lines``, which upgrades old schema versions);
only a torn last line (a crash mid-write) is dropped, with a warning.

A write that fails (a full disk) is cut back off the file, so it holds whole records only, and
a new file appears with its whole header or not at all.

This module owns the file format; it does not run debates or render anything.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from roundtable.common import bounded
from roundtable.common.errors import ConfigError, InfraError
from roundtable.transcripts.events import Event, Header
from roundtable.transcripts.lines import (
    TranscriptError,
    check_order,
    parse_event,
    parse_header,
)

MAX_FILE_BYTES = 256 * 1024 * 1024
"""A transcript larger than this is refused unread (a 1,000-turn debate is about 3 MB)."""


class TornTailWarning(UserWarning):
    """The last line was cut short by a crash and was dropped."""


class Transcript(BaseModel):
    """A loaded transcript: its header and every event, in order."""

    model_config = ConfigDict(frozen=True)

    path: Path
    header: Header
    events: list[Event]
    torn_tail: bool = False
    committed_bytes: int = 0
    """Length of the file up to the end of its last complete line: where appending resumes."""


def encode(record: Header | Event) -> bytes:
    """One record as its line, newline included. The same bytes every time for the same record."""
    return record.model_dump_json().encode("utf-8") + b"\n"


DEFERRED_SYNC: frozenset[str] = frozenset({"selection", "memory", "prune", "notice"})
"""Event kinds written at once but fsynced with the next event (or at close)."""


class TranscriptWriter:
    """Appends events to one transcript, durably, one line at a time."""

    def __init__(self, path: Path, header: Header) -> None:
        self.path = path
        self.header = header
        self._file: io.FileIO | None = None
        self._size = 0
        """Bytes of whole records in the file: a failed write is cut back to this."""
        self._seq = 0
        self._unsynced = False
        """Lines written since the last fsync (deferred-sync events)."""

    @classmethod
    def create(cls, path: Path, header: Header) -> TranscriptWriter:
        """Start a new transcript; refuses to overwrite an existing file.

        The header is written and fsynced in a temporary file that is then linked into place,
        so a crash never leaves an empty or half-written header behind.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        line = encode(header)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with temp.open("xb", buffering=0) as handle:
                _write_all(handle, line)
                os.fsync(handle.fileno())
            os.link(temp, path)
        except FileExistsError as exc:
            raise ConfigError(f"transcript {path} already exists") from exc
        except OSError as exc:
            raise _infra_error(path, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
        _sync_dir(path.parent)
        writer = cls(path, header)
        writer._open(len(line))
        return writer

    @classmethod
    def reopen(cls, transcript: Transcript) -> TranscriptWriter:
        """Continue a loaded transcript: a torn tail is cut off before anything is appended.

        A file that gained whole lines since it was loaded is refused: cutting it back to
        what was loaded would lose them.
        """
        path, good = transcript.path, transcript.committed_bytes
        try:
            with path.open("rb") as handle:
                handle.seek(good)
                rest = handle.read()
                size = handle.tell()
        except OSError as exc:
            raise TranscriptError(f"{path}: cannot read ({exc.strerror})") from exc
        if size < good or b"\n" in rest:
            raise TranscriptError(f"{path}: changed since it was loaded; load it again")
        writer = cls(path, transcript.header)
        writer._seq = transcript.events[-1].seq if transcript.events else 0
        try:
            os.truncate(path, good)
        except OSError as exc:
            raise _infra_error(path, exc) from exc
        writer._open(good)
        return writer

    def _open(self, size: int) -> None:
        try:
            self._file = self.path.open("ab", buffering=0)
        except OSError as exc:
            raise _infra_error(self.path, exc) from exc
        self._size = size

    def next_seq(self) -> int:
        """The ``seq`` the next event must carry."""
        return self._seq + 1

    def append(self, event: Event) -> None:
        """Write one event; make it (and any deferred one before it) durable unless its kind
        is in ``DEFERRED_SYNC``."""
        if event.seq != self._seq + 1:
            raise ValueError(f"event seq {event.seq} does not follow {self._seq}")
        self._append(encode(event), sync=event.kind not in DEFERRED_SYNC)
        self._seq = event.seq

    def _append(self, line: bytes, *, sync: bool = True) -> None:
        assert self._file is not None, "writer is closed"
        try:
            _write_all(self._file, line)
            if sync:
                os.fsync(self._file.fileno())
            self._unsynced = not sync
        except OSError as exc:
            # Part of the line may be on disk (a short write, or written but not synced):
            # cut it off, so the file still ends with a whole record.
            with contextlib.suppress(OSError, ValueError):
                self._file.truncate(self._size)
            raise _infra_error(self.path, exc) from exc
        self._size += len(line)

    def close(self) -> None:
        if self._file is not None:
            if self._unsynced:
                with contextlib.suppress(OSError):  # best effort: nothing committed waits on it
                    os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def load(path: Path) -> Transcript:
    """Read and validate a whole transcript, or raise ``TranscriptError`` naming what is wrong."""
    data = read_bounded(path)
    lines = data.split(b"\n")
    # Every committed line ends with a newline (written and fsynced together), so the piece
    # after the last newline is empty, or a line a crash cut short: never a committed one.
    complete, tail = lines[:-1], lines[-1]
    torn = bool(tail)
    if not complete and torn:
        raise TranscriptError(f"{path}:1: header line is incomplete")
    if not complete:
        raise TranscriptError(f"{path}: empty file, expected a header line")
    header = parse_header(path, complete[0])
    events: list[Event] = []
    for number, raw in enumerate(complete[1:], start=2):
        event = parse_event(path, number, raw, header.schema_version)
        check_order(path, number, events, event)
        events.append(event)
    if torn:
        warnings.warn(
            f"{path}: last line was cut short (crash mid-write) and was dropped",
            TornTailWarning,
            stacklevel=2,
        )
    return Transcript(
        path=path,
        header=header,
        events=events,
        torn_tail=torn,
        committed_bytes=len(data) - len(tail),
    )


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A transcript file's bytes (``common.bounded``): a device, a FIFO or an oversized file
    is refused before anything is read."""
    return bounded.read_bounded(path, limit, "transcript", error=TranscriptError)


def save(path: Path, header: Header, events: Iterable[Event]) -> None:
    """Write a whole transcript at once (used for exports and tests)."""
    writer = TranscriptWriter.create(path, header)
    try:
        for event in events:
            writer.append(event)
    finally:
        writer.close()


def _write_all(handle: io.FileIO, data: bytes) -> None:
    """Write every byte: an unbuffered write may be short (the disk filling up mid-line)."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:
            raise OSError(errno.EIO, "short write")
        view = view[written:]


def _sync_dir(folder: Path) -> None:
    """Make a new directory entry durable (best effort: not every platform can)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _infra_error(path: Path, exc: OSError) -> InfraError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InfraError(f"storage full: cannot write transcript {path}")
    return InfraError(f"cannot write transcript {path}: {exc.strerror or exc}")
