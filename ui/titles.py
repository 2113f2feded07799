"""Thread titles: a thread in the sidebar is titled by its question, never by a command.

Chainlit names a thread once, by the text of its first message, from a task of its own that
races the message handler (``emitter.init_thread``). So a thread opened with ``/replay 1``
was titled "/replay 1" (and "1" when the command was picked from the menu, which sends the
command apart from its text). Here the handler says which title the thread should have, and
the data layer puts it in place of that one first-message name, whichever of the two writes
comes first: the title is written at once, and Chainlit's write, if it comes later, is
rewritten to it.

The title: the question asked (``/ask ROLE text``: the text), "Replay: <its question>" for a
replayed transcript, and ``NEUTRAL`` while a thread holds only commands (listing, export...)
or files sent without a question.
A thread titled by a question keeps it: later commands and messages do not rename it.

Owns the titling rule and the one override of Chainlit's data layer it needs; what a command
means is ``commands``'.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

__all__ = ["MAX_PINS", "NEUTRAL", "TitledDataLayer", "replay_title"]

NEUTRAL = "New conversation"
"""The title of a thread that has had only commands (or files alone) so far."""
MAX_PINS = 1000
"""Pending first-message renames kept at most (the oldest are dropped)."""
MAX_TITLE = 200


def replay_title(question: str) -> str:
    return f"Replay: {question}"


class TitledDataLayer(SQLAlchemyDataLayer):
    """Chainlit's SQLAlchemy data layer that can title a thread in place of its first message."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo=conninfo)
        self._pins: OrderedDict[str, tuple[str, str]] = OrderedDict()
        """By thread id: (the first message's text, the title to write instead of it)."""

    async def title(self, thread_id: str, title: str, first_message: str | None = None) -> None:
        """Title ``thread_id`` ``title`` now, and again should Chainlit still name it after
        ``first_message`` (its pending first-message write; None: there is none)."""
        title = " ".join(title.split())[:MAX_TITLE] or NEUTRAL
        if first_message is not None:
            self._pins[thread_id] = (first_message, title)
            self._pins.move_to_end(thread_id)
            while len(self._pins) > MAX_PINS:
                self._pins.popitem(last=False)
        await super().update_thread(thread_id, name=title)

    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        pin = self._pins.get(thread_id)
        if pin is not None and name is not None and name == pin[0]:
            name = pin[1]  # Chainlit's first-message name, late: the title stays
            del self._pins[thread_id]
        await super().update_thread(thread_id, name, user_id, metadata, tags)
