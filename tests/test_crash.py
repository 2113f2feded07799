"""Crash safety: ``kill -9`` mid-debate, torn writes at every byte, and a full disk.

The kills run ``roundtable ask`` on a scripted endpoint (no model; replies stream word by word
with a delay, so a turn takes time) and SIGKILL it at a seeded random point: a random time,
up to about a turn, after a random number of events reached the disk. A few runs are the
console script itself; the rest are the same ``conversations.cli.main`` forked from a server
that imported Roundtable once (an import costs seconds of CPU, twenty of them minutes).
Each killed transcript must load, be a prefix of the same debate run to its end (nothing
committed lost; at most the reply being streamed is missing), and continue in-process from
its last committed turn without repeating one.

Where in a write each kill lands still depends on the machine, so the assertions hold for any
point. ``pytest tests/test_crash.py -s`` prints the figures.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from roundtable.agents import EndpointSettings
from roundtable.common.errors import InfraError
from roundtable.conversations import Budget, Settings, build_debate
from roundtable.conversations.recall import MemorySettings
from roundtable.transcripts import (
    HUMAN,
    Event,
    MessageEvent,
    StopEvent,
    TornTailWarning,
    Transcript,
    TranscriptError,
    TranscriptWriter,
    load,
)
from roundtable.transcripts.store import encode
from tests.support.debates import collect, pick, scripted_debate

ROUNDTABLE = Path(sys.executable).with_name("roundtable")
GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
ROLES = ("researcher", "analyst", "critic", "writer")
MAX_TURNS = 8
KILLS = 22
CONSOLE_KILLS = 3
"""Kills of the console script itself; the others fork ``roundtable`` from a warm server."""
WORKERS = 8
EVENTS = 20
"""Events in a whole run of the script (its quality report included): the kills come after a
random number of them."""
SEED = 20261125
QUESTION = "Should our city ban private cars downtown?"


def words(label: str, n: int = 18) -> str:
    return " ".join([label, *(f"w{i}" for i in range(n))])


def long_reply(role: str) -> str:
    """About 12 KB in two streamed pieces: the 64 KiB disk fills after a few turns."""
    return f"REVISE: {role}-" + "z" * 12_000


def script(path: Path, label: str, *, chunk_delay: float, length: int = 18) -> Path:
    """A script in which every reply is different, so a repeated turn cannot hide."""
    replies: dict[str, list[str]] = {
        role: [
            f"{'REVISE: ' if role == 'critic' else ''}{words(f'{label}-{role}-{i}', length)}"
            for i in range(MAX_TURNS + 2)
        ]
        for role in ROLES
    }
    # the manager names a mix of allowed and refused speakers: its mistakes are recorded too
    replies["manager"] = [pick(name) for name in ("analyst", "critic", "analyst", "researcher")]
    defaults = {"manager": pick("writer")}
    path.write_text(
        yaml.safe_dump({"chunk_delay": chunk_delay, "replies": replies, "defaults": defaults}),
        encoding="utf-8",
    )
    return path


def cli_env(data_dir: Path, script_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    env.update(
        ROUNDTABLE_DATA_DIR=str(data_dir),
        ROUNDTABLE_ENDPOINTS__DEFAULT__KIND="scripted",
        ROUNDTABLE_ENDPOINTS__DEFAULT__SCRIPT=str(script_path),
        ROUNDTABLE_MEMORY__ENABLED="false",
        ROUNDTABLE_GUARDS__ENABLED="false",  # the script accepts at once
        PYTHONUNBUFFERED="1",  # what the renderer printed before the kill reaches the file
    )
    return env


def argv(transcript: Path) -> list[str]:
    return ["ask", QUESTION, "--max-turns", str(MAX_TURNS), "--transcript", str(transcript)]


class ScriptRun:
    """``roundtable ask`` through the console script, as a person runs it."""

    def __init__(self, transcript: Path, env: dict[str, str], out: Path) -> None:
        with out.open("w") as stdout:
            self._proc = subprocess.Popen(
                [str(ROUNDTABLE), *argv(transcript)],
                env=env,
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
            )

    def alive(self) -> bool:
        return self._proc.poll() is None

    def kill(self) -> None:
        self._proc.send_signal(signal.SIGKILL)

    def finish(self) -> tuple[int, str]:
        _, err = self._proc.communicate(timeout=180)
        return self._proc.returncode, err


def cli_child(arguments: list[str], env: dict[str, str], out: str) -> None:
    """``roundtable`` in a process forked from a server that has imported it already."""
    os.environ.clear()
    os.environ.update(env)
    sys.stdout = sys.stderr = open(out, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
    from roundtable.terminal.cli import main

    sys.exit(main(arguments))


class ForkedRun:
    """The same ``roundtable ask`` (``conversations.cli.main``), forked instead of started.

    Importing Roundtable costs seconds of CPU per process; a fork server pays it once, so
    twenty kills take seconds, not minutes. The kill is the same ``SIGKILL`` to the process.
    """

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["roundtable.terminal.cli"])

    def __init__(self, transcript: Path, env: dict[str, str], out: Path) -> None:
        self._proc = self.context.Process(
            target=cli_child, args=(argv(transcript), env, str(out)), daemon=True
        )
        self._proc.start()

    def alive(self) -> bool:
        return self._proc.is_alive()

    def kill(self) -> None:
        self._proc.kill()

    def finish(self) -> tuple[int, str]:
        self._proc.join(timeout=180)
        return self._proc.exitcode if self._proc.exitcode is not None else -1, ""


def wait_for(
    path: Path, run: ScriptRun | ForkedRun, *, lines: int = 1, timeout: float = 120.0
) -> float:
    """When ``path`` had ``lines`` whole lines (1: the header), by the monotonic clock."""
    limit = time.monotonic() + timeout
    while not path.exists() or path.read_bytes().count(b"\n") < lines:
        if not run.alive():
            raise AssertionError(f"roundtable exited early: {run.finish()}")
        if time.monotonic() > limit:
            run.kill()
            raise AssertionError(f"{path}: not {lines} lines after {timeout} s")
        time.sleep(0.005)
    return time.monotonic()


def shape(event: Event) -> dict[str, Any]:
    """An event without its times: the same in every run of the script."""
    return event.model_dump(
        mode="json",
        exclude={"at": True, "latency_s": True, "ledger": True, "report": {"seconds"}},
    )


@dataclass
class Kill:
    index: int
    path: Path
    point: tuple[int, float]
    """Killed this many seconds after that many events were on disk."""
    how: str
    killed: bool
    stdout: str


def fold_reasons(stdout: str) -> str:
    """The terminal's output with each reply on its speaker's line: the terminal prints why
    a role speaks after its name (``[analyst] — reason``) and the reply on the next line."""
    return re.sub(r"^(\[[^\]\n]+\]) — [^\n]*(?:\n|$)", r"\1 ", stdout, flags=re.MULTILINE)


@dataclass
class Runs:
    reference: Transcript
    run_s: float
    kills: list[Kill]
    resume_script: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """One debate run to its end and ``KILLS`` runs killed at seeded random moments, at once."""
    folder = tmp_path_factory.mktemp("crash")
    env = cli_env(folder / "data", script(folder / "script.yaml", "first", chunk_delay=0.02))
    rng = random.Random(SEED)
    # a kill comes a random time (up to about one turn) after a random event is committed
    points = [(rng.randrange(EVENTS - 1), rng.uniform(0.0, 0.5)) for _ in range(KILLS)]

    def reference() -> tuple[Transcript, float]:
        path = folder / "reference.jsonl"
        run = ScriptRun(path, env, folder / "reference.out")
        appeared = wait_for(path, run)
        code, err = run.finish()
        assert code == 4, err  # it stops on max_turns: the budget exit code
        return load(path), time.monotonic() - appeared

    def one(index: int) -> Kill:
        path, out = folder / f"killed-{index:02d}.jsonl", folder / f"killed-{index:02d}.out"
        kind = ScriptRun if index < CONSOLE_KILLS else ForkedRun
        run = kind(path, env, out)
        events, delay = points[index]
        wait_for(path, run, lines=1 + events)
        time.sleep(delay)
        alive = run.alive()
        if alive:
            run.kill()
        code, _ = run.finish()
        killed = alive and code == -signal.SIGKILL
        shown = fold_reasons(out.read_text())
        return Kill(index, path, (events, delay), kind.__name__, killed, shown)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        whole = pool.submit(reference)
        kills = list(pool.map(one, range(KILLS)))
        full, run_s = whole.result()
    assert isinstance(full.events[-1], StopEvent) and full.events[-1].code == "max_turns"
    assert len(full.events) == EVENTS
    resume = script(folder / "resume.yaml", "resumed", chunk_delay=0.0)
    return Runs(full, run_s, kills, resume)


def test_at_least_20_runs_were_killed_mid_debate(runs: Runs) -> None:
    killed = [k for k in runs.kills if k.killed]
    loaded = [load_quietly(k.path) for k in killed]
    lengths = sorted(len(transcript.events) for transcript, _ in loaded)
    streaming = sum(k.stdout.split("\n")[-1].startswith("[") for k in killed)
    print(
        f"\nkill -9: {len(killed)} of {KILLS} runs killed mid-debate "
        f"({sum(k.how == 'ScriptRun' for k in killed)} of them the console script, "
        f"{streaming} while a reply was streaming, "
        f"{sum(bool(torn) for _, torn in loaded)} leaving a torn last line); "
        f"a whole run: {len(runs.reference.events)} events in {runs.run_s:.1f} s; "
        f"events on disk at each kill: {lengths}"
    )
    assert len(killed) >= 20
    assert len(set(lengths)) >= 5  # the kills landed at many different points


def load_quietly(path: Path) -> tuple[Transcript, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        transcript = load(path)
    return transcript, [w for w in caught if issubclass(w.category, TornTailWarning)]


@pytest.mark.parametrize("index", range(KILLS))
async def test_a_killed_debate_loads_and_resumes_without_repeating_a_turn(
    runs: Runs, index: int, tmp_path: Path
) -> None:
    kill = runs.kills[index]
    transcript, torn = load_quietly(kill.path)  # always loads
    assert transcript.torn_tail == bool(torn)
    events = transcript.events
    n = len(events)
    assert [e.seq for e in events] == list(range(1, n + 1))
    # a prefix of the same debate run to its end: nothing committed is lost
    assert [shape(e) for e in events] == [shape(e) for e in runs.reference.events[:n]]
    assert transcript.header.question == runs.reference.header.question
    # what the terminal showed as said was committed first; a reply still streaming when the
    # kill came (the unfinished last line) is the one lost, or was committed just before
    lines = kill.stdout.split("\n")
    shown = [line for line in lines[:-1] if line.startswith("[")]
    said = [f"[{m.speaker}] {m.content}" for m in events if isinstance(m, MessageEvent)]
    assert shown == said[: len(shown)]
    if lines[-1].startswith("["):
        following = next(m for m in runs.reference.events[n:] if isinstance(m, MessageEvent))
        candidates = [*said[len(shown) :], f"[{following.speaker}] {following.content}"]
        assert any(line.startswith(lines[-1]) for line in candidates[:2]), lines[-1]

    # continue from the last committed turn, in-process, on the same file
    settings = Settings(
        data_dir=tmp_path / "data",
        endpoints={"default": EndpointSettings(kind="scripted", script=runs.resume_script)},
        memory=MemorySettings(enabled=False),
    )
    debate = build_debate(
        settings, "Carry on after the crash.", prior=transcript, budget=Budget(max_turns=3)
    )
    await collect(debate)
    after, torn_after = load_quietly(kill.path)
    assert not torn_after and not after.torn_tail
    assert after.events[:n] == events
    assert [e.seq for e in after.events] == list(range(1, len(after.events) + 1))
    new = after.events[n:]
    assert isinstance(new[0], MessageEvent)
    assert (new[0].speaker, new[0].content) == (HUMAN, "Carry on after the crash.")
    turns = [m.turn for m in after.events if isinstance(m, MessageEvent)]
    assert turns == sorted(set(turns))  # no turn committed twice
    said_after = [(m.speaker, m.content) for m in after.events if isinstance(m, MessageEvent)]
    assert len(said_after) == len(set(said_after))  # no reply repeated
    assert isinstance(after.events[-1], StopEvent)


# -- torn writes at every byte ------------------------------------------------------------


def test_a_torn_write_at_every_byte_of_the_last_line_is_recovered(tmp_path: Path) -> None:
    golden = GOLDEN.read_bytes()
    full = load(GOLDEN)
    start = golden.rstrip(b"\n").rfind(b"\n") + 1  # where the last line begins
    path = tmp_path / "torn.jsonl"
    for cut in range(start, len(golden)):
        path.write_bytes(golden[:cut])
        transcript, torn = load_quietly(path)
        assert transcript.torn_tail == (cut > start) == bool(torn), cut
        assert transcript.events == full.events[:-1]
        writer = TranscriptWriter.reopen(transcript)
        writer.append(full.events[-1])
        writer.close()
        assert path.read_bytes() == golden, cut
    print(f"\ntorn writes: {len(golden) - start} cuts of the last line, each recovered")


def test_a_torn_write_in_any_line_loses_only_that_line(tmp_path: Path) -> None:
    golden = GOLDEN.read_bytes()
    full = load(GOLDEN)
    ends = [i + 1 for i, byte in enumerate(golden) if byte == ord("\n")]
    path = tmp_path / "torn.jsonl"
    for number, (begin, end) in enumerate(zip([0, *ends], ends, strict=False), start=1):
        for cut in sorted({begin + 1, (begin + end) // 2, end - 1}):
            path.write_bytes(golden[:cut])
            if number == 1:  # a header cut short: nothing was committed yet
                with pytest.raises(TranscriptError, match=":1: header line is incomplete"):
                    load(path)
                continue
            transcript, torn = load_quietly(path)
            assert torn and transcript.events == full.events[: number - 2]
            writer = TranscriptWriter.reopen(transcript)
            for event in full.events[number - 2 :]:
                writer.append(event)
            writer.close()
            assert path.read_bytes() == golden


def test_a_new_transcript_appears_with_its_whole_header_or_not_at_all(tmp_path: Path) -> None:
    full = load(GOLDEN)
    path = tmp_path / "new.jsonl"
    writer = TranscriptWriter.create(path, full.header)
    writer.close()
    assert path.read_bytes() == encode(full.header)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.jsonl"]  # no temporary left
    assert load(path).events == []


# -- a full disk --------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs; skipped where mounting needs privileges this machine does not give."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)


def fill(folder: Path) -> None:
    """Take every free byte of the file system."""
    with (folder / "filler").open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"x" * 512)


def check_whole_records(path: Path) -> Transcript:
    """The file holds whole records only: it loads with no torn tail at all."""
    transcript, torn = load_quietly(path)
    assert not torn and not transcript.torn_tail
    assert path.read_bytes().endswith(b"\n")
    return transcript


async def test_a_full_disk_stops_the_debate_with_storage_full(tiny_disk: Path) -> None:
    path = tiny_disk / "t.jsonl"
    debate, _, _ = scripted_debate(
        path,
        {},
        defaults={role: long_reply(role) for role in ROLES},
        picks=[pick("analyst"), pick("critic")] * 20,
        budget=Budget(max_turns=40),
    )
    streamed: list[object] = []
    with pytest.raises(InfraError, match="storage full"):
        async for event in debate.run():
            streamed.append(event)
    saved = check_whole_records(path)
    said = [e for e in streamed if isinstance(e, MessageEvent)]
    assert len(said) >= 2  # it ran until the disk filled
    assert [e for e in saved.events if isinstance(e, MessageEvent)] == said
    last = saved.events[-1]
    if isinstance(last, StopEvent):  # the short stop line fitted where the long reply did not
        assert last.code == "error" and last.reason.startswith("storage full")
    assert [p.name for p in tiny_disk.iterdir() if p.name != "t.jsonl"] == []


def test_a_full_disk_refuses_a_new_transcript_and_leaves_nothing(tiny_disk: Path) -> None:
    fill(tiny_disk)
    with pytest.raises(InfraError, match="storage full"):
        TranscriptWriter.create(tiny_disk / "t.jsonl", load(GOLDEN).header)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


def test_a_full_disk_cuts_a_partly_written_record_off(tiny_disk: Path) -> None:
    full = load(GOLDEN)
    path = tiny_disk / "t.jsonl"
    writer = TranscriptWriter.create(path, full.header)
    fill(tiny_disk)  # what is left is the slack in the transcript's last page
    written = 0
    with pytest.raises(InfraError, match="storage full"):
        for event in full.events:
            writer.append(event)
            written += 1
    writer.close()
    assert 0 < written < len(full.events)
    assert check_whole_records(path).events == full.events[:written]


def test_storage_full_through_the_command_line(tiny_disk: Path, tmp_path: Path) -> None:
    long_script = tmp_path / "long.yaml"
    long_script.write_text(
        yaml.safe_dump(
            {
                "chunk_delay": 0.0,
                "defaults": {
                    **{role: long_reply(role) for role in ROLES},
                    "manager": pick("analyst"),
                },
            }
        ),
        encoding="utf-8",
    )
    path = tiny_disk / "t.jsonl"
    done = subprocess.run(
        [str(ROUNDTABLE), "ask", QUESTION, "--max-turns", "30", "--transcript", str(path)],
        env=cli_env(tmp_path / "data", long_script),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 3, done.stderr
    assert "roundtable: error: storage full" in done.stderr
    assert "Traceback" not in done.stderr
    check_whole_records(path)
