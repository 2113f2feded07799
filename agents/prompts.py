"""The manager's prompts as data: ``prompts/manager.yaml``, validated once and filled in.

Owns the ``ManagerPrompts`` record (the pick, the plan, the comparison and the brief to the
answerer), loading it from the shipped YAML (``manager_prompts``, once per process), and the
check that every prompt uses only the placeholders its caller fills (``$name``, as in
``string.Template``), so an edited file fails at start-up with the field's name, not mid-run.

Does not own: what fills the placeholders (``conversations.selection``, ``plan``,
``aggregate``).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from string import Template
from typing import ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from roundtable.common.bounded import MAX_CONFIG_BYTES, read_text
from roundtable.common.errors import ConfigError
from roundtable.common.validation import first_error


class _Prompts(BaseModel):
    """A group of prompts; ``PLACEHOLDERS`` names what each field may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    PLACEHOLDERS: ClassVar[dict[str, frozenset[str]]] = {}

    @model_validator(mode="after")
    def _placeholders_known(self) -> _Prompts:
        for name, allowed in self.PLACEHOLDERS.items():
            template = Template(getattr(self, name))
            if not template.is_valid():
                raise ValueError(f"{name}: a '$' that is not a $placeholder (write $$)")
            unknown = set(template.get_identifiers()) - allowed
            if unknown:
                known = ", ".join(sorted(f"${p}" for p in allowed)) or "none"
                raise ValueError(f"{name}: unknown placeholder ${min(unknown)}; allowed: {known}")
        return self

    def fill(self, name: str, **values: str) -> str:
        """The prompt ``name`` with its placeholders filled in."""
        return Template(getattr(self, name)).substitute(values)


class PickPrompts(_Prompts):
    """Who speaks next in a debate."""

    PLACEHOLDERS: ClassVar[dict[str, frozenset[str]]] = {
        "system": frozenset({"team"}),
        "ask": frozenset({"candidates"}),
    }
    system: str
    ask: str


class PlanPrompts(_Prompts):
    """A panel's plan, and the words for what a sub-question needs."""

    PLACEHOLDERS: ClassVar[dict[str, frozenset[str]]] = {
        "system": frozenset({"roles", "needs"}),
        "refused": frozenset({"refused"}),
    }
    system: str
    refused: str
    needs: dict[str, str]


class ComparePrompts(_Prompts):
    """The comparison of a panel's answers."""

    PLACEHOLDERS: ClassVar[dict[str, frozenset[str]]] = {
        "system": frozenset({"instructions", "ids"}),
    }
    system: str


class SynthesisPrompts(_Prompts):
    """The brief to the role that answers the person after a panel."""

    PLACEHOLDERS: ClassVar[dict[str, frozenset[str]]] = {
        "ask": frozenset(),
        "conflicts": frozenset({"topics"}),
        "missing": frozenset({"gaps"}),
    }
    ask: str
    conflicts: str
    missing: str


class ManagerPrompts(BaseModel):
    """Every prompt the manager sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pick: PickPrompts
    plan: PlanPrompts
    compare: ComparePrompts
    synthesis: SynthesisPrompts


def builtin_prompts_file() -> Path:
    return Path(str(resources.files("roundtable.agents") / "prompts" / "manager.yaml"))


def load_prompts(path: Path) -> ManagerPrompts:
    """Read and check a prompts file; any problem is a ConfigError naming file and field."""
    try:
        raw = yaml.safe_load(read_text(path, MAX_CONFIG_BYTES, "prompts file"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"prompts file {path}: cannot read it ({exc})") from exc
    try:
        return ManagerPrompts.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc, "prompts")
        message = message.removeprefix("Value error, ")
        raise ConfigError(f"{path}: field {where!r}: {message}") from exc


@functools.cache
def manager_prompts() -> ManagerPrompts:
    """The shipped prompts, loaded once."""
    return load_prompts(builtin_prompts_file())
