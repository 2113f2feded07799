"""Teams in the browser UI without a browser: one chat profile per team, drawn avatars for
every role, the settings panel and ``/ask`` of the session's team, the session running its
profile's team (and a continued transcript keeping its own), and the start-up refusal of a
bad team file."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response

from roundtable.agents import builtin_teams_dir, load_team, load_teams
from roundtable.common.errors import ConfigError
from roundtable.conversations import RunOptions, Settings
from roundtable.transcripts import HUMAN, LiveEvent, MessageEvent, load
from roundtable.ui import avatars
from roundtable.ui.commands import Refused, Say, parse
from roundtable.ui.panel import options_from, widgets
from roundtable.ui.profiles import (
    INTRO,
    chat_profiles,
    model_note,
    profile_markdown,
    team_for,
)
from roundtable.ui.server import config_file
from roundtable.ui.session import SessionRunner
from tests.support.runs import scripted_settings
from tests.support.sessions import Shown, say_and_wait, session_runner

TEAMS = load_teams()
POLICY = TEAMS.get("policy")
SCRIPT = Path(__file__).parent / "browser" / "policy_script.yaml"


# -- chat profiles ---------------------------------------------------------------------------------


def test_each_team_is_a_profile_the_configured_one_first_and_default() -> None:
    profiles = chat_profiles(load_teams(configured="policy"))
    assert [(p.name, p.default) for p in profiles] == [
        ("policy", True),
        ("default", False),
        ("product", False),
    ]
    for profile in profiles:
        assert profile.icon is not None and profile.icon.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(profile.icon.split(",", 1)[1]).decode()
        assert f'aria-label="{profile.name}"' in svg


def test_a_profile_lists_the_teams_roles_their_parts_and_its_modes() -> None:
    assert profile_markdown(POLICY).splitlines() == [
        "An economist, a lawyer and a sceptic weigh a policy.",
        "",
        "- **economist** *(opens)*: " + POLICY.card("economist").description,
        "- **lawyer** *(writes the answer)*: " + POLICY.card("lawyer").description,
        "- **sceptic** *(gives the verdict)*: " + POLICY.card("sceptic").description,
        "",
        "Modes: debate, pipeline, panel.",
    ]


def test_a_session_runs_its_profiles_team_and_an_unknown_profile_the_configured_one() -> None:
    assert team_for("policy", TEAMS) is POLICY
    assert team_for("product", TEAMS).name == "product"
    for unknown in (None, "nobody", "../policy", ["policy"]):
        assert team_for(unknown, TEAMS).name == "default"


def test_the_user_teams_folder_adds_profiles_and_a_bad_file_refuses_to_start(
    tmp_path: Path,
) -> None:
    team = {"name": "duo", "roles": [_role("alpha", opens=True), _role("beta", answers=True)]}
    (tmp_path / "duo.yaml").write_text(yaml.safe_dump(team))
    assert [p.name for p in chat_profiles(load_teams(tmp_path))][-1] == "duo"
    assert "Modes: debate, pipeline." in profile_markdown(load_teams(tmp_path).get("duo"))

    (tmp_path / "trio.yaml").write_text(yaml.safe_dump({**team, "name": "duo"}))
    with pytest.raises(ConfigError, match=r"trio\.yaml:\d+: field 'name': 'duo' differs"):
        load_teams(tmp_path)


def test_threads_are_not_tagged_with_their_profile() -> None:
    # Chainlit's SQL data layer binds the tag list as is: SQLite refuses it, and the thread
    # is never saved (no history, no resume). The thread's team is in its transcript.
    config = tomllib.loads(config_file().read_text())
    assert config["features"]["auto_tag_thread"] is False


def test_the_launcher_refuses_a_bad_team_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from roundtable.ui.cli import main

    (tmp_path / "bad.yaml").write_text("name: bad\nroles:\n  - name: Bad Name\n")
    monkeypatch.setenv("ROUNDTABLE_TEAMS_DIR", str(tmp_path))
    monkeypatch.setenv("ROUNDTABLE_DATA_DIR", str(tmp_path / "data"))
    assert main(["--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"roundtable ui: error: {tmp_path / 'bad.yaml'}:3: field 'roles.0")


def _role(name: str, **flags: object) -> dict[str, object]:
    return {
        "name": name,
        "description": f"The {name} of this team, who says things.",
        "instructions": f"You are the {name}. Say one sentence.",
        **flags,
    }


# -- avatars ---------------------------------------------------------------------------------------


def test_every_role_of_every_team_gets_an_avatar_coloured_by_its_place() -> None:
    drawn = avatars.role_avatars(TEAMS.by_name.values())
    roles = {name for team in TEAMS.by_name.values() for name in team.roster}
    assert set(drawn) == roles
    for index, name in enumerate(POLICY.roster):
        assert drawn[name] == avatars.avatar_svg(name, avatars.PALETTE[index])
        assert f">{name[0].upper()}</text>" in drawn[name]
    product = TEAMS.get("product")
    colours = {drawn[name].split('fill="')[1][:7] for name in product.roster}
    assert len(colours) == len(product.roster), "no two roles of a team share a colour"


async def test_the_avatar_route_draws_roles_and_leaves_the_rest_to_chainlit(
    tmp_path: Path,
) -> None:
    (tmp_path / "lawyer.png").write_bytes(b"a person's own picture")

    async def chainlit(avatar_id: str) -> Response:
        return PlainTextResponse(f"chainlit: {avatar_id}")

    drawn = avatars.role_avatars(TEAMS.by_name.values())
    app = Starlette(routes=[avatars.route(drawn, tmp_path, chainlit)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
        economist = await client.get("/avatars/economist")
        assert economist.status_code == 200
        assert economist.headers["content-type"].startswith("image/svg+xml")
        assert economist.text == drawn["economist"]
        assert (await client.get("/avatars/Economist")).text == drawn["economist"]
        assert (await client.get("/avatars/lawyer")).text == "chainlit: lawyer"
        assert (await client.get("/avatars/You")).text == "chainlit: You"
        assert (await client.get("/avatars/Roundtable")).text == "chainlit: Roundtable"


# -- the settings panel and /ask -------------------------------------------------------------------


def test_the_panel_offers_the_sessions_team_and_takes_only_its_roles() -> None:
    settings = Settings()
    inputs = {w.id: w for w in widgets(settings, POLICY)}
    roles: Any = inputs["roles"]
    assert roles.values == ["economist", "lawyer", "sceptic"]
    assert [k for k in inputs if k.startswith("endpoint_")] == [
        "endpoint_economist",
        "endpoint_lawyer",
        "endpoint_sceptic",
    ]
    options, _ = options_from(
        {"roles": ["economist", "critic", "sceptic"], "endpoint_critic": "default"},
        settings,
        POLICY,
    )
    assert options == RunOptions(team="policy", roles=["economist", "sceptic"], memory=True)


def test_ask_takes_the_sessions_team_roles() -> None:
    roster = tuple(POLICY.roster)
    assert parse("/ask lawyer is it legal?", roles=roster) == Say("is it legal?", ask="lawyer")
    assert parse("/ask critic is it sound?", roles=roster) == Refused(
        "No role 'critic' in this debate; roles: economist, lawyer, sceptic"
    )


# -- the session -----------------------------------------------------------------------------------


def _session(settings: Settings, team_name: str) -> tuple[SessionRunner, list[Shown]]:
    team = team_for(team_name, TEAMS)
    return session_runner(settings, options_from({}, settings, team)[0], team)


async def _say(runner: SessionRunner, text: str) -> None:
    await say_and_wait(runner, Say(text))


def _speakers(events: list[LiveEvent]) -> set[str]:
    return {e.speaker for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN}


async def test_a_session_builds_its_run_with_the_profiles_team(tmp_path: Path) -> None:
    runner, shown = _session(scripted_settings(tmp_path, SCRIPT), "policy")
    await _say(runner, "Should the city charge cars to enter the centre?")
    assert _speakers(shown[0].events) == {"economist", "lawyer", "sceptic"}
    assert runner.transcript is not None
    header = load(runner.transcript).header
    assert header.team is not None and header.team.name == "policy"
    assert [r.name for r in header.roles] == ["economist", "lawyer", "sceptic"]


async def test_a_continued_transcript_keeps_its_team_whatever_the_profile(tmp_path: Path) -> None:
    settings = scripted_settings(tmp_path, SCRIPT)
    first, _ = _session(settings, "policy")
    await _say(first, "Should the city charge cars to enter the centre?")
    assert first.transcript is not None

    other, shown = _session(settings, "default")  # the thread reopened on another profile
    other.transcript = first.transcript
    await _say(other, "And for delivery vans?")
    assert _speakers(shown[0].events) <= {"economist", "lawyer", "sceptic"}
    assert _speakers(shown[0].events)
    saved = load(first.transcript)
    assert saved.header.team is not None and saved.header.team.name == "policy"


def test_each_profile_offers_its_teams_starters_and_says_which_model_answers() -> None:
    teams = load_teams(configured="default")
    note = model_note("embedded", "SmolLM2-135M-Instruct")
    profiles = {p.name: p for p in chat_profiles(teams, note)}
    for name, team in teams.by_name.items():
        offered = [s.message for s in profiles[name].starters or []]
        assert offered == team.starters and offered, name
        description = profiles[name].markdown_description
        assert description.startswith(INTRO) and "offline demo model" in description
        assert profile_markdown(team) in description
    remote = model_note("openai", "llama3.2")
    assert "llama3.2" in remote and "demo" not in remote


def test_a_starter_of_the_wrong_length_is_one_line_naming_it(tmp_path: Path) -> None:
    team = yaml.safe_load((builtin_teams_dir() / "default.yaml").read_text())
    team["starters"] = ["Why?"]
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(team))
    with pytest.raises(ConfigError, match=r"short.yaml:\d+: field 'starters.0'"):
        load_team(path)
