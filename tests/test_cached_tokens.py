"""Cached prompt tokens, as a server reports them, reach the transcript, the ledger and the
price: through the whole product, on the test server speaking OpenAI's usage shape
(llama-cpp-python's server does not report them; llama.cpp's own does, and
tests/test_llama_cpp_server.py checks them recorded from it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from roundtable.agents.endpoints import Price
from roundtable.transcripts import HUMAN, MessageEvent, StopEvent, load
from tests.support.chat_server import Reply, Request, endpoint_env, running_chat_server

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
CACHED = 3


def cached_reply(request: Request) -> Reply | None:
    """Every call reuses ``CACHED`` prompt tokens; the manager's pick gets no usable JSON and
    falls back, which is beside the point here."""
    if request.method == "GET":
        return None
    return Reply("Buses first, then fewer lanes for cars.", cached_tokens=CACHED)


def test_price_charges_cached_tokens_at_their_own_rate() -> None:
    price = Price(prompt_per_1m=2.0, completion_per_1m=8.0, cached_prompt_per_1m=0.5)
    assert price.cost(1_000, 100, cached_tokens=400) == (600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6
    assert Price(prompt_per_1m=2.0).cost(1_000, 0, cached_tokens=400) == 1_000 * 2.0 / 1e6
    assert price.cost(10, 0, cached_tokens=99) == 10 * 0.5 / 1e6  # never more than the prompt


def test_cached_tokens_are_recorded_per_message_and_priced_in_the_ledger(tmp_path: Path) -> None:
    with running_chat_server(responder=cached_reply) as server:
        env = endpoint_env(
            server.url,
            tmp_path / "data",
            ROUNDTABLE_ENDPOINTS__DEFAULT__PRICE__PROMPT_PER_1M="2",
            ROUNDTABLE_ENDPOINTS__DEFAULT__PRICE__COMPLETION_PER_1M="8",
            ROUNDTABLE_ENDPOINTS__DEFAULT__PRICE__CACHED_PROMPT_PER_1M="0.5",
        )
        path = tmp_path / "t.jsonl"
        result = subprocess.run(
            [ROUNDTABLE, "ask", "Fewer cars downtown?", "--max-turns", "2", "--transcript", path],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert path.is_file(), result.stderr
    events = load(path).events
    replies = [e for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert len(replies) == 2
    assert all(r.usage.cached_tokens == CACHED < r.usage.prompt_tokens for r in replies)
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    price = Price(prompt_per_1m=2, completion_per_1m=8, cached_prompt_per_1m=0.5)
    for row in stop.ledger:
        assert row.cached_tokens == CACHED * row.calls
        expected = price.cost(row.prompt_tokens, row.completion_tokens, row.cached_tokens)
        assert row.cost_usd == round(expected, 6)
    assert "cached)" in result.stdout  # the terminal's ledger says so
