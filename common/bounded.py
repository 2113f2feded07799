"""Reading a file a person named: a regular file only, and never more than a limit.

Every file Roundtable reads from a path it was given (transcripts, documents, team files,
settings, scripts, prompts) goes through ``read_bounded``: a device (``/dev/zero``), a FIFO
(which would block), a directory or a socket is refused without blocking on it, a file over
the limit is refused before anything is read, and at most ``limit + 1`` bytes are ever read
(a file growing while it is read is caught too). ``read_text`` decodes UTF-8; ``split_lines``
adds a line-length limit.

Each refusal is one line naming the file and what was wrong, raised as ``error`` (a
``ConfigError`` unless the caller names its own subclass). Does not own what the bytes mean.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from roundtable.common.errors import ConfigError

MAX_CONFIG_BYTES = 1024 * 1024
"""Settings, users, prompts and script files are refused over this (they are a few KiB)."""
KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def read_bounded(
    path: Path, limit: int, what: str, *, error: type[ConfigError] = ConfigError
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit``; ``what`` names the file's
    kind in errors ("team file"), and ``error`` is the class raised."""
    where = f"{what} {path}".strip()
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever; a regular
        # file ignores the flag. The fstat after opening checks what was actually opened.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise error(f"{where}: cannot read ({_reason(exc)})") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = KINDS.get(stat.S_IFMT(info.st_mode), "a special file")
            raise error(f"{where}: not a regular file ({kind})")
        raise error(f"{where}: {info.st_size} bytes, over the size limit of {limit} bytes")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{where}: cannot read ({_reason(exc)})") from exc
    if len(data) > limit:  # it grew while we read
        raise error(f"{where}: grew while read, over the size limit of {limit} bytes")
    return data


def read_text(path: Path, limit: int, what: str, *, error: type[ConfigError] = ConfigError) -> str:
    """``read_bounded`` decoded as UTF-8; bytes that are not UTF-8 are one line too."""
    data = read_bounded(path, limit, what, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not UTF-8 text (byte {exc.start})".strip()) from exc


def split_lines(
    data: bytes, line_limit: int, path: Path, what: str, *, error: type[ConfigError] = ConfigError
) -> list[bytes]:
    """``data`` cut at each newline (the piece after the last one comes last, maybe empty);
    a line longer than ``line_limit`` bytes is refused, naming its number."""
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if len(line) > line_limit:
            where = f"{what} {path}".strip()
            raise error(f"{where}:{number}: line longer than {line_limit} bytes")
    return lines


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
