"""Scoring saved transcripts without running anything again (``eval --transcripts DIR``).

Each ``*.jsonl`` in the folder (at most ``MAX_FILES``, each read bounded by the transcript
store) is loaded and measured by the same ``quality.report`` a run records; a file that does
not load is skipped with one line saying why. With a question set, an answer to a question it
holds (same text) is checked against its reference.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from roundtable.common.errors import ConfigError
from roundtable.conversations.library import answer_of
from roundtable.conversations.quality import report
from roundtable.evaluation.answers import matches
from roundtable.evaluation.questions import Question, QuestionSet
from roundtable.evaluation.records import RunScore
from roundtable.transcripts import StopEvent, Transcript, TranscriptError, load

MAX_FILES = 10_000
CONFIG = "transcripts"


def rescore(folder: Path, questions: QuestionSet | None = None) -> tuple[list[RunScore], list[str]]:
    """The scores of the transcripts in ``folder`` and one line per file skipped."""
    if not folder.is_dir():
        raise ConfigError(f"--transcripts {folder}: not a folder")
    files = sorted(folder.glob("*.jsonl"))
    if len(files) > MAX_FILES:
        raise ConfigError(f"--transcripts {folder}: more than {MAX_FILES} transcripts")
    by_text = {q.question: q for q in questions.questions} if questions else {}
    runs: list[RunScore] = []
    skipped: list[str] = []
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a torn tail is dropped; the rest is scored
                transcript = load(path)
        except TranscriptError as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        runs.append(_score(transcript, by_text))
    return runs, skipped


def _score(transcript: Transcript, by_text: dict[str, Question]) -> RunScore:
    header, events = transcript.header, transcript.events
    stop = next((e for e in reversed(events) if isinstance(e, StopEvent)), None)
    answer = answer_of(header, events)
    question = by_text.get(header.question)
    reference = question.reference if question is not None else None
    return RunScore(
        config=CONFIG,
        question=question.id if question is not None else header.conversation_id,
        repeat=1,
        transcript=transcript.path.name,
        stop=stop.code if stop is not None else None,
        answer=answer,
        correct=matches(answer, reference) if reference else None,
        quality=report(header, events, ledger=stop.ledger if stop else None),
    )
