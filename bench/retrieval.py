"""Document retrieval: recall@3 and MRR on the labelled set, the calibrated threshold, latency.

Quality: the 22 documents of ``tests/retrieval`` (Markdown, text, PDF, DOCX, HTML) in a fresh
store, its 122 questions searched as a speaker's recall does (top 3, documents fused from dense
and BM25 rankings), and the threshold calibration (``tests.retrieval.build.calibrate``) with how
many of the off-topic questions it turns away.

Latency: ``MemoryStore.search`` (embedding the question included) against a store whose
documents collection holds the set plus filler passages (unit vectors, word-list texts) up to
100k entries (10k with ``--quick``), kept in the bench cache like ``bench.memory``'s stores.
The first search after a write builds the BM25 index: timed apart.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import chromadb
import numpy as np
from chromadb.api.types import Metadata

from bench.figures import Row, row
from bench.memory import cache_root, collection, unit_vectors
from roundtable.conversations.recall import MemorySettings
from roundtable.memory import MemoryStore
from roundtable.memory.store import DOCUMENTS
from tests.retrieval.build import Question, calibrate, evaluate, write_documents

BENCH = "retrieval"
FILLER_VERSION = 1
BATCH = 5_000
_WORDS = ("budget", "council", "transport", "housing", "water", "energy", "school", "park")


def quality(store: MemoryStore, questions: list[Question]) -> list[Row]:
    settings = MemorySettings()
    measure = evaluate(
        lambda q: store.search(
            q, k=settings.k, min_score=0.0, document_min_score=settings.document_min_score
        ),
        questions,
    )
    ranked = evaluate(lambda q: store.search(q, k=10, min_score=0.0), questions)
    threshold, at = calibrate(
        lambda t: lambda q: store.search(q, k=3, min_score=0.0, document_min_score=t), questions
    )
    rejected = sum(score < threshold for score in at.off_topic_scores)
    n = len(questions)
    return [
        row(
            BENCH,
            "recall@3 (default threshold)",
            n,
            [],
            unit="",
            value=measure.recall_at_3,
            target=">= 0.9",
            note=f"document_min_score {settings.document_min_score}",
        ),
        row(BENCH, "MRR (top 10)", n, [], unit="", value=round(ranked.mrr, 3)),
        row(
            BENCH,
            "calibrated threshold",
            n,
            [],
            unit="",
            value=threshold,
            note=f"recall@3 {at.recall_at_3:.3f}; off-topic turned away {rejected}/"
            f"{len(at.off_topic_scores)}",
        ),
    ]


def filled(size: int, documents: Path) -> Path:
    """A cached store: the set's documents and filler passages up to ``size`` entries."""
    folder = cache_root() / f"retrieval-{size}-chroma{chromadb.__version__}-v{FILLER_VERSION}"
    if (folder / "filled").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    with MemoryStore(folder) as store:
        store.add_files(sorted(documents.iterdir()))
        target = collection(store, DOCUMENTS)
        rng = np.random.default_rng(FILLER_VERSION)
        for first in range(target.count(), size, BATCH):
            ids = [f"filler:{i}" for i in range(first, min(first + BATCH, size))]
            texts = [
                " ".join(_WORDS[(i + j) % len(_WORDS)] for j in range(12))
                for i in range(first, first + len(ids))
            ]
            metadatas: list[Metadata] = [
                {
                    "kind": "document",
                    "source": f"/filler/{i // 50}.md",
                    "position": i % 50,
                    "line": 1,
                    "sha256": "0" * 64,
                }
                for i in range(first, first + len(ids))
            ]
            target.add(
                ids=ids,
                embeddings=unit_vectors(rng, len(ids)),
                documents=texts,
                metadatas=metadatas,
            )
    (folder / "filled").touch()
    return folder


def latency(size: int, documents: Path, questions: list[Question]) -> list[Row]:
    folder = filled(size, documents)
    with MemoryStore(folder) as store:
        began = time.perf_counter()
        store.search("warm up: build the lexical index", k=3)
        build_us = (time.perf_counter() - began) * 1e6
        samples = []
        for question in questions[:60]:
            began = time.perf_counter()
            store.search(question.text, k=3, document_min_score=MemorySettings().document_min_score)
            samples.append((time.perf_counter() - began) * 1e6)
        # The cached store kept the set under the folder of the run that filled it.
        cached = {Path(e.source).name: e.source for e in store.list_documents()}
        here = [replace(q, source=cached.get(Path(q.source).name, q.source)) for q in questions]
        measure = evaluate(lambda q: store.search(q, k=3, min_score=0.0), here)
    return [
        row(BENCH, "first search (builds BM25)", size, [build_us], unit="us"),
        row(
            BENCH,
            "search (embed + dense + BM25 + fuse)",
            size,
            samples,
            unit="us",
            note=f"recall@3 among {size} entries: {measure.recall_at_3:.3f}",
        ),
    ]


def run(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory() as scratch:
        documents = Path(scratch) / "documents"
        questions = write_documents(documents)
        with MemoryStore(Path(scratch) / "memory") as store:
            store.add_files(sorted(documents.iterdir()))
            out = quality(store, questions)
        out += latency(10_000 if quick else 100_000, documents, questions)
    return out
