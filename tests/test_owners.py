"""Two users, alice and bob, each with a canary word: nothing of one reaches the other.

The browser side through its own functions (the session runner, the replay view, uploads,
export) on real transcripts and a real ChromaDB with the offline embedder, memory recalling
past conversations (``include_past``); the API over real HTTP with each user's token, issued
by the ``roundtable users token`` command. The scripted model speaks for the agents.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roundtable.common.accounts import issue_token
from roundtable.conversations import RunOptions, Settings
from roundtable.conversations.recall import MemorySettings
from roundtable.memory import MemoryStore
from roundtable.transcripts import MemoryEvent, Transcript, load
from roundtable.ui.commands import Say
from roundtable.ui.export import to_json, to_markdown
from roundtable.ui.replay_view import listing, pick, rows
from roundtable.ui.session import Refusal, SessionRunner
from roundtable.ui.uploads import add_uploads
from tests.support.api_server import AUTH, running_api
from tests.support.chainlit_page import recording_page
from tests.test_api import DEBATE, api_settings, read_sse, settings_for

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
CANARY = {"alice": "zanzibarite", "bob": "quillowhisp"}
OTHER = {"alice": "bob", "bob": "alice"}


def question(user: str) -> str:
    return f"Should the {CANARY[user]} quarry near our town be closed?"


def leaks(text: str, user: str) -> bool:
    """Whether ``text`` shown to ``user`` holds the other user's canary."""
    return CANARY[OTHER[user]] in text.lower()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = settings_for(tmp_path, DEBATE, max_turns=3)
    memory = MemorySettings(include_past=True, k=6, min_score=0.0, document_min_score=0.0)
    return base.model_copy(update={"memory": memory})


@pytest.fixture
def store(settings: Settings) -> Iterator[MemoryStore]:
    with MemoryStore(settings.data_dir / "memory") as opened:
        yield opened


def runner(settings: Settings, store: MemoryStore, owner: str) -> SessionRunner:
    async def link(_path: Path, _kind: str) -> None:
        return None

    class Quiet:
        async def show(self, _event: Any) -> None: ...
        async def note(self, _text: str) -> None: ...
        async def failure(self, text: str) -> None:
            raise AssertionError(text)

    return SessionRunner(
        settings=settings,
        display=lambda **_kwargs: Quiet(),
        spawn=lambda coro: asyncio.get_running_loop().create_task(coro),
        on_transcript=link,
        memory=store,
        options=RunOptions(),
        owner=owner,
    )


async def ask(session: SessionRunner, text: str) -> Transcript:
    await session.say(Say(text=text))
    assert session.task is not None
    await asyncio.wait_for(session.task, timeout=120)
    assert session.transcript is not None
    return load(session.transcript)


def recalled(transcript: Transcript) -> str:
    return " ".join(h.text for e in transcript.events if isinstance(e, MemoryEvent) for h in e.hits)


async def test_two_users_see_nothing_of_each_other_in_the_browser(
    settings: Settings, store: MemoryStore, tmp_path: Path
) -> None:
    recording_page()
    first: dict[str, Transcript] = {}
    for user in ("alice", "bob"):
        doc = tmp_path / f"{user}.md"
        doc.write_text(f"# Notes\nThe {CANARY[user]} quarry employs 40 people.\n")
        await add_uploads(store, [("notes.md", doc)], settings.data_dir, user)
        first[user] = await ask(runner(settings, store, user), question(user))
        assert first[user].header.owner == user
    folder = settings.transcripts_dir
    for user in ("alice", "bob"):
        # Memory: a new debate recalls past conversations and documents, the user's own only.
        later = await ask(runner(settings, store, user), "What do we know about the quarry?")
        assert CANARY[user] in recalled(later).lower()  # recall works: its own canary
        assert not leaks(later.model_dump_json(), user)
        # The replay list, /replay N and /replay NAME.
        text, actions = listing(folder, user)
        assert not leaks(text + json.dumps([a.payload for a in actions]), user)
        assert {r.conversation_id for r in rows(folder, user)} == {
            first[user].header.conversation_id,
            later.header.conversation_id,
        }
        for n in ("1", "2"):
            found = pick(folder, n, user)
            assert isinstance(found, Transcript) and not leaks(found.model_dump_json(), user)
        theirs = first[OTHER[user]].header.conversation_id
        assert pick(folder, theirs, user) == f"No transcript named {theirs!r}; /replay lists them."
        assert pick(folder, "3", user) == "There is no transcript #3; /replay lists them."
        # Export of the user's own transcripts holds nothing of the other's.
        assert not leaks(to_markdown(later) + to_json(first[user]), user)
        # Fork, continue (a resumed thread) and export of the other's transcript: refused,
        # worded as for a transcript that does not exist.
        other_path = first[OTHER[user]].path
        session = runner(settings, store, user)
        session.replayed = other_path
        with pytest.raises(Refusal, match="No such transcript"):
            await session.fork(1, "carry on")
        with pytest.raises(Refusal, match="No such transcript"):
            await session.say(Say(text="carry on"))
        session.replayed, session.transcript = None, other_path
        with pytest.raises(Refusal, match="No such transcript"):
            await session.say(Say(text="carry on"))
        with pytest.raises(Refusal, match="No such transcript"):
            session.load_own(other_path)
    # The user's own fork works, and stays the user's.
    session = runner(settings, store, "bob")
    session.replayed = first["bob"].path
    await session.fork(1, "And the river?")
    assert session.task is not None
    await asyncio.wait_for(session.task, timeout=120)
    assert session.transcript is not None
    forked = load(session.transcript)
    assert forked.header.owner == "bob" and not leaks(forked.model_dump_json(), "bob")


def test_each_users_token_sees_only_that_users_runs(settings: Settings) -> None:
    """``roundtable users token bob`` gives a token whose ``GET /api/runs`` lists only bob's."""
    made = subprocess.run(
        [ROUNDTABLE, "users", "token", "bob"], capture_output=True, text=True, check=True
    )
    bob_token = made.stdout.strip()
    assert bob_token.startswith("rt_") and bob_token not in made.stderr
    alice_token, _ = issue_token(settings.data_dir / "users.json", "alice")
    tokens = {"alice": alice_token, "bob": bob_token}
    auth = {user: {"Authorization": f"Bearer {token}"} for user, token in tokens.items()}
    with running_api(settings, api_settings()) as api:
        ids: dict[str, str] = {}
        for user in ("alice", "bob"):
            started = httpx.post(
                f"{api.url}/runs", json={"question": question(user)}, headers=auth[user]
            )
            assert started.status_code == 202, started.text
            ids[user] = started.json()["id"]
        for user in ("alice", "bob"):
            _wait(api.url, ids[user], auth[user])
        for user in ("alice", "bob"):
            listed = httpx.get(f"{api.url}/runs", headers=auth[user])
            assert [r["id"] for r in listed.json()["runs"]] == [ids[user]]
            assert not leaks(listed.text, user)
            mine = httpx.get(f"{api.url}/runs/{ids[user]}", headers=auth[user])
            assert mine.json()["header"]["owner"] == user and not leaks(mine.text, user)
            with httpx.stream(
                "GET", f"{api.url}/runs/{ids[user]}/events", headers=auth[user]
            ) as stream:
                assert not leaks(json.dumps(read_sse(stream)), user)
            theirs = ids[OTHER[user]]
            for method, path, body in (
                ("GET", f"/runs/{theirs}", None),
                ("GET", f"/runs/{theirs}/events", None),
                ("POST", f"/runs/{theirs}/messages", {"text": "hello"}),
                ("POST", f"/runs/{theirs}/stop", None),
            ):
                missing = path.replace(theirs, "20990101-000000-abcdef")
                got = httpx.request(method, api.url + path, json=body, headers=auth[user])
                absent = httpx.request(method, api.url + missing, json=body, headers=auth[user])
                assert got.status_code == absent.status_code == 404
                assert got.json()["detail"].replace(theirs, "X") == absent.json()["detail"].replace(
                    "20990101-000000-abcdef", "X"
                )
        everyone = httpx.get(f"{api.url}/runs", headers=AUTH)  # the administrator's token
        assert {r["id"] for r in everyone.json()["runs"]} == set(ids.values())
        # A revoked token is refused at the next request.
        token_id = next(
            line.split()[0]
            for line in _cli("users", "tokens").splitlines()
            if line.split()[1] == "bob"
        )
        assert bob_token not in _cli("users", "tokens")
        _cli("users", "revoke", token_id)
        assert httpx.get(f"{api.url}/runs", headers=auth["bob"]).status_code == 401
        assert httpx.get(f"{api.url}/runs", headers=auth["alice"]).status_code == 200


def _wait(url: str, run_id: str, headers: dict[str, str]) -> None:
    for _ in range(600):
        if httpx.get(f"{url}/runs/{run_id}", headers=headers).json()["status"] != "running":
            return
        asyncio.run(asyncio.sleep(0.05))
    raise AssertionError(f"run {run_id} still running")


def _cli(*args: str) -> str:
    return subprocess.run([ROUNDTABLE, *args], capture_output=True, text=True, check=True).stdout


def test_transcripts_from_before_owners_are_the_local_users(settings: Settings) -> None:
    golden = Path(__file__).parent / "golden"
    folder = settings.transcripts_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("debate-v1.jsonl", "debate-v2.jsonl"):
        (folder / name).write_bytes((golden / name).read_bytes())
    assert len(rows(folder, None)) == len(rows(folder, "local")) == 2
    assert rows(folder, "bob") == []
    assert (
        pick(folder, "debate-v2", "bob") == "No transcript named 'debate-v2'; /replay lists them."
    )
    assert isinstance(pick(folder, "debate-v2", "local"), Transcript)
