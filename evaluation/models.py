"""The model calls of an evaluation outside a run: a role (or the judge) asked on its own.

Owns building a client for one endpoint of the settings and one plain call to it. The
baselines and the judge use it; the runs themselves go through the library API.
"""

from __future__ import annotations

import threading

from autogen_core.models import ChatCompletionClient, LLMMessage, SystemMessage, UserMessage

from roundtable.agents import make_client
from roundtable.conversations import Settings
from roundtable.transcripts import Usage


def client_for(
    settings: Settings, endpoint: str, role: str, *, max_tokens: int, temperature: float
) -> ChatCompletionClient:
    """A client of ``endpoint`` (a name in the settings) speaking as ``role``."""
    return make_client(
        settings.endpoints[endpoint],
        name=endpoint,
        role=role,
        max_tokens=max_tokens,
        temperature=temperature,
        gives_verdict=False,
        stop_signal=threading.Event(),
        embedded=settings.embedded,
    )


async def answer_alone(
    client: ChatCompletionClient, system: str, question: str
) -> tuple[str, Usage]:
    """One reply to ``question`` with no debate around it, and what it cost."""
    messages: list[LLMMessage] = [
        SystemMessage(content=system),
        UserMessage(content=question, source="human"),
    ]
    result = await client.create(messages)
    text = result.content if isinstance(result.content, str) else ""
    return text.strip(), Usage.of(result.usage)
