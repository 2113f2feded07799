"""Run modes and the one interface every run offers, whatever its mode.

``debate`` (the group chat, ``debate.Debate``), ``pipeline`` (researcher -> analyst -> critic
-> writer, ``pipeline.Pipeline``) and ``panel`` (plan, fan out, aggregate, ``panel.Panel``)
all satisfy ``Run``: the terminal, the browser, the API and the tests drive any of them the
same way. This module owns the names and the protocol only; ``runs.build_run`` builds a run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol, get_args

from roundtable.common.errors import ConfigError
from roundtable.transcripts.events import LiveEvent, Mode

MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_MODE: Mode = "debate"

__all__ = ["DEFAULT_MODE", "MODES", "Mode", "Run", "parse_mode"]


class Run(Protocol):
    """A run of any mode: an async stream of events, steerable while it runs."""

    @property
    def conversation_id(self) -> str: ...

    @property
    def transcript_path(self) -> Path: ...

    def run(self) -> AsyncIterator[LiveEvent]:
        """The header, then every committed event (and live token deltas), to a stop event."""
        ...

    def interject(self, text: str, *, ask: str | None = None, cut_short: bool = True) -> None:
        """Queue what the person typed; it is committed at the next boundary of the run."""
        ...

    def request_stop(self, reason: str = "stopped by the person") -> None:
        """End the run at the next boundary; replies being generated end softly now."""
        ...


def parse_mode(text: str) -> Mode:
    """A mode from user input (a flag, a form field); anything else is a clear ConfigError."""
    name = text.strip().lower()
    for mode in MODES:
        if mode == name:
            return mode
    raise ConfigError(f"unknown mode {text!r}; modes: {', '.join(MODES)}")
