"""``/v1`` with real OpenAI clients: the official ``openai`` SDK and the ``llm`` CLI.

A real uvicorn server on loopback serves ``/api`` and ``/v1`` (sharing one run registry, as
on the UI's server); the teams speak from a script file on a ``scripted`` endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from roundtable.api import ApiSettings, create_api, create_openai_api, mount
from roundtable.api.openai_compat import MAX_BACKGROUND_CHARS, TRANSCRIPT_HEADER
from roundtable.common.accounts import issue_token
from roundtable.common.tokens import TiktokenCounter
from roundtable.transcripts import HUMAN, Event, MessageEvent, StopEvent, load
from tests.support.api_server import AUTH, TOKEN, serving
from tests.test_api import DEBATE, settings_for

QUESTION = "Should our town build a tram?"
ANSWER = "Yes, in stages, with delivery windows."


class Server:
    def __init__(self, url: str, transcripts: Path) -> None:
        self.url = url
        self.v1 = f"{url}/v1"
        self.transcripts = transcripts

    def client(self, token: str = TOKEN) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.v1, api_key=token, max_retries=0, timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    from fastapi import FastAPI

    settings = settings_for(tmp_path, DEBATE)
    api = ApiSettings(api_token=TOKEN)
    host = FastAPI()
    rest = create_api(settings, api)
    mount(host, rest, "/api")
    mount(host, create_openai_api(settings, api, rest.state.registry), "/v1")
    with serving(host) as (port, _):
        yield Server(f"http://127.0.0.1:{port}", settings.transcripts_dir)


def ask(question: str = QUESTION) -> list[Any]:
    return [{"role": "user", "content": question}]


def saved_turns(server: Server, run_id: str) -> list[MessageEvent]:
    return saved_turns_in(load(server.transcripts / f"{run_id}.jsonl").events)


def saved_turns_in(events: Sequence[Event]) -> list[MessageEvent]:
    return [e for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]


def ledger_total(server: Server, run_id: str) -> tuple[int, int]:
    events = load(server.transcripts / f"{run_id}.jsonl").events
    stop = next(e for e in events if isinstance(e, StopEvent))
    assert any(row.speaker == "manager" for row in stop.ledger)
    return (
        sum(r.prompt_tokens for r in stop.ledger),
        sum(r.completion_tokens for r in stop.ledger),
    )


# -- models ---------------------------------------------------------------------------------------


def test_the_models_are_each_team_and_each_team_with_each_mode(server: Server) -> None:
    ids = [model.id for model in server.client().models.list()]
    assert "roundtable/default" in ids
    assert "roundtable/default:debate" in ids
    assert "roundtable/policy" in ids
    assert "roundtable/policy:panel" in ids
    assert all(i.startswith("roundtable/") for i in ids)
    assert len(ids) == len(set(ids))


# -- one reply ------------------------------------------------------------------------------------


def test_a_completion_answers_with_the_debate_as_its_reasoning(server: Server) -> None:
    raw = server.client().chat.completions.with_raw_response.create(
        model="roundtable/default", messages=ask()
    )
    completion = raw.parse()
    run_id = raw.headers[TRANSCRIPT_HEADER]
    message = completion.choices[0].message
    assert message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    assert extra["roundtable"] == {
        "transcript_id": run_id,
        "stop_code": "accepted",
        "stop_reason": extra["roundtable"]["stop_reason"],
    }
    reasoning = (message.model_extra or {})["reasoning_content"]
    turns = saved_turns(server, run_id)
    assert [t.speaker for t in turns] == ["researcher", "analyst", "writer", "critic"]
    for turn in turns:
        assert f"**{turn.speaker}** (turn {turn.turn}):\n{turn.content}" in reasoning
    assert reasoning.index("**researcher**") < reasoning.index("**critic**")
    prompt, done = ledger_total(server, run_id)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, done)
    assert completion.usage.total_tokens == prompt + done > 0
    assert load(server.transcripts / f"{run_id}.jsonl").header.question == QUESTION


def test_earlier_messages_are_the_questions_bounded_background(server: Server) -> None:
    history = [
        {"role": "system", "content": "You help a town council."},
        {"role": "user", "content": "old " * 3000},
        {"role": "assistant", "content": [{"type": "text", "text": "Trams cost 30M."}]},
        {"role": "user", "content": QUESTION},
    ]
    raw = server.client().chat.completions.with_raw_response.create(
        model="roundtable/default", messages=history
    )
    question = load(server.transcripts / f"{raw.headers[TRANSCRIPT_HEADER]}.jsonl").header.question
    assert question.startswith(QUESTION + "\n\nEarlier in this conversation")
    assert "> assistant: Trams cost 30M." in question
    assert "> system: You help a town council." in question
    assert question.index("> system:") < question.index("> user: old") < question.index("30M")
    assert len(question) < len(QUESTION) + MAX_BACKGROUND_CHARS + 200


def test_max_tokens_caps_the_answer_and_extra_fields_set_the_runs_limits(server: Server) -> None:
    client = server.client()
    capped = client.chat.completions.create(
        model="roundtable/default", messages=ask(), max_tokens=3
    )
    encoding = TiktokenCounter().encoding
    assert capped.choices[0].message.content == encoding.decode(encoding.encode(ANSWER)[:3])
    assert capped.choices[0].finish_reason == "length"

    raw = client.chat.completions.with_raw_response.create(
        model="roundtable/default",
        messages=ask(),
        extra_body={"max_turns": 1, "budget": {"max_tokens": 100_000_000}},
    )
    completion = raw.parse()
    assert (completion.model_extra or {})["roundtable"]["stop_code"] == "max_turns"
    turns = saved_turns(server, raw.headers[TRANSCRIPT_HEADER])
    assert [t.speaker for t in turns] == ["researcher"]
    assert completion.choices[0].message.content == turns[0].content


# -- streaming ------------------------------------------------------------------------------------


def test_a_stream_gives_the_turns_as_reasoning_then_the_answer(server: Server) -> None:
    stream = server.client().chat.completions.create(
        model="roundtable/default",
        messages=ask(),
        stream=True,
        stream_options={"include_usage": True},
    )
    kinds: list[str] = []
    reasoning: list[str] = []
    content: list[str] = []
    finish: list[str] = []
    usage = None
    run_id = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            said = (choice.delta.model_extra or {}).get("reasoning_content")
            if said:
                kinds.append("reasoning")
                reasoning.append(said)
            if choice.delta.content:
                kinds.append("content")
                content.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
                run_id = (chunk.model_extra or {})["roundtable"]["transcript_id"]
    assert run_id is not None
    assert "".join(content) == ANSWER
    assert len(content) > 1  # the answer streams in pieces
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")  # reasoning first
    turns = saved_turns(server, run_id)
    assert len(reasoning) == len(turns) + 1  # a delta per turn, and the stop
    for delta, turn in zip(reasoning, turns, strict=False):
        assert delta == f"**{turn.speaker}** (turn {turn.turn}):\n{turn.content}\n\n"
    assert reasoning[-1].startswith("Stopped (accepted): ")
    assert finish == ["stop"]
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == ledger_total(
        server, run_id
    )


def test_the_stream_is_openai_server_sent_events_ending_in_done(server: Server) -> None:
    body = {"model": "roundtable/default", "messages": ask(), "stream": True}
    with httpx.stream(
        "POST", f"{server.v1}/chat/completions", json=body, headers=AUTH, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        run_id = response.headers[TRANSCRIPT_HEADER]
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert {c["id"] for c in chunks} == {f"chatcmpl-{run_id}"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "usage" not in chunks[-1]  # not asked for


def test_a_client_that_leaves_mid_stream_stops_its_run(tmp_path: Path) -> None:
    from fastapi import FastAPI

    slow = {**DEBATE, "chunk_delay": 0.3}  # each reply trickles: the run outlasts the client
    settings = settings_for(tmp_path, slow)
    api = ApiSettings(api_token=TOKEN)
    host = FastAPI()
    registry = create_api(settings, api).state.registry
    mount(host, create_openai_api(settings, api, registry), "/v1")
    with serving(host) as (port, _):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN)
        raw = client.chat.completions.with_raw_response.create(
            model="roundtable/default", messages=ask(), stream=True
        )
        run_id = raw.headers[TRANSCRIPT_HEADER]
        stream = raw.parse()
        first = next(iter(stream))
        stream.close()
        deadline = time.monotonic() + 30
        while registry.active() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert "reasoning_content" in (first.choices[0].delta.model_extra or {})
    events = load(settings.transcripts_dir / f"{run_id}.jsonl").events
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    assert (stop.code, stop.reason) == ("user_stop", "the client went away")
    assert len(saved_turns_in(events)) < 4  # it did not run to the critic's verdict


# -- errors ---------------------------------------------------------------------------------------


def test_an_unknown_model_is_404_in_openais_error_shape(server: Server) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        server.client().chat.completions.create(model="gpt-4o", messages=ask())
    assert caught.value.code == "model_not_found"
    assert caught.value.message.startswith("Error code: 404")
    response = httpx.post(
        f"{server.v1}/chat/completions",
        json={"model": "roundtable/nobody", "messages": ask()},
        headers=AUTH,
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error == {
        "message": "no model 'roundtable/nobody': GET /v1/models lists them",
        "type": "invalid_request_error",
        "code": "model_not_found",
        "param": None,
    }


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"model": "roundtable/default", "messages": ask(), "max_tokens": 0}, "max_tokens: "),
        ({"model": "roundtable/default", "messages": []}, "messages: "),
        ({"model": "roundtable/default", "messages": ask(), "max_turns": 999}, "max_turns: "),
        ({"model": "roundtable/default", "messages": ask(), "budget": {"turns": 1}}, "budget."),
        (
            {"model": "roundtable/default", "messages": [{"role": "assistant", "content": "x"}]},
            "messages: the last message must be the user's question",
        ),
        ({"model": "roundtable/default", "messages": ask(" ")}, "messages: the last user"),
        ({"model": "roundtable/default", "messages": ask("x" * 30_000)}, "the question is 30000"),
        ({"model": "roundtable/default", "messages": ask(), "n": 3}, "n: a team gives one answer"),
        (
            {"model": "roundtable/default", "messages": ask(), "tools": [{"type": "function"}]},
            "tools: a team calls no client tools",
        ),
        (
            {
                "model": "roundtable/default",
                "messages": ask(),
                "response_format": {"type": "json_object"},
            },
            "response_format: a team answers in text",
        ),
    ],
)
def test_a_bad_request_is_400_with_one_line_naming_the_field(
    server: Server, body: dict[str, Any], said: str
) -> None:
    response = httpx.post(f"{server.v1}/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(said), error["message"]
    assert "\n" not in error["message"]


def test_an_oversized_body_is_413_before_it_is_read(server: Server) -> None:
    body = {"model": "roundtable/default", "messages": ask("x" * 1_100_000)}
    response = httpx.post(f"{server.v1}/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "message": "the body is over 1000000 bytes",
        "type": "invalid_request_error",
        "code": "request_too_large",
        "param": None,
    }


def test_a_body_that_is_not_json_is_400(server: Server) -> None:
    response = httpx.post(
        f"{server.v1}/chat/completions",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}"])
def test_every_v1_route_without_the_token_is_401(server: Server, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in [
        ("GET", "/models"),
        ("POST", "/chat/completions"),
        ("GET", "/openapi.json"),
        ("GET", "/no-such-route"),
    ]:
        response = httpx.request(method, f"{server.v1}{path}", json={}, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        server.client("wrong-token-0123456789").models.list()
    assert not any(server.transcripts.glob("*.jsonl"))


# -- the llm CLI ----------------------------------------------------------------------------------


def test_the_llm_cli_asks_roundtable_like_any_openai_compatible_model(
    server: Server, tmp_path: Path
) -> None:
    home = tmp_path / "llm"
    home.mkdir()
    (home / "extra-openai-models.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "model_id": "roundtable/default",
                    "model_name": "roundtable/default",
                    "api_base": server.v1,
                    "api_key_name": "roundtable",
                }
            ]
        ),
        encoding="utf-8",
    )
    llm = str(Path(sys.executable).parent / "llm")
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    subprocess.run(
        [llm, "keys", "set", "roundtable", "--value", TOKEN], env=env, check=True, timeout=60
    )
    done = subprocess.run(
        [llm, "-m", "roundtable/default", QUESTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ANSWER
    transcripts = list(server.transcripts.glob("*.jsonl"))
    assert len(transcripts) == 1
    assert load(transcripts[0]).header.question == QUESTION


def test_a_run_its_limits_end_before_anyone_speaks_answers_nothing_cut_by_length(
    server: Server,
) -> None:
    completion = server.client().chat.completions.create(
        model="roundtable/default", messages=ask(), extra_body={"budget": {"wall_clock_s": 1e-9}}
    )
    assert completion.choices[0].message.content == ""
    assert completion.choices[0].finish_reason == "length"
    assert (completion.model_extra or {})["roundtable"]["stop_code"] == "wall_clock"


# -- on the embedded model ------------------------------------------------------------------------


@pytest.mark.model
def test_the_openai_sdk_streams_a_debate_on_the_embedded_model(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from roundtable.conversations import Budget, load_settings

    settings = load_settings(data_dir=tmp_path / "data", budget=Budget(max_turns=3))
    api = ApiSettings(api_token=TOKEN)
    host = FastAPI()
    registry = create_api(settings, api).state.registry
    mount(host, create_openai_api(settings, api, registry), "/v1")
    with serving(host) as (port, _):
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, timeout=900, max_retries=0
        )
        kinds: list[str] = []
        content: list[str] = []
        last: Any = None
        for chunk in client.chat.completions.create(
            model="roundtable/default",
            messages=ask(),
            stream=True,
            stream_options={"include_usage": True},
        ):
            last = chunk
            for choice in chunk.choices:
                if (choice.delta.model_extra or {}).get("reasoning_content"):
                    kinds.append("reasoning")
                if choice.delta.content:
                    kinds.append("content")
                    content.append(choice.delta.content)
    [path] = list(settings.transcripts_dir.glob("*.jsonl"))
    transcript = load(path)
    turns = saved_turns_in(transcript.events)
    assert 1 <= len(turns) <= 3
    assert kinds.count("reasoning") == len(turns) + 1  # each turn, and the stop
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")
    writer = [t.content for t in turns if t.speaker == "writer"] or [turns[-1].content]
    assert "".join(content) == writer[-1]
    assert last.usage is not None and last.usage.total_tokens > 0


def test_a_users_v1_run_is_theirs_and_another_users_token_cannot_see_it(server: Server) -> None:
    """/v1 answers through the same token gate as /api: a run asked with alice's token is
    alice's, and bob's token does not find it under /api."""
    users = server.transcripts.parent / "users.json"
    alice, _ = issue_token(users, "alice")
    bob, _ = issue_token(users, "bob")
    raw = server.client(alice).chat.completions.with_raw_response.create(
        model="roundtable/default", messages=ask()
    )
    run_id = raw.headers[TRANSCRIPT_HEADER]
    assert raw.parse().choices[0].message.content == ANSWER
    assert load(server.transcripts / f"{run_id}.jsonl").header.owner == "alice"
    for token, seen in ((alice, 200), (bob, 404)):
        response = httpx.get(
            f"{server.url}/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == seen, response.text
    listed = httpx.get(f"{server.url}/api/runs", headers={"Authorization": f"Bearer {bob}"})
    assert run_id not in listed.text
