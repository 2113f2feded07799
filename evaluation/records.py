"""The records of an evaluation, as saved in ``report.json``: one pydantic model each.

Owns the shapes only; ``runner`` and ``rescore`` fill them, ``stats`` sums them up and
``report`` writes them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from roundtable.transcripts import QualityReport, StopCode


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rubric(_Record):
    """A judge's scores of one answer, 1 (poor) to 5 (excellent), with its reasons."""

    coverage: int = Field(ge=1, le=5)
    """How much of the question the answer covers."""
    evidence: int = Field(ge=1, le=5)
    """Facts, figures or sources behind its claims."""
    disagreement: int = Field(ge=1, le=5)
    """How it handles the team's disagreements: stated and weighed, not hidden."""
    clarity: int = Field(ge=1, le=5)
    reasons: str = Field(max_length=2000)


class RunScore(_Record):
    """One run of one question under one configuration."""

    config: str
    question: str
    """The question's id."""
    repeat: int = Field(ge=1)
    transcript: str
    """The transcript's file name, in the report's folder."""
    stop: StopCode | None
    """None: a saved transcript with no stop (its process ended mid-run)."""
    answer: str | None
    correct: bool | None = None
    """Whether the answer matches the question's reference (None: no reference)."""
    quality: QualityReport
    rubric: Rubric | None = None
    judge_error: str | None = None


class BaselineScore(_Record):
    """The baselines of one question with a reference, under one configuration."""

    config: str
    question: str
    repeat: int = Field(ge=1)
    single: str | None
    """What a single agent (the team's answerer, alone) answered."""
    single_correct: bool
    votes: list[str]
    """Independent answers of every role, alone, within the debate's token budget."""
    majority: str | None
    majority_correct: bool
    tokens: int = Field(ge=0)


class Stat(_Record):
    """A metric over a configuration's runs: the mean and its spread across repeats."""

    mean: float | None
    spread: float | None = None
    """Standard deviation of the per-repeat means (None with a single repeat)."""
    n: int = Field(ge=0)


class Summary(_Record):
    """A configuration's metrics, aggregated."""

    config: str
    runs: int = Field(ge=0)
    metrics: dict[str, Stat]
    accuracy: dict[str, Stat] = Field(default_factory=dict)
    """``debate``, ``single``, ``majority``: share of reference questions answered right."""


class Difference(_Record):
    """One metric compared between two configurations."""

    metric: str
    a: float | None
    b: float | None
    diff: float | None
    spread: float | None
    """The larger of the two spreads."""
    exceeds: bool | None
    """Whether ``|diff|`` is larger than ``spread`` (None: no spread to compare with)."""


class EvalReport(_Record):
    """Everything ``roundtable eval`` found."""

    source: str
    """The question file, or the folder of transcripts scored."""
    configs: list[str]
    repeats: int = Field(ge=1)
    runs: list[RunScore]
    baselines: list[BaselineScore] = Field(default_factory=list)
    summaries: list[Summary]
    comparison: list[Difference] = Field(default_factory=list)
    """The second configuration against the first, metric by metric."""
    findings: list[str] = Field(default_factory=list)
    """Plain statements, e.g. when the debate does not beat a baseline."""
    skipped: list[str] = Field(default_factory=list)
    """Transcripts that could not be scored, one line each."""
