"""The transcript stores: the JSONL files and PostgreSQL pass the same tests.

Each store test runs on both (``store``): every event kind round-trips as the same records in
the same order, a duplicate ``seq`` is refused and not doubled, owners stay apart, listing
comes from the index without reading events, and a whole transcript is ``put`` idempotently.
The PostgreSQL cases run on a throwaway server started by the tests (``tests.support.postgres``)
and skip only when its binaries are absent; then the CLI: ``list``, ``replay`` and
``transcripts export/import`` with ``ROUNDTABLE_DATABASE_URL`` set, and a URL's password
never shown.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import typing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from roundtable.common.errors import InfraError
from roundtable.transcripts import (
    HUMAN,
    Event,
    GuardEvent,
    Header,
    NoticeEvent,
    ParentRef,
    PruneEvent,
    load,
)
from roundtable.transcripts.catalogue import catalogue
from roundtable.transcripts.index import INDEX_NAME
from roundtable.transcripts.lines import TranscriptError
from roundtable.transcripts.postgres import PostgresStore, shown
from roundtable.transcripts.store import encode
from roundtable.transcripts.stores import FileStore, TranscriptStore, open_store
from tests.support.postgres import DML_ONLY, Server
from tests.test_html_export import hostile

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ALL_KINDS = {
    typing.get_args(member.model_fields["kind"].annotation)[0]
    for member in typing.get_args(typing.get_args(Event)[0])
}


def every_kind() -> tuple[Header, list[Event]]:
    """A transcript with every kind of event (a hostile panel run, a prune and a guard)."""
    transcript = hostile()
    events: list[Event] = list(transcript.events[:-1])
    at = events[-1].at
    extra: list[Event] = [
        PruneEvent(
            seq=1,
            at=at,
            turn=1,
            speaker=HUMAN,
            kept=2,
            dropped=3,
            tokens_before=900,
            tokens_after=400,
            budget=512,
        ),
        GuardEvent(
            seq=1,
            at=at,
            turn=1,
            speaker="researcher",
            rule="copy",
            action="rejected",
            detail="a copy \x00 of turn 1",
        ),
        NoticeEvent(seq=1, at=at, turn=1, code="budget_warning", message="80% of the tokens"),
        transcript.events[-1],
    ]
    events += extra
    renumbered = [e.model_copy(update={"seq": n}) for n, e in enumerate(events, start=1)]
    return transcript.header, renumbered


def header(cid: str, owner: str | None = None, minutes: int = 0) -> Header:
    kept = load(GOLDEN).header
    return kept.model_copy(
        update={
            "conversation_id": cid,
            "owner": owner,
            "created_at": START + timedelta(minutes=minutes),
        }
    )


def golden_events() -> list[Event]:
    return load(GOLDEN).events


@pytest.fixture(params=["files", "postgres"])
def where(request: pytest.FixtureRequest, data_dir: Path) -> str | None:
    """None for the files in the data folder, else a fresh PostgreSQL database's URL."""
    if request.param == "files":
        return None
    server: Server = request.getfixturevalue("postgres")
    return server.url(request.getfixturevalue("database"))


@pytest.fixture
async def store(where: str | None, data_dir: Path) -> AsyncIterator[TranscriptStore]:
    kept = open_store(where, data_dir / "transcripts")
    try:
        yield kept
    finally:
        await kept.close()


async def test_every_event_kind_round_trips_in_order(store: TranscriptStore) -> None:
    head, events = every_kind()
    assert {e.kind for e in events} == ALL_KINDS
    await store.create(head)
    for event in events:
        await store.append(head.conversation_id, event)
    loaded = await store.load(head.conversation_id)
    assert loaded.header == head
    assert [encode(e) for e in loaded.events] == [encode(e) for e in events]


async def test_a_duplicate_seq_is_refused_and_not_doubled(store: TranscriptStore) -> None:
    head, events = header("dup"), golden_events()
    await store.create(head)
    for event in events[:3]:
        await store.append("dup", event)
    with pytest.raises(ValueError, match="does not follow"):
        await store.append("dup", events[2])
    with pytest.raises(ValueError, match="does not follow"):
        await store.append("dup", events[4])  # a gap is refused too
    await store.append("dup", events[3])
    assert [e.seq for e in (await store.load("dup")).events] == [1, 2, 3, 4]


async def test_a_second_store_continues_a_transcript_after_its_last_event(
    store: TranscriptStore, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    head, events = header("later"), golden_events()
    await store.create(head)
    await store.append("later", events[0])
    await store.close()  # another process, later
    await store.append("later", events[1])
    assert [e.seq for e in (await store.load("later")).events] == [1, 2]


async def test_owners_never_see_each_others_runs(store: TranscriptStore) -> None:
    for n, (cid, owner) in enumerate(
        [("a1", "alice"), ("b1", "bob"), ("l1", None), ("a2", "alice")]
    ):
        await store.create(header(cid, owner, minutes=n))
    assert [s.conversation_id for s in await store.owned("alice")] == ["a2", "a1"]
    assert [s.conversation_id for s in await store.owned("bob")] == ["b1"]
    assert [s.conversation_id for s in await store.owned(None)] == ["l1"]
    assert [s.conversation_id for s in await store.owned("local")] == ["l1"]
    assert [s.conversation_id for s in await store.owned("mallory")] == []
    assert [s.conversation_id for s in await store.catalogue()] == ["a2", "l1", "b1", "a1"]
    assert {s.owner for s in await store.catalogue()} == {"alice", "bob", None}


async def test_a_listing_summarises_each_run_as_the_files_always_have(
    store: TranscriptStore, tmp_path: Path
) -> None:
    reference = FileStore(tmp_path / "reference")
    for target in (store, reference):
        await target.put(header("done"), golden_events())
        await target.put(header("open", minutes=1), golden_events()[:1])
        fork = header("fork", minutes=2).model_copy(
            update={"parent": ParentRef(conversation_id="done", turn=1)}
        )
        await target.put(fork, golden_events()[:2])  # the fork's text comes in a later append
        for event in golden_events()[2:]:
            await target.append("fork", event)
    rows = {s.conversation_id: s for s in await store.catalogue()}
    want = {s.conversation_id: s for s in catalogue(reference.folder)}
    for cid in ("done", "open", "fork"):
        assert rows[cid].model_dump(exclude={"path"}) == want[cid].model_dump(exclude={"path"})
    assert rows["done"].turns == 6 and rows["open"].stop == "(no stop: interrupted run)"
    assert (rows["fork"].parent, rows["fork"].fork_turn) == ("done", 1)
    assert rows["fork"].fork_text == "And deliveries?"


async def test_put_is_all_or_nothing_and_idempotent(store: TranscriptStore) -> None:
    head, events = header("moved"), golden_events()
    assert await store.put(head, events[:5]) == 5
    assert await store.put(head, events) == len(events) - 5  # the rest, once
    assert await store.put(head, events) == 0
    changed = [*events[:3], events[3].model_copy(update={"turn": 9}), *events[4:]]
    with pytest.raises(TranscriptError, match="differs"):
        await store.put(head, changed)
    with pytest.raises(TranscriptError, match="differs"):
        await store.put(head.model_copy(update={"question": "another?"}), events)
    assert [encode(e) for e in (await store.load("moved")).events] == [encode(e) for e in events]


async def test_a_run_id_that_is_a_path_is_refused(store: TranscriptStore) -> None:
    with pytest.raises(TranscriptError, match="not a run id"):
        await store.put(header("../escape"), golden_events())


# -- the indexes: a listing reads no event -----------------------------------------------------


async def test_the_file_index_lists_unchanged_files_without_reading_them(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    await store.put(header("r1"), golden_events())
    first = await store.catalogue()
    assert (tmp_path / INDEX_NAME).is_file()
    path = tmp_path / "r1.jsonl"
    stat = path.stat()
    # Same size, time and inode but unreadable bytes: only the index can still summarise it.
    with path.open("r+b") as handle:
        handle.write(b"\x00" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert await store.catalogue() == first
    with path.open("ab") as handle:  # any real change is read again
        handle.write(b"\n")
    (again,) = await store.catalogue()
    assert again.problem is not None and "r1.jsonl" in again.problem


async def test_the_file_index_is_a_cache_a_corrupt_one_is_rebuilt(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    await store.put(header("r1"), golden_events())
    first = await store.catalogue()
    (tmp_path / INDEX_NAME).write_text("{not json")
    assert await store.catalogue() == first
    (tmp_path / "r1.jsonl").unlink()
    assert await store.catalogue() == []


async def test_the_postgres_index_lists_runs_without_reading_events(
    postgres: Server, database: str
) -> None:
    store = PostgresStore(postgres.url(database))
    try:
        await store.put(header("r1", "alice"), golden_events())
        before = await store.owned("alice")
        admin = await postgres.connect(database)
        try:  # the events gone: a listing that read them would change
            await admin.execute("DELETE FROM roundtable_events")
        finally:
            await admin.close()
        assert await store.owned("alice") == before
        assert before[0].turns == 6 and before[0].stop.startswith("accepted")
    finally:
        await store.close()


async def test_the_schema_is_created_once_whoever_starts_first(
    postgres: Server, database: str
) -> None:
    stores = [PostgresStore(postgres.url(database)) for _ in range(4)]
    try:
        await asyncio.gather(*(s.catalogue() for s in stores))
        conn = await postgres.connect(database)
        try:
            versions = await conn.fetch("SELECT version FROM roundtable_schema")
        finally:
            await conn.close()
        assert [r["version"] for r in versions] == [1]
    finally:
        for s in stores:
            await s.close()


async def test_a_role_that_may_not_create_tables_works_on_tables_in_place(
    postgres: Server, database: str
) -> None:
    restricted = PostgresStore(postgres.url(database, DML_ONLY))
    with pytest.raises(InfraError, match="cannot create the transcript tables"):
        await restricted.catalogue()
    owner = PostgresStore(postgres.url(database))
    await owner.catalogue()  # the first deployment, by the database's owner
    await owner.close()
    admin = await postgres.connect(database)
    try:
        await admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {DML_ONLY}"
        )
    finally:
        await admin.close()
    try:
        assert await restricted.put(header("r1"), golden_events()) == len(golden_events())
        assert [s.conversation_id for s in await restricted.catalogue()] == ["r1"]
    finally:
        await restricted.close()


# -- choosing the store, and the URL's password ------------------------------------------------


def test_only_a_postgresql_url_selects_the_database(tmp_path: Path) -> None:
    assert isinstance(open_store(None, tmp_path), FileStore)
    assert isinstance(open_store("", tmp_path), FileStore)
    assert isinstance(open_store("sqlite+aiosqlite:///x.db", tmp_path), FileStore)
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db"):
        assert isinstance(open_store(url, tmp_path), PostgresStore)


SECRET = "s3cr%40t-pw!"


@pytest.mark.parametrize(
    ("password", "plain"), [(SECRET, "s3cr@t-pw!"), ("p@ss:w0rd/x", "p@ss:w0rd/x")]
)
def test_the_password_is_never_shown(
    password: str,
    plain: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql+asyncpg://rt:{password}@127.0.0.1:1/rt"  # nothing listens on port 1
    assert plain not in shown(url)
    monkeypatch.setenv("ROUNDTABLE_DATABASE_URL", url)
    out_dir = str(tmp_path / "out")
    for args in (["list"], ["replay", "some-run"], ["transcripts", "export", "--to", out_dir]):
        code, out, err = main(capsys, *args)
        assert code in (2, 3), err
        for secret in {password, plain, "s3cr", "w0rd"}:
            assert secret not in out + err
        assert err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


# -- the CLI with ROUNDTABLE_DATABASE_URL ----------------------------------------------------


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from roundtable.terminal import cli

    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def database_url(postgres: Server, database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database, named by ``ROUNDTABLE_DATABASE_URL`` (as a deployment sets it)."""
    url = postgres.url(database)
    monkeypatch.setenv("ROUNDTABLE_DATABASE_URL", url)
    return url


def test_list_and_replay_read_the_database(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    files = FileStore(folder)
    asyncio.run(files.put(header("run-alice", "alice"), golden_events()))
    asyncio.run(files.put(header("run-local", None, minutes=1), golden_events()))
    code, out, err = main(capsys, "transcripts", "import", str(folder))
    assert code == 0, err
    assert "imported 2 transcripts" in out

    code, out, _ = main(capsys, "list")
    lines = [line for line in out.splitlines() if " turns " in line]
    assert code == 0 and len(lines) == 2
    assert [line.split()[4] for line in lines] == ["local", "alice"]
    code, out, _ = main(capsys, "list", "--user", "alice")
    assert code == 0 and "run-alice" in out and "run-local" not in out

    code, out, _ = main(capsys, "replay", "run-alice", "--json")
    assert code == 0
    assert out == "".join(
        encode(r).decode() for r in [load(folder / "run-alice.jsonl").header, *golden_events()]
    )
    code, _, err = main(capsys, "replay", "run-alice", "--user", "local")
    assert code == 2 and "not a transcript of user 'local'" in err
    code, _, err = main(capsys, "replay", "nothing-here")
    where = PostgresStore(database_url).where
    assert code == 2 and err.strip().splitlines() == [
        f"roundtable: error: no transcript 'nothing-here' in {where}"
    ]


def test_export_and_import_move_runs_both_ways_idempotently(
    database_url: str,
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "source"
    files = FileStore(source)
    head, events = every_kind()
    asyncio.run(files.put(head, events))
    asyncio.run(files.put(header("golden"), golden_events()))
    (source / "broken.jsonl").write_text('{"kind": "header"}\n')
    shutil.copy(GOLDEN, source / "from-ask.jsonl")  # named by its writer, not by its id

    code, out, err = main(capsys, "transcripts", "import", str(source))
    assert code == 1
    assert "imported 3 transcripts" in out and "1 skipped" in out
    assert err.count("\n") == 1 and "broken.jsonl" in err
    code, out, _ = main(capsys, "transcripts", "import", str(source))
    assert "imported 0 transcripts (0 events)" in out and "3 already there" in out

    back = tmp_path / "back"
    for _ in range(2):
        code, out, err = main(capsys, "transcripts", "export", "--to", str(back))
        assert code == 0, err
    assert "exported 0 transcripts" in out and "3 already there" in out
    assert sorted(p.name for p in back.glob("*.jsonl")) == [
        "c1.jsonl",
        "golden.jsonl",
        "test-08283674.jsonl",
    ]
    for name in ("c1.jsonl", "golden.jsonl"):
        assert (back / name).read_bytes() == (source / name).read_bytes()
    assert (back / "test-08283674.jsonl").read_bytes() == GOLDEN.read_bytes()

    monkeypatch.delenv("ROUNDTABLE_DATABASE_URL")  # files again: the data folder
    code, out, err = main(capsys, "transcripts", "import", str(back))
    assert code == 0 and "imported 3 transcripts" in out
    assert (data_dir / "transcripts" / "c1.jsonl").read_bytes() == (
        source / "c1.jsonl"
    ).read_bytes()
