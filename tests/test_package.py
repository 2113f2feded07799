"""The wheel, installed into a fresh venv outside the checkout, is a working Roundtable.

Builds the wheel from a copy of the checkout (a stale ``build/`` there cannot leak into it),
checks its contents against the source folders, installs the lock and then the wheel with
``--no-deps`` into a new venv in a temporary folder, and from another folder runs: the import
clash check (only ``roundtable`` is importable, from that venv), two scripted debates, and
``roundtable ui`` (page, static files, a browser, SIGTERM stops the whole tree).

The lock installs from uv's cache (``--offline``), or from the registry when the cache misses:
about 70 s in all with a warm cache. The slow case is llama-cpp-python's build missing from the
cache (an online install elsewhere on the machine can make uv fetch a new revision of its sdist):
it compiles again, 7-18 min on 2 busy cores. ``make test`` runs ``scripts/setup`` first, which
builds it into the same cache entry this test then reuses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roundtable.ui.server import free_port

pytestmark = [pytest.mark.package, pytest.mark.timeout(1200)]

CHECKOUT = Path(__file__).resolve().parent.parent
LINKED = (
    "agents",
    "conversations",
    "memory",
    "ui",
    "api",
    "common",
    "transcripts",
    "terminal",
    "evaluation",
)
"""The folders ``roundtable/`` links to: none of them may be a top-level module once installed."""
SHIPPED_DATA = (".chainlit", "public", "chainlit.md")
UV = Path(sys.executable).parent / "uv"
SCREENSHOTS = CHECKOUT / "artifacts" / "screenshots"
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "artifacts"
)


@dataclass
class Installed:
    wheel: Path
    venv: Path
    elsewhere: Path
    """An empty working folder outside the checkout."""

    def env(self, data_dir: Path) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ROUNDTABLE_", "PYTHON", "VIRTUAL_ENV"))
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["ROUNDTABLE_DATA_DIR"] = str(data_dir)
        return env

    def run(
        self, data_dir: Path, *argv: str, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=self.elsewhere,
            env=self.env(data_dir),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def uv(*argv: str, cwd: Path | None = None, timeout: float = 1000) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.setdefault("CMAKE_ARGS", "-DLLAVA_BUILD=OFF")  # as scripts/setup, if it must compile
    subprocess.run([str(UV), *argv], cwd=cwd, env=env, check=True, timeout=timeout)


def install_lock(python: Path) -> None:
    lock = str(CHECKOUT / "requirements.lock")
    try:
        uv("pip", "install", "--quiet", "--offline", "--python", str(python), "-r", lock)
    except subprocess.CalledProcessError:
        uv("pip", "install", "--quiet", "--python", str(python), "-r", lock)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "roundtable"
    shutil.copytree(CHECKOUT, source, symlinks=True, ignore=NOT_COPIED)
    dist = source.parent / "dist"
    uv("build", "--wheel", "--offline", "--quiet", "-o", str(dist), cwd=source, timeout=300)
    (built,) = dist.glob("roundtable-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("installed")
    assert CHECKOUT not in work.parents
    venv = work / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv), timeout=120)
    python = venv / "bin" / "python"
    install_lock(python)
    uv("pip", "install", "--quiet", "--offline", "--no-deps", "--python", str(python), str(wheel))
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return Installed(wheel, venv, elsewhere)


def source_files() -> set[str]:
    """What the wheel must hold: the files git knows (or would) in the linked folders."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *LINKED, *SHIPPED_DATA],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    present = {name for name in listed if (CHECKOUT / name).is_file()}
    return {f"roundtable/{name}" for name in present} | {
        "roundtable/__init__.py",
        "roundtable/py.typed",
    }


def test_the_wheel_holds_roundtable_and_its_data_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    meta = {name for name in names if name.split("/")[0].endswith(".dist-info")}
    assert {name.split("/")[0] for name in names - meta} == {"roundtable"}
    assert names - meta == source_files()
    top_level = next(name for name in meta if name.endswith("/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["roundtable"]
    for needed in (
        "roundtable/agents/teams/default.yaml",
        "roundtable/agents/teams/policy.yaml",
        "roundtable/agents/demo_script.yaml",
        "roundtable/memory/data/tokenizer.json",
        "roundtable/.chainlit/config.toml",
        "roundtable/public/composer.js",
        "roundtable/public/avatars/you.svg",
        "roundtable/chainlit.md",
        "roundtable/py.typed",
    ):
        assert needed in names
    assert not any(name.endswith((".pyc", ".lock")) or "/tests/" in name for name in names)


CLASH_CHECK = """
import importlib.util, json, sys, sysconfig
import roundtable
print(json.dumps({
    "file": roundtable.__file__,
    "purelib": sysconfig.get_paths()["purelib"],
    "found": [n for n in sys.argv[1:] if importlib.util.find_spec(n) is not None],
}))
"""


def test_only_roundtable_is_importable_and_from_the_venv(
    installed: Installed, tmp_path: Path
) -> None:
    result = installed.run(tmp_path, "python", "-c", CLASH_CHECK, *LINKED)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    purelib = Path(report["purelib"])
    assert purelib.is_relative_to(installed.venv)
    assert Path(report["file"]) == purelib / "roundtable" / "__init__.py"
    assert report["found"] == []
    assert not [name for name in LINKED if (purelib / name).exists()]
    assert not (purelib / "roundtable" / "agents").is_symlink()  # real files, not links


def test_scripted_debates_run_from_the_installed_command(
    installed: Installed, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = installed.run(
        data, "roundtable", "ask", "--demo", "Trams or buses?", "--max-turns", "3"
    )
    assert first.returncode in (0, 4), first.stderr  # accepted, or its 3 turns ran out
    policy = installed.run(data, "roundtable", "ask", "--demo", "--team", "policy", "Tax sugar?")
    assert policy.returncode == 0, policy.stderr
    transcripts = sorted((data / "transcripts").rglob("*.jsonl"))
    assert len(transcripts) == 2, list((data / "transcripts").rglob("*"))
    text = "\n".join(path.read_text() for path in transcripts)
    assert "Trams or buses?" in text and "Tax sugar?" in text
    assert not list(installed.elsewhere.iterdir())  # nothing written in the working folder


LIBRARY_RUN = """
import json, roundtable
result = roundtable.run("Trams or buses?", team="policy", demo=True, max_turns=4)
print(json.dumps({"file": roundtable.__file__, "code": result.stop.code,
                  "answer": result.answer, "transcript": str(result.transcript),
                  "speakers": sorted({e.speaker for e in result.events
                                      if getattr(e, "speaker", None) and e.kind == "message"})}))
"""


def test_import_roundtable_runs_a_scripted_debate_in_the_installed_venv(
    installed: Installed, tmp_path: Path
) -> None:
    result = installed.run(tmp_path / "data", "python", "-c", LIBRARY_RUN)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).is_relative_to(installed.venv)
    assert report["code"] == "accepted" and report["answer"]
    assert Path(report["transcript"]).is_relative_to(tmp_path / "data")
    assert set(report["speakers"]) >= {"human", "economist", "lawyer", "sceptic"}


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode(errors="replace")


@pytest.fixture
def installed_ui(
    installed: Installed, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    data = tmp_path / "data"
    env = installed.env(data)
    env["ROUNDTABLE_ENDPOINTS__DEFAULT__KIND"] = "scripted"  # no model load for a page check
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "roundtable"), "ui", "--port", str(port)],
            cwd=installed.elsewhere,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    tree: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                get(url + "/health")
                break
            except OSError:
                time.sleep(0.5)
        tree = descendants(process.pid)
        yield url, process, data
    finally:
        for pid in [process.pid, *tree]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def stop_with_sigterm(pid: int, tree: list[int], wait: float = 30) -> list[int]:
    """Send SIGTERM to ``pid``; return what of ``tree`` still runs ``wait`` seconds later."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while any(alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [p for p in tree if alive(p)]


def test_the_installed_ui_serves_and_its_launcher_passes_sigterm_on(
    installed_ui: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, process, data = installed_ui
    status, page = get(url + "/")
    assert status == 200 and '<div id="root">' in page
    assert get(url + "/public/composer.js")[0] == 200
    assert get(url + "/public/avatars/you.svg")[0] == 200
    status, drawn = get(url + "/avatars/economist")  # a role's avatar, drawn for any team
    assert status == 200 and drawn.lstrip().startswith("<svg")
    assert (data / "ui" / ".chainlit" / "config.toml").is_file()  # the writable app root
    assert (data / "ui" / ".chainlit" / "translations").is_dir()  # written by Chainlit there

    # roundtable ui becomes python -m roundtable.ui (the launcher: execv) -> chainlit run
    launcher = process.pid
    assert "roundtable.ui" in cmdline(launcher), cmdline(launcher)
    tree = [launcher, *descendants(launcher)]
    assert len(tree) >= 2, "the launcher runs Chainlit as a child process"
    assert stop_with_sigterm(launcher, tree) == []
    assert process.wait(timeout=30) == 0  # a shutdown asked for and done


def test_a_sigterm_to_roundtable_ui_stops_the_whole_tree(
    installed_ui: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    _, process, _ = installed_ui
    tree = descendants(process.pid)
    assert stop_with_sigterm(process.pid, [process.pid, *tree], wait=10) == []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.browser
def test_the_installed_ui_loads_in_chromium_with_the_chat_input(
    installed_ui: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser.harness import launch_browser

    url, _, _ = installed_ui
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            page.wait_for_selector("#chat-input", timeout=60_000)
            page.wait_for_selector("#chat-settings-open-modal", timeout=60_000)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "package-installed-ui.png"))
            assert page.locator("#chat-input").is_editable()
        finally:
            browser.close()
