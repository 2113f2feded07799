"""The browser's handover on the embedded model: from one agent's last word on screen to the
next agent's first word, early and late in a long debate, in both prompt layouts.

The real UI server (``chainlit run ui/app.py``; memory on, SQLite history) runs a debate on the
embedded SmolLM2 through llama.cpp, with the bench's own team (``bench/teams/handover.yaml``:
four roles with 40-token replies and no verdict-giver, so the run always reaches its turn
limit). Headless Debian Chromium shows it as a person would. A ``MutationObserver`` installed
before the app loads notes, for each reply (keyed by its heading, "Scout · turn 3"), when its
first word appears after the heading and when its text last changed, on the page's clock.

The handover before turn ``k`` is the first word of reply ``k`` minus the last change of reply
``k - 1``: everything the person waits for between two speakers (the manager's pick, the
memory lookup, the next prompt's processing and its first token). It is reported at turn 2 and
at the last turn (20; 8 with ``--quick``) for ``prompt_layout = role_first`` (before issue
#12: each role's instructions first, so every new speaker makes llama.cpp read the whole
conversation again) and ``shared_first`` (the default: the conversation first, each caller's
instructions last). Ratios: the last turn against turn 2 of the same layout (target: at most
1.5x, flat), and ``shared_first`` against ``role_first`` at the last turn.

Owns the measurement only; the server and browser come from ``tests/browser/harness.py``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

from bench.figures import DISK, Row, row, scratch_dir

BENCH = "handover"
TEAM = Path(__file__).parent / "teams" / "handover.yaml"
QUESTION = "Should a small town replace its bus line with on-demand minibuses?"
LAYOUTS = ("role_first", "shared_first")
OBSERVER = """
window.__rtTurns = {};
new MutationObserver(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-step-type="assistant_message"]')) {
    const text = (el.querySelector('.message-content') || el).innerText || '';
    const head = text.split('\\n')[0];
    const key = (head.match(/^(\\S.*? · turn \\d+)/) || [])[1];
    if (!key) continue;
    const body = text.slice(head.length).trim().length;
    const seen = window.__rtTurns[key] || (window.__rtTurns[key] =
      {first: null, last: null, body: 0});
    if (body > 0 && seen.first === null) seen.first = now;
    if (body !== seen.body) { seen.body = body; seen.last = now; }
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def handovers(seen: dict[str, dict[str, Any]]) -> dict[int, float]:
    """Turn number -> milliseconds from the previous reply's last change to this reply's first
    word; replies ordered by the turn in their heading."""
    turns = sorted(
        (int(key.rsplit(" ", 1)[1]), value)
        for key, value in seen.items()
        if value.get("first") is not None and value.get("last") is not None
    )
    return {
        turn: float(now["first"] - before["last"])
        for (_, before), (turn, now) in itertools.pairwise(turns)
    }


def debate(layout: str, turns: int) -> dict[int, float]:
    """One debate of ``turns`` turns in ``layout``, in a fresh server and browser."""
    from playwright.sync_api import sync_playwright

    from tests.browser.harness import ChatPage, launch_browser, start_server

    folder = scratch_dir(DISK, f"roundtable-bench-handover-{layout}-")
    env = {
        "ROUNDTABLE_TEAM": str(TEAM),
        "ROUNDTABLE_BUDGET__MAX_TURNS": str(turns),
        "ROUNDTABLE_ENDPOINTS__DEFAULT__PROMPT_LAYOUT": layout,
        "ROUNDTABLE_BUDGET__WALL_CLOCK_S": "3600",
    }
    server = start_server(folder, env, timeout=180)
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            chat = ChatPage(browser, server, f"bench-handover-{layout}")
            chat.context.add_init_script(OBSERVER)
            chat.open()
            chat.send(QUESTION)
            chat.wait_stops(timeout=1_800_000)
            seen: dict[str, dict[str, Any]] = chat.page.evaluate("() => window.__rtTurns")
            chat.close()
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return handovers(seen)


def rows_for(
    layout: str, measured: dict[int, float], last: int, old_last: float | None
) -> list[Row]:
    """Turn 2 and the last turn of one layout, the last against turn 2 (and against the old
    layout's last turn, for the new layout)."""
    early, late = measured.get(2), measured.get(last)
    spread = [v for turn, v in measured.items() if turn >= 2]
    rows = [
        row(BENCH, f"{layout}, turn 2", 1, [early * 1000] if early else [], unit="handover"),
        row(
            BENCH,
            f"{layout}, turn {last}",
            1,
            [late * 1000] if late else [],
            unit="handover",
            ratio=late / early if early and late else None,
            anchor=f"{layout}, turn 2",
            target="<= 1.5",
            note=f"median over turns 2-{last}: {statistics.median(spread):,.0f} ms"
            if spread
            else "",
        ),
    ]
    if old_last and late:
        rows.append(
            row(
                BENCH,
                f"{layout} vs role_first, turn {last}",
                1,
                [late * 1000],
                unit="handover",
                ratio=late / old_last,
                anchor=f"role_first, turn {last}",
                target="< 1",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    from tests.browser.harness import CHROMIUM

    if not shutil.which(CHROMIUM):
        return [{"bench": BENCH, "case": "handover", "note": f"skipped: no {CHROMIUM}"}]
    last = 8 if quick else 20
    load = os.getloadavg()[0]
    measured = {layout: debate(layout, last) for layout in LAYOUTS}
    old_last = measured["role_first"].get(last)
    rows = []
    for layout in LAYOUTS:
        rows += rows_for(
            layout, measured[layout], last, None if layout == "role_first" else old_last
        )
    for r in rows:
        r["load_1m"] = round(load, 1)
    return rows
