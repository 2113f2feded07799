"""A browser session's runner without a browser: a display that keeps what it was given."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from roundtable.agents import Team
from roundtable.conversations import RunOptions, Settings
from roundtable.transcripts import LiveEvent
from roundtable.ui.commands import Say
from roundtable.ui.session import SessionRunner


class Shown:
    """A display that keeps what it was given (the session's contract, not Chainlit's)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.events: list[LiveEvent] = []
        self.notes: list[str] = []

    async def show(self, event: LiveEvent) -> None:
        self.events.append(event)

    async def note(self, text: str) -> None:
        self.notes.append(text)

    async def failure(self, text: str) -> None:
        self.notes.append(f"failure: {text}")


def session_runner(
    settings: Settings, options: RunOptions, team: Team | None = None
) -> tuple[SessionRunner, list[Shown]]:
    """A runner as the app makes one (``team``: its chat profile's), and what it showed."""
    shown: list[Shown] = []

    def display(**kwargs: Any) -> Shown:
        shown.append(Shown(**kwargs))
        return shown[-1]

    async def link(_path: Path, _kind: str) -> None:
        return None

    runner = SessionRunner(
        settings=settings,
        display=display,
        spawn=lambda coro: asyncio.get_running_loop().create_task(coro),
        on_transcript=link,
        options=options,
        team=team,
    )
    return runner, shown


async def say_and_wait(runner: SessionRunner, message: Say) -> None:
    """Say ``message`` and wait for the run it starts (or joins) to end."""
    await runner.say(message)
    assert runner.task is not None
    await asyncio.wait_for(runner.task, timeout=60)
