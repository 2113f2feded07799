"""Adding up AutoGen's ``RequestUsage``: what a model client reports as its running total.

Owns the one sum of two ``RequestUsage`` values the clients keep (``total_usage``). The
transcript's own ``Usage`` adds with ``+`` (``transcripts.events``); this package cannot use
it, as ``transcripts`` depends on ``agents``.
"""

from autogen_core.models import RequestUsage


def add_usage(total: RequestUsage, more: RequestUsage) -> RequestUsage:
    """``total`` and ``more`` together."""
    return RequestUsage(
        prompt_tokens=total.prompt_tokens + more.prompt_tokens,
        completion_tokens=total.completion_tokens + more.completion_tokens,
    )
