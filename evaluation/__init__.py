"""``roundtable eval``: run question sets, score debate quality, compare configurations.

Runs go through the library API (``conversations.library``); each run's quality report is
``conversations.quality``'s. This package adds question sets, baselines (a single agent, a
majority vote), an optional judge's rubric, aggregation with spread, comparisons, the report
and its chart. Depends on ``conversations``, ``agents``, ``transcripts`` and ``common``;
only ``terminal`` depends on it.
"""

from roundtable.evaluation.answers import matches, vote
from roundtable.evaluation.command import add_command
from roundtable.evaluation.questions import Question, QuestionSet, load_questions
from roundtable.evaluation.records import EvalReport, RunScore, Summary
from roundtable.evaluation.report import build, write
from roundtable.evaluation.rescore import rescore
from roundtable.evaluation.runner import Config, Plan, run_all

__all__ = [
    "Config",
    "EvalReport",
    "Plan",
    "Question",
    "QuestionSet",
    "RunScore",
    "Summary",
    "add_command",
    "build",
    "load_questions",
    "matches",
    "rescore",
    "run_all",
    "vote",
    "write",
]
