"""Running an evaluation: every question under every configuration, ``repeat`` times.

Each run goes through the library API (``roundtable.arun``) and is saved as an ordinary
transcript in ``OUT/transcripts/``; its quality report is the one the run recorded. A question
with a reference is also answered by the baselines, under the same configuration and token
budget. A configured judge scores each answer. Owns the loop; the sums are ``stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from roundtable.conversations import Settings
from roundtable.conversations.library import RunResult, arun, configure
from roundtable.conversations.quality import report
from roundtable.evaluation.answers import matches
from roundtable.evaluation.baselines import baselines
from roundtable.evaluation.judge import judge
from roundtable.evaluation.questions import Question, QuestionSet
from roundtable.evaluation.records import BaselineScore, RunScore
from roundtable.transcripts import HUMAN, MessageEvent, QualityEvent, QualityReport

JUDGED_DEBATE_CHARS = 2500
"""The end of the debate the judge reads (a small model's window is 4,096 tokens)."""


@dataclass(frozen=True)
class Config:
    """A named configuration: the settings one side of a comparison runs with."""

    name: str
    settings: Settings


@dataclass(frozen=True)
class Plan:
    """What to run: the questions, configurations, team, repeats, judge and output folder."""

    questions: QuestionSet
    configs: Sequence[Config]
    out: Path
    team: str | None = None
    repeat: int = 1
    judge: str | None = None
    """An endpoint name of each configuration's settings, or None for no rubric."""


async def run_all(
    plan: Plan, say: Callable[[str], None] = lambda _: None
) -> tuple[list[RunScore], list[BaselineScore]]:
    """Every run and baseline of ``plan``; ``say`` gets one progress line per run."""
    runs: list[RunScore] = []
    base: list[BaselineScore] = []
    folder = plan.out / "transcripts"
    folder.mkdir(parents=True, exist_ok=True)
    for config in plan.configs:
        setup = configure(team=plan.team, settings=config.settings)
        for repeat in range(1, plan.repeat + 1):
            for question in plan.questions.questions:
                path = folder / f"{config.name}-{question.id}-{repeat}.jsonl"
                result = await arun(
                    question.question, team=setup.team, settings=setup.settings, transcript=path
                )
                scored = await _score(plan, config, question, repeat, result)
                runs.append(scored)
                say(f"{config.name} {question.id} #{repeat}: {result.stop.code}")
                if question.reference is not None:
                    base.append(
                        await baselines(
                            setup.settings, setup.team, question, config=config.name, repeat=repeat
                        )
                    )
    return runs, base


async def _score(
    plan: Plan, config: Config, question: Question, repeat: int, result: RunResult
) -> RunScore:
    rubric, problem = None, None
    if plan.judge is not None and result.answer:
        rubric, problem = await judge(
            config.settings, plan.judge, question.question, result.answer, _debate(result)
        )
    elif plan.judge is not None:
        problem = "no answer to judge"
    return RunScore(
        config=config.name,
        question=question.id,
        repeat=repeat,
        transcript=result.transcript.name,
        stop=result.stop.code,
        answer=result.answer,
        correct=matches(result.answer, question.reference) if question.reference else None,
        quality=recorded_quality(result),
        rubric=rubric,
        judge_error=problem,
    )


def recorded_quality(result: RunResult) -> QualityReport:
    """The report the run recorded before its stop (measured again if it has none)."""
    found = [e for e in result.events if isinstance(e, QualityEvent)]
    if found:
        return found[-1].report
    return report(result.header, result.events, ledger=result.stop.ledger)


def _debate(result: RunResult) -> str:
    said = [
        f"{e.speaker}: {e.content}"
        for e in result.events
        if isinstance(e, MessageEvent) and e.speaker != HUMAN
    ]
    return "\n".join(said)[-JUDGED_DEBATE_CHARS:]
