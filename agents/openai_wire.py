"""What Roundtable's messages become on an OpenAI-compatible wire, and what comes back.

Owns: the model info we assume of any endpoint; speaker names carried in the text (local
servers' chat templates ignore OpenAI's ``name`` field); the finish reason and the reused
prompt tokens read from a streamed chunk, in each server's shape; the text of a message as
counted offline.

Does not own: the HTTP call (``agents.openai_client``), structured output
(``agents.structured_output``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from autogen_core.models import (
    AssistantMessage,
    FinishReasons,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    UserMessage,
)
from openai.types.chat import ChatCompletionChunk

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_FINISH: dict[str, FinishReasons] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "function_calls",
    "function_call": "function_calls",
}


def endpoint_model_info() -> ModelInfo:
    """What we assume of any model behind an OpenAI-compatible endpoint, whatever its name."""
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=True,
        family=ModelFamily.UNKNOWN,
        structured_output=True,
        # Passed through as they are: merging would raise on a system message mid-history.
        multiple_system_messages=True,
    )


def with_speaker_names(messages: Sequence[LLMMessage]) -> list[LLMMessage]:
    """Messages as sent: another speaker's turn starts with ``"<speaker>: "``.

    AutoGen hands other agents' turns to a model as ``UserMessage(source=<speaker>)``. The
    stock client puts the speaker only in the OpenAI ``name`` field, which many local servers'
    chat templates ignore, so the content carries it too. Sources are made valid for ``name``
    (letters, digits, ``_``, ``-``), which the stock client otherwise enforces by raising.
    """
    prepared: list[LLMMessage] = []
    for message in messages:
        if isinstance(message, UserMessage):
            content = message.content
            prefix = f"{message.source}: "
            if message.source and isinstance(content, str) and not content.startswith(prefix):
                content = prefix + content
            message = UserMessage(content=content, source=_valid_name(message.source))
        elif isinstance(message, AssistantMessage):
            message = message.model_copy(update={"source": _valid_name(message.source)})
        prepared.append(message)
    return prepared


def _valid_name(source: str) -> str:
    return _INVALID_NAME_CHARS.sub("_", source)[:64] or "user"


def finish_reason(reason: str | None) -> FinishReasons:
    """AutoGen's finish reason for the server's (an unknown one is ``unknown``)."""
    return _FINISH.get(reason or "stop", "unknown")


def text_of(message: LLMMessage) -> str:
    """A message's text as counted offline (parts joined by spaces)."""
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(
        part if isinstance(part, str) else getattr(part, "content", None) or str(part)
        for part in content
    )


def cached_prompt_tokens(chunk: ChatCompletionChunk) -> int:
    """Prompt tokens the server reused, in the shape it reports them: OpenAI's, vLLM's and
    llama.cpp's ``usage.prompt_tokens_details.cached_tokens``, or llama.cpp's ``timings.cache_n``;
    0 when the server says nothing (Ollama). Hostile values count as nothing."""
    usage = chunk.usage
    details = usage.prompt_tokens_details if usage is not None else None
    cached = details.cached_tokens if details is not None else None
    if cached is None:
        timings = (chunk.model_extra or {}).get("timings")
        cached = timings.get("cache_n") if isinstance(timings, dict) else None
    if not isinstance(cached, int) or isinstance(cached, bool) or cached < 0:
        return 0
    return min(cached, usage.prompt_tokens) if usage is not None else 0
