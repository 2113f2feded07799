"""A run's events as server-sent events: followed live to the run's end, or read from its file.

``followed`` is what a live run commits, as it comes, with keep-alives in the silences; the
OpenAI-compatible ``/v1`` streams from it too. ``follow`` and ``saved`` word the events as SSE
for ``GET /runs/{id}/events``: ``id`` is the event's ``seq`` (so a client resumes with
``Last-Event-ID``), ``event`` its kind, and a last ``end`` event gives the run's status.

Owns the stream's shape only; which run, and whether the caller may see it, is ``routes``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from roundtable.api.registry import Followed, LiveRun, stop_of
from roundtable.transcripts import Transcript

__all__ = ["KEEPALIVE", "KEEPALIVE_S", "follow", "followed", "saved"]

KEEPALIVE_S = 15.0
KEEPALIVE = b": keepalive\n\n"
"""A server-sent event comment: clients ignore it, proxies see the stream is alive."""


def _sse(item: Any) -> bytes:
    kind = getattr(item, "kind", "token")
    data = item.model_dump_json()
    seq = getattr(item, "seq", 0 if kind == "header" else None)
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


def _end(status: str) -> bytes:
    return f"event: end\ndata: {json.dumps({'status': status})}\n\n".encode()


async def followed(
    live: LiveRun, after: int, tokens: bool
) -> AsyncGenerator[Followed | bytes, None]:
    """What ``live`` commits after ``after`` (token deltas too if ``tokens``), as it comes, to
    its end, with ``KEEPALIVE`` after each ``KEEPALIVE_S`` of silence. Close it (``aclosing``)
    to drop the follower however the consumer leaves."""
    follower = live.follow(after, tokens)
    try:
        while True:
            try:
                item = await asyncio.wait_for(follower.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield KEEPALIVE
                continue
            if item is None:
                return
            yield item
    finally:
        if follower in live.followers:
            live.followers.remove(follower)


async def follow(live: LiveRun, after: int, tokens: bool) -> AsyncIterator[bytes]:
    """``followed`` as server-sent events, then the run's ``end``."""
    async with contextlib.aclosing(followed(live, after, tokens)) as items:
        async for item in items:
            yield item if isinstance(item, bytes) else _sse(item)
    yield _end(live.status)


async def saved(transcript: Transcript, after: int) -> AsyncIterator[bytes]:
    """A saved run's events after ``after`` as server-sent events (the header first when
    ``after`` is 0), then its ``end``."""
    if after <= 0:
        yield _sse(transcript.header)
    for event in transcript.events:
        if event.seq > after:
            yield _sse(event)
    yield _end("finished" if stop_of(list(transcript.events)) else "interrupted")
