"""The export route over real HTTP: ``GET /roundtable/export/<id>.md|json|html`` on a real Chainlit
server with two users, alice and bob, each logged in through Chainlit's own ``/login``.

Her own transcript downloads as an attachment, whole (the exact export documents; the HTML page
with its content type and its own CSP as a header too); bob's
answers as a missing one does, byte for byte; an id that is not a plain name is refused before
any file is read; without a valid login cookie the answer is 401. The link helpers are checked
without a server.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from roundtable.common.accounts import accounts_path, add_user
from roundtable.common.passwords import hash_password
from roundtable.transcripts import HTML_CSP, load, save, to_html, to_json, to_markdown
from roundtable.ui.downloads import export_links, export_url
from tests.browser.harness import UIServer, scripted_env, start_server

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
PASSWORD = "downloads-password-1"
ID = {"alice": "20261205-101010-a1a1a1", "bob": "20261205-101010-b2b2b2"}


def saved_for(folder: Path, user: str) -> Path:
    """The golden debate, saved as ``user``'s transcript ``ID[user]``."""
    golden = load(GOLDEN)
    header = golden.header.model_copy(update={"owner": user, "conversation_id": ID[user]})
    path = folder / f"{ID[user]}.jsonl"
    save(path, header, golden.events)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    data = tmp_path_factory.mktemp("downloads") / "data"
    for user in ID:
        add_user(accounts_path(data), user, hash_password(PASSWORD))
    (data / "transcripts").mkdir(parents=True)
    for user in ID:
        saved_for(data / "transcripts", user)
    (data / "transcripts" / "20261205-101010-broken.jsonl").write_text("not a transcript\n")
    started = start_server(data, scripted_env())
    yield started
    started.stop()


@contextlib.contextmanager
def logged_in(server: UIServer, user: str) -> Iterator[httpx.Client]:
    """A client holding ``user``'s Chainlit login cookie, as the browser does."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/login", data={"username": user, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        assert client.cookies.get("access_token")
        yield client


def test_a_user_downloads_her_own_transcript_as_an_attachment_in_both_formats(
    server: UIServer,
) -> None:
    mine = load(server.transcripts / f"{ID['alice']}.jsonl")
    with logged_in(server, "alice") as alice:
        md = alice.get(f"/roundtable/export/{ID['alice']}.md")
        as_json = alice.get(f"/roundtable/export/{ID['alice']}.json")
    assert md.status_code == 200
    assert md.headers["content-disposition"] == f'attachment; filename="{ID["alice"]}.md"'
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.headers["cache-control"] == "private, no-store"
    assert md.text == to_markdown(mine)
    assert as_json.status_code == 200
    assert as_json.headers["content-disposition"] == (f'attachment; filename="{ID["alice"]}.json"')
    assert as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert as_json.text == to_json(mine)
    assert json.loads(as_json.text)["header"]["owner"] == "alice"


def test_a_user_downloads_her_own_transcript_as_one_html_page(server: UIServer) -> None:
    mine = load(server.transcripts / f"{ID['alice']}.jsonl")
    with logged_in(server, "alice") as alice:
        page = alice.get(f"/roundtable/export/{ID['alice']}.html")
    assert page.status_code == 200
    assert page.headers["content-disposition"] == f'attachment; filename="{ID["alice"]}.html"'
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == HTML_CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.text == to_html(mine)
    assert "Yes, with good transit and delivery exemptions." in page.text


@pytest.mark.parametrize("fmt", ["md", "json", "html"])
def test_another_users_transcript_is_answered_exactly_as_a_missing_one(
    server: UIServer, fmt: str
) -> None:
    with logged_in(server, "bob") as bob:
        theirs = bob.get(f"/roundtable/export/{ID['alice']}.{fmt}")
        missing = bob.get(f"/roundtable/export/20991231-000000-ffffff.{fmt}")
        broken = bob.get(f"/roundtable/export/20261205-101010-broken.{fmt}")
        own = bob.get(f"/roundtable/export/{ID['bob']}.{fmt}")
    assert (theirs.status_code, theirs.text) == (missing.status_code, missing.text)
    assert (broken.status_code, broken.text) == (missing.status_code, missing.text)
    assert theirs.headers.get("content-type") == missing.headers.get("content-type")
    assert missing.status_code == 404
    assert "content-disposition" not in theirs.headers
    assert own.status_code == 200 and ID["bob"] in own.text


@pytest.mark.parametrize(
    "name",
    [
        f"{ID['alice']}.txt",
        f"{ID['alice']}.htm",
        f"{ID['alice']}.HTML",
        f"{ID['alice']}",
        f"{ID['alice']}.jsonl",
        f".{ID['alice']}.md",
        f"{ID['alice']}.md.md",
        "-x.md",
        "%2E%2E.md",
        "x" * 65 + ".md",
        f"{ID['alice']}%00.md",
    ],
)
def test_an_id_that_is_not_a_plain_name_is_not_found(server: UIServer, name: str) -> None:
    with logged_in(server, "alice") as alice:
        answer = alice.get(f"/roundtable/export/{name}")
    assert answer.status_code == 404
    assert "content-disposition" not in answer.headers


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_without_a_valid_login_the_route_answers_401(server: UIServer, fmt: str) -> None:
    path = f"/roundtable/export/{ID['alice']}.{fmt}"
    forged = jwt.encode(
        {"identifier": "alice", "metadata": {}}, "not-the-server-secret-0123456789abcdef", "HS256"
    )
    with httpx.Client(base_url=server.url, timeout=30) as nobody:
        anonymous = nobody.get(path)
        with_forged = nobody.get(path, cookies={"access_token": forged})
        with_bearer = nobody.get(path, headers={"Authorization": f"Bearer {forged}"})
    for answer in (anonymous, with_forged, with_bearer):
        assert answer.status_code == 401
        assert "content-disposition" not in answer.headers
        assert "Should our city" not in answer.text


def test_with_no_users_the_local_user_downloads_the_transcripts_of_this_machine(
    tmp_path: Path,
) -> None:
    """No login form: Chainlit's header login gives the local user its cookie, and the
    transcripts with no owner (the CLI's, the local user's) are theirs."""
    data = tmp_path / "data"
    golden = load(GOLDEN)
    (data / "transcripts").mkdir(parents=True)
    save(data / "transcripts" / "local-run.jsonl", golden.header, golden.events)
    started = start_server(data, scripted_env())
    try:
        with httpx.Client(base_url=started.url, timeout=30) as local:
            assert local.get("/roundtable/export/local-run.md").status_code == 401
            assert local.post("/auth/header").status_code == 200
            answer = local.get("/roundtable/export/local-run.md")
    finally:
        started.stop()
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="local-run.md"'
    assert answer.text == to_markdown(load(data / "transcripts" / "local-run.jsonl"))


def test_the_links_are_plain_paths_under_the_page_root_and_only_for_plain_names() -> None:
    assert export_url("20261205-101010-a1a1a1", "md") == (
        "/roundtable/export/20261205-101010-a1a1a1.md"
    )
    assert export_url("abc", "json", "/chat/") == "/chat/roundtable/export/abc.json"
    assert export_url("abc", "txt") is None
    assert export_url("../abc", "md") is None
    assert export_url("abc", "html") == "/roundtable/export/abc.html"
    assert export_links("abc") == (
        "[Download Markdown](/roundtable/export/abc.md)"
        " · [Download JSON](/roundtable/export/abc.json)"
        " · [Download HTML](/roundtable/export/abc.html)"
    )
    assert export_links("a b") == ""
