"""The chat settings panel: the mode, max turns, which roles take part, each role's endpoint,
memory.

``widgets`` builds the Chainlit inputs (choices from the configured endpoints, the role cards
and the run modes); ``options_from`` turns the values the browser sends back into
``RunOptions``, checking each against what is configured (the browser is not trusted to send
only offered values). An unknown mode is ignored and said so in ``RunOptions.ignored``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chainlit.input_widget import InputWidget, MultiSelect, Select, Slider, Switch

from agents import ROLE_NAMES
from conversations import MODES, Mode, Settings
from ui.session import RunOptions

MAX_TURNS_LIMIT = 40
MODE_HELP = (
    "debate: the team discusses and the manager picks each speaker. "
    "pipeline: researcher, analyst, critic, writer, each building on the last. "
    "panel: a plan, its sub-questions answered in parallel, one answer naming disagreements. "
    "For new conversations; a continued one carries on as a debate."
)

log = logging.getLogger(__name__)


def widgets(settings: Settings, values: Mapping[str, Any] | None = None) -> list[InputWidget]:
    """The panel's inputs, initialised from earlier ``values`` (a resumed thread) if any."""
    options = options_from(values or {}, settings)
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
            values=list(ROLE_NAMES),
            initial=list(options.roles or ROLE_NAMES),
            description="For new debates and forks; a continued debate keeps its roles.",
        ),
    ]
    for role in ROLE_NAMES:
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


def options_from(values: Mapping[str, Any], settings: Settings) -> RunOptions:
    """Checked options from the panel's values; anything not offered is ignored."""
    mode, ignored = _mode(values.get("mode"))
    max_turns: int | None = None
    raw_turns = values.get("max_turns")
    if isinstance(raw_turns, int | float) and 1 <= raw_turns <= MAX_TURNS_LIMIT:
        max_turns = int(raw_turns)
    roles: tuple[str, ...] | None = None
    raw_roles = values.get("roles")
    if isinstance(raw_roles, list):
        chosen = tuple(r for r in ROLE_NAMES if r in raw_roles)
        roles = chosen or None
    endpoints = {
        role: name
        for role in ROLE_NAMES
        if isinstance(name := values.get(f"endpoint_{role}"), str)
        and name in settings.endpoints
        and name != settings.endpoint_for(role)[0]
    }
    return RunOptions(
        mode=mode,
        ignored=ignored,
        max_turns=max_turns,
        roles=roles,
        endpoints=endpoints,
        memory=values.get("memory", settings.memory.enabled) is True,
    )


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
