"""The embedded offline model (SmolLM2-135M GGUF via llama.cpp) as an AutoGen model client.

Owns: ``LlamaChatClient``, one per conversation and role over the process's shared
``LlamaEngine``: the request it makes of a call (prompt tokens in the model's own chat template,
max tokens, sampling, a grammar for structured or constrained replies, whose saved state to
continue), streaming the reply of a ``Generation``, and usage with the reused prompt tokens.
Does not own: loading the model (``agents.llama_engine``), the worker thread
(``agents.llama_generation``), prompts, roles, context pruning, speaker selection, retries, or
other backends.

Why not autogen-ext's `LlamaCppChatCompletionClient`: it cannot stream, sets no `max_tokens`,
drops speaker names, and leaves llama.cpp generating after a cancel (the next call segfaulted).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from llama_cpp import llama_grammar
from llama_cpp.llama_grammar import LlamaGrammar
from pydantic import BaseModel

from roundtable.agents.llama_engine import (
    BUNDLED_MODEL,
    EmbeddedModelSettings,
    LlamaEngine,
    render_messages,
    schema_gbnf,
)
from roundtable.agents.llama_generation import WORKER_THREAD_NAME, End, Generation, Request
from roundtable.agents.usage import CachedUsage, add_usage
from roundtable.common.errors import ConfigError, ModelError

__all__ = [
    "BUNDLED_MODEL",
    "MODEL_INFO",
    "WORKER_THREAD_NAME",
    "EmbeddedModelSettings",
    "LlamaChatClient",
    "LlamaEngine",
    "render_messages",
]

MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=True,
    structured_output=True,
    family="smollm2",
)
_EXTRA_ARGS = frozenset({"max_tokens", "grammar", "temperature", "repeat_penalty", "seed"})
_NO_ARGS: Mapping[str, Any] = MappingProxyType({})


class LlamaChatClient(ChatCompletionClient):
    """AutoGen model client over a shared `LlamaEngine`; one per conversation and role.

    `stop_signal` (owned and cleared by the conversation) ends a reply early but normally: the
    stream still finishes with the text so far and `last_interrupted` is True. Cancelling the
    task or the CancellationToken stops the worker and raises `asyncio.CancelledError`.
    Iterate `create_stream` inside `contextlib.aclosing` if you may stop reading early.
    """

    def __init__(
        self,
        engine: LlamaEngine,
        *,
        max_tokens: int,
        temperature: float,
        repeat_penalty: float,
        reply_grammar: str | None = None,
        stop_signal: threading.Event | None = None,
        caller: str | None = None,
    ) -> None:
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}")
        self._engine = engine
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._repeat_penalty = repeat_penalty
        self._reply_grammar = engine.grammar(reply_grammar) if reply_grammar is not None else None
        self._stop_signal = stop_signal
        self._caller = f"{caller or 'client'}-{id(self):x}"  # one per conversation and role
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self.last_interrupted = False

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = _NO_ARGS,
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """One whole reply (the stream, without its chunks)."""
        stream = self.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        async with contextlib.aclosing(stream):
            async for item in stream:
                if isinstance(item, CreateResult):
                    return item
        raise ModelError("generation ended without a result")  # unreachable

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = _NO_ARGS,
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Text chunks as the model produces them, then one CreateResult with the whole text."""
        _refuse_tools(tools, tool_choice)
        request = self._prepare(messages, json_output, extra_create_args)
        if cancellation_token is not None and cancellation_token.is_cancelled():
            raise asyncio.CancelledError
        self.last_interrupted = False
        run = Generation(self._engine, request, self._stop_signal, asyncio.get_running_loop())
        run.start(cancellation_token)
        chunks: list[str] = []
        try:
            while True:
                item = await run.next()
                if isinstance(item, End):
                    end = item
                    break
                chunks.append(item)
                yield item
        finally:
            await run.stop()
        usage = CachedUsage(
            prompt_tokens=len(request.prompt),
            completion_tokens=end.completion_tokens,
            cached_tokens=end.cached_tokens,
        )
        self._usage = add_usage(self._usage, usage)
        self.last_interrupted = end.interrupted
        yield CreateResult(
            finish_reason=end.finish_reason, content="".join(chunks), usage=usage, cached=False
        )

    def _prepare(
        self,
        messages: Sequence[LLMMessage],
        json_output: bool | type[BaseModel] | None,
        extra: Mapping[str, Any],
    ) -> Request:
        unknown = set(extra) - _EXTRA_ARGS
        if unknown:
            raise ValueError(
                f"unsupported extra_create_args {sorted(unknown)}; use {sorted(_EXTRA_ARGS)}"
            )
        cap = extra.get("max_tokens")
        max_tokens = self._max_tokens if cap is None else int(cap)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if "grammar" in extra:
            grammar: LlamaGrammar | None = self._engine.grammar(str(extra["grammar"]))
        elif isinstance(json_output, type) and issubclass(json_output, BaseModel):
            grammar = self._engine.grammar(schema_gbnf(json_output))
        elif json_output is True:
            grammar = self._engine.grammar(llama_grammar.JSON_GBNF)
        else:
            grammar = self._reply_grammar
        prompt = self._engine.prompt_tokens(render_messages(messages))
        n_ctx = self._engine.n_ctx
        if len(prompt) + max_tokens > n_ctx:
            raise ModelError(
                f"prompt of {len(prompt)} tokens + max_tokens {max_tokens} "
                f"exceeds the model context of {n_ctx} tokens"
            )
        seed = extra.get("seed")
        return Request(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=float(extra.get("temperature", self._temperature)),
            repeat_penalty=float(extra.get("repeat_penalty", self._repeat_penalty)),
            grammar=grammar,
            seed=None if seed is None else int(seed),
            caller=self._caller,
        )

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """Tokens of the whole rendered prompt, with the model's own template and tokenizer."""
        _refuse_tools(tools)
        return len(self._engine.prompt_tokens(render_messages(messages)))

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """Context left after the prompt (the reply's max_tokens must fit in it)."""
        return self._engine.n_ctx - self.count_tokens(messages, tools=tools)

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage  # nothing is cached, so actual and total are the same

    async def close(self) -> None:
        """Nothing to do: the engine is shared and lives as long as the process."""

    @property
    def model_info(self) -> ModelInfo:
        return MODEL_INFO

    @property
    def capabilities(self) -> ModelCapabilities:
        """Deprecated AutoGen property, kept because the ABC still declares it."""
        return ModelCapabilities(vision=False, function_calling=False, json_output=True)


def _refuse_tools(tools: Sequence[Tool | ToolSchema], tool_choice: Tool | str = "auto") -> None:
    if tools or tool_choice not in ("auto", "none"):
        raise ValueError(
            f"the embedded model has no tool calling; got {len(tools)} tool(s), "
            f"tool_choice={tool_choice!r}"
        )
