# mypy: disallow-untyped-calls=False
# (Chainlit's Message.send and Element.send are unannotated.)
"""The run's pictures in the chat: a timeline that grows as turns commit, the plan's graph
re-coloured as its branches start and end, and at the end the final timeline, the plan's graph,
the per-agent costs and, when the conversation is a fork or has forks, the tree of its forks.

One message holds the timeline, a ``cl.Image`` (SVG bytes) sent when the first turn commits
and re-drawn as later turns commit: Chainlit replaces an element sent again with the same id,
so the image changes in place. Re-drawing is throttled (at most once per ``INTERVAL`` seconds,
a skipped turn is drawn with the next one or at the end), so a run pays a few milliseconds per
turn. The plan's graph is its own message, sent with the plan and re-drawn at every branch
event (a plan has at most 16 branches: a few dozen drawings, none skipped, so a failure shows
at once). Live runs and replays draw the same, from the same events. The drawing itself is
``transcripts.pictures``, ``transcripts.plan_graph`` and ``transcripts.fork_tree``; this module
only decides when, and where.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import chainlit as cl

from roundtable.transcripts import (
    BranchEvent,
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    MessageEvent,
    PlanEvent,
    PruneEvent,
    costs_svg,
    family,
    fork_svg,
    owned,
    plan_svg,
    timeline_svg,
)
from roundtable.transcripts.pictures import MAX_BARS, TIP_CHARS

SVG = "image/svg+xml"
INTERVAL = 1.0
"""Seconds between two re-drawings of the live timeline."""
TIMELINE, COSTS, PLAN, FORKS = "timeline.svg", "costs.svg", "plan.svg", "forks.svg"


def svg_image(name: str, svg: str) -> cl.Image:
    """An inline picture of ``svg``."""
    return cl.Image(name=name, content=svg.encode(), mime=SVG, display="inline", size="large")


def fork_picture(folder: Path, owner: str | None, conversation_id: str) -> cl.Image | None:
    """The tree of forks that holds ``conversation_id``, drawn from ``owner``'s transcripts
    only (``transcripts.fork_tree``); None when it is neither a fork nor forked. Lists the
    folder (through its summary index, reading only files changed since): call it in a thread."""
    tree = family(owned(folder, owner), conversation_id)
    return svg_image(FORKS, fork_svg(tree, conversation_id)) if len(tree) > 1 else None


@dataclass
class _Shown:
    """A picture in a message of its own: sent the first time, then changed in place."""

    name: str
    title: str
    message: cl.Message | None = None
    image: cl.Image | None = None

    async def draw(self, svg: str) -> None:
        if self.message is None or self.image is None:
            self.image = svg_image(self.name, svg)
            self.message = cl.Message(
                content=self.title, author="Roundtable", elements=[self.image]
            )
            await self.message.send()
            return
        self.image.content = svg.encode()
        self.image.updatable = True  # a new file for the new drawing, the same element id
        await self.image.send(for_id=self.message.id, persist=False)


@dataclass
class PicturesView:
    """The run's timeline message, kept up to date, and the pictures of its ending."""

    clock: float = 0.0
    """When the timeline was last drawn (``time.monotonic``)."""
    _header: Header | None = None
    _events: deque[Event] = field(default_factory=lambda: deque(maxlen=2 * MAX_BARS))
    _timeline: _Shown = field(default_factory=lambda: _Shown(TIMELINE, "**Who spoke when**"))
    _stale: bool = False
    _plan: PlanEvent | None = None
    _branches: list[BranchEvent] = field(default_factory=list)
    _graph: _Shown = field(default_factory=lambda: _Shown(PLAN, "**The plan**"))

    def see(self, event: LiveEvent) -> None:
        """Keep what the pictures need: the header, the committed turns and the prunes, the
        accepted plan and its branch events."""
        if isinstance(event, Header):
            self._header = event
        elif isinstance(event, PlanEvent):
            if event.accepted and event.steps:
                self._plan, self._branches = event, []
        elif isinstance(event, BranchEvent):
            self._branches.append(event)
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
        if self._timeline.message is not None and moment - self.clock < INTERVAL:
            return
        self.clock, self._stale = moment, False
        await self._timeline.draw(timeline_svg(self._header, self._events))

    async def refresh_plan(self) -> None:
        """Draw the plan's graph again, in its own message (sent the first time)."""
        if self._plan is not None:
            await self._graph.draw(plan_svg(self._plan, self._branches))

    def ending(self, ledger: list[LedgerRow]) -> list[cl.Image]:
        """The final timeline, the plan's graph when there was one, and the costs when the
        run has a ledger."""
        if self._header is None:
            return []
        pictures = [svg_image(TIMELINE, timeline_svg(self._header, self._events))]
        if self._plan is not None:
            pictures.append(svg_image(PLAN, plan_svg(self._plan, self._branches)))
        if ledger:
            roles = [role.name for role in self._header.roles]
            pictures.append(svg_image(COSTS, costs_svg(ledger, roles)))
        return pictures
