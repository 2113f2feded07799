"""Teams: a named cast of 2 to 8 role cards, as a YAML file.

A team file holds the team's ``name``, an optional ``description``, its ``roles`` (each a
full role card, ``cards.RoleCard``) and, optionally, the ``pipeline`` order. The roles' protocol
flags say who opens, who gives verdicts, who answers and who plans; each flag is held by at
most one role, and a run mode that needs a flag refuses a team without it
(``Team.require``). Every problem in a file is one line naming the file, the line and the
field. Shipped teams live in ``agents/teams/``; a user's own are a path or a folder of them.

Owns the team's shape, its rules, loading and finding team files; builds no agents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from roundtable.agents.cards import FLAGS, SAFE_NAME, RoleCard, RoleName
from roundtable.common.errors import ConfigError
from roundtable.common.yamlfile import line_of, read_yaml

DEFAULT_TEAM = "default"
MAX_TEAM_FILE_BYTES = 256 * 1024
"""A team file is a few kilobytes; a larger one is refused before it is parsed."""

Mode = Literal["debate", "pipeline", "panel"]

_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "panel": (
        ("gives_verdict", "compares the branches' answers"),
        ("answers", "writes the one answer"),
    ),
}
"""The flags each mode needs, and what the role holding it does there."""


class Guards(BaseModel):
    """The debate's protocol guards (``conversations.guards``), on by default.

    They act on a reply before it is committed: the verdict-giver cannot accept before it has
    asked for ``min_revisions`` revisions (unless the budget is nearly spent), a REVISE must
    name a point, and no reply may mostly repeat an earlier turn or its own instructions
    (word-trigram containment above ``copy_threshold``). A reply that breaks a rule is asked
    for once more, with a nudge; if it breaks it again it is not committed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    min_revisions: int = Field(default=1, ge=0, le=5)
    copy_threshold: float = Field(default=0.6, gt=0.0, le=1.0)
    independent_first_round: bool = False
    """Each role but the verdict-giver speaks first without seeing the others' replies (only
    the person's words), so that its first view is its own: agents in a debate tend to adopt
    the view they read first. Off by default in a debate; a panel's branches are independent
    by construction."""


class TeamRuleError(ValueError):
    """A team rule broken at ``loc`` (a path of field names and indexes)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Team(BaseModel):
    """A cast of specialists and the part each plays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SAFE_NAME)
    description: str = Field(default="", max_length=400)
    roles: list[RoleCard] = Field(min_length=2, max_length=8)
    pipeline: list[RoleName] | None = Field(default=None, min_length=1, max_length=8)
    """The pipeline's order (all roles in the order listed, by default)."""
    guards: Guards = Field(default_factory=Guards)
    """Left out of the saved form while they are the defaults, so a transcript header written
    before guards existed saves back byte for byte."""
    starters: list[str] = Field(default_factory=list, max_length=4)
    """Questions the browser offers on a new chat with this team (each 5 to 200 characters);
    left out of the saved form when there are none, like ``guards``."""

    @model_validator(mode="after")
    def _rules(self) -> Team:
        for index, starter in enumerate(self.starters):
            if not 5 <= len(starter.strip()) <= 200:
                raise TeamRuleError(
                    ("starters", index), "a starter question is 5 to 200 characters"
                )
        seen: dict[str, int] = {}
        for index, card in enumerate(self.roles):
            if card.name in seen:
                raise TeamRuleError(
                    ("roles", index, "name"),
                    f"{card.name!r} is also the name of roles[{seen[card.name]}]; "
                    "role names must be unique",
                )
            seen[card.name] = index
        for flag in FLAGS:
            holders = [i for i, card in enumerate(self.roles) if getattr(card, flag)]
            if len(holders) > 1:
                names = ", ".join(self.roles[i].name for i in holders)
                raise TeamRuleError(
                    ("roles", holders[1], flag),
                    f"only one role may have {flag}: true; set on {names}",
                )
        for index, name in enumerate(self.pipeline or []):
            if name not in seen:
                raise TeamRuleError(
                    ("pipeline", index), f"no role named {name!r}; roles: {', '.join(seen)}"
                )
            if (self.pipeline or []).index(name) != index:
                raise TeamRuleError(("pipeline", index), f"{name!r} is listed twice")
        return self

    @model_serializer(mode="wrap")
    def _without_default_guards(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        if self.guards == Guards():
            dumped.pop("guards", None)
        if not self.starters:
            dumped.pop("starters", None)
        return dumped

    @property
    def roster(self) -> list[str]:
        return [card.name for card in self.roles]

    def card(self, name: str) -> RoleCard:
        for card in self.roles:
            if card.name == name:
                return card
        raise ConfigError(f"team {self.name!r} has no role {name!r}; roles: {self._names()}")

    def holder(self, flag: str) -> str | None:
        """The role holding a protocol flag (``FLAGS``), or None."""
        return next((card.name for card in self.roles if getattr(card, flag)), None)

    @property
    def pipeline_order(self) -> list[str]:
        """The pipeline's stages: ``pipeline`` if given, else every role as listed."""
        order = self.pipeline or self.roster
        return [name for name in order if name in self.roster]

    def flags_of(self, name: str) -> list[str]:
        """The protocol flags (``FLAGS``) the role ``name`` holds."""
        card = self.card(name)
        return [flag for flag in FLAGS if getattr(card, flag)]

    def can_run(self, mode: str) -> bool:
        """Whether this team has every role ``mode`` needs (``require`` says what is not)."""
        return all(self.holder(flag) is not None for flag, _ in _NEEDS.get(mode, ()))

    def require(self, mode: str) -> None:
        """Refuse, naming what is missing, when this team cannot run ``mode``."""
        for flag, part in _NEEDS.get(mode, ()):
            if self.holder(flag) is None:
                raise ConfigError(
                    f"team {self.name!r} cannot run a {mode}: no role has {flag}: true "
                    f"(the role that {part}); roles: {self._names()}"
                )

    def only(self, names: Iterable[str] | None) -> Team:
        """The team with just ``names`` (checked; team order kept), or itself for None."""
        if names is None:
            return self
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            self.card(name)
        if len(wanted) < 2:
            raise ConfigError(f"a run needs at least two roles; got {', '.join(wanted) or 'none'}")
        kept = [card for card in self.roles if card.name in wanted]
        pipeline = [n for n in self.pipeline or [] if n in wanted] or None
        return self.model_copy(update={"roles": kept, "pipeline": pipeline})

    def _names(self) -> str:
        return ", ".join(self.roster)


def builtin_teams_dir() -> Path:
    """The folder of the shipped teams."""
    return Path(str(resources.files("roundtable.agents") / "teams"))


def load_team(path: Path) -> Team:
    """Load one team file; any problem is a ConfigError naming file, line and field."""
    raw, node = read_yaml(path, MAX_TEAM_FILE_BYTES, "team file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a team file is a mapping with name and roles")
    try:
        return Team.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(path, node, exc)) from exc


def describe(path: Path, node: yaml.Node | None, exc: ValidationError) -> str:
    """``path:line: field 'roles.2.name': message`` for the first problem."""
    err = exc.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    loc: tuple[str | int, ...] = tuple(err["loc"])
    if isinstance(cause, TeamRuleError):
        loc = cause.loc
        message = str(cause)
    elif err["type"] == "extra_forbidden":
        message = f"unknown field; allowed: {', '.join(_allowed(loc))}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
    field = ".".join(str(p) for p in loc) or "team"
    return f"{path}:{line_of(node, loc)}: field {field!r}: {message}"


def _allowed(loc: Sequence[str | int]) -> list[str]:
    """The fields allowed beside the unknown one at ``loc``."""
    model: type[BaseModel] = Team
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner: Any = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return list(model.model_fields)


def find_team(spec: str, teams_dir: Path | None = None) -> Path:
    """The file of a team given by name (the user's folder, then the shipped ones) or path."""
    if "/" in spec or spec.endswith((".yaml", ".yml")):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"team file {spec}: no such file")
        return path
    if not _is_safe(spec):
        raise ConfigError(f"team {spec!r}: a team name is lowercase letters, digits, - and _")
    for folder in (teams_dir, builtin_teams_dir()):
        if folder is not None and (folder / f"{spec}.yaml").is_file():
            return folder / f"{spec}.yaml"
    known = ", ".join(sorted(team_files(teams_dir)))
    raise ConfigError(f"no team named {spec!r}; teams: {known}")


def resolve_team(spec: str | None, teams_dir: Path | None = None) -> Team:
    """A team by name or path; the default team for None."""
    return load_team(find_team(spec or DEFAULT_TEAM, teams_dir))


@dataclass(frozen=True)
class Teams:
    """Every team a person may pick, by name, and the configured one (``default``)."""

    by_name: dict[str, Team]
    default: str

    def get(self, name: str | None) -> Team:
        """The team called ``name`` (the default for None); never a path."""
        team = self.by_name.get(name or self.default)
        if team is None:
            raise ConfigError(f"no team named {name!r}; teams: {', '.join(self.by_name)}")
        return team


def load_teams(teams_dir: Path | None = None, configured: str | None = None) -> Teams:
    """The shipped teams, the user's ``teams_dir`` and ``configured`` (the settings' team, a
    name or a path; the default team if None), each loaded and checked: the first bad file
    is a ConfigError (one line)."""
    by_name: dict[str, Team] = {}
    for stem, path in team_files(teams_dir).items():
        team = load_team(path)
        if team.name != stem:  # a team is picked by its file's name and shown by its own
            _, node = read_yaml(path, MAX_TEAM_FILE_BYTES, "team file")
            line = line_of(node, ["name"])
            raise ConfigError(
                f"{path}:{line}: field 'name': {team.name!r} differs from the file's name {stem!r}"
            )
        by_name[stem] = team
    chosen = load_team(find_team(configured or DEFAULT_TEAM, teams_dir))
    by_name[chosen.name] = chosen
    return Teams(by_name=by_name, default=chosen.name)


def team_files(teams_dir: Path | None = None) -> dict[str, Path]:
    """Every team file by name: the shipped ones, then the user's (which win on a clash)."""
    found: dict[str, Path] = {}
    for folder in (builtin_teams_dir(), teams_dir):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            if _is_safe(path.stem):
                found[path.stem] = path
    return found


def _is_safe(name: str) -> bool:
    return re.fullmatch(SAFE_NAME, name) is not None
