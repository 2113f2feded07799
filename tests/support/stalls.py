"""Stalled model streams for tests: a scripted client that goes quiet until released."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from autogen_core.models import CreateResult, LLMMessage

from roundtable.agents import ScriptedChatCompletionClient
from roundtable.conversations.modes import Run
from roundtable.transcripts import LiveEvent


def stall(client: ScriptedChatCompletionClient, *, after: int = 0, calls: int = 1) -> asyncio.Event:
    """Make ``client``'s first ``calls`` streams go quiet after ``after`` chunks (0: before the
    first), ignoring every stop signal, until the returned event is set."""
    inner = client.create_stream
    release = asyncio.Event()
    made = 0

    async def create_stream(
        messages: Sequence[LLMMessage], **kwargs: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        nonlocal made
        made += 1
        stalls = made <= calls
        async for sent, item in aenumerate(inner(messages, **kwargs)):
            if stalls and sent == after:
                await release.wait()
            yield item

    client.create_stream = create_stream  # type: ignore[method-assign]
    return release


async def aenumerate(
    items: AsyncGenerator[str | CreateResult, None],
) -> AsyncGenerator[tuple[int, str | CreateResult], None]:
    count = 0
    async for item in items:
        yield count, item
        count += 1


async def timed_run(
    run: Run,
    *,
    within: float,
    release: asyncio.Event,
    on_event: Callable[[LiveEvent], None] | None = None,
) -> list[tuple[float, LiveEvent]]:
    """Every event of ``run`` with the seconds since it began (``on_event`` sees each as it
    comes); fails if the run is not over ``within`` seconds (then ``release`` is set, so a
    hung run still ends)."""
    began = time.monotonic()

    async def consume() -> list[tuple[float, LiveEvent]]:
        events: list[tuple[float, LiveEvent]] = []
        async for event in run.run():
            events.append((time.monotonic() - began, event))
            if on_event is not None:
                on_event(event)
        return events

    task = asyncio.ensure_future(consume())
    done, _ = await asyncio.wait({task}, timeout=within)
    release.set()
    events = await task
    assert done, f"the run was still going {within} s after it began"
    return events
