"""Starting the Chainlit server: checks first, then ``chainlit run ui/app.py`` as a child process.

Owns the start-up refusals (each one clear line, exit code 2): MCP enabled in the
``.chainlit/config.toml`` Chainlit will read (Chainlit's MCP support has an open SSRF), a
non-loopback address with no users configured (the local user logs in without a password), or
a team file that does not load (every team is offered as a chat profile).
Chainlit reads its config, ``public/`` and ``chainlit.md`` from the app root and writes there
too, so the server runs it in a writable copy in the data folder (``approot.py``) whatever the
caller's working directory, and site-packages may stay read-only. Does not own the app itself
(``app.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from roundtable.agents import load_teams
from roundtable.common.bounded import MAX_CONFIG_BYTES, read_text
from roundtable.common.errors import ConfigError
from roundtable.ui.approot import SHIPPED_ROOT, prepare_app_root
from roundtable.ui.auth import is_loopback

APP_ROOT = SHIPPED_ROOT
"""Where the shipped ``.chainlit/``, ``public/`` and ``chainlit.md`` live (checkout or install);
Chainlit runs on a copy of them (``prepare_app_root``)."""
APP_FILE = Path(__file__).resolve().parent / "app.py"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TeamsSource = tuple[Path | None, str]
"""The user's teams folder and the configured team (``Settings.teams_dir``, ``.team``)."""


def config_file(root: Path = APP_ROOT) -> Path:
    return root / ".chainlit" / "config.toml"


def check_mcp_disabled(path: Path) -> None:
    """Raise ConfigError when the Chainlit config enables MCP (or cannot be read)."""
    if not path.exists():
        raise ConfigError(f"{path} is missing: Roundtable ships it with MCP disabled")
    try:
        data = tomllib.loads(read_text(path, MAX_CONFIG_BYTES, "Chainlit config"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    mcp = data.get("features", {}).get("mcp", {})
    if not isinstance(mcp, dict):
        raise ConfigError(f"{path}: [features.mcp] must be a table")
    if mcp.get("enabled", False) is not False:
        raise ConfigError(
            f"{path}: features.mcp.enabled is on; Chainlit's MCP support has an open SSRF, "
            "so Roundtable refuses to start. Set it to false."
        )


def check_binding(host: str, users: Mapping[str, str]) -> None:
    """Without users, only a loopback address is allowed (no login in that mode)."""
    if not users and not is_loopback(host):
        raise ConfigError(
            f"--host {host}: with no users configured the UI has no login, so it only binds "
            "to a loopback address; configure ROUNDTABLE_USERS to serve on a network"
        )


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on right now (for tests and ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def command(host: str, port: int) -> list[str]:
    """The ``chainlit run`` command line."""
    return [
        sys.executable,
        "-m",
        "chainlit",
        "run",
        str(APP_FILE),
        "--headless",
        "--host",
        host,
        "--port",
        str(port),
    ]


def child_env(base: Mapping[str, str] | None = None, *, app_root: Path) -> dict[str, str]:
    """The server's environment: ours, with the app root, minus cloud hooks (the bind address
    goes on the command line, where the app reads it back from Chainlit's config)."""
    env = dict(os.environ if base is None else base)
    for key in ("LITERAL_API_KEY", "DATABASE_URL", "CHAINLIT_CUSTOM_AUTH"):
        env.pop(key, None)  # Chainlit would switch data layer or auth on these
    env["CHAINLIT_APP_ROOT"] = str(app_root)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def launch(
    host: str,
    port: int,
    users: Mapping[str, str],
    data_dir: Path,
    teams: TeamsSource | None = None,
) -> subprocess.Popen[bytes]:
    """Check, then start the server; the caller waits on the returned process."""
    check_binding(host, users)
    if teams is not None:
        load_teams(*teams)
    root = prepare_app_root(data_dir)
    check_mcp_disabled(config_file(root))  # the copy Chainlit reads, which a user may edit
    env = child_env(app_root=root)
    # Its own process group: a Ctrl-C in the terminal reaches the launcher, which passes it
    # on once (``supervise``); twice would make the server skip its graceful shutdown.
    return subprocess.Popen(command(host, port), cwd=root, env=env, process_group=0)
