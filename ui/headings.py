"""An agent message's first and last lines: who speaks, at which turn, why; what it recalled.

The heading carries the one line of why (the manager's reason, in the words of
``transcripts.why_line``), so the person can tell who spoke and why from the headings alone.
The full decision (candidates, method, raw reason) and the recalled passages stay one click
away, in one collapsed step inside the message (not side elements: Chainlit 2.12 opens its side
panel by itself whenever a side element arrives, and shows every one of them at once). A memory
look-up that found nothing is not shown.

Owns the wording; ``render`` decides when to draw it.
"""

from __future__ import annotations

from roundtable.transcripts import MemoryEvent, MemoryHit, SelectionEvent, why_line

DETAILS = "Decision"
"""The collapsed step inside a message: the manager's whole decision."""
DETAILS_WITH_MEMORY = "Decision and memory"
"""The same, with what memory gave the speaker."""


def speaker_heading(
    speaker: str, turn: int, branch: str | None = None, why: SelectionEvent | None = None
) -> str:
    """The first line of an agent's message: its name in bold, its turn (as the run bar
    counts it), the branch of a plan it answers, and why it speaks."""
    where = f" · {branch}" if branch else ""
    reason = f" — *{why_line(why)}*" if why is not None else ""
    return f"**{speaker.capitalize()}** · turn {turn}{where}{reason}\n\n"


def details(why: SelectionEvent | None, recalled: MemoryEvent | None) -> tuple[str, str] | None:
    """The name and body of the collapsed step inside a message; nothing to show: None."""
    parts: list[str] = []
    if why is not None:
        candidates = ", ".join(why.candidates)
        parts.append(f"{why.reason}\n\nChosen by: {why.method}\n\nCandidates: {candidates}")
    if recalled is not None and recalled.hits:
        parts.append(memory_text(recalled))
    if not parts:
        return None
    name = DETAILS_WITH_MEMORY if recalled is not None and recalled.hits else DETAILS
    return name, "\n\n---\n\n".join(parts)


def memory_note(event: MemoryEvent | None) -> str:
    """The message's last line when memory gave its speaker passages; none: nothing."""
    if event is None or not event.hits:
        return ""
    sources = ", ".join(dict.fromkeys(hit.source for hit in event.hits))
    count = len(event.hits)
    plural = "s" if count != 1 else ""
    return f"\n\n*Memory gave {count} passage{plural} from {sources}*"


def memory_text(event: MemoryEvent) -> str:
    """The look-up in full, for the collapsed step."""
    hits = "\n\n".join(hit_line(hit, i) for i, hit in enumerate(event.hits, start=1))
    return f"Query: {event.query}\n\n{hits}"


def hit_line(hit: MemoryHit, i: int) -> str:
    return f"[{hit.n or i}] {hit.score:.2f} · {hit.source}: {hit.text[:300]}"
