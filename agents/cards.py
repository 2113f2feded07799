"""Role cards: one specialist agent, as data.

A card is validated into ``RoleCard``. The card's ``description`` is what the group-chat
manager reads when it chooses the next speaker; ``instructions`` become the agent's system
prompt; ``capabilities`` and ``tools`` say which sub-questions of a plan the role may take.
The protocol flags (``opens``, ``gives_verdict``, ``answers``, ``plans``) say what part the
role plays in a run, so that no engine code names a role. Cards live in team files
(``team.py``); this module owns the card's shape and the verdict format only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

SAFE_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
"""Role and team names: lowercase, safe in a URL, a file name and a Chainlit step name."""
RESERVED_NAMES = frozenset({"human", "manager", "memory", "team", "you", "roundtable"})
"""Speaker names the engine uses for itself: no role may take one."""

RoleName = Annotated[str, Field(pattern=SAFE_NAME)]
Verdict = Literal["ACCEPT", "REVISE"]

Capability = Annotated[str, Field(pattern=SAFE_NAME)]
"""A kind of sub-question a role can take in a plan (``panel`` mode), e.g. ``research``."""

ToolName = Literal["search_memory"]
"""Tools a card may grant. ``search_memory`` searches the team's shared memory (the person's
documents and earlier turns). There is deliberately no code-execution tool."""

FLAGS: tuple[str, ...] = ("opens", "gives_verdict", "answers", "plans")
"""The protocol flags; each may be set on at most one role of a team."""


class CardModelSettings(BaseModel):
    """Per-role generation settings; the endpoint itself comes from configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(default="default", min_length=1, max_length=64)
    max_tokens: int = Field(default=128, ge=8, le=4096)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)


class RoleCard(BaseModel):
    """One specialist agent, as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RoleName
    description: str = Field(min_length=10, max_length=400)
    instructions: str = Field(min_length=10, max_length=4000)
    task: str | None = Field(default=None, min_length=5, max_length=400)
    """What the role is asked as a pipeline stage, on top of its instructions."""
    opens: bool = False
    """Speaks first on a new question."""
    gives_verdict: bool = False
    """Reviews: every reply starts with ACCEPT: or REVISE:; compares a panel's branches."""
    answers: bool = False
    """Writes the answer to the person; a debate ends when the verdict-giver accepts it."""
    plans: bool = False
    """Writes a panel's plan with its own model (the manager's model otherwise)."""
    model: CardModelSettings = CardModelSettings()
    capabilities: list[Capability] = Field(default_factory=list, max_length=8)
    """What the manager's plan may ask of this role; a role with none takes no sub-question."""
    tools: list[ToolName] = Field(default_factory=list)
    """Tools run for this role before it answers; each tool also counts as a capability."""
    shape: str | None = Field(default=None, min_length=10, max_length=4000)
    """A GBNF grammar every reply of this role must follow, for small models that need the
    form spelled out (a list of facts, options weighed); sent where the model takes a grammar
    (the embedded model, llama.cpp's servers), ignored elsewhere. Replaces the verdict
    grammar of a verdict-giver, so it must then start with the verdict itself."""

    @model_serializer(mode="wrap")
    def _without_unset_shape(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A card without a shape saves as it did before shapes existed (byte for byte)."""
        dumped: dict[str, Any] = handler(self)
        if self.shape is None:
            dumped.pop("shape", None)
        return dumped

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is reserved; choose another role name")
        return name

    def covers(self, need: str) -> bool:
        """Whether a sub-question needing ``need`` (a capability or a tool) may go to this role."""
        return need in self.capabilities or need in self.tools

    @property
    def coverage(self) -> list[str]:
        """Everything this role covers: its capabilities, then its tools."""
        return [*self.capabilities, *self.tools]

    @property
    def stage_task(self) -> str:
        """The ask of this role's pipeline stage: its ``task``, or one built from its card."""
        return self.task or f"Do your part ({self.description.rstrip('.')})."


_VERDICT = re.compile(r"^\W*(ACCEPT|REVISE)\b", re.IGNORECASE)


def parse_verdict(text: str) -> Verdict | None:
    """The verdict from the start of a reply, or None when it gave none."""
    match = _VERDICT.match(text)
    if match is None:
        return None
    return "ACCEPT" if match.group(1).upper() == "ACCEPT" else "REVISE"
