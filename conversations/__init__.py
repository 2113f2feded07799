"""Runs: the debate (group-chat manager, speaker selection, budgets), the pipeline and the
panel (plan, fan out, fan in), transcripts and replay.

Depends on ``agents``, ``memory`` and ``common``; ``ui`` depends on it.
"""

from conversations.assemble import build_debate, open_memory_if_possible, start_observing
from conversations.budget import Budget, Tally, stop_reason
from conversations.catalogue import TranscriptSummary, catalogue, summarise
from conversations.debate import Debate, Interjection, Participant, check_question
from conversations.events import (
    EVENT_ADAPTER,
    HUMAN,
    SCHEMA_VERSION,
    AggregateEvent,
    BranchEvent,
    Conflict,
    ErrorEvent,
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
    MissingBranch,
    Mode,
    NoticeEvent,
    ParentRef,
    PlanEvent,
    PlanStep,
    PruneEvent,
    RoleSummary,
    SelectionEvent,
    StopEvent,
    TokenDelta,
    Usage,
)
from conversations.modes import MODES, Run, parse_mode
from conversations.panel import Panel, PanelSettings
from conversations.pipeline import Pipeline
from conversations.render import TerminalRenderer
from conversations.replay import replay
from conversations.runs import build_run
from conversations.selection import Decision, Floor, choose
from conversations.settings import Settings, load_settings
from conversations.transcript import (
    TornTailWarning,
    Transcript,
    TranscriptError,
    TranscriptWriter,
    load,
    save,
)

__all__ = [
    "EVENT_ADAPTER",
    "HUMAN",
    "MODES",
    "SCHEMA_VERSION",
    "AggregateEvent",
    "BranchEvent",
    "Budget",
    "Conflict",
    "Debate",
    "Decision",
    "ErrorEvent",
    "Event",
    "Floor",
    "Header",
    "Interjection",
    "LedgerRow",
    "LiveEvent",
    "MemoryEvent",
    "MemoryHit",
    "MessageEvent",
    "MissingBranch",
    "Mode",
    "NoticeEvent",
    "Panel",
    "PanelSettings",
    "ParentRef",
    "Participant",
    "Pipeline",
    "PlanEvent",
    "PlanStep",
    "PruneEvent",
    "RoleSummary",
    "Run",
    "SelectionEvent",
    "Settings",
    "StopEvent",
    "Tally",
    "TerminalRenderer",
    "TokenDelta",
    "TornTailWarning",
    "Transcript",
    "TranscriptError",
    "TranscriptSummary",
    "TranscriptWriter",
    "Usage",
    "build_debate",
    "build_run",
    "catalogue",
    "check_question",
    "choose",
    "load",
    "load_settings",
    "open_memory_if_possible",
    "parse_mode",
    "replay",
    "save",
    "start_observing",
    "stop_reason",
    "summarise",
]
