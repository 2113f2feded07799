"""``roundtable users``: users and hashed API tokens in ``<data_dir>/users.json``, through the
installed command, and what the UI's login and the API's gate read from that file."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from roundtable.api.callers import Callers
from roundtable.common.accounts import read_accounts
from roundtable.common.errors import ConfigError
from roundtable.ui.auth import check_login
from roundtable.ui.config import UISettings

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROUNDTABLE, "users", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_users_are_added_from_stdin_listed_and_removed(data_dir: Path) -> None:
    added = cli("add", "alice", stdin="correct horse battery\n")
    assert added.returncode == 0 and added.stdout == "Added user alice.\n"
    path = data_dir / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "correct horse" not in path.read_text()
    users = UISettings(users={"carol": "x"}).all_users(data_dir)  # beside ROUNDTABLE_USERS
    assert set(users) == {"alice", "carol"}
    assert check_login(users, "alice", "correct horse battery")
    assert not check_login(users, "alice", "wrong horse battery")

    assert cli("list").stdout == "alice  (0 token(s))\n"
    assert cli("add", "bob", stdin="short\n").stderr == (
        "roundtable: error: the password must be at least 8 characters\n"
    )
    local = cli("add", "local", stdin="long enough pw\n")
    assert local.returncode == 2 and "local user's" in local.stderr
    assert cli("add", "../x", stdin="long enough pw\n").returncode == 2
    removed = cli("remove", "alice")
    assert removed.returncode == 0 and read_accounts(path).users == {}
    assert cli("remove", "alice").stderr == (
        "roundtable: error: no user 'alice' (see `roundtable users list`)\n"
    )


def test_a_token_is_printed_once_stored_hashed_listed_and_revoked(data_dir: Path) -> None:
    issued = cli("token", "bob")
    token = issued.stdout.strip()
    assert issued.returncode == 0 and token.startswith("rt_") and len(token) > 40
    stored = (data_dir / "users.json").read_text()
    assert token not in stored
    record = json.loads(stored)["tokens"][0]
    assert record["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    listed = cli("tokens").stdout
    assert listed.split()[:2] == [record["id"], "bob"] and token not in listed

    callers = Callers("admin-token-0123456789", data_dir / "users.json")
    caller = callers.resolve(f"Bearer {token}".encode())
    assert caller is not None and caller.user == "bob" and not caller.admin
    assert callers.resolve(f"Bearer {token}x".encode()) is None
    assert callers.resolve(token.encode()) is None  # not a bearer header
    admin = callers.resolve(b"Bearer admin-token-0123456789")
    assert admin is not None and admin.admin and admin.sees("anyone")
    assert not caller.sees("alice") and caller.sees("bob")

    assert cli("revoke", record["id"]).stdout == f"Revoked token {record['id']} of bob.\n"
    assert callers.resolve(f"Bearer {token}".encode()) is None  # read again: it changed
    assert cli("revoke", record["id"]).returncode == 2


def test_a_broken_users_file_is_one_line(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "users.json").write_text('{"users": {"a": 1}}')
    listed = cli("list")
    assert listed.returncode == 2
    assert (
        listed.stderr.startswith("roundtable: error: users file ")
        and listed.stderr.count("\n") == 1
    )
    (data_dir / "users.json").unlink()
    (data_dir / "users.json").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        read_accounts(data_dir / "users.json")


def test_the_ui_refuses_to_start_on_a_broken_users_file_in_one_line(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "users.json").write_text("{not json")
    started = subprocess.run(
        [ROUNDTABLE, "ui", "--port", "0"], capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 2
    assert started.stderr.startswith("roundtable ui: error: users file ")
    assert started.stderr.count("\n") == 1
