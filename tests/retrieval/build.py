"""The retrieval set as files, and its measure: recall@3 and MRR of the answering passage.

The 22 documents of ``facts.py`` are written in turn as Markdown, text, PDF, DOCX and HTML
(with ``tests/support/docfiles.py``); a question is answered when a hit comes from its document
and holds its fact. ``evaluate`` takes any search function, so the same measure serves the
test, ``python -m bench`` and a run against an older version of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.retrieval.facts import DOCUMENTS, KEYWORD_QUESTIONS, OFF_TOPIC
from tests.support.docfiles import make_docx, make_html, make_pdf

FORMATS = ("md", "txt", "pdf", "docx", "html")


class Found(Protocol):
    """What ``evaluate`` reads of a hit."""

    source: str | None
    text: str
    score: float


@dataclass(frozen=True)
class Question:
    text: str
    source: str
    answer: str


@dataclass(frozen=True)
class Measure:
    recall_at_3: float
    mrr: float
    questions: int
    misses: list[str]
    answer_scores: list[float]
    """Cosine of the answering passage wherever it was found in the top 10."""
    off_topic_scores: list[float]
    """Cosine of the best hit for each question no document answers."""


def write_documents(folder: Path, *, formats: Sequence[str] = FORMATS) -> list[Question]:
    """Write every document into ``folder``; the labelled questions, with their files."""
    folder.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    for index, (name, (title, facts)) in enumerate(sorted(DOCUMENTS.items())):
        kind = formats[index % len(formats)]
        path = folder / f"{name}.{kind}"
        paragraphs = [paragraph for paragraph, _ in facts]
        if kind == "pdf":
            make_pdf(path, [paragraphs[:3], paragraphs[3:]])
        elif kind == "docx":
            make_docx(path, [(1, title), *((0, p) for p in paragraphs)])
        elif kind == "html":
            make_html(path, title, [(1, title), *((0, p) for p in paragraphs)])
        else:
            path.write_text(f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        source = str(path.resolve())
        questions.extend(Question(q, source, paragraph) for paragraph, q in facts)
        questions.extend(
            Question(q, source, facts[i][0]) for doc, i, q in KEYWORD_QUESTIONS if doc == name
        )
    return questions


def _answers(hit: Found, question: Question) -> bool:
    return hit.source == question.source and _squash(question.answer) in _squash(hit.text)


def _squash(text: str) -> str:
    return " ".join(text.split())


def evaluate(search: Callable[[str], Sequence[Found]], questions: Sequence[Question]) -> Measure:
    """recall@3 and MRR (over the top 10) of ``search`` on the labelled questions."""
    found_at_3 = 0
    reciprocal = 0.0
    misses: list[str] = []
    answer_scores: list[float] = []
    for question in questions:
        hits = list(search(question.text))[:10]
        rank = next((i for i, h in enumerate(hits, start=1) if _answers(h, question)), None)
        if rank is not None:
            reciprocal += 1.0 / rank
            answer_scores.append(hits[rank - 1].score)
        if rank is not None and rank <= 3:
            found_at_3 += 1
        else:
            misses.append(question.text)
    off_topic = [max((h.score for h in search(q)), default=0.0) for q in OFF_TOPIC]
    return Measure(
        recall_at_3=found_at_3 / len(questions),
        mrr=reciprocal / len(questions),
        questions=len(questions),
        misses=misses,
        answer_scores=answer_scores,
        off_topic_scores=off_topic,
    )


THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 10))


def calibrate(
    search_at: Callable[[float], Callable[[str], Sequence[Found]]], questions: Sequence[Question]
) -> tuple[float, Measure]:
    """The highest document threshold whose recall@3 stays within 0.01 of none at all.

    ``search_at(t)`` is the top-3 search with threshold ``t``. The threshold then rejects
    what it can of the off-topic questions without losing answers.
    """
    best = evaluate(search_at(0.0), questions)
    chosen = (0.0, best)
    for threshold in THRESHOLDS:
        measure = evaluate(search_at(threshold), questions)
        if measure.recall_at_3 < best.recall_at_3 - 0.01:
            break
        chosen = (threshold, measure)
    return chosen
