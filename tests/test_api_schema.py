"""Property-based tests of the API against its own OpenAPI schema (schemathesis).

Schemathesis generates requests from the schema, valid and invalid, for every operation and
checks each answer: never a server error, a documented status, a body that fits the schema.
The server is the real API on loopback with scripted models, so accepted runs really run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.support.api_server import AUTH, ApiServer, running_api
from tests.test_api import DEBATE, api_settings, settings_for, with_loners


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    folder = tmp_path_factory.mktemp("schema")
    with running_api(settings_for(Path(folder), DEBATE, max_turns=3), api_settings()) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(api_server: ApiServer) -> Any:
    return schemathesis.openapi.from_url(f"{api_server.url}/openapi.json", headers=AUTH)


OPERATIONS = [
    ("GET", "/teams"),
    ("POST", "/runs"),
    ("GET", "/runs"),
    ("GET", "/runs/{run_id}"),
    ("GET", "/runs/{run_id}/events"),
    ("POST", "/runs/{run_id}/messages"),
    ("POST", "/runs/{run_id}/stop"),
]


def test_the_schema_lists_exactly_these_operations(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


def test_the_schema_lists_this_servers_teams_and_their_roles(tmp_path: Path) -> None:
    with running_api(with_loners(tmp_path), api_settings()) as server:
        schema = httpx.get(f"{server.url}/openapi.json", headers=AUTH).json()
        teams = httpx.get(f"{server.url}/teams", headers=AUTH).json()["teams"]
    models = schema["components"]["schemas"]
    roles = sorted({r["name"] for team in teams for r in team["roles"]})
    assert {"talker", "listener"} <= set(roles)
    [team] = [o for o in models["RunRequest"]["properties"]["team"]["anyOf"] if "enum" in o]
    assert team["enum"] == ["default", "policy", "product", "loners"]
    [ask] = [o for o in models["MessageRequest"]["properties"]["ask"]["anyOf"] if "enum" in o]
    assert ask["enum"] == roles
    run_settings = models["RunSettings"]["properties"]
    [listed] = [o for o in run_settings["roles"]["anyOf"] if o.get("type") == "array"]
    assert listed["items"]["enum"] == roles
    assert run_settings["endpoints"]["propertyNames"] == {"enum": roles}
    assert run_settings["endpoints"]["additionalProperties"]["enum"] == ["default"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_api_answers_every_generated_request_as_its_schema_says(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    # (schemathesis' own pytest plugin does not run on pytest 9: its lazy fixture loader reads
    # a node attribute pytest removed; the schema's strategies work the same driven by hand.)
    operation = api_schema[path][method]
    statuses: list[int] = []

    # Unknown query parameters are ignored, as most HTTP APIs do: a negative case that only
    # adds one is answered normally, so that one check is left out for negative cases. Some
    # schema-valid runs are refused with 422 on meaning, not form (a panel without the writer
    # has nobody to answer; the detail says so): the schema cannot state such rules, so for
    # positive cases 422 is allowed, and the test requires that some runs were accepted.
    excluded = (
        [negative_data_rejection] if mode == GenerationMode.NEGATIVE else [positive_data_acceptance]
    )

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=AUTH, excluded_checks=excluded)
        statuses.append(response.status_code)

    check()
    assert statuses and max(statuses) < 500
    if mode == GenerationMode.POSITIVE:  # 422 only on meaning: most valid requests pass
        assert statuses.count(422) < len(statuses) / 2, statuses
    if (method, path, mode) == ("POST", "/runs", GenerationMode.POSITIVE):
        assert 202 in statuses  # generated runs really started (and ran)
