"""Roundtable: a team of agents debates your question.

Use it from Python::

    import roundtable

    result = roundtable.run("Should our town ban cars downtown?", team="policy", demo=True)
    print(result.answer, result.stop.reason)

    async for event in roundtable.stream("Should we?", demo=True):  # in async code
        print(event.kind)

``run`` waits for the answer (``arun`` in async code) and gives a ``RunResult``; ``stream``
yields the live events the terminal and the browser show. ``Team``, ``load_team`` and
``resolve_team`` load teams; ``RunOptions`` holds one run's choices. ``demo=True`` runs a
scripted model: no model needed.

The code lives in the top-level folders ``agents/``, ``conversations/``, ``memory/``, ``ui/``,
``api/`` and ``common/``; this package links to them, so that installing Roundtable adds one
module, ``roundtable``, to site-packages and nothing generic. The names above are imported on
first use, so ``import roundtable.agents`` loads no engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roundtable.agents import Team, load_team, resolve_team
    from roundtable.conversations.library import RunResult, arun, run, stream
    from roundtable.conversations.options import RunOptions

__all__ = [
    "RunOptions",
    "RunResult",
    "Team",
    "arun",
    "load_team",
    "resolve_team",
    "run",
    "stream",
]

_HOMES = {
    "RunResult": "roundtable.conversations.library",
    "arun": "roundtable.conversations.library",
    "run": "roundtable.conversations.library",
    "stream": "roundtable.conversations.library",
    "RunOptions": "roundtable.conversations.options",
    "Team": "roundtable.agents",
    "load_team": "roundtable.agents",
    "resolve_team": "roundtable.agents",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'roundtable' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
