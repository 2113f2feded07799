"""Replay: a saved transcript as the same live event stream a running debate produces.

Renderers cannot tell a replay from a live run: messages are streamed again as token deltas,
and with a ``speed`` the original pacing is kept (2.0 = twice as fast). No model is called.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from roundtable.transcripts.events import LiveEvent, MessageEvent, TokenDelta
from roundtable.transcripts.store import Transcript

MAX_PAUSE_S = 5.0
"""A long gap in the original (a person away) is never replayed longer than this."""


async def replay(transcript: Transcript, *, speed: float | None = None) -> AsyncIterator[LiveEvent]:
    """Yield the header and every event; ``speed=None`` replays instantly."""
    yield transcript.header
    previous = transcript.header.created_at
    for event in transcript.events:
        if speed:
            gap = (event.at - previous).total_seconds() / speed
            if isinstance(event, MessageEvent) and event.latency_s:
                gap -= event.latency_s / speed  # that time is spent streaming instead
            await asyncio.sleep(min(max(gap, 0.0), MAX_PAUSE_S))
        previous = event.at
        if isinstance(event, MessageEvent) and event.speaker in _agents(transcript):
            pieces = re.findall(r"\S+\s*|\s+", event.content)
            pause = (event.latency_s / speed / max(len(pieces), 1)) if speed else 0.0
            for piece in pieces:
                if pause:
                    await asyncio.sleep(min(pause, MAX_PAUSE_S))
                yield TokenDelta(turn=event.turn, speaker=event.speaker, text=piece)
        yield event


def _agents(transcript: Transcript) -> set[str]:
    return {role.name for role in transcript.header.roles}
