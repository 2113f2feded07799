# mypy: disallow-untyped-calls=False
# (Chainlit's emitter methods are unannotated.)
"""The composer's stop square for a run that goes on in the background.

Chainlit turns the composer's send arrow into a stop square while a *task* runs
(``emitter.task_start()`` / ``task_end()``), and its ``stop`` event calls ``@cl.on_stop``. A
debate is a background task (the ``on_message`` handler returns at once), so Chainlit never
shows the square by itself: the session runner says when a run is live and this module starts
and ends the task for it.

While the square shows, Chainlit refuses to send (the composer is "busy"), yet a person must
be able to step into a debate. So the page says when the person is typing (``public/
composer.js`` posts a window message): typing brings back the send arrow, an empty box while a
run is live brings back the square. The same message re-asserts the square after Chainlit's
own ``task_end`` at the end of each ``on_message``.

Owns the per-session state (live, composing) and the page's message format; not what Stop
does (``SessionRunner.stop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import chainlit as cl
from chainlit.chat_context import chat_context
from chainlit.config import config as chainlit_config

PAGE_KEY = "roundtable"
"""The key of the page's window messages: ``{"roundtable": "composing" | "idle"}``."""
CHAINLIT_STOPPED = "Task manually stopped."
"""What Chainlit's ``stop`` event says in the chat before it calls ``on_stop``."""

PageState = Literal["composing", "idle"]


@dataclass
class StopSquare:
    """Whether one session's composer shows its stop square."""

    live: bool = False
    """A run (or replay) of this session is going on."""
    composing: bool = False
    """The person has something typed: the send arrow must be there to send it."""

    @property
    def wanted(self) -> bool:
        return self.live and not self.composing

    async def busy(self, live: bool) -> None:
        """The session's run started (True) or ended (False)."""
        self.live = live
        await self.show()

    async def page(self, data: Any) -> None:
        """A window message from the page; anything not ours is ignored."""
        state = page_state(data)
        if state is None:
            return
        self.composing = state == "composing"
        await self.show()

    async def show(self) -> None:
        """Tell the page: square (a task runs) or arrow (no task)."""
        emitter = cl.context.emitter
        await (emitter.task_start() if self.wanted else emitter.task_end())


_SQUARES: dict[str, StopSquare] = {}
"""By Chainlit session id."""


def _square() -> StopSquare:
    return _SQUARES.setdefault(cl.context.session.id, StopSquare())


async def busy(live: bool) -> None:
    """``SessionRunner.on_busy`` for the current session."""
    await _square().busy(live)


async def from_page(data: Any) -> None:
    """``@cl.on_window_message`` for the current session."""
    await _square().page(data)


def forget(session_id: str) -> None:
    """The session ended for good."""
    _SQUARES.pop(session_id, None)


def page_state(data: Any) -> PageState | None:
    """The page's state in a window message of ours, else None (bounded: one short key)."""
    if not isinstance(data, dict) or len(data) != 1:
        return None
    value = data.get(PAGE_KEY)
    return value if value in ("composing", "idle") else None


async def drop_chainlit_notice() -> None:
    """Remove Chainlit's own "Task manually stopped." line: the run's stop line says it, in
    the run's words (a stop is a stop, not a task's failure)."""
    for message in reversed(chat_context.get()):
        if message.content == CHAINLIT_STOPPED and message.author == chainlit_config.ui.name:
            await message.remove()
            return
