"""Shared test set-up: an isolated data folder, and no network beyond loopback."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roundtable.agents.structured_output import NEGOTIATION
from tests.support.postgres import database, postgres  # noqa: F401  (fixtures for every test)

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if (ip is None and host != "localhost") or (ip is not None and not ip.is_loopback):
            raise ConnectionRefusedError(f"tests may not reach {host}: loopback only")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never need a network: anything but loopback is refused at connect time."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """Each test gets its own data folder and no settings file from the developer's machine.

    The protocol guards are off unless a test is marked ``guards``: the scripted
    orchestration tests speak fixed words (an immediate ACCEPT, echoes) that the guards would
    refuse, which is what ``tests/test_guards*.py`` check."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ROUNDTABLE_DATA_DIR", str(folder))
    monkeypatch.delenv("ROUNDTABLE_CONFIG", raising=False)
    for key in list(__import__("os").environ):
        if key.startswith("ROUNDTABLE_") and key != "ROUNDTABLE_DATA_DIR":
            monkeypatch.delenv(key)
    if request.node.get_closest_marker("guards") is None:
        monkeypatch.setenv("ROUNDTABLE_GUARDS__ENABLED", "false")
    yield folder


@pytest.fixture(autouse=True)
def _fresh_negotiation() -> Iterator[None]:
    """What each endpoint's structured output was learnt to be is per test: test servers on
    reused ports must not inherit another server's forms."""
    NEGOTIATION.forget()
    yield
    NEGOTIATION.forget()
