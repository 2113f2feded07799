"""Roundtable from Python: ``roundtable.run``, ``arun`` and ``stream`` on the scripted model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

import roundtable
from roundtable.agents import EndpointSettings, builtin_teams_dir
from roundtable.common.errors import ConfigError
from roundtable.conversations import Settings, load_settings
from roundtable.transcripts import Header, MessageEvent, StopEvent, TokenDelta, load, replay

QUESTION = "Should our town tax sugary drinks?"
POLICY_SCRIPT = {
    "replies": {
        "economist": ["A tax of 20% cut sales by a tenth in Mexico."],
        "lawyer": ["The council may levy it; recommend a pilot."],
        "sceptic": ["REVISE: who pays most?", "ACCEPT: the pilot answers that."],
        "manager": [
            '{"speaker": "sceptic", "reason": "check it"}',
            '{"speaker": "lawyer", "reason": "answer the doubt"}',
        ],
    },
    "defaults": {
        "lawyer": "Recommend a one-year pilot, with the revenue spent on school meals.",
        "manager": '{"speaker": "lawyer", "reason": "write the answer"}',
    },
}


def quiet(tmp_path: Path, script: dict[str, object] | None = None) -> Settings:
    """Settings without memory (no embedding model to load), on a script if given."""
    endpoints = {}
    if script is not None:
        path = tmp_path / "script.yaml"
        path.write_text(yaml.safe_dump(script))
        endpoints["default"] = EndpointSettings(kind="scripted", script=path)
    return load_settings(
        memory={"enabled": False}, **({"endpoints": endpoints} if endpoints else {})
    )


def test_run_on_the_demo_answers_with_the_default_team(tmp_path: Path) -> None:
    result = roundtable.run(QUESTION, demo=True, settings=quiet(tmp_path))
    assert (result.stop.code, result.stop.reason) == (
        "accepted",
        "the critic accepted the writer's answer",
    )
    assert result.answer is not None and result.answer.startswith("Yes, in stages")
    assert result.header.team is not None and result.header.team.name == "default"
    assert [row.speaker for row in result.ledger] == [row.speaker for row in result.stop.ledger]
    saved = load(result.transcript)
    assert saved.header == result.header and saved.events == result.events
    assert result.conversation_id == saved.header.conversation_id


async def test_arun_with_the_policy_team_on_a_script_gives_the_lawyers_answer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.jsonl"
    # A string path, as a script writes it, is a path (it once failed deep in the writer).
    result = await roundtable.arun(
        QUESTION, team="policy", settings=quiet(tmp_path, POLICY_SCRIPT), transcript=str(path)
    )
    said = [(e.speaker, e.content) for e in result.events if isinstance(e, MessageEvent)]
    assert said == [
        ("human", QUESTION),
        ("economist", "A tax of 20% cut sales by a tenth in Mexico."),
        ("sceptic", "REVISE: who pays most?"),
        ("lawyer", "The council may levy it; recommend a pilot."),
        ("sceptic", "ACCEPT: the pilot answers that."),
    ]
    assert result.answer == "The council may levy it; recommend a pilot."
    assert result.stop.reason == "the sceptic accepted the lawyer's answer"
    assert result.transcript == path
    replayed = [e async for e in replay(load(path)) if not isinstance(e, TokenDelta | Header)]
    assert replayed == result.events


def test_run_takes_a_team_file_as_a_path_a_string_or_a_loaded_team(tmp_path: Path) -> None:
    raw = yaml.safe_load((builtin_teams_dir() / "policy.yaml").read_text())
    raw["name"] = "mine"
    file = tmp_path / "mine.yaml"
    file.write_text(yaml.safe_dump(raw))
    settings = quiet(tmp_path, POLICY_SCRIPT)
    for team in (file, str(file), roundtable.load_team(file)):
        result = roundtable.run(QUESTION, team=team, settings=settings, max_turns=1)
        assert result.header.team is not None and result.header.team.name == "mine"
        assert result.stop.code == "max_turns"
        # the answerer never spoke: the answer is the last agent's words
        assert result.answer == "A tax of 20% cut sales by a tenth in Mexico."


async def test_stream_yields_the_header_tokens_events_and_the_stop(tmp_path: Path) -> None:
    events = [
        event
        async for event in roundtable.stream(
            QUESTION, team="policy", mode="pipeline", demo=True, settings=quiet(tmp_path)
        )
    ]
    assert isinstance(events[0], Header) and events[0].question == QUESTION
    assert isinstance(events[-1], StopEvent) and events[-1].code == "completed"
    assert any(isinstance(e, TokenDelta) for e in events)
    said = [e.speaker for e in events if isinstance(e, MessageEvent)]
    assert said == ["human", "economist", "lawyer", "sceptic"]


async def test_run_inside_a_running_loop_points_to_arun_and_stream() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coroutine left un-awaited
        with pytest.raises(RuntimeError) as caught:
            roundtable.run(QUESTION, demo=True)
    assert "roundtable.arun" in str(caught.value) and "roundtable.stream" in str(caught.value)


@pytest.mark.parametrize(
    ("choices", "needle"),
    [
        ({"team": "nobody"}, "no team named 'nobody'"),
        ({"team": Path("missing/team.yaml")}, "missing/team.yaml: cannot read"),
        ({"team": "missing/team.yaml"}, "missing/team.yaml: no such file"),
        ({"roles": ["economist", "judge"], "team": "policy"}, "no role 'judge'"),
        ({"max_turns": 1000}, "max_turns"),
    ],
)
def test_a_bad_choice_is_a_config_error_before_anything_runs(
    tmp_path: Path, choices: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        roundtable.run(QUESTION, demo=True, settings=quiet(tmp_path), **choices)  # type: ignore[arg-type]
    assert not (tmp_path / "data" / "transcripts").exists()


def test_a_bad_team_file_is_a_config_error_naming_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nroles:\n  - name: solo\n")
    with pytest.raises(ConfigError, match=f"{bad}:3: field 'roles.0.description'"):
        asyncio.run(roundtable.arun(QUESTION, team=bad, demo=True, settings=quiet(tmp_path)))


def test_the_api_is_exported_lazily() -> None:
    assert sorted(roundtable.__all__) == sorted(
        ["RunOptions", "RunResult", "Team", "arun", "load_team", "resolve_team", "run", "stream"]
    )
    for name in roundtable.__all__:
        assert getattr(roundtable, name).__doc__, name
    with pytest.raises(AttributeError):
        roundtable.nothing_here  # noqa: B018
    probe = "import sys, roundtable.agents; print('roundtable.conversations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the engine loads on first use of roundtable.run
