# mypy: disallow-untyped-calls=False
# (Chainlit's Message.send and Element.send are unannotated.)
"""The run's pictures in the chat: a timeline that grows as turns commit, and at the end the
final timeline and the per-agent costs.

One message holds the timeline, a ``cl.Image`` (SVG bytes) sent when the first turn commits
and re-drawn as later turns commit: Chainlit replaces an element sent again with the same id,
so the image changes in place. Re-drawing is throttled (at most once per ``INTERVAL`` seconds,
a skipped turn is drawn with the next one or at the end), so a run pays a few milliseconds per
turn. Live runs and replays draw the same, from the same events. The drawing itself is
``transcripts.pictures``; this module only decides when, and where.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import chainlit as cl

from roundtable.transcripts import (
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    MessageEvent,
    PruneEvent,
    costs_svg,
    timeline_svg,
)
from roundtable.transcripts.pictures import MAX_BARS, TIP_CHARS

SVG = "image/svg+xml"
INTERVAL = 1.0
"""Seconds between two re-drawings of the live timeline."""
TIMELINE, COSTS = "timeline.svg", "costs.svg"


def svg_image(name: str, svg: str) -> cl.Image:
    """An inline picture of ``svg``."""
    return cl.Image(name=name, content=svg.encode(), mime=SVG, display="inline", size="large")


@dataclass
class PicturesView:
    """The run's timeline message, kept up to date, and the pictures of its ending."""

    clock: float = 0.0
    """When the timeline was last drawn (``time.monotonic``)."""
    _header: Header | None = None
    _events: deque[Event] = field(default_factory=lambda: deque(maxlen=2 * MAX_BARS))
    _message: cl.Message | None = None
    _image: cl.Image | None = None
    _stale: bool = False

    def see(self, event: LiveEvent) -> None:
        """Keep what the pictures need: the header, the committed turns and the prunes."""
        if isinstance(event, Header):
            self._header = event
        elif isinstance(event, MessageEvent | PruneEvent):
            if isinstance(event, MessageEvent):  # a tooltip shows the start; the rest is not kept
                event = event.model_copy(update={"content": event.content[:TIP_CHARS]})
            self._events.append(event)
            self._stale = True

    async def refresh(self) -> None:
        """Draw the timeline again if it changed and the last drawing is old enough."""
        if not self._stale or self._header is None:
            return
        moment = time.monotonic()
        if self._message is not None and moment - self.clock < INTERVAL:
            return
        self.clock, self._stale = moment, False
        svg = timeline_svg(self._header, self._events)
        if self._message is None:
            self._image = svg_image(TIMELINE, svg)
            self._message = cl.Message(
                content="**Who spoke when**", author="Roundtable", elements=[self._image]
            )
            await self._message.send()
            return
        assert self._image is not None
        self._image.content = svg.encode()
        self._image.updatable = True  # a new file for the new drawing, the same element id
        await self._image.send(for_id=self._message.id, persist=False)

    def ending(self, ledger: list[LedgerRow]) -> list[cl.Image]:
        """The final timeline, and the costs when the run has a ledger."""
        if self._header is None:
            return []
        pictures = [svg_image(TIMELINE, timeline_svg(self._header, self._events))]
        if ledger:
            roles = [role.name for role in self._header.roles]
            pictures.append(svg_image(COSTS, costs_svg(ledger, roles)))
        return pictures
