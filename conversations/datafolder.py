"""The data folder, checked once at start-up: a writable folder, or one line saying why not.

Every front end that writes there (``ask``, ``ui``, ``list``) calls ``check_data_folder``
first, so a data folder that is a file, or on a read-only disk, is one ``DataFolderError``
naming it and the setting (exit code 2), not a traceback from the first write deep in a run.
Creates the folder (and its ``transcripts`` folder) when missing; owns nothing else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from roundtable.common.errors import ConfigError

SETTING = "ROUNDTABLE_DATA_DIR"


class DataFolderError(ConfigError):
    """The data folder cannot be used: not a folder, cannot be created, or not writable."""


def check_data_folder(data_dir: Path, transcripts_dir: Path) -> None:
    """Create both folders if needed and prove ``data_dir`` and ``transcripts_dir`` writable
    by creating and removing a file in each; any failure is one DataFolderError line."""
    for folder in (data_dir, transcripts_dir):
        _check(folder, data_dir)


def _check(folder: Path, data_dir: Path) -> None:
    where = f"data folder {folder} ({SETTING})" if folder == data_dir else f"folder {folder}"
    if folder.exists() and not folder.is_dir():
        raise DataFolderError(f"{where}: not a folder (a file is in the way)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFolderError(f"{where}: cannot create it ({exc.strerror or exc})") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataFolderError(f"{where}: not writable ({exc.strerror or exc})") from exc
