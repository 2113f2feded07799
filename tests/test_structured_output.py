"""Structured output on servers that differ: the form each endpoint accepts is negotiated.

These use our loopback test server, scripted to behave like the servers we measured (a 500
naming ``response_format`` is what llama-cpp-python's server answers to ``json_schema``);
tests/test_llama_server.py checks the same against that real server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import pytest
from autogen_core.models import UserMessage
from pydantic import BaseModel

from roundtable.agents.endpoints import VERDICT_GRAMMAR, EndpointSettings
from roundtable.agents.openai_client import OpenAIEndpointClient
from roundtable.agents.structured_output import refused
from roundtable.common.errors import ConfigError
from tests.support.chat_server import ChatServer, Reply, Request, running_chat_server

PICK = '{"speaker": "analyst", "reason": "the facts need weighing"}'
ASK = [UserMessage(content="Who speaks next?", source="manager")]
REFUSE_SCHEMA = (
    "1 validation error: {'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\"}"
)


class Pick(BaseModel):
    speaker: Literal["analyst", "critic"]
    reason: str


def form_of(request: Request) -> str:
    sent = request.body.get("response_format") if isinstance(request.body, dict) else None
    return str(sent.get("type")) if isinstance(sent, dict) else "prompt"


def server_taking(*accepted: str, status: int = 500) -> Iterator[ChatServer]:
    """A server that answers a pick to the forms it accepts and refuses the others."""

    def respond(request: Request) -> Reply:
        form = form_of(request)
        if form in accepted:
            return Reply(text=PICK)
        return Reply(status=status, error=f"response_format {form!r} refused: {REFUSE_SCHEMA}")

    with running_chat_server(responder=respond) as server:
        yield server


@pytest.fixture
async def clients() -> AsyncIterator[list[OpenAIEndpointClient]]:
    made: list[OpenAIEndpointClient] = []
    yield made
    for client in made:
        await client.close()


def client_for(
    server: ChatServer, made: list[OpenAIEndpointClient], **settings: Any
) -> OpenAIEndpointClient:
    endpoint = EndpointSettings(kind="openai", base_url=server.url, model="test-model", **settings)
    client = OpenAIEndpointClient(endpoint, max_tokens=40, temperature=0.0)
    made.append(client)
    return client


async def pick(client: OpenAIEndpointClient) -> Pick:
    result = await client.create(ASK, json_output=Pick)
    assert isinstance(result.content, str)
    return Pick.model_validate(json.loads(result.content))


async def test_a_server_that_refuses_json_schema_gets_json_object_with_the_schema(
    clients: list[OpenAIEndpointClient],
) -> None:
    for server in server_taking("json_object"):
        client = client_for(server, clients)  # max_retries is 2: a 500 is normally retried
        assert (await pick(client)).speaker == "analyst"
        assert [form_of(r) for r in server.chat_requests] == ["json_schema", "json_object"]
        sent = server.chat_requests[1].body["response_format"]
        assert sent["schema"]["properties"]["speaker"]["enum"] == ["analyst", "critic"]
        assert client.last_form == "json_object"
        # learnt once for the endpoint: the next client goes straight to the form that works
        again = client_for(server, clients)
        await pick(again)
        assert [form_of(r) for r in server.chat_requests][2:] == ["json_object"]


async def test_a_server_with_no_structured_output_is_asked_in_words(
    clients: list[OpenAIEndpointClient],
) -> None:
    for server in server_taking("prompt", status=400):
        client = client_for(server, clients)
        assert (await pick(client)).reason == "the facts need weighing"
        forms = [form_of(r) for r in server.chat_requests]
        assert forms == ["json_schema", "json_object", "prompt"]
        last = server.chat_requests[-1].messages[-1]["content"]
        assert "Who speaks next?" in last and '"enum":["analyst","critic"]' in last
        assert client.last_form == "prompt"


async def test_a_server_that_takes_json_schema_is_sent_it_once(
    clients: list[OpenAIEndpointClient],
) -> None:
    for server in server_taking("json_schema"):
        client = client_for(server, clients)
        await pick(client)
        assert [form_of(r) for r in server.chat_requests] == ["json_schema"]
        assert server.chat_requests[0].body["response_format"]["json_schema"]["strict"] is True


async def test_a_form_fixed_in_the_settings_is_never_changed_and_its_refusal_is_clear(
    clients: list[OpenAIEndpointClient],
) -> None:
    for server in server_taking("json_object"):
        client = client_for(server, clients, structured_output="json_schema")
        with pytest.raises(ConfigError, match="structured_output = 'json_schema' is refused"):
            await pick(client)
        assert [form_of(r) for r in server.chat_requests] == ["json_schema"]  # not retried
        fixed = client_for(server, clients, structured_output="json_object")
        await pick(fixed)
        assert form_of(server.chat_requests[-1]) == "json_object"


async def test_a_passing_server_error_is_still_retried_not_taken_for_a_refusal(
    clients: list[OpenAIEndpointClient],
) -> None:
    replies = iter([Reply(status=503, error="overloaded, try again"), Reply(text=PICK)])
    with running_chat_server(responder=lambda _request: next(replies)) as server:
        client = client_for(server, clients, backoff_initial_s=0.0)
        await pick(client)
        assert [form_of(r) for r in server.chat_requests] == ["json_schema", "json_schema"]


def test_a_refusal_is_told_from_a_fault_by_status_and_words() -> None:
    assert refused(500, REFUSE_SCHEMA)
    assert refused(400, "response_format type json_schema is not supported")
    assert refused(422, "unknown field: json_schema")
    assert not refused(500, "internal error: CUDA out of memory")
    assert not refused(429, "response_format: rate limited")
    assert not refused(503, "json_schema backend overloaded")


def verdict_client(server: ChatServer, made: list[OpenAIEndpointClient]) -> OpenAIEndpointClient:
    endpoint = EndpointSettings(kind="openai", base_url=server.url, model="test-model")
    client = OpenAIEndpointClient(
        endpoint, max_tokens=40, temperature=0.0, reply_grammar=VERDICT_GRAMMAR
    )
    made.append(client)
    return client


async def test_a_verdict_grammar_goes_to_servers_that_take_it_and_not_to_others(
    clients: list[OpenAIEndpointClient],
) -> None:
    def grammar_of(request: Request) -> object:
        return request.body.get("grammar") if isinstance(request.body, dict) else None

    with running_chat_server(default="REVISE: say what deliveries need.") as taking:
        await verdict_client(taking, clients).create(ASK)
        assert grammar_of(taking.chat_requests[0]) == VERDICT_GRAMMAR

    def refuse_grammar(request: Request) -> Reply:
        if grammar_of(request) is not None:
            return Reply(status=400, error="Unrecognized request argument supplied: grammar")
        return Reply(text="ACCEPT: sound.")

    with running_chat_server(responder=refuse_grammar) as other:
        first = await verdict_client(other, clients).create(ASK)
        second = await verdict_client(other, clients).create(ASK)
        assert (first.content, second.content) == ("ACCEPT: sound.", "ACCEPT: sound.")
        sent = [grammar_of(r) is not None for r in other.chat_requests]
        assert sent == [True, False, False]  # refused once, then never sent again
