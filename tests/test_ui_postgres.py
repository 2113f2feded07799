"""Chat history on a real PostgreSQL server (Debian's ``postgresql`` package), by URL.

A session fixture starts a throwaway server (its own data folder and loopback port, trust auth,
run as the ``postgres`` OS user when the tests run as root) and stops it at the end; each test
gets a fresh database owned by a non-superuser role, as a deployment would. The tests skip only
when the server binaries are absent (``scripts/setup-test`` installs them).

Covered: Roundtable's schema creation (twice, concurrently, and by a role with no CREATE right
once the schema exists); Chainlit's own ``SQLAlchemyDataLayer`` over ``postgresql+asyncpg``
doing what history and resume rely on; and a scripted debate drawn by the real renderer into a
thread, resumed and continued, which must read back from PostgreSQL exactly as from the SQLite
default. Chainlit's layer swallows SQL errors into a log line, so every test also checks that
none was logged.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import chainlit as cl
import chainlit.data as cl_data
import pytest
from chainlit.config import config as chainlit_config
from chainlit.context import init_http_context, local_steps
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import User

from roundtable.agents import resolve_team
from roundtable.conversations import Settings
from roundtable.transcripts import (
    HUMAN,
    LiveEvent,
    MessageEvent,
    load,
)
from roundtable.ui.auth import LOCAL_USER
from roundtable.ui.commands import Say
from roundtable.ui.headings import DETAILS, DETAILS_WITH_MEMORY
from roundtable.ui.history import (
    REPLAYED_KEY,
    TRANSCRIPT_KEY,
    create_schema,
    data_layer,
    database_url,
    thread_metadata,
    transcript_in,
)
from roundtable.ui.render import ChainlitRenderer
from roundtable.ui.session import SessionRunner
from tests.support.postgres import DML_ONLY, OWNER, Server
from tests.support.runs import scripted_settings

TABLES = ("users", "threads", "steps", "elements", "feedbacks")


@pytest.fixture
def sql_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """What Chainlit's data layer logged instead of raising (it swallows SQL errors)."""
    caplog.set_level(logging.WARNING, logger="chainlit")

    def errors() -> list[str]:
        return [
            record.getMessage()[:400]
            for record in caplog.records
            if record.name == "chainlit" and "error occurred" in record.getMessage()
        ]

    return errors


# -- schema --------------------------------------------------------------------------------------


async def test_schema_is_created_on_first_start_and_again_on_the_next(
    postgres: Server, database: str
) -> None:
    url = postgres.url(database)
    await create_schema(url)
    await create_schema(url)  # every start runs it
    conn = await postgres.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        owners = await conn.fetch("SELECT tablename, tableowner FROM pg_tables")
        indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
    finally:
        await conn.close()
    columns = {(r["table_name"], r["column_name"]): (r["data_type"], r["udt_name"]) for r in rows}
    assert {table for table, _ in columns} == set(TABLES)
    assert columns["users", "metadata"][0] == "jsonb"
    assert columns["threads", "metadata"][0] == "jsonb"
    assert columns["threads", "tags"] == ("ARRAY", "_text")
    assert columns["steps", "modes"][0] == "jsonb"
    assert columns["steps", "defaultOpen"][0] == "boolean"
    assert columns["steps", "autoCollapse"][0] == "boolean"
    assert columns["steps", "command"][0] == "text"
    assert {r["tablename"]: r["tableowner"] for r in owners if r["tablename"] in TABLES} == {
        table: OWNER for table in TABLES
    }
    assert {"steps_thread", "threads_user"} <= indexes


async def test_servers_starting_together_all_create_the_schema(
    postgres: Server, database: str
) -> None:
    # Unlocked, concurrent CREATE TABLE IF NOT EXISTS fails on PostgreSQL with a duplicate
    # pg_type key: replicas or workers starting at once must not crash.
    url = postgres.url(database)
    results = await asyncio.gather(*(create_schema(url) for _ in range(5)), return_exceptions=True)
    assert [r for r in results if r is not None] == []


async def test_a_role_that_may_not_create_tables_starts_on_an_existing_schema(
    postgres: Server, database: str, sql_errors: Callable[[], list[str]]
) -> None:
    await create_schema(postgres.url(database))  # by the owner, e.g. at the first deployment
    owner = await postgres.connect(database, OWNER)
    try:
        await owner.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {DML_ONLY}"
        )
    finally:
        await owner.close()
    restricted = await postgres.connect(database, DML_ONLY)
    try:  # the premise: PostgreSQL 15 gives PUBLIC no CREATE right on the public schema
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await restricted.execute("CREATE TABLE probe (x INT)")
    finally:
        await restricted.close()

    url = postgres.url(database, DML_ONLY)
    await create_schema(url)  # was "permission denied for schema public" on every start
    layer = SQLAlchemyDataLayer(conninfo=url)
    try:
        user = await layer.create_user(User(identifier="ann", metadata={"provider": "password"}))
        assert user is not None and (await layer.get_user("ann")) == user
    finally:
        await layer.close()
    assert sql_errors() == []


def test_plain_postgres_urls_get_the_async_driver(tmp_path: Path) -> None:
    for given in ("postgresql://rt:p%40ss@db:5432/history", "postgres://rt:p%40ss@db:5432/history"):
        assert database_url(tmp_path, given) == "postgresql+asyncpg://rt:p%40ss@db:5432/history"
    kept = "postgresql+asyncpg://rt@db/history"
    assert database_url(tmp_path, kept) == kept


# -- Chainlit's data layer -----------------------------------------------------------------------


def _step(step: cl.Step | cl.Message, when: str) -> dict[str, Any]:
    """``step`` as Chainlit hands it to the data layer, created at ``when``."""
    step.created_at = when
    if isinstance(step, cl.Step):
        step.start = step.end = when
    return dict(step.to_dict())


async def test_chainlits_data_layer_keeps_threads_steps_and_owners(
    postgres: Server, database: str, tmp_path: Path, sql_errors: Callable[[], list[str]]
) -> None:
    url = postgres.url(database)
    await create_schema(url)
    layer = SQLAlchemyDataLayer(conninfo=url)
    try:
        await _round_trip(layer, tmp_path)
    finally:
        await layer.close()
    assert sql_errors() == []


async def _round_trip(layer: SQLAlchemyDataLayer, tmp_path: Path) -> None:
    ann = await layer.create_user(User(identifier="ann", metadata={"provider": "password"}))
    bob = await layer.create_user(User(identifier="bob", metadata={}))
    assert ann is not None and bob is not None and ann.id != bob.id
    again = await layer.create_user(User(identifier="ann", metadata={"provider": "local"}))
    assert again is not None and again.id == ann.id and again.metadata == {"provider": "local"}

    thread_id, bobs_thread = str(uuid.uuid4()), str(uuid.uuid4())
    init_http_context(thread_id=thread_id)  # a Chainlit context, as the server has one
    await layer.update_thread(
        thread_id,
        name="Trams or buses?",
        user_id=ann.id,
        metadata={TRANSCRIPT_KEY: "a.jsonl", "chat_settings": {"max_turns": 4}},
        tags=["debate"],
    )
    await layer.update_thread(bobs_thread, name="Bob's", user_id=bob.id)

    # Written out of order on purpose: history is read back in time order.
    asked = cl.Message(content="Trams or buses?", author="ann", type="user_message")
    pick = cl.Step(name="Manager picks researcher by rule", type="tool", show_input=False)
    pick.output = "the researcher opens a new question"
    reply = cl.Message(content="**Researcher** · turn 1\n\n", author="researcher")
    failed = cl.Step(name="Error model in critic", type="tool", show_input=False)
    failed.is_error, failed.output = True, "no verdict"
    steps = [
        _step(reply, "2026-01-01T10:00:02.000001Z"),
        _step(asked, "2026-01-01T10:00:00.000001Z"),
        _step(failed, "2026-01-01T10:00:03.000001Z"),
        _step(pick, "2026-01-01T10:00:01.000001Z"),
    ]
    for step in steps:
        await layer.create_step(step)
    # A streamed reply is saved empty-but-named, then updated with the committed text.
    reply.content = "**Researcher** · turn 1\n\nTrams carry more people per lane."
    await layer.update_step(_step(reply, "2026-01-01T10:00:02.000001Z"))
    await layer.upsert_feedback(Feedback(forId=reply.id, value=1, threadId=thread_id))

    thread = await layer.get_thread(thread_id)
    assert thread is not None
    assert [(s["type"], s["name"], s["output"]) for s in thread["steps"]] == [
        ("user_message", "ann", "Trams or buses?"),
        ("tool", "Manager picks researcher by rule", "the researcher opens a new question"),
        ("assistant_message", "researcher", reply.content),
        ("tool", "Error model in critic", "no verdict"),
    ]
    by_id = {s["id"]: s for s in thread["steps"]}
    assert by_id[failed.id]["isError"] is True and by_id[pick.id]["isError"] is False
    assert by_id[reply.id]["streaming"] is False
    feedback = by_id[reply.id]["feedback"]
    assert feedback is not None and feedback["value"] == 1
    assert thread["name"] == "Trams or buses?" and thread["userIdentifier"] == "ann"
    assert thread["tags"] == ["debate"]
    assert thread_metadata(thread) == {TRANSCRIPT_KEY: "a.jsonl", "chat_settings": {"max_turns": 4}}
    assert await layer.get_thread_author(thread_id) == "ann"
    (tmp_path / "a.jsonl").write_text("{}")
    assert transcript_in(tmp_path, thread_metadata(thread).get(TRANSCRIPT_KEY)) == (
        tmp_path / "a.jsonl"
    )

    # Each person sees only their own threads (the sidebar), and search looks in the steps.
    async def listed(user_id: str, search: str | None = None) -> list[str]:
        page = await layer.list_threads(
            Pagination(first=20), ThreadFilter(userId=user_id, search=search)
        )
        return [t["id"] for t in page.data]

    assert await listed(ann.id) == [thread_id]
    assert await listed(bob.id) == [bobs_thread]
    assert await listed(ann.id, "CARRY MORE") == [thread_id]
    assert await listed(ann.id, "nowhere") == []

    # Relinking (app._link): a None removes a key, the others are kept; renaming keeps both.
    await layer.update_thread(thread_id, metadata={REPLAYED_KEY: "b.jsonl", TRANSCRIPT_KEY: None})
    await layer.update_thread(thread_id, name="Renamed")
    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["name"] == "Renamed"
    assert thread_metadata(thread) == {REPLAYED_KEY: "b.jsonl", "chat_settings": {"max_turns": 4}}

    await layer.delete_step(failed.id)
    thread = await layer.get_thread(thread_id)
    assert thread is not None and failed.id not in {s["id"] for s in thread["steps"]}

    await layer.delete_thread(thread_id)
    assert await layer.get_thread(thread_id) is None
    assert await listed(ann.id) == []
    assert await listed(bob.id) == [bobs_thread]
    left = await layer.execute_sql('SELECT id FROM steps WHERE "threadId" = :t', {"t": thread_id})
    assert left == []


async def test_a_message_with_a_nul_character_is_kept(
    postgres: Server, database: str, sql_errors: Callable[[], list[str]]
) -> None:
    # PostgreSQL refuses NUL in text: Chainlit's own layer logs the error and drops the step.
    url = postgres.url(database)
    await create_schema(url)
    layer = data_layer(url)
    try:
        thread_id = str(uuid.uuid4())
        init_http_context(thread_id=thread_id)
        message = cl.Message(content="before\x00after", author="You", type="user_message")
        await layer.create_step(_step(message, "2026-01-01T10:00:00Z"))
        await layer.update_thread(thread_id, name="a\x00b", tags=["x\x00y"])
        thread = await layer.get_thread(thread_id)
    finally:
        await layer.close()
    assert sql_errors() == []
    assert thread is not None
    assert [s["output"] for s in thread["steps"]] == ["before\ufffdafter"]
    assert thread["name"] == "a\ufffdb" and thread["tags"] == ["x\ufffdy"]


# -- a debate, end to end without a browser ------------------------------------------------------

QUESTION = "Should our city ban private cars downtown?"
FOLLOW_UP = "And what about deliveries?"
CONVERSATION_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
SECONDS = re.compile(r"\| \d+\.\d \|")
"""The cost ledger's seconds column: timings differ between two runs."""
REPORT_SECONDS = re.compile(r"tokens, \d+\.\d s")
"""The quality report's seconds, under the stop line."""


class _Persistence:
    """Tracks the writes Chainlit fires and forgets (``asyncio.create_task``) so a test can wait
    for them: drawing each event only after the previous one's writes are done makes the
    history deterministic (a status message removed before its insert ran would stay)."""

    def __init__(self, layer: SQLAlchemyDataLayer) -> None:
        self.pending: set[asyncio.Future[Any]] = set()
        for name in ("create_step", "update_step", "delete_step", "update_thread"):
            setattr(layer, name, self._tracked(getattr(layer, name)))

    def _tracked(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            task = asyncio.ensure_future(method(*args, **kwargs))  # scheduled at call time
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

            async def wait() -> Any:
                return await task

            return wait()

        return call

    async def settle(self) -> None:
        while self.pending:
            await asyncio.gather(*self.pending)


@dataclass
class _Settled:
    """The app's renderer, waiting for each event's writes before drawing the next."""

    inner: ChainlitRenderer
    persistence: _Persistence

    async def show(self, event: LiveEvent) -> None:
        await self.inner.show(event)
        await self.persistence.settle()

    async def note(self, text: str) -> None:
        await self.inner.note(text)
        await self.persistence.settle()

    async def failure(self, text: str) -> None:
        await self.inner.failure(text)
        await self.persistence.settle()


def _spawn(coro: Any) -> asyncio.Task[None]:
    context = contextvars.copy_context()  # as app._spawn: outside any Chainlit run step
    context.run(local_steps.set, None)
    return asyncio.get_running_loop().create_task(coro, context=context)


def _scripted_settings(tmp_path: Path) -> Settings:
    """The built-in demo debate, without its typing delay."""
    return scripted_settings(tmp_path)


async def _debate_thread(
    url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, str, str]], Path]:
    """What app.py does for one person: a debate in a new thread, then the thread reopened
    (on_chat_resume) and continued. Returns the thread as read back, and its transcript."""
    await create_schema(url)
    layer = data_layer(url)
    persistence = _Persistence(layer)
    monkeypatch.setattr(chainlit_config.code, "data_layer", lambda: layer)
    monkeypatch.setattr(cl_data, "_data_layer", None)
    monkeypatch.setattr(cl_data, "_data_layer_initialized", False)
    try:
        user = await layer.create_user(User(identifier=LOCAL_USER, metadata={"provider": "local"}))
        other = await layer.create_user(User(identifier="someone-else", metadata={}))
        assert user is not None and other is not None
        thread_id = str(uuid.uuid4())
        init_http_context(thread_id=thread_id)
        await layer.update_thread(thread_id, name=QUESTION, user_id=user.id)

        async def link(path: Path, kind: str) -> None:  # app._link
            other_kind = REPLAYED_KEY if kind == TRANSCRIPT_KEY else TRANSCRIPT_KEY
            await layer.update_thread(thread_id, metadata={kind: path.name, other_kind: None})

        def runner() -> SessionRunner:
            return SessionRunner(
                settings=settings,
                display=lambda **kw: _Settled(ChainlitRenderer(**kw), persistence),
                spawn=_spawn,
                on_transcript=link,
            )

        async def say(session: SessionRunner, text: str) -> None:
            # Chainlit saves what the person typed itself, then calls on_message.
            typed = cl.Message(content=text, author=LOCAL_USER, type="user_message")
            await typed.send()  # type: ignore[no-untyped-call]
            await session.say(Say(text))
            assert session.task is not None
            await asyncio.wait_for(session.task, timeout=30)
            await persistence.settle()

        first = runner()
        await say(first, QUESTION)
        transcript = first.transcript
        assert transcript is not None

        # Reopened (app._chat_resume): the thread's metadata leads back to the transcript.
        thread = await layer.get_thread(thread_id)
        assert thread is not None and thread["userIdentifier"] == LOCAL_USER
        metadata = thread_metadata(thread)
        resumed = runner()
        resumed.transcript = transcript_in(settings.transcripts_dir, metadata.get(TRANSCRIPT_KEY))
        resumed.replayed = transcript_in(settings.transcripts_dir, metadata.get(REPLAYED_KEY))
        assert resumed.transcript == transcript and resumed.replayed is None
        await say(resumed, FOLLOW_UP)
        assert resumed.transcript == transcript  # continued, not a new conversation

        thread = await layer.get_thread(thread_id)
        assert thread is not None
        assert thread_metadata(thread) == {TRANSCRIPT_KEY: transcript.name}
        for who, expected in ((user.id, [thread_id]), (other.id, [])):
            page = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=who))
            assert [t["id"] for t in page.data] == expected
        steps = [
            (
                str(s["type"]),
                CONVERSATION_ID.sub("<id>", s["name"]),
                REPORT_SECONDS.sub(
                    "tokens, <s>",
                    SECONDS.sub("| <s> |", CONVERSATION_ID.sub("<id>", s["output"] or "")),
                ),
            )
            for s in thread["steps"]
        ]
        return steps, transcript
    finally:
        await persistence.settle()
        await layer.close()


async def test_a_debate_thread_round_trips_as_on_sqlite(
    postgres: Server,
    database: str,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sql_errors: Callable[[], list[str]],
) -> None:
    settings = _scripted_settings(tmp_path)
    on_sqlite, _ = await _debate_thread(database_url(data_dir, None), settings, monkeypatch)
    # The URL as a person would configure it: no driver named.
    url = database_url(data_dir, postgres.url(database, scheme="postgresql"))
    on_postgres, transcript_path = await _debate_thread(url, settings, monkeypatch)
    assert sql_errors() == []

    # The thread holds every agent message of the transcript, in order, with its name...
    transcript = load(transcript_path)
    said = [e for e in transcript.events if isinstance(e, MessageEvent)]
    assert [e.content for e in said if e.speaker == HUMAN] == [QUESTION, FOLLOW_UP]
    agents = [e for e in said if e.speaker != HUMAN]
    assert len({e.speaker for e in agents}) >= 3
    shown = [(n, o) for _, n, o in on_postgres if n in resolve_team(None).roster]
    assert [name for name, _ in shown] == [e.speaker for e in agents]
    for (_, output), event in zip(shown, agents, strict=True):  # a heading with its why
        assert output.startswith(f"**{event.speaker.capitalize()}** · turn ")
        assert output.endswith(f"*\n\n{event.content}")
    # ... the person's messages, the manager's picks, one header and two stop reasons, and no
    # leftover status line (each is removed when the next thing is drawn).
    assert [o for k, _, o in on_postgres if k == "user_message"] == [QUESTION, FOLLOW_UP]
    assert on_postgres[0] == ("user_message", LOCAL_USER, QUESTION)
    assert [n for k, n, _ in on_postgres if k == "run"] == ["Debate <id>"]
    assert sum(n in (DETAILS, DETAILS_WITH_MEMORY) for _, n, _ in on_postgres) >= len(agents)
    stops = [i for i, (_, _, o) in enumerate(on_postgres) if o.startswith("**Debate stopped**")]
    assert len(stops) == 2 and stops[-1] == len(on_postgres) - 1
    assert not any("type to step in" in output for _, _, output in on_postgres)
    # ... exactly as the SQLite default keeps it.
    assert on_postgres == on_sqlite
