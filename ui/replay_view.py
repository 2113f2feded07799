"""The replay view: a list of saved transcripts, and finding the one the person picked.

The list is a message with one row per transcript (question, date, turns, stop reason) and a
button per row; ``/replay N [speed]`` does the same by number. A pick names a file *inside* the
transcripts folder (a number, a conversation id or a file name), never a path the browser
sends. Playing it is ``SessionRunner.play``; drawing is ``render``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import chainlit as cl

from roundtable.transcripts import (
    Transcript,
    TranscriptError,
    TranscriptSummary,
    catalogue,
    load,
)
from roundtable.ui.history import transcript_in

REPLAY_ACTION = "replay_transcript"
MAX_LISTED = 20


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def rows(folder: Path) -> list[TranscriptSummary]:
    """Loadable transcripts, newest first, at most ``MAX_LISTED``."""
    return [s for s in catalogue(folder) if s.problem is None][:MAX_LISTED]


def listing(folder: Path) -> tuple[str, list[cl.Action]]:
    """The list as a Markdown table and one replay button per transcript."""
    found = rows(folder)
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


def pick(folder: Path, which: str) -> Transcript | str:
    """The transcript ``which`` names, or a message saying why there is none."""
    path: Path | None = None
    if which.isdigit():
        found = rows(folder)
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
            return load(path)
    except TranscriptError as exc:
        return f"That transcript cannot be read: {exc}"


def _escape(text: str) -> str:
    """Table cells are Markdown: neutralise characters that would format or link."""
    for char in "\\`*_[]<>#!":
        text = text.replace(char, "\\" + char)
    return text
