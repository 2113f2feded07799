"""A saved transcript as a downloadable document: Markdown for people, JSON for programs.

Pure functions of a loaded ``Transcript``; the app wraps the bytes in a Chainlit file.
Everything a person or an agent wrote is quoted as text: Markdown control characters in it are
escaped, so an exported transcript cannot smuggle links, images or HTML into a viewer.
"""

from __future__ import annotations

import json
import re

from conversations import (
    HUMAN,
    ErrorEvent,
    MemoryEvent,
    MessageEvent,
    PruneEvent,
    SelectionEvent,
    StopEvent,
    Transcript,
)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def escape_md(text: str) -> str:
    """``text`` with Markdown (and inline HTML) control characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_markdown(transcript: Transcript) -> str:
    """The whole debate, one section per turn, with the manager's choices and the stop."""
    header = transcript.header
    lines = [
        f"# {escape_md(header.question)}",
        "",
        f"- conversation: `{header.conversation_id}`",
        f"- started: {header.created_at:%Y-%m-%d %H:%M} UTC",
        f"- roles: {', '.join(role.name for role in header.roles)}",
        f"- max turns: {header.max_turns}",
    ]
    if header.parent is not None:
        lines.append(
            f"- forked from `{header.parent.conversation_id}` at turn {header.parent.turn}"
        )
    lines.append("")
    for event in transcript.events:
        lines.extend(_event_lines(event))
    return "\n".join(lines).rstrip() + "\n"


def _event_lines(event: object) -> list[str]:
    if isinstance(event, MessageEvent):
        who = "You" if event.speaker == HUMAN else event.speaker.capitalize()
        note = " *(cut short)*" if event.interrupted else ""
        return [f"## Turn {event.turn}: {who}{note}", "", escape_md(event.content), ""]
    if isinstance(event, SelectionEvent):
        return [
            f"> manager picks **{event.speaker}** ({event.method}): {escape_md(event.reason)}",
            "",
        ]
    if isinstance(event, ErrorEvent):
        who = f" ({event.speaker})" if event.speaker else ""
        return [f"> error, {event.family}{who}: {escape_md(event.message)}", ""]
    if isinstance(event, MemoryEvent):
        return [f"> memory: {len(event.hits)} passage(s) for {event.speaker}", ""]
    if isinstance(event, PruneEvent):
        return [f"> pruned {event.dropped} turn(s) for {event.speaker}", ""]
    if isinstance(event, StopEvent):
        return [f"**Stopped ({event.code}):** {escape_md(event.reason)}", ""]
    return []


def to_json(transcript: Transcript) -> str:
    """``{"header": ..., "events": [...]}``: the same records as the JSONL file."""
    document = {
        "header": transcript.header.model_dump(mode="json"),
        "events": [event.model_dump(mode="json") for event in transcript.events],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def file_name(transcript: Transcript, fmt: str) -> str:
    """``<conversation id>.md`` or ``.json``."""
    return f"{transcript.header.conversation_id}.{fmt}"
