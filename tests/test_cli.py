"""The ``roundtable`` command as a person runs it: clear one-line errors, replay and list."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "debate-v2.jsonl"
ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROUNDTABLE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("roundtable: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_an_empty_question() -> None:
    assert_one_line_error(run("ask", "   "), 2, "the question is empty")


def test_a_team_file_with_two_verdict_givers(tmp_path: Path) -> None:
    role = "  - name: {0}\n    description: the {0} of the team\n    instructions: be the {0}\n"
    team = tmp_path / "mine.yaml"
    team.write_text(
        "name: mine\nroles:\n"
        + role.format("judge")
        + "    gives_verdict: true\n"
        + role.format("jury")
        + "    gives_verdict: true\n"
    )
    result = run("ask", "Why?", "--team", str(team))
    assert_one_line_error(
        result, 2, f"{team}:10: field 'roles.1.gives_verdict'", "only one role may have"
    )


def test_a_team_file_that_does_not_parse(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nroles: [unclosed\n")
    result = run("ask", "Why?", "--team", str(tmp_path / "bad.yaml"))
    assert_one_line_error(result, 2, "bad.yaml:3", "not valid YAML")


def test_the_retired_cards_folder_says_what_replaced_it(tmp_path: Path) -> None:
    result = run("ask", "Why?", env={"ROUNDTABLE_CARDS_DIR": str(tmp_path)})
    assert_one_line_error(result, 2, "ROUNDTABLE_CARDS_DIR", "replaced by team")


def test_a_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    result = run("ask", "Why?", env={"ROUNDTABLE_EMBEDDED__MODEL_PATH": str(missing)})
    assert_one_line_error(result, 2, str(missing))


def test_an_unreachable_endpoint() -> None:
    env = {
        "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "openai",
        "ROUNDTABLE_ENDPOINTS__DEFAULT__BASE_URL": "http://127.0.0.1:9/v1",
    }
    result = run("ask", "Why?", env=env, timeout=30)
    assert_one_line_error(result, 3, "http://127.0.0.1:9/v1", "cannot connect")


def test_a_bad_setting() -> None:
    result = run("ask", "Why?", env={"ROUNDTABLE_BUDGET__MAX_TURNS": "lots"})
    assert_one_line_error(result, 2, "budget.max_turns")


def test_an_unknown_role_on_the_command_line() -> None:
    assert_one_line_error(run("ask", "Why?", "--roles", "critic,judge"), 2, "role 'judge'")


def test_replay_shows_the_whole_debate() -> None:
    result = run("replay", str(GOLDEN))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Question: Should our city ban private cars downtown?" in out
    assert "[researcher] Cities that did it cut traffic by a third." in out
    assert "[human] And deliveries?" in out
    assert "-> manager picks critic (model): check the reasoning" in out
    assert "! model error: manager pick refused: 'judge' is not one of" in out
    assert "memory: 1 hit(s) for researcher" in out
    assert "note: 83% of the turns budget used (5 of 6 turns)" in out
    stop = out.index("Stopped (accepted): the critic accepted the writer's answer")
    ledger = out[stop:].splitlines()[1:]
    assert [line.split(":")[0].strip() for line in ledger] == [
        "cost researcher",
        "cost manager",
        "cost critic",
        "cost analyst",
        "cost writer",
    ]


def test_replay_rejects_a_malformed_transcript(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = GOLDEN.read_text().splitlines()
    lines[2] = lines[2].replace('"turn":1', '"turn":"one"')
    bad.write_text("\n".join(lines) + "\n")
    assert_one_line_error(run("replay", str(bad)), 2, f"{bad}:3: field 'turn'")


def test_replay_warns_about_a_torn_tail(tmp_path: Path) -> None:
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(GOLDEN.read_bytes()[:-30])
    result = run("replay", str(torn))
    assert result.returncode == 0
    assert "warning:" in result.stderr and "cut short" in result.stderr
    assert "Stopped" not in result.stdout


def test_list_shows_saved_transcripts(data_dir: Path) -> None:
    folder = data_dir / "transcripts"
    folder.mkdir(parents=True)
    shutil.copy(GOLDEN, folder / "a.jsonl")
    (folder / "broken.jsonl").write_text("nope\n")
    result = run("list")
    assert result.returncode == 0, result.stderr
    assert "Should our city ban private cars downtown?" in result.stdout
    assert "accepted: the critic accepted" in result.stdout
    assert "  6 turns" in result.stdout
    assert "broken.jsonl  (unreadable:" in result.stdout


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("ask", "replay", "list"):
        assert command in result.stdout


@pytest.mark.parametrize("speed", ["0", "-1"])
def test_replay_speed_must_be_positive(speed: str) -> None:
    assert_one_line_error(run("replay", str(GOLDEN), "--speed", speed), 2, "--speed")


def test_ui_passes_host_and_port_to_the_ui_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    from roundtable.terminal import cli

    calls: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert cli.main(["ui", "--port", "8123", "--host", "127.0.0.1"]) == 0
    assert cli.main(["ui"]) == 0
    assert calls[0][1:] == ["-m", "roundtable.ui", "--host=127.0.0.1", "--port=8123"]
    assert calls[1][1:] == ["-m", "roundtable.ui"]


@pytest.mark.parametrize("kind", ["device", "fifo", "oversized"])
def test_replay_refuses_what_is_not_a_transcript_file_without_reading_it(
    tmp_path: Path, kind: str
) -> None:
    """``/dev/zero`` once read until the machine ran out of memory; a FIFO hung for ever."""
    if kind == "device":
        target = Path("/dev/zero")
        says = "not a regular file"
    elif kind == "fifo":
        target = tmp_path / "pipe.jsonl"
        os.mkfifo(target)
        says = "not a regular file"
    else:
        target = tmp_path / "huge.jsonl"
        with target.open("wb") as handle:  # sparse: no disk used, nothing to read
            handle.truncate(300 * 1024 * 1024)
        says = "a transcript is 268435456 at most"
    started = time.monotonic()
    result = run("replay", str(target), timeout=20)
    assert_one_line_error(result, 2, str(target), says)
    assert time.monotonic() - started < 15
