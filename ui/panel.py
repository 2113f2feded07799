"""The chat settings panel: the mode, max turns, which roles take part, each role's endpoint,
memory.

``widgets`` builds the Chainlit inputs (choices from the configured endpoints, the team's
roles and the run modes); ``options_from`` turns the values the browser sends back into the
one ``RunOptions`` every front end uses, checking each against what is offered (the browser is
not trusted to send only offered values). An unknown mode is ignored, and said so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chainlit.input_widget import InputWidget, MultiSelect, Select, Slider, Switch

from roundtable.agents import Team
from roundtable.conversations import (
    MAX_TURNS_LIMIT,
    MODES,
    RunOptions,
    Settings,
)
from roundtable.transcripts import Mode

MODE_HELP = (
    "debate: the team discusses and the manager picks each speaker. "
    "pipeline: the team's roles in order, each building on the last. "
    "panel: a plan, its sub-questions answered in parallel, one answer naming disagreements. "
    "For new conversations; a continued one carries on as a debate."
)

log = logging.getLogger("roundtable.ui.panel")


def widgets(
    settings: Settings, team: Team, values: Mapping[str, Any] | None = None
) -> list[InputWidget]:
    """The panel's inputs for ``team``, initialised from earlier ``values`` (a resumed
    thread) if any."""
    options, _ = options_from(values or {}, settings, team)
    roster = team.roster
    endpoints = sorted(settings.endpoints)
    inputs: list[InputWidget] = [
        Select(
            id="mode",
            label="Mode",
            values=list(MODES),
            initial_value=options.mode,
            description=MODE_HELP,
        ),
        Slider(
            id="max_turns",
            label="Max turns",
            initial=options.max_turns or settings.budget.max_turns,
            min=1,
            max=MAX_TURNS_LIMIT,
            step=1,
            description="Agent turns per run; your own messages do not count.",
        ),
        MultiSelect(
            id="roles",
            label="Roles taking part",
            values=roster,
            initial=list(options.roles or roster),
            description="For new debates and forks; a continued debate keeps its roles.",
        ),
    ]
    for role in roster:
        current = options.endpoints.get(role) or settings.endpoint_for(role)[0]
        inputs.append(
            Select(
                id=f"endpoint_{role}",
                label=f"Model endpoint: {role}",
                values=endpoints,
                initial_value=current,
            )
        )
    inputs.append(
        Switch(
            id="memory",
            label="Shared memory",
            initial=options.memory,
            description="Recall the team's shared memory before each speaker.",
        )
    )
    return inputs


def options_from(
    values: Mapping[str, Any], settings: Settings, team: Team
) -> tuple[RunOptions, tuple[str, ...]]:
    """Checked options for ``team`` from the panel's values, and what was ignored (in words
    for the person); anything not offered is ignored."""
    mode, ignored = _mode(values.get("mode"))
    max_turns: int | None = None
    raw_turns = values.get("max_turns")
    if isinstance(raw_turns, int | float) and 1 <= raw_turns <= MAX_TURNS_LIMIT:
        max_turns = int(raw_turns)
    roles: list[str] | None = None
    raw_roles = values.get("roles")
    if isinstance(raw_roles, list):
        chosen = [r for r in team.roster if r in raw_roles]
        roles = chosen if len(chosen) >= 2 else None
    endpoints = {
        role: name
        for role in team.roster
        if isinstance(name := values.get(f"endpoint_{role}"), str)
        and name in settings.endpoints
        and name != settings.endpoint_for(role)[0]
    }
    options = RunOptions(
        mode=mode,
        team=team.name,
        max_turns=max_turns,
        roles=roles,
        endpoints=endpoints,
        memory=values.get("memory", settings.memory.enabled) is True,
    )
    return options, ignored


def _mode(raw: object) -> tuple[Mode, tuple[str, ...]]:
    """The chosen mode; an unknown one gives the default and a line saying it was ignored."""
    if raw is None:
        return "debate", ()
    for mode in MODES:
        if raw == mode:
            return mode, ()
    shown = repr(raw)[:40]
    log.warning("settings panel sent an unknown mode %s; using debate", shown)
    return "debate", (f"Unknown mode {shown} ignored; modes: {', '.join(MODES)}. Using debate.",)
