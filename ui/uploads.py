"""Documents the person drops into the chat: into their own library, tagged with who they are.

Owns: taking the files of a Chainlit message (dragged in, attached, or attached to a question),
copying each under its own name into the person's upload folder, adding them to shared memory
with ``owner`` = the Chainlit user's identifier, and the progress line and the summary the person
sees. A refused upload leaves nothing behind: its copies go, and a file one of them replaced is
put back. Does not own: reading formats or refusing bad files (memory.documents), nor filtering
searches by owner (memory.scope: one user's documents never answer another's search).

Scope: the person's library. A document added in one conversation is recalled in their later
ones too; each passage records its owner, and the folder is per user (a hash of the
identifier), so two people's files of the same name never replace each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.element import Element

from roundtable.common.errors import ConfigError
from roundtable.memory import MemoryStore, describe_added
from roundtable.transcripts import escape_md

_UNSAFE = re.compile(r"[^\w.\- ]+")
REPLACED = ".replaced"


def uploaded_files(elements: Sequence[Any]) -> list[tuple[str, Path]]:
    """(name, path on the server) of each uploaded file of a message.

    Chainlit gives an upload the element class of its type: a PDF arrives as ``cl.Pdf``, an
    image as ``cl.Image``, only the rest as ``cl.File``; every one of them is a file the person
    sent (what cannot be read is refused by name when it is added)."""
    return [
        (str(element.name), Path(element.path))
        for element in elements
        if isinstance(element, Element) and element.path
    ]


def user_folder(data_dir: Path, owner: str) -> Path:
    """Where the person's uploads are kept: one folder per user identifier."""
    return data_dir / "uploads" / hashlib.sha256(owner.encode()).hexdigest()[:16]


def targets(files: Sequence[tuple[str, Path]], folder: Path) -> list[Path]:
    """Where each upload is kept: under its own (sanitised) name, which carries the type and is
    shown as the source of every passage."""
    return [
        folder / (_UNSAFE.sub("_", Path(name).name).strip(" .") or "upload")[:120]
        for name, _ in files
    ]


def keep(files: Sequence[tuple[str, Path]], kept: Sequence[Path]) -> None:
    """Copy each upload to its place in ``kept``. A file it replaces is moved to ``.replaced``
    beside it (a kept name never starts with a dot), for ``undo`` to put back."""
    for (_, path), target in zip(files, kept, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        previous = target.parent / REPLACED / target.name
        if target.is_file() and not previous.exists():
            previous.parent.mkdir(exist_ok=True)
            target.replace(previous)
        shutil.copyfile(path, target)


def undo(kept: Sequence[Path]) -> None:
    """Remove the copies of refused files, putting back those they replaced: nothing of a
    refused file stays on the server."""
    for path in kept:
        path.unlink(missing_ok=True)
        previous = path.parent / REPLACED / path.name
        if previous.is_file():
            previous.replace(path)
    for folder in {path.parent for path in kept}:
        with contextlib.suppress(OSError):  # left only if something else is still in it
            (folder / REPLACED).rmdir()


def settle(folder: Path) -> None:
    """The copies were added: the files they replaced go."""
    shutil.rmtree(folder / REPLACED, ignore_errors=True)


def own_words(
    message: str, files: Sequence[tuple[str, Path]], kept: Sequence[Path], folder: Path
) -> str:
    """``message`` with each kept copy named as the person named the file, and their folder as
    "your library": where files are kept on the server is not theirs to see."""
    for (name, _), path in zip(files, kept, strict=False):
        message = message.replace(str(path), name)
    return message.replace(str(folder), "your library")


async def add_uploads(
    store: MemoryStore | None,
    files: Sequence[tuple[str, Path]],
    data_dir: Path,
    owner: str,
) -> None:
    """Add the files to ``owner``'s library, saying so while it runs and what was added.

    The passages are ``owner``'s: memory searches are scoped by owner, so they never reach
    another user's prompts."""
    if not files:
        return
    names = escape_md(", ".join(name for name, _ in files))  # a name is the person's text
    # Any: Chainlit leaves send and update unannotated.
    status: Any = cl.Message(content=f"Adding {names} to your library…", author="Roundtable")
    await status.send()
    if store is None:
        status.content = "Documents cannot be added: shared memory is off."
        await status.update()
        return
    folder = user_folder(data_dir, owner)
    paths = targets(files, folder)
    try:
        keep(files, paths)
        added = await store.aadd_files(paths, owner=owner)
    except (ConfigError, OSError) as exc:
        undo(paths)
        status.content = f"Nothing added: {escape_md(own_words(str(exc), files, paths, folder))}"
        await status.update()
        return
    settle(folder)
    status.content = describe_added(added) + " The team can now recall them, citing [n]."
    await status.update()
