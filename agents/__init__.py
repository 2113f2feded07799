"""The specialists: role cards and teams, the agent factory, and the model clients behind them.

Depends on ``common`` only; never on ``conversations``, ``memory`` or ``ui``.
"""

from roundtable.agents.cards import (
    FLAGS,
    SAFE_NAME,
    Capability,
    CardModelSettings,
    RoleCard,
    ToolName,
    Verdict,
    parse_verdict,
)
from roundtable.agents.endpoints import (
    REVISE_GRAMMAR,
    VERDICT_GRAMMAR,
    EndpointSettings,
    check_endpoint,
    exact_counter,
    make_client,
)
from roundtable.agents.factory import build_agent
from roundtable.agents.prompts import ManagerPrompts, load_prompts, manager_prompts
from roundtable.agents.resilience import CallKey, EndpointFault, call_scope
from roundtable.agents.scripted import Call, ScriptedChatCompletionClient
from roundtable.agents.team import (
    DEFAULT_TEAM,
    Guards,
    Team,
    Teams,
    builtin_teams_dir,
    find_team,
    load_team,
    load_teams,
    resolve_team,
    team_files,
)

__all__ = [
    "DEFAULT_TEAM",
    "FLAGS",
    "REVISE_GRAMMAR",
    "SAFE_NAME",
    "VERDICT_GRAMMAR",
    "Call",
    "CallKey",
    "Capability",
    "CardModelSettings",
    "EndpointFault",
    "EndpointSettings",
    "Guards",
    "ManagerPrompts",
    "RoleCard",
    "ScriptedChatCompletionClient",
    "Team",
    "Teams",
    "ToolName",
    "Verdict",
    "build_agent",
    "builtin_teams_dir",
    "call_scope",
    "check_endpoint",
    "exact_counter",
    "find_team",
    "load_prompts",
    "load_team",
    "load_teams",
    "make_client",
    "manager_prompts",
    "parse_verdict",
    "resolve_team",
    "team_files",
]
