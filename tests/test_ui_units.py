"""The UI's pure pieces, without a browser: commands, limits, export, start-up refusals, auth,
the settings panel, and the history schema against Chainlit's own SQL data layer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from roundtable.agents import resolve_team
from roundtable.common.errors import ConfigError
from roundtable.conversations import load_settings
from roundtable.transcripts import load
from roundtable.ui.auth import check_login, hash_password, host_of, is_loopback, verify_password
from roundtable.ui.commands import Export, Fork, Refused, Replay, Say, Stop, check_size, parse
from roundtable.ui.export import escape_md, to_json, to_markdown
from roundtable.ui.history import create_schema, database_url, thread_metadata, transcript_in
from roundtable.ui.panel import options_from
from roundtable.ui.server import APP_ROOT, check_binding, check_mcp_disabled, config_file

GOLDEN = Path(__file__).parent / "golden" / "debate-v1.jsonl"
TEAM = resolve_team(None)
ROLES = ("researcher", "analyst", "critic", "writer")


@pytest.mark.parametrize(
    ("text", "command", "expected"),
    [
        ("Should we ban cars?", None, Say("Should we ban cars?")),
        ("/ask critic is this sound?", None, Say("is this sound?", ask="critic")),
        ("/ASK Critic  why?", None, Say("why?", ask="critic")),
        (
            "is this sound?",
            "ask",
            Refused("No role 'is' in this debate; roles: " + ", ".join(ROLES)),
        ),
        ("critic is this sound?", "ask", Say("is this sound?", ask="critic")),
        ("/stop", None, Stop("stopped by the person (/stop)")),
        ("/stop that is enough", None, Stop("stopped by the person (that is enough)")),
        ("", "stop", Stop("stopped by the person (/stop)")),
        ("/replay", None, Replay()),
        ("/replay 2 4x", None, Replay("2", 4.0)),
        ("/replay 2 fast", None, Replay("2", None)),
        ("/fork 3 what if buses were free?", None, Fork(3, "what if buses were free?")),
        ("/export json", None, Export("json")),
        ("/export html", None, Export("html")),
        ("/export", None, Export("md")),
        ("/unknown thing", None, Say("/unknown thing")),
    ],
)
def test_parse(text: str, command: str | None, expected: object) -> None:
    assert parse(text, command, roles=ROLES) == expected


@pytest.mark.parametrize(
    "text", ["/ask", "/ask judge hi", "/fork x hi", "/fork 3", "/replay 1 0x", "/export pdf", "  "]
)
def test_bad_commands_are_refused_with_a_message(text: str) -> None:
    result = parse(text, roles=ROLES)
    assert isinstance(result, Refused) and result.message


def test_size_limit() -> None:
    assert check_size("x" * 20_000) is None
    refused = check_size("x" * 20_001)
    assert refused is not None and "20,001" in refused.message and "20,000" in refused.message
    assert check_size("x" * 11, limit=10) is not None


def test_markdown_export_of_the_golden_transcript() -> None:
    text = to_markdown(load(GOLDEN))
    assert text.startswith("# Should our city ban private cars downtown?\n")
    assert "## Turn 1: Researcher\n\nCities that did it cut traffic by a third.\n" in text
    assert "## Turn 2: You\n\nAnd deliveries?" in text
    assert "> manager picks **critic** (model): check the reasoning" in text
    assert "> error, model: manager pick refused:" in text
    assert text.rstrip().endswith("**Stopped (accepted):** the critic accepted the writer's answer")
    assert text.count("## Turn ") == 8  # turns 0 to 7


def test_markdown_export_escapes_html_and_links_only() -> None:
    assert escape_md("<img src=x> [a](http://e) *b*") == "\\<img src=x> \\[a](http://e) *b*"


def test_json_export_round_trips() -> None:
    transcript = load(GOLDEN)
    document = json.loads(to_json(transcript))
    assert document["header"]["conversation_id"] == transcript.header.conversation_id
    assert len(document["events"]) == len(transcript.events)
    assert document["events"][0]["content"] == transcript.header.question


def test_shipped_chainlit_config_has_mcp_off() -> None:
    check_mcp_disabled(config_file())
    text = config_file().read_text()
    assert "unsafe_allow_html = false" in text
    assert (APP_ROOT / "public" / "avatars" / "you.svg").is_file()
    assert (APP_ROOT / "chainlit.md").is_file()


@pytest.mark.parametrize("mcp", ["enabled = true", 'enabled = "yes"', "enabled = 1"])
def test_mcp_enabled_is_refused(tmp_path: Path, mcp: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[features.mcp]\n{mcp}\n")
    with pytest.raises(ConfigError, match="MCP"):
        check_mcp_disabled(path)


def test_missing_or_broken_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing"):
        check_mcp_disabled(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[features\n")
    with pytest.raises(ConfigError):
        check_mcp_disabled(tmp_path / "bad.toml")


def test_no_login_mode_binds_only_to_loopback() -> None:
    check_binding("127.0.0.1", {})
    check_binding("::1", {})
    check_binding("0.0.0.0", {"ann": hash_password("pw")})
    with pytest.raises(ConfigError, match="loopback"):
        check_binding("0.0.0.0", {})


def test_cli_refuses_mcp_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from roundtable.ui import server
    from roundtable.ui.cli import main

    bad = tmp_path / ".chainlit"
    bad.mkdir()
    (bad / "config.toml").write_text("[features.mcp]\nenabled = true\n")
    original = server.config_file
    server.config_file = lambda root=tmp_path: bad / "config.toml"
    try:
        assert main(["--port", "0"]) == 2
    finally:
        server.config_file = original
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MCP" in err[0] and "refuses to start" in err[0]


def test_passwords_and_hosts() -> None:
    stored = hash_password("s3cret")
    assert verify_password("s3cret", stored) and not verify_password("S3cret", stored)
    assert not verify_password("x", "garbage")
    assert check_login({"ann": stored}, "ann", "s3cret")
    assert not check_login({"ann": stored}, "bob", "s3cret")
    assert [
        host_of(h) for h in ("127.0.0.1:8000", "[::1]:8000", "localhost", "evil.example:80")
    ] == [
        "127.0.0.1",
        "::1",
        "localhost",
        "evil.example",
    ]
    assert is_loopback("localhost") and is_loopback("127.0.0.5") and not is_loopback("evil.example")


def test_panel_options_accept_only_what_was_offered() -> None:
    settings = load_settings()
    options, _ = options_from(
        {
            "max_turns": 3,
            "roles": ["critic", "writer", "judge"],
            "endpoint_critic": "nowhere",
            "memory": True,
        },
        settings,
        TEAM,
    )
    assert options.max_turns == 3
    assert options.roles == ["critic", "writer"]
    assert options.endpoints == {}
    assert options.memory is True
    assert options_from({"max_turns": 999}, settings, TEAM)[0].max_turns is None


def test_transcript_names_stay_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("{}")
    assert transcript_in(tmp_path, "a.jsonl") == tmp_path / "a.jsonl"
    for bad in ("../a.jsonl", "/etc/passwd", "a.json", None, 3, "missing.jsonl"):
        assert transcript_in(tmp_path, bad) is None
    assert thread_metadata({"metadata": '{"transcript": "a.jsonl"}'}) == {"transcript": "a.jsonl"}
    assert thread_metadata({"metadata": "not json"}) == {}


async def test_history_schema_fits_chainlits_sql_data_layer(tmp_path: Path) -> None:
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
    from chainlit.types import Pagination, ThreadFilter
    from chainlit.user import User

    url = database_url(tmp_path, None)
    await create_schema(url)
    await create_schema(url)  # idempotent
    layer = SQLAlchemyDataLayer(conninfo=url)
    user = await layer.create_user(User(identifier="local", metadata={"provider": "local"}))
    assert user is not None
    thread_id = str(uuid.uuid4())
    await layer.update_thread(
        thread_id, name="q", user_id=user.id, metadata={"transcript": "t.jsonl"}
    )
    step: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "threadId": thread_id,
        "parentId": None,
        "name": "critic",
        "type": "assistant_message",
        "output": "ACCEPT",
        "createdAt": "2026-01-01T00:00:00Z",
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:00:00Z",
        "command": None,
        "modes": None,
        "streaming": False,
        "isError": False,
        "waitForAnswer": False,
        "metadata": {},
        "tags": None,
        "language": None,
        "defaultOpen": False,
        "autoCollapse": False,
        "showInput": "json",
        "input": "",
    }
    await layer.create_step.__wrapped__(layer, step)
    thread = await layer.get_thread(thread_id)
    assert thread is not None
    assert [s["output"] for s in thread["steps"]] == ["ACCEPT"]
    assert thread_metadata(thread) == {"transcript": "t.jsonl"}
    page = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=user.id))
    assert [t["id"] for t in page.data] == [thread_id]
    await layer.close()
