"""Against a real OpenAI-compatible server: llama-cpp-python's own, on the shipped GGUF.

That server refuses ``response_format`` of type ``json_schema`` (HTTP 500) and takes
``json_object`` with a ``schema``: structured output must be negotiated, not assumed, and the
manager's picks must then come from the model, never the fallback; the verdict-giver's replies
are constrained by a grammar, which this server takes, so each is a verdict.
tests/test_llama_cpp_server.py runs the same against llama.cpp's own server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.model_servers import debate_through, llama_cpp_python_server, picks_through

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; its base URL."""
    with llama_cpp_python_server(tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


async def test_the_managers_pick_is_made_by_the_model_through_the_server(
    llama_server: str,
) -> None:
    form = await picks_through(llama_server)
    assert form == "json_object"  # json_schema was refused once, then learnt


@pytest.mark.guards
async def test_a_debate_through_the_server_picks_with_the_model(
    llama_server: str, tmp_path: Path
) -> None:
    await debate_through(llama_server, tmp_path / "server.jsonl")
