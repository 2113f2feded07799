"""Property-based tests of ``/v1`` against its own OpenAPI schema (schemathesis).

As ``test_api_schema``: generated requests, valid and invalid, for each operation, each answer
checked against the schema (documented status, fitting body); the server is real, on loopback,
with scripted models, so accepted requests really run a debate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from roundtable.api import ApiSettings, create_api, create_openai_api, mount
from tests.support.api_server import AUTH, TOKEN, serving
from tests.test_api import DEBATE, settings_for

OPERATIONS = [("GET", "/models"), ("POST", "/chat/completions")]


@pytest.fixture(scope="module")
def v1_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi import FastAPI

    folder = Path(tmp_path_factory.mktemp("v1-schema"))
    settings = settings_for(folder, DEBATE, max_turns=3)
    api = ApiSettings(api_token=TOKEN)
    host = FastAPI()
    rest = create_api(settings, api)
    mount(host, create_openai_api(settings, api, rest.state.registry), "/v1")
    with serving(host) as (port, _):
        url = f"http://127.0.0.1:{port}/v1"
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", headers=AUTH)


def test_the_schema_lists_these_operations_and_this_servers_models(v1_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in v1_schema.get_all_operations()}
    assert found == set(OPERATIONS)
    request = v1_schema.raw_schema["components"]["schemas"]["ChatRequest"]
    assert "roundtable/policy:panel" in request["properties"]["model"]["enum"]


def asking(case: Any) -> Any:
    """``case`` with a user's question last: most generated message lists end otherwise, and
    a chat whose last message is not the user's is refused on meaning (400), not on form."""
    if isinstance(case.body, dict) and case.body.get("messages"):
        case.body["messages"][-1] = {"role": "user", "content": "Should we build a tram?"}
    return case


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_v1_answers_every_generated_request_as_its_schema_says(
    v1_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = v1_schema[path][method]
    statuses: list[int] = []
    # Unknown fields are ignored (OpenAI clients send many a debate has no use for), so a
    # negative case that only adds one is answered normally; and a valid request may be
    # refused on meaning (the last message not the user's: 400), as in test_api_schema.
    excluded = (
        [negative_data_rejection] if mode == GenerationMode.NEGATIVE else [positive_data_acceptance]
    )

    strategy = operation.as_strategy(generation_mode=mode)
    if (method, mode) == ("POST", GenerationMode.POSITIVE):
        strategy = st.one_of(strategy, strategy.map(asking))

    @given(case=strategy)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=AUTH, excluded_checks=excluded, timeout=60)
        statuses.append(response.status_code)

    check()
    assert statuses and 500 not in statuses
    if (method, mode) == ("POST", GenerationMode.POSITIVE):
        assert 200 in statuses  # generated requests really ran a team
