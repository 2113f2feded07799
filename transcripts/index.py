"""The summary index of a transcript folder: ``roundtable list`` without reading every file.

A sidecar file, ``.index.json`` in the folder, keeps each transcript's summary keyed by the
file's name, size, modification time and inode. A listing stats every file (cheap) and reads
only the ones that changed since they were summarised (new, appended to, replaced); the index
is rewritten when anything changed. It is a cache: a missing, stale or corrupt index is
rebuilt from the files, never trusted over them, and a folder it cannot be written to (read
only) is listed all the same.

Owns the index file. Does not own summarising a transcript (``catalogue``) nor the format.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

INDEX_NAME = ".index.json"
INDEX_VERSION = 1
MAX_INDEX_BYTES = 64 * 1024 * 1024


class Stamp(BaseModel):
    """What identifies one state of a file: any write changes one of these."""

    model_config = ConfigDict(frozen=True)

    size: int
    mtime_ns: int
    inode: int


class Entry(BaseModel):
    stamp: Stamp
    summary: dict[str, object]
    """A ``TranscriptSummary`` as JSON, without its path (the folder and name give it)."""


_ENTRIES = TypeAdapter(dict[str, Entry])
_T = TypeVar("_T")


def stamp_of(stat: os.stat_result) -> Stamp:
    return Stamp(size=stat.st_size, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino)


def read_index(folder: Path) -> dict[str, Entry]:
    """The folder's index; empty when there is none or it does not parse (it is rebuilt)."""
    path = folder / INDEX_NAME
    try:
        if path.stat().st_size > MAX_INDEX_BYTES:
            return {}
        raw = json.loads(path.read_bytes())
        if not isinstance(raw, dict) or raw.get("version") != INDEX_VERSION:
            return {}
        return _ENTRIES.validate_python(raw.get("entries", {}))
    except (OSError, ValueError, ValidationError):
        return {}


def write_index(folder: Path, entries: dict[str, Entry]) -> None:
    """Replace the index atomically (a reader sees the old or the new one); best effort."""
    body = {"version": INDEX_VERSION, "entries": _ENTRIES.dump_python(entries, mode="json")}
    temp = folder / f".index.{uuid.uuid4().hex[:8]}.tmp"
    try:
        temp.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
        os.replace(temp, folder / INDEX_NAME)
    except OSError:  # a read-only folder: list without an index
        with contextlib.suppress(OSError):
            temp.unlink()


def indexed(
    folder: Path,
    files: list[Path],
    summarise: Callable[[Path], _T],
    dump: Callable[[_T], dict[str, object]],
    restore: Callable[[Path, dict[str, object]], _T],
) -> list[_T]:
    """A summary of each of ``files``: from the index when the file is unchanged, else made
    with ``summarise`` (and the index updated)."""
    entries = read_index(folder)
    kept: dict[str, Entry] = {}
    changed = False
    results: list[_T] = []
    for path in files:
        try:
            stamp = stamp_of(path.stat())  # before reading: a later write changes the stamp
        except OSError:
            results.append(summarise(path))  # gone or unreadable: let the loader say why
            continue
        entry = entries.get(path.name)
        if entry is not None and entry.stamp == stamp:
            try:
                results.append(restore(path, entry.summary))
                kept[path.name] = entry
                continue
            except ValidationError:
                pass
        summary = summarise(path)
        results.append(summary)
        kept[path.name] = Entry(stamp=stamp, summary=dump(summary))
        changed = True
    if changed or kept.keys() != entries.keys():
        write_index(folder, kept)
    return results
