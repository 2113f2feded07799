"""Teams as data: team files, their rules and errors, and every mode on every shipped team."""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path

import pytest
import yaml

from roundtable.agents import (
    ScriptedChatCompletionClient,
    Team,
    builtin_teams_dir,
    load_team,
    resolve_team,
    team_files,
)
from roundtable.common.errors import ConfigError
from roundtable.conversations import RunOptions, build_run, load_settings
from roundtable.transcripts import (
    MessageEvent,
    PlanEvent,
    SelectionEvent,
    StopEvent,
    load,
)
from tests.support.runs import collect_and_close

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(team_files())
DEFAULT = resolve_team(None)


def write(folder: Path, text: str, name: str = "team.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def role(name: str, **flags: object) -> dict[str, object]:
    return {
        "name": name,
        "description": f"The {name} of this team, who says things.",
        "instructions": f"You are the {name}. Say one sentence.",
        **flags,
    }


def team_yaml(*roles: dict[str, object], **extra: object) -> str:
    return yaml.safe_dump({"name": "mine", "roles": list(roles), **extra}, sort_keys=False)


# -- the shipped teams ---------------------------------------------------------------------------


def test_three_teams_ship_with_different_names_and_sizes() -> None:
    assert SHIPPED == ["default", "policy", "product"]
    teams = [resolve_team(name) for name in SHIPPED]
    assert [len(t.roles) for t in teams] == [4, 3, 5]
    assert DEFAULT.roster == ["researcher", "analyst", "critic", "writer"]
    rosters = [set(t.roster) for t in teams]
    assert not rosters[0] & rosters[1] and not rosters[1] & rosters[2]
    for team in teams:  # each can run every mode
        for mode in ("debate", "pipeline", "panel"):
            team.require(mode)


def scripted_clients(
    team: Team, signal: threading.Event
) -> dict[str, ScriptedChatCompletionClient]:
    """Every role speaks a line naming itself; the verdict-giver accepts."""
    return {
        card.name: ScriptedChatCompletionClient(
            default="ACCEPT: sound." if card.gives_verdict else f"{card.name} says its part.",
            stop_signal=signal,
            name=card.name,
        )
        for card in team.roles
    }


@pytest.mark.parametrize("mode", ["debate", "pipeline", "panel"])
@pytest.mark.parametrize("name", SHIPPED)
async def test_each_shipped_team_runs_each_mode_on_the_scripted_model(
    tmp_path: Path, name: str, mode: str
) -> None:
    team = resolve_team(name)
    signal = threading.Event()
    clients = scripted_clients(team, signal)
    branches = [card for card in team.roles if not card.answers][:3]
    plan_text = json.dumps(
        {
            f"q{i}": {"role": c.name, "needs": c.coverage[0], "question": "Why?", "depends_on": []}
            if (c := (branches[i - 1] if i <= len(branches) else None)) is not None
            else None
            for i in range(1, 5)
        }
    )
    planner = team.holder("plans")
    if mode == "panel" and planner is not None:  # the team's planner writes the plan
        clients[planner] = ScriptedChatCompletionClient(
            [plan_text], default=f"{planner} says its part.", stop_signal=signal, name=planner
        )
    manager = ScriptedChatCompletionClient(
        [plan_text] if mode == "panel" and planner is None else [],
        name="manager",
        stop_signal=signal,
    )
    path = tmp_path / "t.jsonl"
    run = build_run(
        load_settings(),
        "Should we adopt a four-day week?",
        RunOptions(mode=mode, max_turns=6),  # type: ignore[arg-type]
        team=team,
        clients=dict(clients),
        manager_client=manager,
        stop_signal=signal,
        transcript_path=path,
    )
    events = await collect_and_close(run)  # type: ignore[arg-type]
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    spoke = {e.speaker for e in events if isinstance(e, MessageEvent)} - {"human"}
    assert spoke <= set(team.roster)
    saved = load(path)
    assert saved.header.team is not None
    assert saved.header.team.roles == team.roles  # the cards travel with the transcript
    assert saved.header.team.guards.enabled is False  # as the test settings say
    if mode == "debate":
        assert stop.code == "accepted", stop.reason
        opener = team.holder("opens")
        first = next(e for e in events if isinstance(e, SelectionEvent))
        assert (first.speaker, first.method) == (opener, "rule")
        assert team.holder("answers") in spoke and team.holder("gives_verdict") in spoke
    elif mode == "pipeline":
        said = [e.speaker for e in events if isinstance(e, MessageEvent) and e.speaker != "human"]
        assert said == team.pipeline_order
        assert stop.code == "completed"
    else:
        assert stop.code in ("completed", "partial"), stop.reason
        assert team.holder("answers") in spoke
        plan = next(e for e in events if isinstance(e, PlanEvent))
        assert plan.accepted and {s.role for s in plan.steps} <= set(team.roster)


# -- team-file errors: one line naming the file, the line and the field -------------------------


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            team_yaml(role("alpha"), role("beta"), role("alpha")),
            None,
            "field 'roles.2.name': 'alpha' is also the name of roles[0]",
        ),
        (
            team_yaml(role("alpha", gives_verdict=True), role("beta", gives_verdict=True)),
            None,
            "field 'roles.1.gives_verdict': only one role may have gives_verdict: true",
        ),
        (
            team_yaml(role("alpha", opens_first=True), role("beta")),
            None,
            "field 'roles.0.opens_first': unknown field; allowed: name, description",
        ),
        (team_yaml(role("alpha")), None, "field 'roles': List should have at least 2 items"),
        (
            team_yaml(role("Alpha Beta"), role("beta")),
            None,
            "field 'roles.0.name': String should match pattern",
        ),
        (team_yaml(role("human"), role("beta")), None, "'human' is reserved"),
        (
            team_yaml(role("alpha"), role("beta"), pipeline=["beta", "gamma"]),
            None,
            "field 'pipeline.1': no role named 'gamma'",
        ),
        ("name: mine\nroles:\n  - name: [unclosed\n", 4, "not valid YAML"),
        ("- just\n- a list\n", 1, "a team file is a mapping"),
    ],
)
def test_a_bad_team_file_is_one_line_naming_file_line_and_field(
    tmp_path: Path, text: str, line: int | None, needle: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_team(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:"), message
    assert needle in message, message
    where = int(message[len(str(path)) + 1 :].split(":")[0])
    if line is not None:
        assert where == line
    else:  # the line of the field named: check it in the file itself
        field = needle.split("'")[1].split(".")[-1]
        if not field.isdigit() and field != "roles":
            assert field in text.splitlines()[where - 1] or "name" in text.splitlines()[where - 1]


def test_the_line_points_at_the_offending_role(tmp_path: Path) -> None:
    text = team_yaml(role("alpha"), role("beta", answers=True), role("gamma", answers=True))
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_team(path)
    where = int(str(caught.value)[len(str(path)) + 1 :].split(":")[0])
    lines = text.splitlines()
    assert lines[where - 1].strip() == "answers: true"
    assert where - 1 == max(i for i, line in enumerate(lines) if "answers" in line)


def test_a_mode_refuses_a_team_without_the_role_it_needs(tmp_path: Path) -> None:
    path = write(tmp_path, team_yaml(role("alpha", opens=True), role("beta")))
    team = load_team(path)
    team.require("debate")
    team.require("pipeline")
    with pytest.raises(
        ConfigError,
        match=r"team 'mine' cannot run a panel: no role has "
        r"gives_verdict: true \(the role that compares",
    ):
        team.require("panel")
    with pytest.raises(ConfigError, match="cannot run a panel"):
        build_run(load_settings(), "Why?", RunOptions(mode="panel"), team=team)


def test_oversized_unreadable_and_unknown_teams_are_refused(tmp_path: Path) -> None:
    big = write(tmp_path, "name: mine\n" + "#" * 300_000)
    with pytest.raises(ConfigError, match="over the size limit of 262144 bytes"):
        load_team(big)
    with pytest.raises(ConfigError, match="no team named 'nobody'; teams: default, policy"):
        resolve_team("nobody")
    with pytest.raises(ConfigError, match="a team name is lowercase"):
        resolve_team("Etc!")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_team(binary)


def test_a_users_team_folder_is_searched_first(tmp_path: Path) -> None:
    write(tmp_path, team_yaml(role("alpha"), role("beta")).replace("mine", "policy"), "policy.yaml")
    assert resolve_team("policy", tmp_path).roster == ["alpha", "beta"]
    assert resolve_team("policy").roster == ["economist", "lawyer", "sceptic"]
    assert team_files(tmp_path)["policy"] == tmp_path / "policy.yaml"


def test_a_subset_keeps_team_order_and_needs_two_roles() -> None:
    assert DEFAULT.only(["writer", "researcher"]).roster == ["researcher", "writer"]
    with pytest.raises(ConfigError, match="at least two roles"):
        DEFAULT.only(["writer"])
    with pytest.raises(ConfigError, match="team 'default' has no role 'judge'"):
        DEFAULT.only(["writer", "judge"])


# -- no role name in the engine -----------------------------------------------------------------

ENGINE = ["agents", "conversations", "memory", "common", "api", "ui", "evaluation"]


def test_no_role_name_is_a_string_literal_in_the_engine() -> None:
    names = {name for team in SHIPPED for name in resolve_team(team).roster}
    found: list[str] = []
    for package in ENGINE:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(
                    node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                )
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and node.value.strip().lower() in names
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_the_teams_folder_ships_only_team_files() -> None:
    assert sorted(p.name for p in builtin_teams_dir().iterdir()) == [
        "default.yaml",
        "policy.yaml",
        "product.yaml",
    ]
