"""The run engine: the debate (group-chat manager, speaker selection, budgets), the pipeline
and the panel (plan, fan out, fan in), per-run options and the composition root.

Depends on ``agents``, ``memory``, ``transcripts`` and ``common``; ``terminal``, ``ui`` and
``api`` depend on it. Transcript records and files are ``transcripts``.
"""

from roundtable.conversations.assemble import (
    build_debate,
    choose_team,
    open_memory_if_possible,
    start_observing,
)
from roundtable.conversations.budget import Budget, Tally, stop_reason
from roundtable.conversations.control import Interjection
from roundtable.conversations.datafolder import DataFolderError, check_data_folder
from roundtable.conversations.debate import Debate
from roundtable.conversations.modes import MODES, Run, parse_mode
from roundtable.conversations.options import MAX_TURNS_LIMIT, Prepared, RunOptions, RunSettings
from roundtable.conversations.panel import Panel, PanelSettings
from roundtable.conversations.participant import MAX_QUESTION_CHARS, Participant, check_question
from roundtable.conversations.pipeline import Pipeline
from roundtable.conversations.runs import build_run
from roundtable.conversations.selection import Decision, Floor, choose
from roundtable.conversations.settings import Settings, load_settings
from roundtable.transcripts import Mode

__all__ = [
    "MAX_QUESTION_CHARS",
    "MAX_TURNS_LIMIT",
    "MODES",
    "Budget",
    "DataFolderError",
    "Debate",
    "Decision",
    "Floor",
    "Interjection",
    "Mode",
    "Panel",
    "PanelSettings",
    "Participant",
    "Pipeline",
    "Prepared",
    "Run",
    "RunOptions",
    "RunSettings",
    "Settings",
    "Tally",
    "build_debate",
    "build_run",
    "check_data_folder",
    "check_question",
    "choose",
    "choose_team",
    "load_settings",
    "open_memory_if_possible",
    "parse_mode",
    "start_observing",
    "stop_reason",
]
