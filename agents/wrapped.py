"""A model client that wraps another: everything but the calls is the inner client's.

The run wraps each role's client twice (the cut of calls in flight, ``conversations.cutoff``;
the protocol guards, ``conversations.guards``). AutoGen's client interface has seven members
besides ``create`` and ``create_stream``; they are passed through here once.
"""

from __future__ import annotations

from collections.abc import Sequence

from autogen_core.models import (
    ChatCompletionClient,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema


class WrappedClient(ChatCompletionClient):
    """A client around ``inner``; subclasses define ``create`` and ``create_stream``."""

    def __init__(self, inner: ChatCompletionClient) -> None:
        self.inner = inner

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self.inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self.inner.total_usage()

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info
