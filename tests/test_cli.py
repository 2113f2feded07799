"""The ``roundtable`` command as a person runs it: clear one-line errors, replay and list."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
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
    assert (
        "[researcher] — the researcher opens a new question (by the team's rules)\n"
        "Cities that did it cut traffic by a third.\n"
    ) in out
    assert "[human] And deliveries?" in out
    assert "[critic] — check the reasoning (chosen by the manager)\n" in out
    assert "! model error: manager pick refused: 'judge' is not one of" in out
    assert "researcher recalls 1 passage(s): document " in out
    assert "note: 83% of the turns budget used (5 of 6 turns)" in out
    stop = out.index("Stopped (accepted): the critic accepted the writer's answer")
    after = out[stop:].splitlines()[1:]
    assert after[:2] == [  # the answer first, then the ledger
        "Answer, by the writer, accepted by the critic:",
        "  Yes, with good transit and delivery exemptions.",
    ]
    ledger = after[2:]
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


def test_list_tree_indents_each_fork_under_its_parent(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = data_dir / "transcripts"
    folder.mkdir(parents=True)
    header, rest = GOLDEN.read_text().split("\n", 1)
    record = json.loads(header)
    for name, parent in (("kid", "root"), ("root", None), ("grandkid", "kid"), ("loop", "loop")):
        fork = {"conversation_id": f"run-{parent}", "turn": 3} if parent else None
        record.update(conversation_id=f"run-{name}", parent=fork)
        (folder / f"run-{name}.jsonl").write_text(json.dumps(record) + "\n" + rest)
    (folder / "broken.jsonl").write_text("nope\n")

    code, out, _ = main(capsys, "list", "--tree")
    lines = [line for line in out.splitlines() if " turns " in line or "unreadable" in line]
    assert code == 0 and len(lines) == 5
    paths = [line.strip() for line in out.splitlines() if line.strip().startswith("/")]
    order = [Path(p).stem for p in paths]
    assert order.index("run-root") < order.index("run-kid") < order.index("run-grandkid")
    kid = next(line for line in lines if "(forked at turn 3)" in line and line.startswith("└ "))
    grandkid = next(line for line in lines if line.startswith("  └ "))
    assert kid and grandkid.endswith("(forked at turn 3)")
    assert lines[-1].startswith("broken.jsonl  (unreadable:")
    assert sum(1 for line in lines if line[:1].isdigit()) == 2  # the roots: root and loop


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

    def execv(path: str, argv: list[str]) -> None:  # the launcher replaces this process
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execv", execv)
    for argv in (["ui", "--port", "8123", "--host", "127.0.0.1"], ["ui"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
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
        says = "over the size limit of 268435456 bytes"
    started = time.monotonic()
    result = run("replay", str(target), timeout=20)
    assert_one_line_error(result, 2, str(target), says)
    assert time.monotonic() - started < 15


# -- as Python users expect: --version, exit codes, stdin, --json, NO_COLOR, help, teams ---------

QUIET = {"ROUNDTABLE_MEMORY__ENABLED": "false"}
"""No memory: no embedding model to load, so a demo run starts in a second."""
FAILING_SCRIPT = "replies: {researcher: [], analyst: [], critic: [], writer: [], manager: []}\n"
PARTIAL_SCRIPT = """\
replies:
  manager:
    - '{"q1": {"role": "researcher", "needs": "research", "question": "What happened elsewhere?",
      "depends_on": []}, "q2": {"role": "analyst", "needs": "analysis",
      "question": "What are the trade-offs?", "depends_on": []}}'
  researcher: []
  analyst: ["Health gains against costs for drivers."]
  critic: ['{"disagreements": []}']
  writer: ["A staged ban, though the facts from elsewhere are missing."]
"""


def scripted(tmp_path: Path, script: str) -> dict[str, str]:
    """The environment of a run on a script file instead of a model."""
    path = tmp_path / "script.yaml"
    path.write_text(script)
    return {
        **QUIET,
        "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "scripted",
        "ROUNDTABLE_ENDPOINTS__DEFAULT__SCRIPT": str(path),
    }


def test_version_is_the_installed_packages() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert (result.returncode, result.stdout) == (0, f"roundtable {version('roundtable')}\n")


def test_every_way_a_run_ends_has_an_exit_code() -> None:
    from typing import get_args

    from roundtable.terminal.cli import EPILOG, EXIT_CODES
    from roundtable.transcripts.events import StopCode

    assert set(EXIT_CODES) == set(get_args(StopCode))
    for code in set(EXIT_CODES.values()) | {2, 3}:
        assert f"\n  {code} " in "\n" + EPILOG
    assert run("--help").stdout.count("exit codes:") == 1


@pytest.mark.parametrize(
    ("args", "script", "code", "stop"),
    [
        (("--demo",), None, 0, "Stopped (accepted): the critic accepted the writer's answer"),
        (("--demo", "--mode", "pipeline"), None, 0, "Stopped (completed)"),
        (("--demo", "--max-turns", "1"), None, 4, "Stopped (max_turns)"),
        ((), FAILING_SCRIPT, 1, "Stopped (error): 3 turns in a row failed"),
        (("--mode", "panel"), PARTIAL_SCRIPT, 5, "Stopped (partial): the writer answered from 1"),
    ],
)
def test_the_exit_code_says_how_the_run_ended(
    tmp_path: Path, args: tuple[str, ...], script: str | None, code: int, stop: str
) -> None:
    env = scripted(tmp_path, script) if script else QUIET
    result = run("ask", "Should our city ban cars downtown?", *args, env=env)
    assert result.returncode == code, result.stdout + result.stderr
    assert stop in result.stdout
    assert result.stderr.strip().splitlines() == [f"Transcript: {result.stderr.split()[-1]}"]


def test_ctrl_c_stops_the_run_softly_with_exit_code_130() -> None:
    proc = subprocess.Popen(
        [ROUNDTABLE, "ask", "Should our city ban cars downtown?", "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **QUIET},
    )
    assert proc.stdout is not None
    seen = ""
    while "] — " not in seen:  # a speaker line: the run has started, its Ctrl-C handler is set
        line = proc.stdout.readline()
        assert line, "the run ended before it could be stopped"
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Stopped (user_stop): stopped with Ctrl-C" in out
    assert "Traceback" not in err


def test_the_question_can_come_from_stdin(data_dir: Path) -> None:
    question = "Should our city ban cars downtown?\nAnswer in one line."
    result = subprocess.run(
        [ROUNDTABLE, "ask", "-", "--demo", "--max-turns", "1"],
        input=question + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **QUIET},
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout.startswith(f"Question: {question}\n")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (" \n\n", "the question on stdin is empty"),
        ("x" * 20_001, "longer than the limit of 20000 characters"),
        ("x" * 100_000, "longer than the limit of 20000 characters"),
    ],
)
def test_an_empty_or_oversized_question_on_stdin_is_refused(text: str, needle: str) -> None:
    result = subprocess.run(
        [ROUNDTABLE, "ask", "-", "--demo"], input=text, capture_output=True, text=True, timeout=60
    )
    assert_one_line_error(result, 2, needle)


def test_json_prints_the_transcript_lines_and_nothing_else(tmp_path: Path) -> None:
    from roundtable.transcripts import EVENT_ADAPTER, Header, load

    saved = tmp_path / "run.jsonl"
    result = run("ask", "Why?", "--demo", "--json", "--transcript", str(saved), env=QUIET)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = Header.model_validate_json(lines[0])
    events = [EVENT_ADAPTER.validate_json(line) for line in lines[1:]]
    assert header.question == "Why?" and events[-1].kind == "stop"
    transcript = load(saved)
    assert (transcript.header, transcript.events) == (header, events)

    replayed = run("replay", str(saved), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == result.stdout


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import pty

    def replay_on_a_terminal(env: dict[str, str]) -> bytes:
        leader, follower = pty.openpty()
        with subprocess.Popen(
            [ROUNDTABLE, "replay", str(GOLDEN)], stdout=follower, env={**os.environ, **env}
        ) as proc:
            os.close(follower)
            out = b""
            while chunk := _read(leader):
                out += chunk
            proc.wait(timeout=30)
        os.close(leader)
        return out

    assert b"\x1b[" in replay_on_a_terminal({"NO_COLOR": ""})  # empty: colour stays on
    assert b"\x1b[" not in replay_on_a_terminal({"NO_COLOR": "1"})

    from roundtable.terminal.render import wants_colour

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_colour(Terminal()) and not wants_colour(io.StringIO())  # not a terminal
    monkeypatch.setenv("NO_COLOR", "0")  # any value but empty
    assert not wants_colour(Terminal())


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the terminal closed (EIO)
        return b""


def test_every_option_and_command_has_help() -> None:
    import argparse

    from roundtable.terminal.cli import _parser

    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if not action.help:
                missing.append(f"{parser.prog}: {action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                missing.extend(f"{parser.prog} {n}" for n in action.choices if n not in helped)
                for sub in action.choices.values():
                    walk(sub)

    walk(_parser())
    assert missing == []


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command run in this process (fast: no interpreter start): code, stdout, stderr."""
    from roundtable.terminal import cli

    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_teams_list_shows_the_shipped_teams_and_the_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "teams"
    mine.mkdir()
    shutil.copy(Path(__file__).parents[1] / "agents" / "teams" / "policy.yaml", mine / "mine.yaml")
    (mine / "broken.yaml").write_text("name: broken\n")
    monkeypatch.setenv("ROUNDTABLE_TEAMS_DIR", str(mine))
    code, out, _ = main(capsys, "teams", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["default", "policy", "product", "broken", "mine"]
    assert lines[0] == (
        "default       4 roles  shipped  A researcher, an analyst, a critic and a writer."
    )
    assert lines[3].startswith(f"broken        ? roles  {mine / 'broken.yaml'}  (invalid: ")
    assert lines[4].startswith(f"mine          3 roles  {mine / 'mine.yaml'}  An economist")


def test_teams_show_prints_a_file_that_loads_back_as_the_same_team(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from roundtable.agents import load_team, resolve_team

    for name in ("default", "policy", "product"):
        code, out, _ = main(capsys, "teams", "show", name)
        assert code == 0
        copy = tmp_path / f"{name}.yaml"
        copy.write_text(out)
        assert load_team(copy) == resolve_team(name)
        assert main(capsys, "teams", "show", str(copy))[1] == out
    result = run("teams", "show", "default")  # the console script, redirected as a person would
    assert (result.returncode, result.stdout) == (0, (tmp_path / "default.yaml").read_text())
    assert_one_line_error(run("teams", "show", "nobody"), 2, "no team named 'nobody'")


def test_teams_check_says_ok_or_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(main(capsys, "teams", "show", "policy")[1])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nroles:\n  - name: solo\n    description: alone in the team\n")
    ok = f"{good}: ok (team policy, 3 roles, modes: debate, pipeline, panel)"
    assert main(capsys, "teams", "check", str(good)) == (0, ok + "\n", "")
    code, out, _ = main(capsys, "teams", "check", str(good), str(bad), str(tmp_path / "none.yaml"))
    assert code == 2
    assert out.splitlines() == [
        ok,
        f"{bad}:3: field 'roles.0.instructions': Field required",
        f"team file {tmp_path / 'none.yaml'}: cannot read (No such file or directory)",
    ]


def test_list_names_each_owner_and_filters_by_user(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI is the data folder's owner (every transcript is listed), but it never mixes
    owners silently: each line names its owner, and ``--user`` keeps one user's (#15)."""
    folder = data_dir / "transcripts"
    folder.mkdir(parents=True)
    header, rest = GOLDEN.read_text().split("\n", 1)
    record = json.loads(header)
    for name, owner in (("mine", None), ("alices", "alice")):
        record.update(conversation_id=f"run-{name}", owner=owner)
        (folder / f"run-{name}.jsonl").write_text(json.dumps(record) + "\n" + rest)

    code, out, _ = main(capsys, "list")
    lines = [line for line in out.splitlines() if " turns " in line]
    assert code == 0 and len(lines) == 2
    assert sorted(line.split()[4] for line in lines) == ["alice", "local"]

    code, out, _ = main(capsys, "list", "--user", "alice")
    assert code == 0 and "run-alices.jsonl" in out and "run-mine.jsonl" not in out

    code, out, _ = main(capsys, "replay", "run-alices", "--speed", "1000")  # by run id
    assert code == 0 and "Should our city ban private cars downtown?" in out
    code, _, err = main(capsys, "replay", "run-alices", "--user", "local")
    assert code == 2 and err.strip().splitlines() == [
        "roundtable: error: run-alices: not a transcript of user 'local'"
    ]
