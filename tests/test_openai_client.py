"""``agents.openai_client`` against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

import pytest
from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from pydantic import BaseModel, SecretStr

from roundtable.agents.endpoint_errors import EndpointStatusError, check_reachable
from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.openai_client import OpenAIEndpointClient, with_speaker_names
from roundtable.agents.usage import CachedUsage, cached_of
from roundtable.common.errors import ConfigError, InfraError, ModelError
from roundtable.common.tokens import PER_MESSAGE_OVERHEAD, TiktokenCounter
from tests.support.chat_server import ChatServer, Reply, running_chat_server, word_pieces

pytestmark = pytest.mark.timeout(30)

QUESTION = [UserMessage(content="Is the sky blue?", source="user")]
LONG_REPLY = " ".join(f"word{i}" for i in range(40))

MakeClient = Callable[..., OpenAIEndpointClient]


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with running_chat_server() as chat_server:
        yield chat_server


@pytest.fixture
async def make_client(server: ChatServer) -> AsyncIterator[MakeClient]:
    """Builds clients for ``server`` (or another URL) and closes them all afterwards."""
    made: list[OpenAIEndpointClient] = []

    def make(
        *,
        base_url: str | None = None,
        stop_signal: threading.Event | None = None,
        **settings: Any,
    ) -> OpenAIEndpointClient:
        # These tests pin one request's behaviour: no retries unless a test asks for them
        # (retries are tested in test_resilience.py).
        settings.setdefault("max_retries", 0)
        endpoint = EndpointSettings(
            kind="openai", base_url=base_url or server.url, model="test-model", **settings
        )
        client = OpenAIEndpointClient(
            endpoint, name="default", max_tokens=64, temperature=0.3, stop_signal=stop_signal
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def collect(
    client: OpenAIEndpointClient, messages: Sequence[LLMMessage] = QUESTION, **kwargs: Any
) -> tuple[list[str], CreateResult]:
    chunks: list[str] = []
    async for item in client.create_stream(messages, **kwargs):
        if isinstance(item, CreateResult):
            return chunks, item
        chunks.append(item)
    raise AssertionError("the stream ended without a CreateResult")


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_stream_round_trip(server: ChatServer, make_client: MakeClient) -> None:
    server.enqueue("The sky is blue on a clear day.")
    client = make_client()

    chunks, result = await collect(client)

    assert chunks == word_pieces("The sky is blue on a clear day.")
    assert result.content == "".join(chunks) == "The sky is blue on a clear day."
    assert result.finish_reason == "stop"
    # The server counts words in the prompt (with the speaker prefix) and pieces in the reply.
    assert result.usage == CachedUsage(prompt_tokens=5, completion_tokens=8)
    assert client.total_usage() == result.usage
    assert client.last_interrupted is False
    (request,) = server.chat_requests
    assert request.body == {
        "model": "test-model",
        "messages": [{"role": "user", "name": "user", "content": "user: Is the sky blue?"}],
        "stream": True,
        "max_tokens": 64,
        "temperature": 0.3,
        "stream_options": {"include_usage": True},
    }
    assert request.headers["authorization"] == "Bearer not-needed"


async def test_create_collects_the_stream_and_sends_the_key(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue("Yes.")
    client = make_client(api_key=SecretStr("sk-test"))

    result = await client.create(QUESTION)

    assert (result.content, result.usage) == ("Yes.", CachedUsage(5, 1))
    assert server.chat_requests[0].headers["authorization"] == "Bearer sk-test"


async def test_usage_is_counted_when_the_server_reports_none(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply("The sky is blue.", usage=False))
    client = make_client()

    _, result = await collect(client)

    assert result.usage == RequestUsage(
        prompt_tokens=client.count_tokens(QUESTION),
        completion_tokens=TiktokenCounter()("The sky is blue."),
    )


async def test_interrupt_mid_stream_ends_early_and_the_next_call_works(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply(LONG_REPLY, chunk_delay=0.05), "Next answer.")
    stop = threading.Event()
    client = make_client(stop_signal=stop)

    started = time.monotonic()
    chunks: list[str] = []
    result: CreateResult | None = None
    async for item in client.create_stream(QUESTION):
        if isinstance(item, CreateResult):
            result = item
        else:
            chunks.append(item)
            if len(chunks) == 3:
                stop.set()

    assert time.monotonic() - started < 1.5  # the whole reply takes 2 s
    assert result is not None
    assert (result.content, result.finish_reason) == ("word0 word1 word2", "stop")
    assert client.last_interrupted is True
    # The client closed the connection: the server noticed and stopped sending.
    request = server.chat_requests[0]
    assert request.done.wait(2)
    assert request.disconnected is True

    stop.clear()
    result = await client.create(QUESTION)
    assert (result.content, client.last_interrupted) == ("Next answer.", False)


@pytest.mark.parametrize(
    "stall",
    [Reply("never sent", delay=float("inf")), Reply("never sent", chunk_delay=float("inf"))],
    ids=["before-headers", "before-first-chunk"],
)
async def test_interrupt_reaches_a_stalled_server(
    server: ChatServer, make_client: MakeClient, stall: Reply
) -> None:
    server.enqueue(stall)
    stop = threading.Event()
    client = make_client(stop_signal=stop)
    threading.Timer(0.2, stop.set).start()

    started = time.monotonic()
    chunks, result = await collect(client)

    assert time.monotonic() - started < 1.5
    assert (chunks, result.content, client.last_interrupted) == ([], "", True)


async def test_cancellation_closes_the_stream(server: ChatServer, make_client: MakeClient) -> None:
    server.enqueue(Reply(LONG_REPLY, chunk_delay=0.05), "After.")
    token = CancellationToken()
    client = make_client()
    chunks: list[str] = []

    with pytest.raises(asyncio.CancelledError):
        async for item in client.create_stream(QUESTION, cancellation_token=token):
            chunks.append(str(item))
            if len(chunks) == 2:
                token.cancel()

    assert chunks == ["word0", " word1"]
    request = server.chat_requests[0]
    assert request.done.wait(2)
    assert request.disconnected is True
    assert (await client.create(QUESTION)).content == "After."


async def test_a_stop_set_before_the_call_sends_nothing(
    server: ChatServer, make_client: MakeClient
) -> None:
    stop = threading.Event()
    stop.set()
    client = make_client(stop_signal=stop)

    chunks, result = await collect(client)

    assert (chunks, result.content, result.finish_reason) == ([], "", "stop")
    assert client.last_interrupted is True
    assert server.requests == []


async def test_speaker_names_reach_the_server(server: ChatServer, make_client: MakeClient) -> None:
    server.enqueue("ok")
    messages: list[LLMMessage] = [
        SystemMessage(content="You are the critic."),
        UserMessage(content="What is 2+2?", source="user"),
        UserMessage(content="It is 4.", source="analyst"),
        AssistantMessage(content="Agreed.", source="critic"),
        UserMessage(content="Dr. Who: Rather 5.", source="Dr. Who"),
    ]

    await make_client().create(messages)

    assert server.chat_requests[0].messages == [
        {"role": "system", "content": "You are the critic."},
        {"role": "user", "name": "user", "content": "user: What is 2+2?"},
        {"role": "user", "name": "analyst", "content": "analyst: It is 4."},
        {"role": "assistant", "content": "Agreed."},
        {"role": "user", "name": "Dr__Who", "content": "Dr. Who: Rather 5."},
    ]


def test_with_speaker_names_leaves_the_caller_messages_alone() -> None:
    original = UserMessage(content="It is 4.", source="analyst")

    (prepared,) = with_speaker_names([original])

    assert prepared == UserMessage(content="analyst: It is 4.", source="analyst")
    assert original.content == "It is 4."


class Pick(BaseModel):
    speaker: Literal["analyst", "critic"]
    reason: str


async def test_json_output_model_is_sent_as_a_json_schema(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue('{"speaker": "critic", "reason": "unchecked claim"}')

    result = await make_client().create(QUESTION, json_output=Pick)

    assert isinstance(result.content, str)
    assert Pick.model_validate_json(result.content) == Pick(
        speaker="critic", reason="unchecked claim"
    )
    response_format = server.chat_requests[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Pick"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"]["speaker"]["enum"] == ["analyst", "critic"]
    assert schema["required"] == ["speaker", "reason"]
    assert schema["additionalProperties"] is False


async def test_unreachable_endpoint_is_an_infra_error_within_seconds(
    make_client: MakeClient,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    endpoint = EndpointSettings(kind="openai", base_url=url)
    expected = f"endpoint 'default' at {url}: cannot connect ("

    started = time.monotonic()
    with pytest.raises(InfraError) as preflight:
        await check_reachable(endpoint, "default")
    with pytest.raises(InfraError) as call:
        await make_client(base_url=url).create(QUESTION)

    assert time.monotonic() - started < 5
    assert str(preflight.value).startswith(expected)
    assert str(call.value).startswith(expected)
    assert "\n" not in str(call.value)


async def test_check_reachable_passes_a_live_server_and_names_a_refused_key(
    server: ChatServer,
) -> None:
    endpoint = EndpointSettings(kind="openai", base_url=server.url)
    await check_reachable(endpoint, "local")
    assert server.requests[-1].path == "/v1/models"

    server.responder = lambda request: Reply.fail(401, "Invalid API key")
    with pytest.raises(ConfigError, match=r"^endpoint 'local' at .*API key was refused"):
        await check_reachable(endpoint, "local")


async def test_check_reachable_gives_up_on_a_hung_server(server: ChatServer) -> None:
    server.responder = lambda request: Reply(delay=float("inf"))
    endpoint = EndpointSettings(kind="openai", base_url=server.url)

    started = time.monotonic()
    with pytest.raises(InfraError, match=r"no answer within 0.3 s$"):
        await check_reachable(endpoint, "default", timeout_s=0.3)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("reply", "family", "text"),
    [
        (Reply.fail(401, "Incorrect API key provided"), ConfigError, "API key was refused"),
        (Reply.fail(403, "Forbidden"), ConfigError, "API key was refused"),
        (
            Reply.fail(404, "The model `test-model` does not exist", code="model_not_found"),
            ConfigError,
            "model 'test-model' not found (HTTP 404: The model `test-model` does not exist)",
        ),
        (
            Reply.fail(
                400,
                "This model's maximum context length is 8192 tokens.",
                code="context_length_exceeded",
            ),
            ModelError,
            "the prompt is longer than the model's context",
        ),
        (
            Reply.fail(400, "the request exceeds the available context size"),
            ModelError,
            "the prompt is longer than the model's context",
        ),
        (Reply.fail(500, "boom"), EndpointStatusError, "HTTP 500: boom"),
        (Reply.fail(400, "bad temperature"), EndpointStatusError, "HTTP 400: bad temperature"),
    ],
)
async def test_http_errors_map_to_our_families(
    server: ChatServer,
    make_client: MakeClient,
    reply: Reply,
    family: type[Exception],
    text: str,
) -> None:
    server.enqueue(reply)

    with pytest.raises(family) as raised:
        await make_client().create(QUESTION)

    message = str(raised.value)
    assert message.startswith(f"endpoint 'default' at {server.url}: ")
    assert text in message
    assert "\n" not in message
    assert len(server.chat_requests) == 1  # the SDK made no retry of its own


async def test_rate_limit_keeps_status_and_retry_after(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply.fail(429, "slow down", headers={"Retry-After": "2"}))

    with pytest.raises(EndpointStatusError) as raised:
        await make_client().create(QUESTION)

    assert isinstance(raised.value, InfraError)
    assert (raised.value.status, raised.value.retry_after) == (429, 2.0)


async def test_a_hung_server_times_out_as_infra_error(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply("late", delay=float("inf")))

    started = time.monotonic()
    with pytest.raises(InfraError, match=r": no answer within 0.3 s$"):
        await make_client(timeout_s=0.3).create(QUESTION)
    assert time.monotonic() - started < 2


async def test_a_cut_connection_mid_stream_is_an_infra_error(
    server: ChatServer, make_client: MakeClient
) -> None:
    server.enqueue(Reply(LONG_REPLY, cut_after=2))
    chunks: list[str] = []

    with pytest.raises(InfraError, match="connection lost mid-reply"):
        async for item in make_client().create_stream(QUESTION):
            assert isinstance(item, str)
            chunks.append(item)

    assert chunks == ["word0", " word1"]


def test_count_tokens_works_offline_for_any_model_name() -> None:
    endpoint = EndpointSettings(
        kind="openai", base_url="http://127.0.0.1:9/v1", model="my-local-llama"
    )
    client = OpenAIEndpointClient(endpoint, max_tokens=64, temperature=0.0)
    messages: list[LLMMessage] = [
        SystemMessage(content="Be brief."),
        UserMessage(content="hello world", source="analyst"),
    ]
    count = TiktokenCounter()

    expected = 2 * PER_MESSAGE_OVERHEAD + count("Be brief.") + count("analyst: hello world")
    assert client.count_tokens(messages) == expected
    assert client.remaining_tokens(messages) == 8192 - expected
    assert client.model_info["family"] == "unknown"

    sized = OpenAIEndpointClient(
        endpoint.model_copy(update={"context_window": 1000}), max_tokens=64, temperature=0.0
    )
    assert sized.remaining_tokens(messages) == 1000 - expected


async def test_the_stock_stream_is_not_closed_by_aclose(server: ChatServer) -> None:
    """Why we stream ourselves: closing the stock client's stream early leaves the HTTP
    response open, so the server keeps generating. If this starts failing, autogen-ext
    fixed it and our own loop could go."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from roundtable.agents.openai_client import endpoint_model_info

    server.enqueue(Reply(LONG_REPLY, chunk_delay=0.05))
    stock = OpenAIChatCompletionClient(
        model="test-model", base_url=server.url, api_key="x", model_info=endpoint_model_info()
    )
    stream = stock.create_stream(QUESTION)
    async for _ in stream:
        break
    await stream.aclose()

    request = server.chat_requests[0]
    assert not request.done.wait(0.5)
    assert json.dumps(request.messages) == json.dumps(
        [{"role": "user", "name": "user", "content": "Is the sky blue?"}]
    )
    server.stop()  # ends the stream before the stock client is dropped
    await asyncio.sleep(0)
    await stock.close()


@pytest.mark.parametrize(
    ("reported", "recorded"),
    [(3, 3), (None, 0), (-1, 0), ("three", 0), (10**9, 5)],
    ids=["openai-shape", "not-reported", "negative", "not-a-number", "more-than-the-prompt"],
)
async def test_cached_prompt_tokens_are_read_from_openai_usage_and_checked(
    server: ChatServer, make_client: MakeClient, reported: object, recorded: int
) -> None:
    server.enqueue(Reply("Yes.", cached_tokens=reported))
    client = make_client()

    _, result = await collect(client)

    assert (result.usage.prompt_tokens, cached_of(result.usage)) == (5, recorded)
    assert cached_of(client.total_usage()) == recorded
