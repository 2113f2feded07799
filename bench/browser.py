"""Streaming latency in the browser: from a model token to its appearance in the page.

The real UI server (``chainlit run ui/app.py``, default settings: memory on, SQLite history)
runs a debate on a scripted endpoint that streams one word every ``CHUNK_DELAY_S``; every
word is a unique marker (``r2w017``: researcher, its 2nd reply, word 17). Headless Debian
Chromium, driven by Playwright, shows the debate as a person would see it.

Clocks, one machine (the server and the page both read the system's real-time clock):

* the server process logs ``time.time()`` as the scripted model yields each word, as the
  renderer receives it and as engine.io hands its WebSocket frame to uvicorn (probes that wrap
  ``ScriptedChatCompletionClient.create_stream``, ``ChainlitRenderer._token`` and engine.io's
  ``WebSocket.send``; installed by the server's ``prelude``, and only when
  ``BENCH_BROWSER_PROBE`` names their log file);
* the page records ``Date.now()`` in a ``MutationObserver`` (installed before the app loads)
  when a marker first appears in the DOM, and again at the next animation frame;
* DevTools reports when the page's WebSocket received each frame.

Rows (milliseconds; median, p95 nearest rank, max):

* ``token -> DOM``: DOM time minus emission time, for each word: everything Roundtable and
  Chainlit add (AutoGen's stream, the debate, the renderer, Socket.IO, React's commit);
* ``first word -> DOM``: the same for the first word of each reply, which also creates the
  reply's message (the slowest words: a backlog builds at the start of a reply);
* ``token -> next frame``: the same to the next ``requestAnimationFrame`` (about when it is
  painted);
* ``token -> server WebSocket`` and ``token -> page WebSocket``: where the time goes, until
  engine.io hands the frame to uvicorn in the server, and until DevTools reports the page's
  WebSocket received it (read on the monotonic clock, shifted onto the emission's);
* ``lag beyond pacing``: the page-only figure, ``(DOM time of word k - DOM time of word 1)
  - (k - 1) * CHUNK_DELAY_S`` within each reply: how far the display falls behind the
  model's pace as a reply goes on. It is negative when the first word was the slowest, and it
  includes the model side's own overshoot, shown in
* ``model pacing overshoot``: the same from the emission times alone (``asyncio.sleep``
  oversleeping on a loaded machine).

This module owns the measurement only; the server and browser come from
``tests/browser/harness.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.figures import DISK, Row, percentile, scratch_dir
from roundtable.transcripts import TokenDelta

BENCH = "browser"
PROBE_ENV = "BENCH_BROWSER_PROBE"
PRELUDE = "import bench.browser\nbench.browser.install_probe()"
CHUNK_DELAY_S = 0.05
MARKER = re.compile(r"\b([a-z])(\d+)w(\d{3})\b")
ROLE_LETTERS = {"researcher": "r", "analyst": "a", "critic": "c", "writer": "w"}
QUESTION = "Should our city ban private cars downtown?"

OBSERVER = """(() => {
  const seen = {};
  window.__rtSeen = seen;
  const marker = /\\b[a-z]\\d+w\\d{3}\\b/g;
  new MutationObserver((records) => {
    const now = Date.now();
    const fresh = [];
    for (const record of records) {
      const nodes = record.type === 'characterData' ? [record.target] : record.addedNodes;
      for (const node of nodes) {
        for (const found of (node.textContent || '').matchAll(marker)) {
          if (!(found[0] in seen)) { seen[found[0]] = [now, null]; fresh.push(found[0]); }
        }
      }
    }
    if (fresh.length) {
      requestAnimationFrame(() => { const t = Date.now(); for (const m of fresh) seen[m][1] = t; });
    }
  }).observe(document, {childList: true, subtree: true, characterData: true});
})();"""
"""Runs in the page before the app: first DOM appearance and next frame of every marker."""


# -- the probe, in the server process ------------------------------------------------------------


def install_probe() -> None:
    """Log the time each scripted word is yielded (server process; a no-op unless asked)."""
    path = os.environ.get(PROBE_ENV)
    if not path:
        return
    from roundtable.agents.scripted import ScriptedChatCompletionClient

    original = ScriptedChatCompletionClient.create_stream
    log = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process

    async def create_stream(
        self: ScriptedChatCompletionClient, messages: Any, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        async for item in original(self, messages, **kwargs):
            if isinstance(item, str):
                now, tick = time.time(), time.monotonic()
                entry = {"t": now, "tick": tick, "at": "model", "text": item}
                log.write(json.dumps(entry) + "\n")
            yield item

    ScriptedChatCompletionClient.create_stream = create_stream  # type: ignore[method-assign]

    from roundtable.ui.render import ChainlitRenderer

    draw = ChainlitRenderer._token

    async def token(self: ChainlitRenderer, event: TokenDelta) -> None:
        now = time.time()
        log.write(json.dumps({"t": now, "at": "renderer", "text": event.text}) + "\n")
        await draw(self, event)

    ChainlitRenderer._token = token  # type: ignore[method-assign]

    from engineio.async_drivers.asgi import WebSocket

    write = WebSocket.send

    async def send(self: WebSocket, message: str | bytes) -> None:
        if isinstance(message, str) and MARKER.search(message.replace("\\n", " ")):
            now = time.time()
            log.write(json.dumps({"t": now, "at": "wire", "text": message}) + "\n")
        await write(self, message)

    WebSocket.send = send


# -- the scripted debate ---------------------------------------------------------------------------


def reply(role: str, number: int, words: int) -> str:
    """Reply ``number`` of ``role``: ``words`` markers (the critic's starts with its verdict)."""
    letter = ROLE_LETTERS[role]
    text = " ".join(f"{letter}{number}w{k:03d}" for k in range(1, words + 1))
    return f"REVISE: {text}" if role == "critic" else text


def script(turns: int, words: int) -> dict[str, Any]:
    """A debate of ``turns`` agent turns: the researcher and the analyst take turns (the
    manager's picks), then the rules give the writer and the critic the last two."""
    picks = ["analyst" if n % 2 == 0 else "researcher" for n in range(2, turns - 1)]
    order = ["researcher", *picks, "writer", "critic"][:turns]
    counts: dict[str, int] = {}
    replies: dict[str, list[str]] = {}
    for role in order:
        counts[role] = counts.get(role, 0) + 1
        replies.setdefault(role, []).append(reply(role, counts[role], words))
    replies["manager"] = [json.dumps({"speaker": p, "reason": "benchmark order"}) for p in picks]
    return {"chunk_delay": CHUNK_DELAY_S, "replies": replies}


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One marker word, in epoch seconds: when the model yielded it, when the renderer got it,
    when its WebSocket frame reached the page, when the page had it in its DOM, and the next
    animation frame after that."""

    debate: int
    marker: str
    emitted: float
    rendered: float | None
    wired: float | None
    """Handed to the server's WebSocket (engine.io's ASGI driver)."""
    arrived: float | None
    """Wall-clock equivalent of the frame's arrival (the browser's network thread, read from
    the DevTools protocol on the monotonic clock and shifted by the emission's own offset)."""
    dom: float
    frame: float | None

    @property
    def reply(self) -> tuple[int, str]:
        """Which reply of which debate (markers repeat from one debate to the next)."""
        found = MARKER.fullmatch(self.marker)
        assert found is not None
        return self.debate, found.group(1) + found.group(2)

    @property
    def word(self) -> int:
        found = MARKER.fullmatch(self.marker)
        assert found is not None
        return int(found.group(3))


def probed_since(log: Path, offset: int) -> dict[str, dict[str, float]]:
    """Probe point (``model``, ``renderer``, ``tick``: the model's on the monotonic clock) ->
    marker -> first time in seconds, from the probe's lines after byte ``offset``."""
    times: dict[str, dict[str, float]] = {"model": {}, "renderer": {}, "wire": {}, "tick": {}}
    with log.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            entry = json.loads(line)
            for found in MARKER.finditer(entry["text"].replace("\\n", " ")):
                times[entry["at"]].setdefault(found.group(0), float(entry["t"]))
                if "tick" in entry:
                    times["tick"].setdefault(found.group(0), float(entry["tick"]))
    return times


def pair(
    debate: int,
    probed: Mapping[str, Mapping[str, float]],
    seen: Mapping[str, Sequence[float | None]],
    arrived: Mapping[str, float],
) -> list[Sample]:
    """Samples for the markers both emitted and seen (page times are in milliseconds, frame
    arrivals in monotonic seconds)."""
    samples = []
    for marker, at in probed["model"].items():
        page = seen.get(marker)
        if page is None or page[0] is None:
            continue
        frame = page[1]
        tick = probed["tick"].get(marker)
        frame_at = arrived.get(marker)
        samples.append(
            Sample(
                debate,
                marker,
                at,
                probed["renderer"].get(marker),
                probed["wire"].get(marker),
                None if frame_at is None or tick is None else at + (frame_at - tick),
                float(page[0]) / 1000,
                None if frame is None else frame / 1000,
            )
        )
    return samples


def debate_once(browser: Any, server: Any, log: Path, number: int) -> tuple[list[Sample], int]:
    """One debate in a fresh page; the samples and how many emitted words were never seen."""
    from tests.browser.harness import ChatPage

    chat = ChatPage(browser, server, f"bench-browser-{number}")
    arrived: dict[str, float] = {}

    def on_frame(params: dict[str, Any]) -> None:
        # JSON escapes glue a newline's "n" to the word after it: unglue before matching
        text = str(params["response"]["payloadData"]).replace("\\n", " ")
        for found in MARKER.finditer(text):
            arrived.setdefault(found.group(0), float(params["timestamp"]))

    try:
        chat.context.add_init_script(OBSERVER)
        devtools = chat.context.new_cdp_session(chat.page)
        devtools.on("Network.webSocketFrameReceived", on_frame)
        devtools.send("Network.enable")
        chat.open()
        offset = log.stat().st_size if log.exists() else 0
        chat.send(QUESTION)
        chat.wait_stops(timeout=180_000)
        seen = chat.page.evaluate("() => window.__rtSeen")
    finally:
        chat.close()
    probed = probed_since(log, offset)
    samples = pair(number, probed, seen, arrived)
    return samples, len(probed["model"]) - len(samples)


def measure(turns: int, words: int, debates: int) -> tuple[list[Sample], int]:
    from playwright.sync_api import sync_playwright

    from tests.browser.harness import launch_browser, start_server

    folder = scratch_dir(DISK, "roundtable-bench-browser-")
    try:
        script_file = folder / "script.yaml"
        script_file.write_text(yaml.safe_dump(script(turns, words)), encoding="utf-8")
        log = folder / "probe.jsonl"
        env = {
            "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "scripted",
            "ROUNDTABLE_ENDPOINTS__DEFAULT__SCRIPT": str(script_file),
            "ROUNDTABLE_BUDGET__MAX_TURNS": str(turns),
            PROBE_ENV: str(log),
        }
        server = start_server(folder / "data", env, prelude=PRELUDE)
        samples: list[Sample] = []
        missing = 0
        try:
            with sync_playwright() as playwright:
                browser = launch_browser(playwright)
                try:
                    for number in range(debates):
                        got, lost = debate_once(browser, server, log, number)
                        samples += got
                        missing += lost
                finally:
                    browser.close()
        finally:
            server.stop()
        return samples, missing
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- figures -------------------------------------------------------------------------------------


def lag_beyond_pacing(samples: Sequence[Sample], clock: str) -> list[float]:
    """Per word k >= 2 of a reply: (time of k - time of word 1) - (k - 1) * CHUNK_DELAY_S, in
    seconds, on the page's clock (``dom``) or the model's (``emitted``)."""
    replies: dict[tuple[int, str], list[Sample]] = {}
    for sample in samples:
        replies.setdefault(sample.reply, []).append(sample)
    lags: list[float] = []
    for words in replies.values():
        first = min(words, key=lambda s: s.word)
        if first.word != 1:
            continue
        for sample in words:
            if sample.word > 1:
                elapsed = getattr(sample, clock) - getattr(first, clock)
                lags.append(elapsed - (sample.word - 1) * CHUNK_DELAY_S)
    return lags


def latency_row(case: str, seconds: Sequence[float], note: str, **extra: Any) -> Row:
    """A row in milliseconds: median, p95 (nearest rank) and max of ``seconds``."""
    values = [v * 1000 for v in seconds]
    return {
        "bench": BENCH,
        "case": case,
        "n": len(values),
        "median_ms": round(statistics.median(values), 1) if values else None,
        "p95_ms": round(percentile(values, 95), 1) if values else None,
        "max_ms": round(max(values), 1) if values else None,
        "unit": "token",
        "note": note,
        **extra,
    }


def since_emitted(samples: Sequence[Sample], point: str) -> list[float]:
    """Seconds from each word's emission to ``point`` (a ``Sample`` time field), where known."""
    times = ((getattr(s, point), s.emitted) for s in samples)
    return [at - emitted for at, emitted in times if at is not None]


def rows_from(samples: Sequence[Sample], missing: int, runs: str, load: float) -> list[Row]:
    headline = latency_row(
        "token -> DOM",
        since_emitted(samples, "dom"),
        f"model yield to first appearance in the page's DOM; {runs}",
        missing=missing,
        load_1m=round(load, 1),
    )
    return [
        headline,
        latency_row(
            "first word -> DOM",
            since_emitted([s for s in samples if s.word == 1], "dom"),
            "the first word of each reply only (it also creates the reply's message)",
        ),
        latency_row(
            "token -> next frame",
            since_emitted(samples, "frame"),
            "to the next requestAnimationFrame after the DOM change (about when painted)",
        ),
        latency_row(
            "token -> server WebSocket",
            since_emitted(samples, "wired"),
            "server side only: until engine.io hands the frame to uvicorn",
        ),
        latency_row(
            "token -> page WebSocket",
            since_emitted(samples, "arrived"),
            "until DevTools reports the frame received by the page",
        ),
        latency_row(
            "lag beyond pacing",
            lag_beyond_pacing(samples, "dom"),
            f"page clock only: (t_k - t_1) - (k-1) x {CHUNK_DELAY_S} s within a reply, k >= 2",
        ),
        latency_row(
            "model pacing overshoot",
            lag_beyond_pacing(samples, "emitted"),
            "the same on the model's yields: asyncio.sleep oversleeping under load",
        ),
    ]


def run(quick: bool) -> list[Row]:
    from tests.browser.harness import CHROMIUM

    if not shutil.which(CHROMIUM):
        return [{"bench": BENCH, "case": "token -> DOM", "note": f"skipped: no {CHROMIUM}"}]
    turns, words, debates = (4, 25, 1) if quick else (8, 40, 2)
    load = os.getloadavg()[0]
    samples, missing = measure(turns, words, debates)
    runs = f"{debates} debate(s) x {turns} turns x {words} words, a word every {CHUNK_DELAY_S} s"
    return rows_from(samples, missing, runs, load)
