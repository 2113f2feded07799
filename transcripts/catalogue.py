"""The saved transcripts in a folder, summarised for ``roundtable list`` and the replay view.

``catalogue`` lists every file (the CLI's view: whoever runs it owns the data folder);
``owned`` lists one user's loadable transcripts (the browser's and the API's view). Both read
only the files that changed since the last listing (``index`` keeps the summaries).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from roundtable.common.owners import owns
from roundtable.transcripts.events import HUMAN, Event, MessageEvent, Mode, PlanEvent, StopEvent
from roundtable.transcripts.index import indexed
from roundtable.transcripts.lines import TranscriptError
from roundtable.transcripts.store import load


class TranscriptSummary(BaseModel):
    """One line of the catalogue; ``problem`` is set for a file that does not load."""

    model_config = ConfigDict(frozen=True)

    path: Path
    conversation_id: str = ""
    question: str = ""
    created_at: datetime | None = None
    turns: int = 0
    stop: str = ""
    mode: Mode = "debate"
    owner: str | None = None
    """Whose run it is (None: the local user, as every transcript from before owners)."""
    parent: str | None = None
    """The conversation this one was forked from (None: not a fork)."""
    fork_turn: int | None = None
    """The parent's last turn the fork kept."""
    fork_text: str = ""
    """What the person said where the fork branched off (a fork keeps its parent's question,
    so this is what tells forks apart); empty when not a fork."""
    problem: str | None = None


def fork_said(fork_turn: int, events: Iterable[Event]) -> str:
    """What the person said where a fork branched off: their first message after the parent's
    kept turn (at most 300 characters); empty when none is among ``events``."""
    return next(
        (
            e.content[:300]
            for e in events
            if isinstance(e, MessageEvent) and e.speaker == HUMAN and e.turn > fork_turn
        ),
        "",
    )


def summarise(path: Path) -> TranscriptSummary:
    """Summarise one transcript; a broken file is reported, never half-shown."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transcript = load(path)
    except TranscriptError as exc:
        return TranscriptSummary(path=path, problem=str(exc))
    turns = sum(1 for e in transcript.events if isinstance(e, MessageEvent) and e.speaker != HUMAN)
    stop = next((e for e in reversed(transcript.events) if isinstance(e, StopEvent)), None)
    plan = next((e for e in transcript.events if isinstance(e, PlanEvent)), None)
    parent = transcript.header.parent
    said = fork_said(parent.turn, transcript.events) if parent is not None else ""
    return TranscriptSummary(
        path=path,
        conversation_id=transcript.header.conversation_id,
        question=transcript.header.question,
        created_at=transcript.header.created_at,
        turns=turns,
        stop=f"{stop.code}: {stop.reason}" if stop else "(no stop: interrupted run)",
        mode=plan.mode if plan is not None else "debate",
        owner=transcript.header.owner,
        parent=parent.conversation_id if parent else None,
        fork_turn=parent.turn if parent else None,
        fork_text=said,
    )


def catalogue(folder: Path) -> list[TranscriptSummary]:
    """Every ``*.jsonl`` transcript in ``folder``, newest first; only the files that changed
    since the last listing are read (``index``)."""
    if not folder.is_dir():
        return []
    summaries = indexed(folder, list(folder.glob("*.jsonl")), summarise, _dump, _restore)
    return sorted(summaries, key=lambda s: (s.created_at is None, s.created_at), reverse=False)[
        ::-1
    ]


def owned(folder: Path, owner: str | None) -> list[TranscriptSummary]:
    """``owner``'s loadable transcripts in ``folder``, newest first (a file that does not load
    has no known owner: it is listed to nobody)."""
    return [s for s in catalogue(folder) if s.problem is None and owns(owner, s.owner)]


def _dump(summary: TranscriptSummary) -> dict[str, object]:
    return summary.model_dump(mode="json", exclude={"path"})


def _restore(path: Path, data: dict[str, object]) -> TranscriptSummary:
    return TranscriptSummary.model_validate({**data, "path": path})
