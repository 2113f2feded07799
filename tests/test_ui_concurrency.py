"""Twenty people at once on one UI server: every debate stays in its own session.

One real Chainlit server (scripted model, shared embedded memory, SQLite history) and one
headless Chromium with 20 browser contexts, each logged in as its own user. Each person asks a
question carrying a unique canary word; the scripted agents echo what they last heard, so each
debate repeats its own canary turn after turn. Checked afterwards (and, in each page, all
along):

* UI: no canary of another session ever reaches a page, not in any WebSocket frame the page
  received, not in any DOM change, not in the final page text (thread list included);
* transcripts: 20 files, each one's question names one canary and nothing else in the file
  names another;
* memory: every hit of every memory event comes from the debate's own conversation and holds
  no other canary (``include_past`` is off, the default). The debates run 5 turns on a small
  context window so that an early turn is pruned from a prompt and recalled: each debate
  recalls its own canary at least once, so the check is not vacuous;
* the cost ledger at the end of each page matches its own transcript's stop event;
* the thread history: the server logged no failed history-database request (Chainlit logs
  such a failure as a warning and goes on: the step is lost from the thread, and a page whose
  thread was not saved cannot resume it after a reconnection).

The debates must really overlap: the test asserts that at least half of them were running at
the same moment (from the transcripts' timestamps).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from roundtable.transcripts import (
    LedgerRow,
    MemoryEvent,
    StopEvent,
    Transcript,
    load,
)
from roundtable.ui.auth import hash_password
from roundtable.ui.ending import ledger_table
from tests.browser.harness import ChatPage, UIServer, start_server

pytest_plugins = ["tests.browser.fixtures"]

SESSIONS = 20
TURNS = 5
"""Researcher (by rule), writer (the manager's pick), critic (by rule: it reviews the writer),
writer (picked again), critic: the critic's prompt at turn 3 drops turn 1, so at turn 5 its
memory recalls turn 1, which holds the canary."""
WINDOW = 560
"""Small enough that the question, the newest turn and the reply leave no room for an older
turn: from its second turn on, a speaker's prompt is pruned and its memory recalls. Sized to
the writer: its system prompt (181 tokens with the citation instruction), its reply (160) and
the margin (64) must leave the 130 that the question and the newest turn need; below 535 the
run refuses to start."""
STOP_WAIT_S = 300
"""For all 20 debates together, once the questions are sent."""
PASSWORD = "correct horse battery staple"
WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "jade"]
CANARY = re.compile(r"canary\d\d[a-z]+")
FILLER = (
    "The tram would carry commuters across the river to the station and the market every "
    "ten minutes, from early morning to midnight, on a line of twelve stops. Buses would "
    "still serve the hills and the old town."
)
"""About 60 tokens of question in all: with each turn echoing it, two turns and the question
overflow the window. Plain words keep the memory's embeddings cheap (one worker thread
embeds every session's turns)."""

SCRIPT = {
    "chunk_delay": 0.01,
    "replies": {
        "manager": [
            json.dumps({"speaker": speaker, "reason": "the scripted order"})
            for speaker in ("writer", "writer")
        ],
    },
    "defaults": {
        "researcher": "Researcher heard {last_speaker}: {last}",
        "analyst": "Analyst heard {last_speaker}: {last}",
        "critic": "REVISE: critic heard {last_speaker}: {last}",
        "writer": "Writer heard {last_speaker}: {last}",
        "manager": json.dumps({"speaker": "analyst", "reason": "the scripted default"}),
    },
}

WATCH = """(() => {
  const seen = new Set();
  window.__canaries = seen;
  const pattern = /canary\\d\\d[a-z]+/g;
  new MutationObserver((records) => {
    for (const record of records) {
      const nodes = record.type === 'characterData' ? [record.target] : record.addedNodes;
      for (const node of nodes) {
        for (const found of (node.textContent || '').matchAll(pattern)) seen.add(found[0]);
      }
    }
  }).observe(document, {childList: true, subtree: true, characterData: true});
})();"""
"""Every canary that ever appears in the page's DOM, even for a moment."""

LEDGER_CELLS = """() => {
  const tables = Array.from(document.querySelectorAll('table'))
    .filter(t => t.innerText.includes('Cost ledger'));
  const table = tables[tables.length - 1];
  return table ? Array.from(table.querySelectorAll('tr')).map(
    tr => Array.from(tr.querySelectorAll('th, td')).map(c => c.innerText.trim())) : [];
}"""


def canary(number: int) -> str:
    return f"canary{number:02d}{WORDS[number % len(WORDS)]}"


def question(number: int) -> str:
    return f"Should the city build a tram? Remember the word {canary(number)}. {FILLER}"


def crowd_env(folder: Path) -> dict[str, str]:
    """The server's settings: the script, a small window, 5 turns, one user per session (all
    with the same password: one hash, ~50 ms)."""
    script = folder / "script.yaml"
    script.write_text(yaml.safe_dump(SCRIPT), encoding="utf-8")
    stored = hash_password(PASSWORD)
    return {
        "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "scripted",
        "ROUNDTABLE_ENDPOINTS__DEFAULT__SCRIPT": str(script),
        "ROUNDTABLE_ENDPOINTS__DEFAULT__CONTEXT_WINDOW": str(WINDOW),
        "ROUNDTABLE_BUDGET__MAX_TURNS": str(TURNS),
        "ROUNDTABLE_USERS": json.dumps({f"user{n:02d}": stored for n in range(SESSIONS)}),
    }


@pytest.fixture(scope="module")
def crowd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    folder = tmp_path_factory.mktemp("crowd")
    server = start_server(folder / "data", crowd_env(folder))
    yield server
    server.stop()


class Session:
    """One person: a browser context logged in as its own user, and what its page received."""

    def __init__(self, browser: Browser, server: UIServer, number: int) -> None:
        self.number = number
        self.canary = canary(number)
        self.chat = ChatPage(browser, server, f"crowd-{number:02d}")
        self.chat.context.add_init_script(WATCH)
        self.received: set[str] = set()
        self.history: list[str] = []
        """What happened to the page's connection, for a failure message."""
        self._began = time.monotonic()
        devtools = self.chat.context.new_cdp_session(self.chat.page)
        devtools.on("Network.webSocketFrameReceived", self._frame)
        devtools.on("Network.webSocketClosed", lambda _: self._note("socket closed"))
        devtools.on("Network.webSocketCreated", lambda _: self._note("socket opened"))
        devtools.send("Network.enable")
        page = self.chat.page
        page.on(
            "framenavigated",
            lambda frame: self._note(f"at {frame.url}") if frame == page.main_frame else None,
        )

    def _frame(self, params: dict[str, Any]) -> None:
        self.received.update(CANARY.findall(str(params["response"]["payloadData"])))

    def _note(self, what: str) -> None:
        self.history.append(f"{time.monotonic() - self._began:.0f}s {what}")

    def seen_in_dom(self) -> set[str]:
        found: list[str] = self.chat.page.evaluate("() => Array.from(window.__canaries)")
        return set(found)


def _wait_for_stops(sessions: list[Session], seconds: float, reloaded: list[int]) -> list[Session]:
    """Wait until every page shows its stop message; the sessions that did not in time.

    A page whose socket dropped during its debate (seen once in CI: 20 pages in one Chromium
    on 2 loaded cores miss Socket.IO's ping deadline) misses what the server sent while it was
    away, as Chainlit pages do. A person reloads it; so does the test, once, and the reloaded
    page must show the whole debate, its stop included, from the thread history. Pages so
    reloaded are added to ``reloaded``.
    """
    deadline = time.monotonic() + seconds
    unfinished = []
    for session in sessions:
        left = max(1.0, deadline - time.monotonic())
        try:
            session.chat.wait_stops(timeout=left * 1000)
            continue
        except PlaywrightTimeout:
            session.chat.screenshot("unfinished")
        if "socket closed" in " ".join(session.history):
            reloaded.append(session.number)
            session.chat.page.reload()
            try:
                session.chat.wait_stops(timeout=60_000)
                continue
            except PlaywrightTimeout:
                session.chat.screenshot("unfinished-reloaded")
        unfinished.append(session)
    return unfinished


def _why_unfinished(unfinished: list[Session], server: UIServer) -> str:
    """Which pages never showed a stop, how their debates ended, what the server logged."""
    ends = {}
    for path in server.transcripts.glob("*.jsonl"):
        transcript = load(path)
        stop = transcript.events[-1]
        named = CANARY.findall(transcript.header.question)
        if named and isinstance(stop, StopEvent):
            ends[named[0]] = f"{stop.code} at turn {stop.turn}: {stop.reason}"
    lines = [f"{len(unfinished)} of {SESSIONS} pages never showed their debate's stop:"]
    for session in unfinished:
        end = ends.get(session.canary, "no transcript")
        lines.append(f"  page {session.number}: debate {end}; page: {session.history[-4:]}")
    lines.append(f"server log: {_history_faults(server)}")
    return "\n".join(lines)


HISTORY_FAULTS = {
    "database is locked": "database is locked",
    "connection pool exhausted": "QueuePool limit",
    "user not loaded": "Unable to get persisted_user",
    "thread not updated": "Error updating thread",
    "thread not authorized": "Authorization for the thread failed",
}
"""What Chainlit logs (as warnings, and goes on) when the history database fails a request."""


def _history_faults(server: UIServer) -> dict[str, int]:
    log = server.log.read_text(encoding="utf-8", errors="replace")
    return {name: log.count(text) for name, text in HISTORY_FAULTS.items() if text in log}


def _cpu_seconds(server: UIServer) -> float:
    """CPU time the server process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _overlap(transcripts: list[Transcript]) -> int:
    """The most debates running at one moment (first event to stop event)."""
    moments: list[tuple[datetime, int]] = []
    for transcript in transcripts:
        moments += [(transcript.events[0].at, 1), (transcript.events[-1].at, -1)]
    running = most = 0
    for _, step in sorted(moments):
        running += step
        most = max(most, running)
    return most


@pytest.fixture
def crowd(browser: Browser, crowd_server: UIServer) -> Iterator[list[Session]]:
    """One browser context per person, closed afterwards whatever happened."""
    sessions = [Session(browser, crowd_server, n) for n in range(SESSIONS)]
    yield sessions
    for session in sessions:
        session.chat.close()


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_twenty_concurrent_sessions_never_see_each_others_canaries(
    crowd: list[Session], crowd_server: UIServer
) -> None:
    began = time.monotonic()
    sessions = crowd
    # Every step is issued to all pages before waiting on any: the pages work in parallel.
    for session in sessions:
        session.chat.page.goto(crowd_server.url + "/", wait_until="commit")
    for session in sessions:
        session.chat.submit_login(f"user{session.number:02d}", PASSWORD)
    reloaded: list[int] = []
    for session in sessions:
        try:
            session.chat.wait_ready(timeout=120_000)
        except PlaywrightTimeout:
            # Seen once in 2 CI runs on 2 loaded cores: one page of 20 never got its session
            # started (no error on the server); 3 of 20 with other test runs sharing the
            # cores. A person reloads; the test does too, once, and bounds how often that may
            # happen. Isolation below is checked on every page.
            reloaded.append(session.number)
            session.chat.page.reload()
            session.chat.wait_ready(timeout=120_000)
    assert len(reloaded) <= 4, f"pages that needed a reload to start: {reloaded}"
    ready = time.monotonic()
    cpu_before = _cpu_seconds(crowd_server)
    for session in sessions:
        session.chat.submit(question(session.number))
    for session in sessions:
        session.chat.wait_submitted()
    dropped: list[int] = []
    unfinished = _wait_for_stops(sessions, STOP_WAIT_S, dropped)
    done = time.monotonic()
    server_cpu = _cpu_seconds(crowd_server) - cpu_before
    assert not unfinished, _why_unfinished(unfinished, crowd_server)
    assert len(dropped) <= 2, f"pages whose socket dropped during the debate: {dropped}"

    # -- what each page received and showed ---------------------------------------------------
    for session in sessions:
        own = {session.canary}
        text = session.chat.body_text()
        assert session.canary in text
        assert set(CANARY.findall(text)) == own, f"page {session.number} shows another's canary"
        assert session.seen_in_dom() == own, f"page {session.number}'s DOM had another's canary"
        assert session.received == own, f"page {session.number} received another's canary"
    sessions[0].chat.screenshot("crowd-end")

    # -- transcripts and memory -------------------------------------------------------------------
    files = sorted(crowd_server.transcripts.glob("*.jsonl"))
    assert len(files) == SESSIONS
    transcripts = {}
    recalled_own = 0
    for path in files:
        transcript = load(path)
        named = set(CANARY.findall(transcript.header.question))
        assert len(named) == 1, f"{path.name}: question names {named}"
        own = named.pop()
        assert set(CANARY.findall(path.read_text(encoding="utf-8"))) == {own}, path.name
        transcripts[own] = transcript
        conversation = transcript.header.conversation_id
        memory = [e for e in transcript.events if isinstance(e, MemoryEvent)]
        assert memory, f"{path.name}: no memory look-ups"
        for event in memory:
            for hit in event.hits:
                assert hit.id.startswith(f"{conversation}:"), f"{path.name}: foreign hit {hit.id}"
                assert set(CANARY.findall(hit.text)) <= {own}, f"{path.name}: {hit.text[:80]}"
        recalled_own += any(own in hit.text for event in memory for hit in event.hits)
    assert set(transcripts) == {s.canary for s in sessions}
    assert recalled_own == SESSIONS, "every debate should recall its own pruned first turn"

    # -- the cost ledger on each page is its own debate's --------------------------------------
    for session in sessions:
        stop = transcripts[session.canary].events[-1]
        assert isinstance(stop, StopEvent) and stop.code == "max_turns"
        assert {row.speaker for row in stop.ledger} == {"researcher", "writer", "critic", "manager"}
        expected = [
            [cell.strip() for cell in line.strip("|").split("|")]
            for line in ledger_table(stop.ledger).splitlines()
            if not line.startswith("|---")
        ]
        shown = session.chat.page.evaluate(LEDGER_CELLS)
        assert shown == expected, f"page {session.number}'s ledger"

    most = _overlap(list(transcripts.values()))
    print(
        f"\n{SESSIONS} sessions: logged in after {ready - began:.1f} s, all debates done "
        f"{done - ready:.1f} s later (server process: {server_cpu:.0f} s of CPU); "
        f"at most {most} debates running at once"
    )
    assert most >= SESSIONS // 2, f"only {most} debates ever ran at the same time"

    # -- nothing was lost from the thread history either ----------------------------------------
    faults = _history_faults(crowd_server)
    assert not faults, f"the history database failed requests under {SESSIONS} sessions: {faults}"


def test_the_cost_ledger_shows_dollars_only_when_an_endpoint_is_priced() -> None:
    """The ledger table without a browser (the priced case has no scripted endpoint)."""
    rows = [
        LedgerRow(speaker="critic", calls=2, prompt_tokens=1200, completion_tokens=80, seconds=1.3),
        LedgerRow(speaker="manager", calls=3, prompt_tokens=900, completion_tokens=30, seconds=0.5),
    ]
    assert ledger_table(rows[:1]).splitlines()[2] == "| critic | 2 | 1,200 + 80 | 1.3 |"
    assert "total" not in ledger_table(rows[:1]) and "USD" not in ledger_table(rows)
    rows[1] = rows[1].model_copy(update={"cost_usd": 0.0123})
    table = ledger_table(rows).splitlines()
    assert table[0].endswith("| seconds | USD |")
    assert table[2:] == [
        "| critic | 2 | 1,200 + 80 | 1.3 | - |",
        "| manager | 3 | 900 + 30 | 0.5 | $0.0123 |",
        "| total | 5 | 2,100 + 110 | 1.8 | $0.0123 |",
    ]
