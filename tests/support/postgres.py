"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package), by URL.

``postgres`` (a session fixture) starts a server of its own (its own data folder and loopback
port, trust auth, run as the ``postgres`` OS user when the tests run as root) and stops it at
the end; ``database`` gives each test a fresh database owned by a non-superuser role, as a
deployment would. Tests that use them skip only when the server binaries are absent
(``scripts/setup-test`` installs them), so CI, which runs that script, runs them.

Import both fixtures into a test module: ``from tests.support.postgres import database,
postgres``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from roundtable.ui.server import free_port

SUPERUSER = "postgres"
OWNER = "roundtable"
"""Owns each test database, like the role a deployment gives Roundtable."""
DML_ONLY = "roundtable_dml"
"""May read and write the history tables but create nothing."""


# -- the server ---------------------------------------------------------------------------------


def _bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has the server programs."""
    found = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (path.parent / "pg_ctl").is_file() and path.parent.parent.name.isdigit()
    ]
    return max(found, key=lambda path: int(path.parent.name)) if found else None


@dataclass(frozen=True)
class Server:
    port: int

    def url(self, database: str, user: str = OWNER, scheme: str = "postgresql+asyncpg") -> str:
        return f"{scheme}://{user}@127.0.0.1:{self.port}/{database}"

    async def connect(self, database: str = "postgres", user: str = SUPERUSER) -> Any:
        return await asyncpg.connect(self.url(database, user, scheme="postgresql"))


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server of its own for this test session, on a free loopback port."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "scripts/setup-test installs Debian's postgresql package"
        )
    root = Path(tempfile.mkdtemp(prefix="roundtable-pg-"))
    as_server_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' OS user to run the server")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_server_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    pg_ctl = [*as_server_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        init = _run(
            [
                *as_server_user,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            root,
        )
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        for _ in range(3):  # the free port may be taken before the server binds it
            port = free_port()
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = _run(
                [*pg_ctl, "-o", options, "-l", str(root / "server.log"), "-w", "-t", "30", "start"],
                root,
            )
            if start.returncode == 0:
                started = True
                break
        if not started:
            log = (root / "server.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the PostgreSQL server did not start:\n{start.stderr}\n{log}")
        server = Server(port)
        roles = _run(
            [
                str(bin_dir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                server.url("postgres", SUPERUSER, scheme="postgresql"),
                "-c",
                f"CREATE ROLE {OWNER} LOGIN; CREATE ROLE {DML_ONLY} LOGIN;",
            ],
            root,
        )
        assert roles.returncode == 0, roles.stderr
        yield server
    finally:
        if started:
            _run([*pg_ctl, "-m", "immediate", "-w", "stop"], root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def database(postgres: Server) -> AsyncIterator[str]:
    """A fresh, empty database owned by the ``roundtable`` role."""
    name = f"history_{uuid.uuid4().hex[:12]}"
    admin = await postgres.connect()
    try:
        await admin.execute(f"CREATE DATABASE {name} OWNER {OWNER}")
        yield name
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()
