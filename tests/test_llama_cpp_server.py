"""Against llama.cpp's own OpenAI-compatible server (``llama-server``), on the shipped GGUF.

The binary is built by ``scripts/llama-server`` from the llama.cpp that the locked
llama-cpp-python sdist vendors; ``scripts/setup-test`` builds it before the tests, and a run
without that step builds it here (10-15 minutes) or fails with one line saying why.

Where it differs from llama-cpp-python's server (tests/test_llama_server.py): it takes
``response_format`` of type ``json_schema``, so the negotiation settles on the first form it
tries; and it reports the prompt tokens it reused from the previous request, which the
transcript records per message. What both must give (model picks, verdicts, no copies) is
checked by the same debate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roundtable.agents.structured_output import NEGOTIATION
from roundtable.transcripts import HUMAN, MessageEvent, SelectionEvent
from tests.support.model_servers import (
    BUILD_TIMEOUT_S,
    debate_through,
    llama_cpp_server,
    picks_through,
)

pytestmark = [pytest.mark.model, pytest.mark.timeout(BUILD_TIMEOUT_S + 900)]

PICK_SCHEMA = {
    "type": "object",
    "properties": {"speaker": {"enum": ["researcher", "analyst"]}, "reason": {"type": "string"}},
    "required": ["speaker", "reason"],
}


@pytest.fixture(scope="module")
def llama_cpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llama-server`` on a free loopback port; its base URL."""
    with llama_cpp_server(tmp_path_factory.mktemp("llama-server") / "server.log") as url:
        yield url


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "pick", "schema": PICK_SCHEMA}},
        {"type": "json_object", "schema": PICK_SCHEMA},
    ],
    ids=["json_schema", "json_object"],
)
def test_the_server_constrains_a_reply_to_a_schema_in_either_form(
    llama_cpp: str, response_format: dict[str, object]
) -> None:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Who speaks next, researcher or analyst?"}],
        "max_tokens": 60,
        "temperature": 0.2,
        "response_format": response_format,
    }
    answer = httpx.post(f"{llama_cpp}/chat/completions", json=body, timeout=120)
    assert answer.status_code == 200, answer.text[:500]
    pick = json.loads(answer.json()["choices"][0]["message"]["content"])
    assert pick["speaker"] in {"researcher", "analyst"}, pick


async def test_the_negotiation_settles_on_json_schema_and_the_model_picks(llama_cpp: str) -> None:
    assert await picks_through(llama_cpp) == "json_schema"  # taken at once: nothing refused


@pytest.mark.guards
async def test_a_debate_through_the_server_picks_with_the_model_and_reuses_the_prefix(
    llama_cpp: str, tmp_path: Path
) -> None:
    saved = await debate_through(llama_cpp, tmp_path / "server.jsonl")
    picked = [e for e in saved if isinstance(e, SelectionEvent) and e.method == "model"]
    assert picked  # structured calls were made, and answered in the form below
    assert NEGOTIATION.form_for((llama_cpp, "smollm2"), "auto") == "json_schema"
    said = [e for e in saved if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert all(e.usage.cached_tokens <= e.usage.prompt_tokens for e in said)
    reused = [e.usage.cached_tokens for e in said[1:]]
    assert any(n > 0 for n in reused), [e.usage for e in said]  # a later turn reused a prefix
