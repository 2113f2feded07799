"""The debate: the group-chat manager, speaker selection, budgets, transcripts and replay.

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
    ErrorEvent,
    Event,
    Header,
    LedgerRow,
    LiveEvent,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
    NoticeEvent,
    ParentRef,
    PruneEvent,
    RoleSummary,
    SelectionEvent,
    StopEvent,
    TokenDelta,
    Usage,
)
from conversations.render import TerminalRenderer
from conversations.replay import replay
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
    "SCHEMA_VERSION",
    "Budget",
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
    "NoticeEvent",
    "ParentRef",
    "Participant",
    "PruneEvent",
    "RoleSummary",
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
    "catalogue",
    "check_question",
    "choose",
    "load",
    "load_settings",
    "open_memory_if_possible",
    "replay",
    "save",
    "start_observing",
    "stop_reason",
    "summarise",
]
