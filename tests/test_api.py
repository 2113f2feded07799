"""The HTTP API over real HTTP: token gate, runs, server-sent events, messages, webhooks.

Scripted models (a script file on a ``scripted`` endpoint, as a user would configure one);
real transcripts, a real uvicorn server on loopback, a real webhook receiver on loopback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from roundtable.agents import EndpointSettings
from roundtable.api import ApiSettings
from roundtable.api.webhooks import (
    DELIVERY_HEADER,
    ID_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from roundtable.conversations import Budget, Settings, load_settings
from roundtable.transcripts import QualityEvent, load
from tests.support.api_server import (
    AUTH,
    SECRET,
    TOKEN,
    ApiServer,
    running_api,
    running_receiver,
)
from tests.support.runs import comparison, plan, step

QUESTION = "Should our city ban private cars downtown?"
DEBATE = {
    "chunk_delay": 0.0,
    "replies": {
        "manager": [
            '{"speaker": "analyst", "reason": "the facts need weighing"}',
            '{"speaker": "writer", "reason": "time to draft"}',
            '{"speaker": "critic", "reason": "check the draft"}',
        ],
    },
    "defaults": {
        "researcher": "Oslo and Ghent cut traffic by a third.",
        "analyst": "The gains outweigh the costs if transit comes first.",
        "critic": "ACCEPT: the answer is sound.",
        "writer": "Yes, in stages, with delivery windows.",
        "manager": '{"speaker": "researcher", "reason": "more facts"}',
    },
}
PANEL = {
    "replies": {
        "manager": [
            plan(
                step("researcher", "research", "What does each option cost to build?"),
                step("analyst", "analysis", "Which option emits the least per trip?"),
            )
        ],
        "critic": [comparison(("cost", ["q1", "q2"], "q1 says trams are cheapest; q2 not"))],
    },
    "defaults": {
        "researcher": "Buses cost least to start; trams cost most.",
        "analyst": "Bike lanes emit least; trams are cheapest per trip over 30 years.",
        "critic": "ACCEPT",
        "writer": "Bike lanes first. The branches disagree on cost: see q1 and q2.",
        "manager": '{"speaker": "writer", "reason": "answer"}',
    },
}


def settings_for(
    tmp_path: Path, script: dict[str, Any], max_turns: int = 6, teams_dir: Path | None = None
) -> Settings:
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(script), encoding="utf-8")
    return load_settings(
        data_dir=tmp_path / "data",
        endpoints={"default": EndpointSettings(kind="scripted", script=path)},
        budget=Budget(max_turns=max_turns),
        teams_dir=teams_dir,
    )


def api_settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {"api_token": TOKEN, "webhook_secret": SECRET}
    return ApiSettings(**{**values, **overrides})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiServer]:
    with running_api(settings_for(tmp_path, DEBATE), api_settings()) as server:
        yield server


def start(server: ApiServer, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/runs", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait_ended(server: ApiServer, run_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = httpx.get(f"{server.url}/runs/{run_id}", headers=AUTH).json()
        if detail["status"] != "running":
            return dict(detail)
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still running after {timeout} s")


def read_sse(response: httpx.Response) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of every event in a server-sent event stream, to its end."""
    found: list[tuple[str | None, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "event" in fields:
                found.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return found


# -- the token gate -------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/teams"),
    ("POST", "/runs"),
    ("GET", "/runs"),
    ("GET", "/runs/some-run"),
    ("GET", "/runs/some-run/events"),
    ("POST", "/runs/some-run/messages"),
    ("POST", "/runs/some-run/stop"),
    ("GET", "/openapi.json"),
    ("GET", "/no-such-route"),
]


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}"])
def test_every_route_without_the_token_is_401(api: ApiServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    schema_paths = httpx.get(f"{api.url}/openapi.json", headers=AUTH).json()["paths"]
    assert {p.replace("{run_id}", "some-run") for p in schema_paths} <= {p for _, p in ROUTES}
    for method, path in ROUTES:
        response = httpx.request(method, f"{api.url}{path}", json={}, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Bearer" in response.json()["detail"]


def test_without_a_configured_token_the_api_refuses_everyone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, DEBATE)
    with running_api(settings, ApiSettings(api_token=None)) as server:
        response = httpx.get(f"{server.url}/runs", headers=AUTH)
    assert response.status_code == 401
    assert "ROUNDTABLE_API_TOKEN" in response.json()["detail"]


def test_a_short_token_is_a_configuration_error() -> None:
    from roundtable.api import load_api_settings
    from roundtable.common.errors import ConfigError

    with pytest.raises(ConfigError, match=r"ROUNDTABLE_API_TOKEN: .*at least 16"):
        load_api_settings(api_token="short")


# -- runs -----------------------------------------------------------------------------------------


def test_a_run_started_by_post_answers_at_once_and_ends_with_its_transcript(
    api: ApiServer, tmp_path: Path
) -> None:
    response = httpx.post(f"{api.url}/runs", json={"question": QUESTION}, headers=AUTH)
    assert response.status_code == 202
    accepted = response.json()
    run_id = accepted["id"]
    assert response.headers["location"] == f"/api/runs/{run_id}"
    assert accepted["links"]["events"] == f"/api/runs/{run_id}/events"

    detail = wait_ended(api, run_id)
    assert detail["status"] == "finished"
    assert detail["stop"]["code"] == "accepted"
    assert detail["answer"] == "Yes, in stages, with delivery windows."
    saved = load(tmp_path / "data" / "transcripts" / f"{run_id}.jsonl")
    assert [e["seq"] for e in detail["events"]] == [e.seq for e in saved.events]
    assert detail["header"]["question"] == QUESTION
    quality = [e for e in saved.events if isinstance(e, QualityEvent)]
    assert detail["quality"] == quality[-1].report.model_dump(mode="json")

    listed = httpx.get(f"{api.url}/runs", headers=AUTH).json()["runs"]
    assert [r["id"] for r in listed] == [run_id]
    assert listed[0]["status"] == "finished"


def test_events_stream_in_order_to_the_stop_and_resume_after_an_id(api: ApiServer) -> None:
    run_id = start(api, {"question": QUESTION})["id"]
    with httpx.stream("GET", f"{api.url}/runs/{run_id}/events", headers=AUTH) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        streamed = read_sse(response)

    kinds = [kind for _, kind, _ in streamed]
    assert kinds[0] == "header" and kinds[-2:] == ["stop", "end"]
    seqs = [int(i) for i, kind, _ in streamed if kind not in {"header", "end"} and i]
    assert seqs == list(range(1, len(seqs) + 1))
    detail = wait_ended(api, run_id)
    assert [e["seq"] for e in detail["events"]] == seqs
    assert [data for _, kind, data in streamed if kind == "stop"] == [detail["events"][-1]]

    resume = {**AUTH, "Last-Event-ID": str(seqs[2])}
    with httpx.stream("GET", f"{api.url}/runs/{run_id}/events", headers=resume) as response:
        again = read_sse(response)
    assert [int(i) for i, kind, _ in again if i] == seqs[3:]


def test_token_deltas_stream_when_asked(tmp_path: Path) -> None:
    slow = {**DEBATE, "chunk_delay": 0.02}
    with running_api(settings_for(tmp_path, slow), api_settings()) as api:
        run_id = start(api, {"question": QUESTION})["id"]
        url = f"{api.url}/runs/{run_id}/events?tokens=true"
        with httpx.stream("GET", url, headers=AUTH) as response:
            streamed = read_sse(response)
    pieces: dict[int, str] = {}
    for _, kind, data in streamed:
        if kind == "token":
            pieces[data["turn"]] = pieces.get(data["turn"], "") + data["text"]
    said = {d["turn"]: d["content"] for _, kind, d in streamed if kind == "message"}
    assert len(pieces) >= 2 and all(i is None for i, kind, _ in streamed if kind == "token")
    first, *later = sorted(pieces)
    assert said[first].endswith(pieces[first])  # following began mid-reply, perhaps
    assert [pieces[t] for t in later] == [said[t] for t in later]


def test_a_message_joins_the_run_and_a_stop_ends_it(tmp_path: Path) -> None:
    slow = {**DEBATE, "chunk_delay": 0.05, "defaults": {**DEBATE["defaults"], "critic": "REVISE"}}
    with running_api(settings_for(tmp_path, slow, max_turns=30), api_settings()) as api:
        run_id = start(api, {"question": QUESTION})["id"]
        said = httpx.post(
            f"{api.url}/runs/{run_id}/messages",
            json={"text": "Think about the bus drivers.", "ask": "analyst"},
            headers=AUTH,
        )
        assert said.status_code == 202, said.text
        time.sleep(0.5)
        stopped = httpx.post(f"{api.url}/runs/{run_id}/stop", headers=AUTH)
        assert stopped.status_code == 202
        detail = wait_ended(api, run_id)
        assert detail["stop"]["code"] == "user_stop"
        human = [e for e in detail["events"] if e["kind"] == "message" and e["speaker"] == "human"]
        assert [e["content"] for e in human][-1] == "Think about the bus drivers."
        late = httpx.post(f"{api.url}/runs/{run_id}/messages", json={"text": "hi"}, headers=AUTH)
        assert late.status_code == 409 and "ended" in late.json()["detail"]


def test_unknown_runs_bad_roles_and_bad_bodies_are_named(api: ApiServer) -> None:
    missing = httpx.get(f"{api.url}/runs/20260101-000000-abcdef", headers=AUTH)
    assert missing.status_code == 404 and "20260101-000000-abcdef" in missing.json()["detail"]
    bad_mode = httpx.post(f"{api.url}/runs", json={"question": "q", "mode": "chaos"}, headers=AUTH)
    assert bad_mode.status_code == 422 and bad_mode.json()["detail"].startswith("mode:")
    extra = httpx.post(f"{api.url}/runs", json={"question": "q", "colour": 1}, headers=AUTH)
    assert extra.status_code == 422 and "colour" in extra.json()["detail"]
    bad_role = httpx.post(
        f"{api.url}/runs",
        json={"question": "q", "settings": {"roles": ["critic", "jester"]}},
        headers=AUTH,
    )
    assert bad_role.status_code == 422 and "jester" in bad_role.json()["detail"]
    endpoint = httpx.post(
        f"{api.url}/runs",
        json={"question": "q", "settings": {"endpoints": {"critic": "nowhere"}}},
        headers=AUTH,
    )
    assert endpoint.status_code == 422 and "nowhere" in endpoint.json()["detail"]
    lone = httpx.post(
        f"{api.url}/runs",
        content=b'{"question": "caf\\ud800"}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert lone.status_code == 422 and "unicode" in lone.json()["detail"]
    huge = httpx.post(
        f"{api.url}/runs",
        content=b'{"question": "' + b"x" * 1_100_000 + b'"}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def test_too_many_running_runs_are_refused_with_429(tmp_path: Path) -> None:
    slow = {**DEBATE, "chunk_delay": 0.2}
    settings = settings_for(tmp_path, slow, max_turns=30)
    with running_api(settings, api_settings(max_active_runs=2)) as api:
        first = [start(api, {"question": QUESTION})["id"] for _ in range(2)]
        refused = httpx.post(f"{api.url}/runs", json={"question": QUESTION}, headers=AUTH)
        assert refused.status_code == 429 and "2 runs" in refused.json()["detail"]
        for run_id in first:
            httpx.post(f"{api.url}/runs/{run_id}/stop", headers=AUTH)
            wait_ended(api, run_id)


def test_a_panel_run_plans_branches_names_the_conflict_and_is_delivered(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        apis = api_settings(webhook_allow=[receiver.entry])
        with running_api(settings_for(tmp_path, PANEL), apis) as api:
            body = {"question": QUESTION, "mode": "panel", "webhook": receiver.url}
            run_id = start(api, body)["id"]
            detail = wait_ended(api, run_id)
            listed = httpx.get(f"{api.url}/runs", headers=AUTH).json()["runs"]
            assert receiver.arrived.wait(10)
    kinds = [e["kind"] for e in detail["events"]]
    assert detail["mode"] == "panel" and listed[0]["mode"] == "panel"
    assert kinds.index("plan") < kinds.index("branch") < kinds.index("aggregate")
    aggregate = next(e for e in detail["events"] if e["kind"] == "aggregate")
    assert [c["topic"] for c in aggregate["conflicts"]] == ["cost"]
    assert detail["stop"]["code"] == "completed"
    assert "disagree" in detail["answer"]
    [delivery] = receiver.accepted()
    assert verify(delivery.body, SECRET, delivery.headers)
    outcome = json.loads(delivery.body)
    assert (outcome["id"], outcome["mode"]) == (run_id, "panel")
    assert outcome["answer"] == detail["answer"]


# -- teams ----------------------------------------------------------------------------------------

POLICY = {
    "replies": {"manager": ['{"speaker": "lawyer", "reason": "the law decides it"}']},
    "defaults": {
        "economist": "A congestion charge raised 150 M a year in Stockholm.",
        "lawyer": "The council may charge for roads it owns; recommend a trial first.",
        "sceptic": "ACCEPT: a trial limits the risk.",
        "manager": '{"speaker": "sceptic", "reason": "check it"}',
    },
}
LONERS = """\
name: loners
description: Two people who never judge.
roles:
  - name: talker
    description: Talks about the question at some length.
    instructions: You talk. One sentence.
    opens: true
  - name: listener
    description: Listens and sums up what was said.
    instructions: You listen. One sentence.
    answers: true
"""


def with_loners(tmp_path: Path) -> Settings:
    """Scripted settings whose teams folder holds ``loners``, a team with no verdict-giver."""
    folder = tmp_path / "teams"
    folder.mkdir()
    (folder / "loners.yaml").write_text(LONERS)
    return settings_for(tmp_path, DEBATE, teams_dir=folder)


def test_teams_are_listed_with_roles_flags_and_the_modes_each_can_run(tmp_path: Path) -> None:
    settings = with_loners(tmp_path)
    with running_api(settings, api_settings()) as api:
        response = httpx.get(f"{api.url}/teams", headers=AUTH)
    assert response.status_code == 200
    teams = {t["name"]: t for t in response.json()["teams"]}
    assert list(teams) == ["default", "policy", "product", "loners"]
    assert [t["name"] for t in teams.values() if t["default"]] == ["default"]
    policy = teams["policy"]
    assert policy["description"] == "An economist, a lawyer and a sceptic weigh a policy."
    assert [(r["name"], r["flags"]) for r in policy["roles"]] == [
        ("economist", ["opens"]),
        ("lawyer", ["answers"]),
        ("sceptic", ["gives_verdict"]),
    ]
    assert policy["roles"][0]["description"].startswith("Opens with the economics")
    assert policy["modes"] == ["debate", "pipeline", "panel"]
    assert teams["loners"]["modes"] == ["debate", "pipeline"]


def test_a_run_of_the_policy_team_answers_and_its_header_records_the_team(
    tmp_path: Path,
) -> None:
    with running_api(settings_for(tmp_path, POLICY), api_settings()) as api:
        run_id = start(api, {"question": QUESTION, "team": "policy"})["id"]
        detail = wait_ended(api, run_id)
    assert detail["status"] == "finished"
    assert detail["header"]["team"]["name"] == "policy"
    assert [r["name"] for r in detail["header"]["roles"]] == ["economist", "lawyer", "sceptic"]
    speakers = {e["speaker"] for e in detail["events"] if e["kind"] == "message"}
    assert speakers <= {"human", "economist", "lawyer", "sceptic"} and "lawyer" in speakers
    assert detail["answer"] == (
        "The council may charge for roads it owns; recommend a trial first."
    )
    saved = load(tmp_path / "data" / "transcripts" / f"{run_id}.jsonl")
    assert saved.header.team is not None and saved.header.team.name == "policy"


def test_unknown_teams_and_roles_of_another_team_are_refused_naming_the_field(
    api: ApiServer,
) -> None:
    def refused(body: dict[str, Any]) -> str:
        response = httpx.post(f"{api.url}/runs", json={"question": "q", **body}, headers=AUTH)
        assert response.status_code == 422, response.text
        return str(response.json()["detail"])

    assert refused({"team": "nobody"}).startswith("team: no team named 'nobody'; teams: default")
    assert refused({"team": "../../etc/passwd"}).startswith("team: ")  # a path is no name
    assert refused({"team": "/tmp/evil.yaml"}).startswith("team: ")
    detail = refused({"team": "policy", "settings": {"roles": ["economist", "critic"]}})
    assert detail.startswith("settings.roles: team 'policy' has no role 'critic'")
    detail = refused({"settings": {"endpoints": {"lawyer": "default"}}})
    assert detail.startswith("settings.endpoints: team 'default' has no role 'lawyer'")
    listed = httpx.get(f"{api.url}/runs", headers=AUTH).json()["runs"]
    assert listed == []  # nothing was started


def test_asking_a_role_the_runs_team_lacks_is_refused(tmp_path: Path) -> None:
    slow = {**POLICY, "chunk_delay": 0.05}
    slow["defaults"] = {**POLICY["defaults"], "sceptic": "REVISE: not yet."}
    with running_api(settings_for(tmp_path, slow, max_turns=30), api_settings()) as api:
        run_id = start(api, {"question": QUESTION, "team": "policy"})["id"]
        url = f"{api.url}/runs/{run_id}/messages"
        other = httpx.post(url, json={"text": "And the facts?", "ask": "researcher"}, headers=AUTH)
        ours = httpx.post(url, json={"text": "And the law?", "ask": "lawyer"}, headers=AUTH)
        httpx.post(f"{api.url}/runs/{run_id}/stop", headers=AUTH)
        wait_ended(api, run_id)
    assert other.status_code == 422
    assert other.json()["detail"] == (
        f"ask: run {run_id!r} (team 'policy') has no role 'researcher'; "
        "roles: economist, lawyer, sceptic"
    )
    assert ours.status_code == 202, ours.text


def test_a_panel_on_a_team_without_a_verdict_giver_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    with running_api(with_loners(tmp_path), api_settings()) as api:
        body = {"question": QUESTION, "team": "loners", "mode": "panel"}
        response = httpx.post(f"{api.url}/runs", json=body, headers=AUTH)
        debate = httpx.post(f"{api.url}/runs", json={**body, "mode": "debate"}, headers=AUTH)
        assert debate.status_code == 202, debate.text
        wait_ended(api, debate.json()["id"])
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "mode: team 'loners' cannot run a panel: no role has gives_verdict: true "
        "(the role that compares the branches' answers); roles: talker, listener"
    )


def test_a_bad_team_file_stops_the_api_from_starting(tmp_path: Path) -> None:
    from roundtable.api import create_api
    from roundtable.common.errors import ConfigError

    folder = tmp_path / "teams"
    folder.mkdir()
    (folder / "broken.yaml").write_text(LONERS.replace("opens: true", "opens: true\n    hue: 3"))
    with pytest.raises(ConfigError, match=r"broken\.yaml:8: field 'roles\.0\.hue': unknown"):
        create_api(settings_for(tmp_path, DEBATE, teams_dir=folder), api_settings())


# -- webhooks -------------------------------------------------------------------------------------


def test_the_webhook_gets_one_signed_delivery_when_the_run_ends(tmp_path: Path) -> None:
    with running_receiver(statuses=[503]) as receiver:  # the first attempt fails: retried
        apis = api_settings(webhook_allow=[receiver.entry], webhook_backoff_s=0.05)
        with running_api(settings_for(tmp_path, DEBATE), apis) as api:
            run_id = start(api, {"question": QUESTION, "webhook": receiver.url})["id"]
            assert receiver.arrived.wait(30)
            detail = wait_ended(api, run_id)
            time.sleep(0.3)  # nothing more arrives
    assert len(receiver.received) == 2
    [delivery] = receiver.accepted()
    assert verify(delivery.body, SECRET, delivery.headers)
    assert not verify(delivery.body, "another-secret-0123456789", delivery.headers)
    ids = {r.headers[DELIVERY_HEADER.lower()] for r in receiver.received}
    assert ids == {r.headers[ID_HEADER] for r in receiver.received}
    assert len(ids) == 1  # a retry is the same delivery
    stamps = [int(r.headers[TIMESTAMP_HEADER]) for r in receiver.received]
    assert abs(stamps[-1] - time.time()) < 60  # each attempt signs its own time
    outcome = json.loads(delivery.body)
    assert outcome["id"] == run_id and outcome["status"] == "finished"
    assert outcome["stop"]["code"] == "accepted"
    assert outcome["answer"] == detail["answer"]
    assert detail["webhook"]["delivered"] is True and detail["webhook"]["attempts"] == 2


def test_a_webhook_off_the_allow_list_is_refused_and_never_called(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        apis = api_settings(webhook_allow=["127.0.0.1:1"])
        with running_api(settings_for(tmp_path, DEBATE), apis) as api:
            for url in (receiver.url, f"http://localhost:{receiver.port}/", "file:///etc/passwd"):
                response = httpx.post(
                    f"{api.url}/runs", json={"question": QUESTION, "webhook": url}, headers=AUTH
                )
                assert response.status_code in {403, 422}, url
                assert "webhook" in response.json()["detail"]
            listed = httpx.get(f"{api.url}/runs", headers=AUTH).json()["runs"]
        assert listed == []  # nothing was started
        assert receiver.received == []


def test_webhooks_need_a_secret(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        apis = ApiSettings(api_token=TOKEN, webhook_allow=[receiver.entry])
        with running_api(settings_for(tmp_path, DEBATE), apis) as api:
            response = httpx.post(
                f"{api.url}/runs",
                json={"question": QUESTION, "webhook": receiver.url},
                headers=AUTH,
            )
    assert response.status_code == 403
    assert "ROUNDTABLE_WEBHOOK_SECRET" in response.json()["detail"]


def test_the_allow_list_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from roundtable.api import load_api_settings
    from roundtable.common.errors import ConfigError

    monkeypatch.setenv("ROUNDTABLE_WEBHOOK_ALLOW", "127.0.0.1:9000, Hooks.Example.org:443")
    assert load_api_settings().webhook_allow == ["127.0.0.1:9000", "hooks.example.org:443"]
    monkeypatch.setenv("ROUNDTABLE_WEBHOOK_ALLOW", "http://127.0.0.1:9000/x")
    with pytest.raises(ConfigError, match=r"ROUNDTABLE_WEBHOOK_ALLOW: .*host:port"):
        load_api_settings()


async def test_a_server_shutdown_stops_api_runs_with_a_stated_reason(tmp_path: Path) -> None:
    from roundtable.agents import load_teams
    from roundtable.api.registry import RunRegistry
    from roundtable.api.schemas import RunRequest
    from roundtable.api.starting import build_api_run

    slow = {**DEBATE, "chunk_delay": 0.05, "defaults": {**DEBATE["defaults"], "critic": "REVISE"}}
    settings = settings_for(tmp_path, slow, max_turns=30)
    ended: list[str] = []
    registry = RunRegistry(settings.transcripts_dir, on_end=lambda live: ended.append(live.id))
    run = build_api_run(settings, RunRequest(question=QUESTION), None, load_teams())
    live = registry.start(run, "debate")
    await live.started.wait()
    await registry.shutdown(grace_s=10)
    assert live.ended and ended == [live.id]
    stop = load(run.transcript_path).events[-1]
    assert stop.kind == "stop" and stop.reason == "the server is shutting down"
