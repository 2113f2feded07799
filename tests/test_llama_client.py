"""The embedded-model client, run against the real SmolLM2 model (no mocks).

Pure pieces (message rendering, path checks) run without the model; the rest is marked
``model`` and loads the GGUF once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import ToolSchema
from pydantic import BaseModel, Field

from roundtable.agents.llama_client import (
    WORKER_THREAD_NAME,
    EmbeddedModelSettings,
    LlamaChatClient,
    LlamaEngine,
    render_messages,
)
from roundtable.agents.usage import cached_of
from roundtable.common.errors import ConfigError, ModelError

F = TypeVar("F", bound=Callable[..., Any])
NAMES = ("researcher", "analyst", "critic", "writer")
NAME_GRAMMAR = 'root ::= "researcher" | "analyst" | "critic" | "writer"'
DEBATE: list[LLMMessage] = [
    SystemMessage(content="You are the writer in a debate. Answer in two or three sentences."),
    UserMessage(content="Should cities ban cars from their centres?", source="user"),
    UserMessage(content="Cars cause most of the noise and air pollution there.", source="analyst"),
]
STORY: list[LLMMessage] = [
    UserMessage(
        content="Write a long story about a dragon who learns to bake bread.", source="user"
    )
]


def model_test(fn: F) -> F:
    """Runs the real model; a hang fails the test instead of the whole run."""
    return pytest.mark.timeout(60)(pytest.mark.model(fn))  # type: ignore[no-any-return]


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER_THREAD_NAME]


@pytest.fixture(scope="module")
def engine() -> LlamaEngine:
    return LlamaEngine.load(EmbeddedModelSettings())


def client(engine: LlamaEngine, **kw: Any) -> LlamaChatClient:
    args: dict[str, Any] = {"max_tokens": 24, "temperature": 0.7, "repeat_penalty": 1.15}
    return LlamaChatClient(engine, **(args | kw))


async def collect(
    client: LlamaChatClient, messages: list[LLMMessage], **kw: Any
) -> tuple[list[str], CreateResult]:
    chunks: list[str] = []
    async for item in client.create_stream(messages, **kw):
        if isinstance(item, CreateResult):
            return chunks, item
        chunks.append(item)
    raise AssertionError("the stream ended without a CreateResult")


# --- pure ---


def test_render_keeps_speakers_and_merges_adjacent_system_messages() -> None:
    messages: list[LLMMessage] = [
        SystemMessage(content="You are the critic."),
        SystemMessage(content="Relevant notes: none."),
        UserMessage(content="Is tea better than coffee?", source="user"),
        UserMessage(content="Tea has less caffeine.", source="analyst"),
        AssistantMessage(content="REVISE: cite a source.", source="critic"),
        SystemMessage(content="Keep it short."),
    ]
    assert render_messages(messages) == [
        {"role": "system", "content": "You are the critic.\n\nRelevant notes: none."},
        {"role": "user", "content": "user: Is tea better than coffee?"},
        {"role": "user", "content": "analyst: Tea has less caffeine."},
        {"role": "assistant", "content": "REVISE: cite a source."},
        {"role": "system", "content": "Keep it short."},
    ]


def test_render_refuses_tool_traffic() -> None:
    call = FunctionCall(id="1", name="search", arguments="{}")
    with pytest.raises(ValueError, match="no tool calling"):
        render_messages([AssistantMessage(content=[call], source="writer")])
    result = FunctionExecutionResult(call_id="1", content="x", name="search")
    with pytest.raises(ValueError, match="no tool calling"):
        render_messages([FunctionExecutionResultMessage(content=[result])])


def test_missing_model_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ConfigError) as caught:
        LlamaEngine.load(EmbeddedModelSettings(model_path=missing))
    assert str(caught.value) == f"model file missing or unreadable: {missing}"


# --- real model ---


@model_test
def test_engine_is_shared_and_prompt_names_speakers(engine: LlamaEngine) -> None:
    assert LlamaEngine.load(EmbeddedModelSettings()) is engine
    prompt = engine.render_prompt(render_messages(DEBATE))
    assert prompt == (
        "<|im_start|>system\nYou are the writer in a debate. Answer in two or three sentences."
        "<|im_end|>\n<|im_start|>user\nuser: Should cities ban cars from their centres?<|im_end|>\n"
        "<|im_start|>user\nanalyst: Cars cause most of the noise and air pollution there."
        "<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    c = client(engine)
    assert c.count_tokens(DEBATE) == len(engine.prompt_tokens(render_messages(DEBATE)))
    assert c.remaining_tokens(DEBATE) == engine.n_ctx - c.count_tokens(DEBATE) == 4096 - 58
    assert engine.count("analyst") >= 1


@model_test
async def test_stream_yields_chunks_then_one_result(engine: LlamaEngine) -> None:
    c = client(engine)
    chunks, result = await collect(c, DEBATE)
    assert len(chunks) >= 3 and all(isinstance(chunk, str) for chunk in chunks)
    assert result.content == "".join(chunks)
    assert result.usage.prompt_tokens == c.count_tokens(DEBATE)
    assert 0 < result.usage.completion_tokens <= 24
    assert result.finish_reason in ("stop", "length") and result.cached is False
    again = await c.create(DEBATE)
    assert c.total_usage() == c.actual_usage()
    assert c.total_usage().completion_tokens == (
        result.usage.completion_tokens + again.usage.completion_tokens
    )


@model_test
async def test_a_shared_prefix_is_reported_as_cached_and_a_changed_start_is_not(
    engine: LlamaEngine,
) -> None:
    c = client(engine, max_tokens=4)
    await c.create(DEBATE)
    longer = [*DEBATE, UserMessage(content="Buses would need to run more often.", source="critic")]
    result = await c.create(longer)
    shared = c.count_tokens(DEBATE) - 4  # all but the closing generation prompt
    assert shared <= cached_of(result.usage) < result.usage.prompt_tokens
    other = [SystemMessage(content="You are a critic. Answer REVISE or ACCEPT."), *longer[1:]]
    result = await c.create(other)
    assert cached_of(result.usage) <= 5  # "<|im_start|>system\nYou are", then it differs
    assert cached_of(c.total_usage()) >= shared


@model_test
async def test_each_caller_continues_from_its_own_saved_state(engine: LlamaEngine) -> None:
    """Two roles take turns on one context: each evaluates only what was added since its own
    previous call, although the other role's prompt (another system prompt) came between."""
    first, second = client(engine, max_tokens=2), client(engine, max_tokens=2)
    history: list[LLMMessage] = list(DEBATE[1:])
    roles = {first: "You are the analyst. Weigh the options.", second: "You are the critic."}
    restores = engine.states.restores
    for n in range(3):
        for speaker, system in roles.items():
            before = speaker.count_tokens([SystemMessage(content=system), *history])
            result = await speaker.create([SystemMessage(content=system), *history])
            if n:  # from the second round on: only the new turns are read
                assert cached_of(result.usage) >= before - 40, (n, result.usage)
            history.append(UserMessage(content=f"Point {n}: buses need lanes.", source="critic"))
    assert engine.states.restores >= restores + 4


@model_test
async def test_max_tokens_is_capped_per_client_and_per_call(engine: LlamaEngine) -> None:
    result = await client(engine, max_tokens=8).create(STORY)
    assert result.usage.completion_tokens <= 8
    assert result.finish_reason == "length"
    result = await client(engine).create(STORY, extra_create_args={"max_tokens": 3})
    assert result.usage.completion_tokens <= 3


@model_test
async def test_grammar_gives_a_valid_name_every_time(engine: LlamaEngine) -> None:
    c = client(engine, max_tokens=8)
    ask = "Who should speak next: researcher, analyst, critic or writer? Answer with one name."
    picks = [
        (
            await c.create(
                [*DEBATE, UserMessage(content=ask, source="manager")],
                extra_create_args={"grammar": NAME_GRAMMAR},
            )
        ).content
        for _ in range(8)
    ]
    assert all(pick in NAMES for pick in picks), picks


@model_test
async def test_reply_grammar_forces_the_critic_verdict(engine: LlamaEngine) -> None:
    verdict = 'root ::= ("ACCEPT" | "REVISE") ": " [^\\n]+'
    c = client(engine, max_tokens=16, reply_grammar=verdict)
    result = await c.create(DEBATE)
    assert isinstance(result.content, str)
    assert result.content.startswith(("ACCEPT: ", "REVISE: ")), result.content
    with pytest.raises(ConfigError, match="invalid GBNF"):
        client(engine, reply_grammar="root ::= undefined_rule")


class Pick(BaseModel):
    speaker: Literal["researcher", "analyst", "critic", "writer"]
    reason: str = Field(max_length=20)


@model_test
async def test_json_output_follows_the_schema(engine: LlamaEngine) -> None:
    c = client(engine, max_tokens=48)
    ask = UserMessage(content="Pick the next speaker as JSON.", source="manager")
    result = await c.create([*DEBATE, ask], json_output=Pick)
    assert isinstance(result.content, str)
    assert Pick.model_validate_json(result.content).speaker in NAMES
    # Plain JSON mode has no length bound: a capped reply is a JSON prefix.
    plain = await c.create([*DEBATE, ask], json_output=True, extra_create_args={"max_tokens": 12})
    assert isinstance(plain.content, str) and plain.content.startswith("{")


@model_test
async def test_stop_signal_ends_the_reply_softly(engine: LlamaEngine) -> None:
    stop = threading.Event()
    c = client(engine, max_tokens=120, stop_signal=stop)
    chunks: list[str] = []
    result: CreateResult | None = None
    async for item in c.create_stream(STORY):
        if isinstance(item, CreateResult):
            result = item
        else:
            chunks.append(item)
            if len(chunks) == 3:
                stop.set()
    assert result is not None and c.last_interrupted
    assert result.finish_reason == "stop"
    assert result.content == "".join(chunks)
    assert 3 <= result.usage.completion_tokens < 20
    assert not workers()
    stop.clear()  # the conversation owns the signal and clears it for the next turn
    after = await c.create(DEBATE, extra_create_args={"max_tokens": 8})
    assert after.usage.completion_tokens > 0 and not c.last_interrupted


@model_test
async def test_cancelling_the_task_stops_the_worker(engine: LlamaEngine) -> None:
    c = client(engine, max_tokens=120)
    three = asyncio.Event()

    async def consume() -> None:
        seen = 0
        async for _ in c.create_stream(STORY):
            seen += 1
            if seen == 3:
                three.set()

    task = asyncio.create_task(consume())
    await three.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not workers()
    after = await c.create(DEBATE, extra_create_args={"max_tokens": 8})
    assert after.usage.completion_tokens > 0


@model_test
async def test_cancellation_token_stops_the_worker(engine: LlamaEngine) -> None:
    c = client(engine, max_tokens=120)
    token = CancellationToken()
    seen = 0
    with pytest.raises(asyncio.CancelledError):
        async for _ in c.create_stream(STORY, cancellation_token=token):
            seen += 1
            if seen == 3:
                token.cancel()
    assert seen < 20
    assert not workers()
    after = await c.create(DEBATE, extra_create_args={"max_tokens": 8})
    assert after.usage.completion_tokens > 0


@model_test
async def test_leaving_the_stream_early_stops_the_worker(engine: LlamaEngine) -> None:
    c = client(engine, max_tokens=120)
    async with contextlib.aclosing(c.create_stream(STORY)) as stream:
        async for _ in stream:
            break
    assert not workers()


@model_test
async def test_two_clients_share_one_engine_concurrently(engine: LlamaEngine) -> None:
    first, second = client(engine, max_tokens=24), client(engine, max_tokens=24)
    start = time.monotonic()
    a, b = await asyncio.gather(first.create(DEBATE), second.create(STORY))
    assert a.usage.completion_tokens > 0 and b.usage.completion_tokens > 0
    assert time.monotonic() - start < 20
    assert not workers()


@model_test
async def test_prompt_that_cannot_fit_is_a_model_error(engine: LlamaEngine) -> None:
    with pytest.raises(ModelError, match=r"58 tokens \+ max_tokens 4096 exceeds .* 4096"):
        await client(engine, max_tokens=4096).create(DEBATE)
    huge = [UserMessage(content="word " * 5000, source="user")]
    with pytest.raises(ModelError, match="exceeds the model context"):
        await client(engine).create(huge)
    assert not workers()


@model_test
async def test_tools_and_unknown_arguments_are_refused(engine: LlamaEngine) -> None:
    c = client(engine)
    with pytest.raises(ValueError, match="no tool calling"):
        await c.create(DEBATE, tools=[ToolSchema(name="search")])
    with pytest.raises(ValueError, match="unsupported extra_create_args"):
        await c.create(DEBATE, extra_create_args={"top_q": 1})
    assert c.model_info["family"] == "smollm2" and c.model_info["json_output"]
