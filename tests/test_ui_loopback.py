"""With no users configured, the UI answers only this machine, however it is started (#15, 5).

The no-login mode logs everyone in as the local user, so it must never be reachable from the
network. It used to rest on an address our launcher passed in an environment variable and on
the ``Host`` header: ``chainlit run ui/app.py --host 0.0.0.0`` skipped the first, and a client
on the network sending ``Host: 127.0.0.1`` passed the second. Now the app checks the address
Chainlit binds, and every request's and socket's real peer (the ASGI scope's client).

Servers here are real processes on free ports: ``chainlit run``, ``roundtable ui``, and the UI
mounted in a FastAPI app under uvicorn (``tests/support/mounted_ui.py``), the deployment in
which the app cannot see its bound address at all. A peer beyond loopback is this machine's own
non-loopback address when it has one (a connection to it comes from it), else an ASGI scope.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from roundtable.ui.approot import prepare_app_root
from roundtable.ui.server import APP_FILE, free_port
from tests.support.servers import answers, clean_env, started

MOUNTED = Path(__file__).resolve().parent / "support" / "mounted_ui.py"
ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))
SIOCGIFADDR = 0x8915


def own_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (None if it has only loopback)."""
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(
                    probe.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode())
                )
            except OSError:
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None


def server_env(data_dir: Path) -> tuple[dict[str, str], Path]:
    """A UI's environment (no users, scripted model, no memory) and its prepared app root."""
    root = prepare_app_root(data_dir)
    env = clean_env(
        data_dir,
        ROUNDTABLE_ENDPOINTS__DEFAULT__KIND="scripted",
        ROUNDTABLE_MEMORY__ENABLED="false",
        CHAINLIT_APP_ROOT=str(root),
    )
    return env, root


def post_from_outside(url: str) -> int:
    """POST ``url`` with ``Host: 127.0.0.1`` from a separate process (this one may reach only
    loopback): the status, or 0 when the connection failed."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1], data=b'', headers={'Host': '127.0.0.1'})\n"
        "try:\n    print(urllib.request.urlopen(req, timeout=10).status)\n"
        "except urllib.error.HTTPError as exc:\n    print(exc.code)\n"
        "except OSError:\n    print(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=30
    )
    return int(done.stdout.strip() or 0)


def post(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=b"", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_chainlit_run_on_every_address_with_no_users_refuses_to_start(data_dir: Path) -> None:
    env, root = server_env(data_dir)
    port = free_port()
    command = [sys.executable, "-m", "chainlit", "run", str(APP_FILE), "--headless"]
    command += ["--host", "0.0.0.0", "--port", str(port)]
    with started(command, env, root) as server:
        if answers(server, f"http://127.0.0.1:{port}/health"):
            outside = own_address()
            status = post_from_outside(f"http://{outside}:{port}/auth/header") if outside else None
            pytest.fail(f"served on 0.0.0.0 with no users; a header login from {outside}: {status}")
        output = (server.stdout.read() if server.stdout else "").strip()
    assert server.returncode != 0
    # Chainlit's own start-up lines (e.g. "Running in CI mode" when CI is set) may come
    # first; ours is the last line and the only one of ours, and no traceback is printed.
    lines = output.splitlines()
    assert lines[-1] == "roundtable ui: error: no users configured; refusing to serve on 0.0.0.0"
    assert all(" - chainlit - " in line for line in lines[:-1]), lines
    assert "Traceback" not in output


def probe(data_dir: Path, ip: str) -> dict[str, Any]:
    env, root = server_env(data_dir)
    done = subprocess.run(
        [sys.executable, str(MOUNTED), "probe", ip],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_peer_beyond_loopback_is_refused_even_when_it_names_127_0_0_1(data_dir: Path) -> None:
    """ASGI scopes, as uvicorn fills them: the client at 10.0.0.5 gets nothing, not even the
    health check; the same calls from 127.0.0.1 go through (the local user logs in)."""
    assert probe(data_dir, "10.0.0.5") == {"health": 403, "login": 403, "socket": 403}
    local = probe(data_dir, "127.0.0.1")
    assert local["health"] == 200 and local["login"] == 200 and local["socket"] == 200


def test_mounted_on_every_address_a_network_peer_is_refused(data_dir: Path) -> None:
    """A real uvicorn on 0.0.0.0: a connection to this machine's own network address comes
    from that address, a peer beyond loopback, and is refused; loopback still logs in."""
    outside = own_address()
    if outside is None:
        pytest.skip("this machine has only loopback (the ASGI test covers the rule)")
    env, root = server_env(data_dir)
    port = free_port()
    command = [sys.executable, str(MOUNTED), "serve", "0.0.0.0", str(port)]
    with started(command, env, root) as server:
        assert answers(server, f"http://127.0.0.1:{port}/chainlit/health"), server.communicate()[0][
            -3000:
        ]
        assert post_from_outside(f"http://{outside}:{port}/chainlit/auth/header") == 403
        assert post(f"http://127.0.0.1:{port}/chainlit/auth/header") == 200


def test_the_launcher_serves_loopback_and_still_refuses_a_rebinding_host(data_dir: Path) -> None:
    """``roundtable ui`` passes its address to Chainlit, which the app now reads: the local
    user logs in from loopback; a page whose name resolved to 127.0.0.1 (DNS rebinding) sends
    its own Host and is refused (the Host header only ever refuses, it never admits)."""
    env, root = server_env(data_dir)
    port = free_port()
    with started([ROUNDTABLE, "ui", "--port", str(port)], env, root) as launcher:
        assert answers(launcher, f"http://127.0.0.1:{port}/health")
        assert post(f"http://127.0.0.1:{port}/auth/header") == 200
        assert post(f"http://127.0.0.1:{port}/auth/header", {"Host": "evil.example"}) == 401


class _Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.app_called = False

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.app_called = True

    async def send(self, message: Any) -> None:
        self.messages.append(message)


async def _nothing() -> dict[str, Any]:
    return {"type": "websocket.connect"}


@pytest.mark.parametrize(
    ("kind", "client", "admitted"),
    [
        ("websocket", ("10.0.0.5", 5000), False),
        ("websocket", ("::1", 5000), True),
        ("http", None, False),  # a peer it cannot name is not known to be this machine
        ("lifespan", None, True),
    ],
)
async def test_the_peer_rule_covers_sockets_and_unknown_peers(
    kind: str, client: tuple[str, int] | None, admitted: bool
) -> None:
    from roundtable.ui.loopback import LoopbackOnly

    sent = _Sent()
    scope = {"type": kind, "client": client, "path": "/ws/socket.io/", "headers": []}
    await LoopbackOnly(sent.app)(scope, _nothing, sent.send)
    assert sent.app_called is admitted
    if not admitted:
        first = sent.messages[0]
        assert first["type"] in ("websocket.close", "http.response.start")
        assert first.get("code", first.get("status")) in (1008, 403)
