"""The offline MiniLM embedder: real model, real tokenizer, no mocks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from roundtable.common.errors import ConfigError
from roundtable.memory import (
    MODEL_SHA256,
    TOKENIZER_SHA256,
    EmbeddingSettings,
    MiniLMEmbedding,
    make_embedding_function,
)
from roundtable.memory.embedding import TOKENIZER_PATH, default_model_path, file_sha256


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedding:
    return MiniLMEmbedding()


def test_vectors_are_unit_length_and_384_dimensional(embedder: MiniLMEmbedding) -> None:
    vectors = embedder(["The cat sat on the mat.", "", "Ein kurzer Satz auf Deutsch."])

    assert len(vectors) == 3
    for vector in vectors:
        assert np.asarray(vector).shape == (384,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_similar_sentences_score_higher_than_unrelated(embedder: MiniLMEmbedding) -> None:
    cat, kitten, taxes = embedder.embed_array(
        [
            "A cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "Quarterly tax filings are due at the end of April.",
        ]
    )

    assert cat @ kitten > 0.6
    assert cat @ kitten > cat @ taxes + 0.4


def test_a_text_embeds_the_same_alone_and_beside_longer_ones(embedder: MiniLMEmbedding) -> None:
    short = "Rivers carry sediment to the sea."
    longer = "A long sentence about medieval trade routes across the Baltic and the North Sea. " * 3

    alone = embedder.embed_array([short])[0]
    in_batch = embedder.embed_array([longer, short])[1]

    # Padding to the longest text must not change the pooled vector.
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def test_truncates_at_256_word_pieces_not_128(embedder: MiniLMEmbedding) -> None:
    words = [f"w{i}" for i in range(400)]
    base = " ".join(f"word{i % 50} apple" for i in range(90))  # 270 word pieces or more
    assert embedder.count_tokens(base) > 256

    # Texts that differ only after the first 256 pieces embed identically ...
    same_a, same_b = embedder.embed_array([base + " zebra " * 20, base + " ocean " * 20])
    np.testing.assert_allclose(same_a, same_b, atol=1e-6)
    # ... while a difference after piece 128 (and before 256) still counts.
    head = " ".join(words[:70])
    assert 128 < embedder.count_tokens(head) < 240
    differ_a, differ_b = embedder.embed_array([head + " zebra", head + " ocean"])
    assert float(differ_a @ differ_b) < 0.9999


def test_model_with_wrong_sha256_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(default_model_path(), tampered)
    with tampered.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(ConfigError, match=rf"model\.onnx: sha256 .* expected {MODEL_SHA256}"):
        MiniLMEmbedding(model_path=tampered)(["anything"])


def test_tokenizer_with_wrong_sha256_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "tokenizer.json"
    tampered.write_bytes(TOKENIZER_PATH.read_bytes() + b"\n")

    with pytest.raises(ConfigError, match=rf"tokenizer\.json: sha256 .* {TOKENIZER_SHA256}"):
        MiniLMEmbedding(tokenizer_path=tampered).load()


def test_shipped_files_match_their_pinned_sha256() -> None:
    assert file_sha256(default_model_path()) == MODEL_SHA256
    assert file_sha256(TOKENIZER_PATH) == TOKENIZER_SHA256


def test_config_round_trips_and_refuses_another_model() -> None:
    config = MiniLMEmbedding().get_config()
    assert config["model_sha256"] == MODEL_SHA256

    assert isinstance(MiniLMEmbedding.build_from_config(config), MiniLMEmbedding)
    with pytest.raises(ConfigError, match="does not match"):
        MiniLMEmbedding.build_from_config({**config, "model_sha256": "0" * 64})
    assert MiniLMEmbedding().default_space() == "cosine"


def test_factory_builds_the_offline_embedder_and_names_wrong_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ef = make_embedding_function(EmbeddingSettings(intra_op_threads=2))
    assert isinstance(ef, MiniLMEmbedding)

    with pytest.raises(ConfigError, match=r"embedding\.url"):
        make_embedding_function(EmbeddingSettings(url="http://127.0.0.1:1"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        make_embedding_function(EmbeddingSettings(provider="openai", api_key_env="MY_KEY"))
