"""Adding up AutoGen's ``RequestUsage``: what a model client reports as its running total.

Owns the one sum of two ``RequestUsage`` values the clients keep (``total_usage``), and
``CachedUsage``: AutoGen's usage has no field for prompt tokens a server reused from an earlier
call, so our clients report them in this subclass (AutoGen passes the instance through to the
agent's message untouched). The transcript's own ``Usage`` adds with ``+``
(``transcripts.events``); this package cannot use it, as ``transcripts`` depends on ``agents``.
"""

from dataclasses import dataclass

from autogen_core.models import RequestUsage


@dataclass
class CachedUsage(RequestUsage):
    """Usage with the prompt tokens the server (or llama.cpp) did not evaluate again."""

    cached_tokens: int = 0


def cached_of(usage: RequestUsage | None) -> int:
    """The cached prompt tokens ``usage`` reports (0 for AutoGen's plain usage)."""
    return usage.cached_tokens if isinstance(usage, CachedUsage) else 0


def add_usage(total: RequestUsage, more: RequestUsage) -> CachedUsage:
    """``total`` and ``more`` together."""
    return CachedUsage(
        prompt_tokens=total.prompt_tokens + more.prompt_tokens,
        completion_tokens=total.completion_tokens + more.completion_tokens,
        cached_tokens=cached_of(total) + cached_of(more),
    )
