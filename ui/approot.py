"""Chainlit's app root: a writable copy, per data folder, of the files Roundtable ships for it.

Chainlit reads ``.chainlit/config.toml``, ``public/`` and ``chainlit.md`` from its app root and
also writes there (``.chainlit/translations/``, ``.files/`` for uploads). The shipped copies live
beside the code, which is site-packages once installed: read-only, or shared between users. So
the server runs Chainlit in ``<data_dir>/ui/``, with the shipped files copied in, in a checkout
too (one code path). The copy is refreshed when the shipped files change (an upgrade, an edit
in the checkout), and only then: an edit to the copy lasts until the next refresh.

One file of Chainlit's own is written too: its English labels, with the composer's command
menu called "Commands", not "Tools" (it holds /stop, /replay, /export..., no tools).

Does not own the checks on the config (``server.py``) nor anything else in ``<data_dir>/ui/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import chainlit

SHIPPED_ROOT = Path(__file__).resolve().parent.parent
"""The package folder: the source checkout, or ``site-packages/roundtable`` once installed."""
SHIPPED = (".chainlit/config.toml", "chainlit.md", "public")
"""What Chainlit reads from its app root: files, or folders copied whole."""
STAMP = ".roundtable-shipped.json"
LABELS = ".chainlit/translations/en-US.json"
COMMAND_LABELS = {
    "button": "Commands",
    "changeTool": "Change command",
    "availableTools": "Commands",
}
"""Chainlit's ``chat.commands`` labels, as Roundtable's menu reads."""
"""In the copy: the digest of the shipped files it holds, and their paths."""


def app_root(data_dir: Path) -> Path:
    return data_dir / "ui"


def shipped_files(source: Path = SHIPPED_ROOT) -> list[str]:
    """The shipped files' paths relative to ``source``, sorted (``/``-separated)."""
    found: list[str] = []
    for name in SHIPPED:
        path = source / name
        if path.is_dir():
            found += [p.relative_to(source).as_posix() for p in path.rglob("*") if p.is_file()]
        elif path.is_file():
            found.append(name)
    return sorted(found)


def _digest(source: Path, files: list[str]) -> str:
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (source / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _read_stamp(path: Path) -> dict[str, object]:
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_atomically(target: Path, data: bytes) -> None:
    # Two servers may start on one data folder at once: each file is whole, old or new.
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def prepare_app_root(data_dir: Path, source: Path = SHIPPED_ROOT) -> Path:
    """Return ``<data_dir>/ui/`` holding the current shipped files (copied when they changed)."""
    root = app_root(data_dir)
    files = shipped_files(source)
    digest = _digest(source, files)
    stamp = _read_stamp(root / STAMP)
    if stamp.get("digest") != digest or not all((root / name).is_file() for name in files):
        _copy(source, root, files, stamp, digest)
    _label_commands(root)
    return root


def _copy(
    source: Path, root: Path, files: list[str], stamp: dict[str, object], digest: str
) -> None:
    """Write the shipped ``files`` into ``root``, drop the ones shipped before, stamp it."""
    for name in files:
        _write_atomically(root / name, (source / name).read_bytes())
    previous = stamp.get("files")
    for name in previous if isinstance(previous, list) else []:
        if isinstance(name, str) and name not in files and ".." not in Path(name).parts:
            (root / name).unlink(missing_ok=True)  # shipped before, dropped since
    record = {"digest": digest, "files": files}
    _write_atomically(root / STAMP, json.dumps(record, indent=1).encode())


def _label_commands(root: Path) -> None:
    """Chainlit's English labels with the command menu's own; Chainlit copies its labels only
    where none exist, so these stay (rewritten when Chainlit's change)."""
    packaged = Path(chainlit.__file__).parent / "translations" / "en-US.json"
    labels = json.loads(packaged.read_text(encoding="utf-8"))
    labels.setdefault("chat", {}).setdefault("commands", {}).update(COMMAND_LABELS)
    data = json.dumps(labels, indent=4, ensure_ascii=False).encode()
    target = root / LABELS
    if not target.is_file() or target.read_bytes() != data:
        _write_atomically(target, data)
