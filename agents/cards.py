"""Role cards: the four specialists as data.

A role card is a YAML file validated into ``RoleCard``. The card's ``description`` is what the
group-chat manager reads when it chooses the next speaker; ``instructions`` become the agent's
system prompt; ``capabilities`` and ``tools`` say which sub-questions of a plan the role may
take. This module owns loading and validating cards; it builds no agents and knows
nothing of model clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.errors import ConfigError

ROLE_NAMES: tuple[str, ...] = ("researcher", "analyst", "critic", "writer")
"""The roster Roundtable knows. A card naming another role is a configuration mistake."""

Verdict = Literal["ACCEPT", "REVISE"]

Capability = Literal["research", "analysis", "review", "writing"]
"""Kinds of sub-question a role can take in a plan (``panel`` mode)."""

ToolName = Literal["search_memory"]
"""Tools a card may grant. ``search_memory`` searches the team's shared memory (the person's
documents and earlier turns). There is deliberately no code-execution tool."""


class CardModelSettings(BaseModel):
    """Per-role generation settings; the endpoint itself comes from configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = "default"
    max_tokens: int = Field(default=128, ge=8, le=4096)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)


class RoleCard(BaseModel):
    """One specialist agent, as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = Field(min_length=10, max_length=400)
    instructions: str = Field(min_length=10)
    gives_verdict: bool = False
    """True for the critic: every reply starts with ACCEPT: or REVISE:."""
    model: CardModelSettings = CardModelSettings()
    capabilities: list[Capability] = Field(default_factory=list)
    """What the manager's plan may ask of this role; a role with none takes no sub-question."""
    tools: list[ToolName] = Field(default_factory=list)
    """Tools run for this role before it answers; each tool also counts as a capability."""

    def covers(self, need: str) -> bool:
        """Whether a sub-question needing ``need`` (a capability or a tool) may go to this role."""
        return need in self.capabilities or need in self.tools

    @property
    def coverage(self) -> list[str]:
        """Everything this role covers: its capabilities, then its tools."""
        return [*self.capabilities, *self.tools]

    @field_validator("name")
    @classmethod
    def _known_role(cls, name: str) -> str:
        if name not in ROLE_NAMES:
            raise ValueError(f"unknown role {name!r}; known roles: {', '.join(ROLE_NAMES)}")
        return name


_VERDICT = re.compile(r"^\W*(ACCEPT|REVISE)\b", re.IGNORECASE)


def parse_verdict(text: str) -> Verdict | None:
    """The critic's verdict from the start of its reply, or None when it gave none."""
    match = _VERDICT.match(text)
    if match is None:
        return None
    return "ACCEPT" if match.group(1).upper() == "ACCEPT" else "REVISE"


def load_card(path: Path) -> RoleCard:
    """Load one card; a file that does not parse or validate raises ConfigError naming it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"role card {path}: cannot read ({exc.strerror})") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"role card {path}: not valid YAML ({_first_line(exc)})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            f"role card {path}: expected a mapping of fields, got {type(raw).__name__}"
        )
    try:
        return RoleCard.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "card"
        raise ConfigError(f"role card {path}: field {where!r}: {err['msg']}") from exc


def builtin_cards_dir() -> Path:
    """The folder of the four shipped cards."""
    return Path(str(resources.files("agents") / "roles"))


def load_roster(directory: Path | None = None, only: Iterable[str] | None = None) -> list[RoleCard]:
    """Load every ``*.yaml`` card in ``directory`` (the shipped ones by default), in roster order.

    ``only`` keeps a subset of roles (names checked). Two cards for one role are refused.
    """
    folder = directory or builtin_cards_dir()
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise ConfigError(f"role cards: no *.yaml files in {folder}")
    cards: dict[str, RoleCard] = {}
    for path in paths:
        card = load_card(path)
        if card.name in cards:
            raise ConfigError(f"role cards: two cards for role {card.name!r} in {folder}")
        cards[card.name] = card
    wanted = list(only) if only is not None else list(cards)
    for name in wanted:
        if name not in cards:
            raise ConfigError(f"role {name!r} has no card in {folder}")
    return [cards[n] for n in ROLE_NAMES if n in wanted]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
