"""The replay view: a list of saved transcripts, and finding the one the person picked.

The list is a message with one row per transcript (question, date, turns, stop reason) and a
button per row; ``/replay N [speed]`` does the same by number. A pick names a file *inside* the
transcripts folder (a number, a conversation id or a file name), never a path the browser
sends. Playing it is ``SessionRunner.play``; drawing is ``render``.

Everything here is one user's: the list shows only the caller's transcripts, and a pick of
another user's transcript (by number, id or file name) is answered exactly as a missing one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import chainlit as cl

from roundtable.common.owners import owns
from roundtable.transcripts import Transcript, TranscriptError, TranscriptSummary, load, owned
from roundtable.ui.history import transcript_in

REPLAY_ACTION = "replay_transcript"
MAX_LISTED = 20


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def rows(folder: Path, owner: str | None) -> list[TranscriptSummary]:
    """``owner``'s loadable transcripts, newest first, at most ``MAX_LISTED``."""
    return owned(folder, owner)[:MAX_LISTED]


def listing(folder: Path, owner: str | None) -> tuple[str, list[cl.Action]]:
    """``owner``'s list as a Markdown table and one replay button per transcript."""
    found = rows(folder, owner)
    if not found:
        return "No saved transcripts yet: ask a question to start one.", []
    lines = ["| # | question | date | turns | stop |", "|---|---|---|---|---|"]
    actions: list[cl.Action] = []
    for number, row in enumerate(found, start=1):
        when = f"{row.created_at:%Y-%m-%d %H:%M}" if row.created_at else "?"
        lines.append(
            f"| {number} | {_escape(_cell(row.question, 60))} | {when} | {row.turns} "
            f"| {_escape(_cell(row.stop, 50))} |"
        )
        actions.append(
            cl.Action(
                name=REPLAY_ACTION,
                payload={"file": row.path.name},
                label=f"Replay #{number}",
                tooltip=_cell(row.question, 80),
            )
        )
    lines.append("")
    lines.append("Replay with `/replay N` (original pacing: `/replay N 1x`, faster: `2x`, `10x`).")
    return "\n".join(lines), actions


def pick(folder: Path, which: str, owner: str | None) -> Transcript | str:
    """``owner``'s transcript ``which`` names, or a message saying why there is none."""
    path: Path | None = None
    if which.isdigit():
        found = rows(folder, owner)
        index = int(which) - 1
        if not 0 <= index < len(found):
            return f"There is no transcript #{which}; /replay lists them."
        path = found[index].path
    else:
        name = which if which.endswith(".jsonl") else f"{which}.jsonl"
        path = transcript_in(folder, name)
    if path is None:
        return f"No transcript named {which!r}; /replay lists them."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transcript = load(path)
    except TranscriptError:  # whose it is cannot be told: answered as a missing one
        return f"No transcript named {which!r}; /replay lists them."
    if not owns(owner, transcript.header.owner):
        return f"No transcript named {which!r}; /replay lists them."
    return transcript


def _escape(text: str) -> str:
    """Table cells are Markdown: neutralise characters that would format or link."""
    for char in "\\`*_[]<>#!":
        text = text.replace(char, "\\" + char)
    return text
