"""The labelled retrieval set: documents of every format found for paraphrased questions.

Real store, real ONNX embedder: the 22 documents of ``tests/retrieval`` and their 122 questions,
searched as a speaker's recall does with the shipped settings (top 3, calibrated threshold).
"""

from __future__ import annotations

from pathlib import Path

from roundtable.conversations.recall import MemorySettings
from roundtable.memory import MemoryStore
from tests.retrieval.build import evaluate, write_documents


def test_recall_at_3_on_the_retrieval_set_meets_the_target(tmp_path: Path) -> None:
    questions = write_documents(tmp_path / "documents")
    assert len(questions) >= 100
    assert len({q.source for q in questions}) >= 20
    assert {Path(q.source).suffix for q in questions} == {".md", ".txt", ".pdf", ".docx", ".html"}
    settings = MemorySettings()

    with MemoryStore(tmp_path / "memory") as store:
        store.add_files(sorted((tmp_path / "documents").iterdir()))
        measure = evaluate(
            lambda q: store.search(
                q, k=settings.k, min_score=0.0, document_min_score=settings.document_min_score
            ),
            questions,
        )

    print(f"\nrecall@3 {measure.recall_at_3:.3f}; misses: {measure.misses}")
    assert measure.recall_at_3 >= 0.9
    # The calibrated threshold turns most questions that no document answers away.
    rejected = [s for s in measure.off_topic_scores if s < settings.document_min_score]
    assert len(rejected) >= len(measure.off_topic_scores) // 2
