"""AutoGen's embedded runtime between two turns: left settled, so the next turn can run.

A debate runs its ``SelectorGroupChat`` one turn per ``run_stream``. When an agent fails, AutoGen
publishes the error to the other agents' containers, whose handlers refuse it; those handlers
can still be running when the turn's runtime stops. One that finishes later acknowledges its
message on the next turn's queue (``task_done``), which lets that turn's shutdown see an empty
queue at once and stop the runtime before it ever delivers the turn's start: the next
``run_stream`` then waits forever, with nothing left to wake it (seen in an eval run, after a
reply the guards rejected). A handler's exception stored after the stop kills the next turn's
message loop the same way.

``settle`` waits (bounded) for the previous turn's handlers to end and drops an exception
stored after the turn it belonged to was already recorded. It reads AutoGen's private runtime
fields: no public API exposes them; each access is guarded, so a later AutoGen without them
only loses this repair.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

LOGGER = logging.getLogger("roundtable.engine")
SETTLE_S = 5.0
"""The longest a turn waits for the previous turn's handlers (they refuse one message each)."""


async def settle(team: Any, timeout_s: float = SETTLE_S) -> None:
    """Let the previous turn's leftover handlers finish, and drop a stale stored exception."""
    runtime: Any = getattr(team, "_runtime", None)
    tasks = getattr(runtime, "_background_tasks", None)
    pending = [t for t in tasks if not t.done()] if isinstance(tasks, set) else []
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        LOGGER.debug("runtime_settled", extra={"waited": len(pending), "running": len(late)})
    stale = getattr(runtime, "_background_exception", None)
    if stale is not None:
        LOGGER.debug("runtime_stale_error", extra={"error": repr(stale)[:200]})
        runtime._background_exception = None
