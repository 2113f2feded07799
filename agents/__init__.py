"""The specialists: role cards, the agent factory, and the model clients behind them.

Depends on ``common`` only; never on ``conversations``, ``memory`` or ``ui``.
"""

from agents.cards import (
    ROLE_NAMES,
    Capability,
    CardModelSettings,
    RoleCard,
    ToolName,
    Verdict,
    builtin_cards_dir,
    load_card,
    load_roster,
    parse_verdict,
)
from agents.endpoints import (
    VERDICT_GRAMMAR,
    EndpointSettings,
    check_endpoint,
    exact_counter,
    make_client,
)
from agents.factory import build_agent
from agents.resilience import CallKey, EndpointFault, call_scope
from agents.scripted import Call, ScriptedChatCompletionClient

__all__ = [
    "ROLE_NAMES",
    "VERDICT_GRAMMAR",
    "Call",
    "CallKey",
    "Capability",
    "CardModelSettings",
    "EndpointFault",
    "EndpointSettings",
    "RoleCard",
    "ScriptedChatCompletionClient",
    "ToolName",
    "Verdict",
    "build_agent",
    "builtin_cards_dir",
    "call_scope",
    "check_endpoint",
    "exact_counter",
    "load_card",
    "load_roster",
    "make_client",
    "parse_verdict",
]
