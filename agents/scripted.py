"""A scripted model client: replays queued replies and records every call.

It is a real ``ChatCompletionClient``, so the whole debate path runs unchanged; only the
words are fixed. Tests use it to pin orchestration logic, and demos use it to run without a
model. It streams word by word (with an optional delay per chunk) and honours the same
soft-interrupt signal as the embedded client.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
    SystemMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from roundtable.agents.usage import add_usage
from roundtable.common.bounded import MAX_CONFIG_BYTES, read_text
from roundtable.common.errors import ConfigError, ModelError
from roundtable.common.validation import first_error

Reply = str | Callable[[Sequence[LLMMessage]], str] | BaseException
"""A queued reply: fixed text, a function of the prompt, or an error to raise."""


@dataclass
class Call:
    """One recorded call: what the client was asked."""

    messages: list[LLMMessage]
    json_output: bool | type[BaseModel] | None
    extra_create_args: dict[str, Any] = field(default_factory=dict)


class ScriptedChatCompletionClient(ChatCompletionClient):
    """Replies from a queue, in order; ``enqueue`` adds more."""

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default: str | None = None,
        fallback: Callable[[Sequence[LLMMessage]], str] | None = None,
        chunk_delay: float = 0.0,
        stop_signal: threading.Event | None = None,
        name: str = "scripted",
    ) -> None:
        self._replies: deque[Reply] = deque(replies)
        self._default: Reply | None = default if default is not None else fallback
        self._chunk_delay = chunk_delay
        self._stop_signal = stop_signal
        self.name = name
        self.calls: list[Call] = []
        self.last_interrupted = False
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def enqueue(self, *replies: Reply) -> None:
        self._replies.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._replies)

    def _next_text(self, messages: Sequence[LLMMessage]) -> str:
        if self._replies:
            reply = self._replies.popleft()
        elif self._default is not None:
            reply = self._default
        else:
            raise ModelError(f"scripted model {self.name!r} has no reply left")
        if isinstance(reply, BaseException):
            raise reply
        return reply(messages) if callable(reply) else reply

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        result: CreateResult | None = None
        async for item in self.create_stream(
            messages, json_output=json_output, extra_create_args=extra_create_args
        ):
            if isinstance(item, CreateResult):
                result = item
        assert result is not None
        return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        self.calls.append(Call(list(messages), json_output, dict(extra_create_args)))
        text = self._next_text(messages)
        self.last_interrupted = False
        sent: list[str] = []
        for chunk in _chunks(text):
            if self._stop_signal is not None and self._stop_signal.is_set():
                self.last_interrupted = True
                break
            if self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            sent.append(chunk)
            yield chunk
        content = "".join(sent)
        usage = RequestUsage(
            prompt_tokens=sum(len(str(m.content).split()) for m in messages),
            completion_tokens=len(sent),
        )
        self._usage = add_usage(self._usage, usage)
        yield CreateResult(finish_reason="stop", content=content, usage=usage, cached=False)

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return sum(len(str(m.content).split()) for m in messages)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return 100_000 - self.count_tokens(messages)

    @property
    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities(vision=False, function_calling=False, json_output=True)

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            vision=False,
            function_calling=False,
            json_output=True,
            family="scripted",
            structured_output=True,
        )


class Script(BaseModel):
    """A script file: queued replies per role (and ``manager``), defaults once they run out.

    A reply may contain ``{last}`` and ``{last_speaker}``: the latest turn it was shown (not a
    system message: instructions and the memory block may come last) and who said it, so a
    scripted agent can visibly answer what it heard.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_delay: float = Field(default=0.0, ge=0.0, le=5.0)
    replies: dict[str, list[str]] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict)


def load_script(path: Path | None) -> Script:
    """Read a script (YAML or JSON); None gives the built-in demo script."""
    source = path or Path(str(resources.files("roundtable.agents") / "demo_script.yaml"))
    try:
        raw = yaml.safe_load(read_text(source, MAX_CONFIG_BYTES, "script"))
        return Script.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"script {source}: not valid YAML") from exc
    except ValidationError as exc:
        where, message = first_error(exc, "script")
        raise ConfigError(f"script {source}: field {where!r}: {message}") from exc


GENERIC_REPLY = "As the {role}: on {last_speaker}'s point, here is what I would add."
GENERIC_VERDICT = "ACCEPT: as the {role}, I find that sound."


def client_from_script(
    script: Script,
    role: str,
    *,
    stop_signal: threading.Event | None = None,
    gives_verdict: bool = False,
) -> ScriptedChatCompletionClient:
    """The scripted client for one role of a script; a role the script does not name (a team
    of your own) gets a generic reply, a verdict if it gives verdicts."""
    generic = (GENERIC_VERDICT if gives_verdict else GENERIC_REPLY).replace("{role}", role)
    default = script.defaults.get(role, None if role in script.replies else generic)
    return ScriptedChatCompletionClient(
        [_template(text) for text in script.replies.get(role, [])],
        default=None,
        fallback=_template(default) if default is not None else None,
        chunk_delay=script.chunk_delay,
        stop_signal=stop_signal,
        name=role,
    )


def _template(text: str) -> Callable[[Sequence[LLMMessage]], str]:
    def render(messages: Sequence[LLMMessage]) -> str:
        said = [m for m in messages if not isinstance(m, SystemMessage)]
        last = said[-1] if said else None
        content = str(last.content) if last is not None else ""
        speaker = str(getattr(last, "source", "") or "") if last is not None else ""
        return text.replace("{last}", content).replace("{last_speaker}", speaker)

    return render


def _chunks(text: str) -> list[str]:
    """Word-sized pieces that join back to exactly ``text``."""
    pieces: list[str] = []
    start = 0
    for index in range(1, len(text)):
        if text[index] == " " and text[index - 1] != " ":
            pieces.append(text[start:index])
            start = index
    if text:
        pieces.append(text[start:])
    return pieces
