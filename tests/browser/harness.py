"""The real UI server on a free loopback port, and Debian's Chromium driven by Playwright.

``UIServer`` starts ``chainlit run ui/app.py`` through the same launcher code ``python -m ui``
uses, with its own data folder and environment, and waits for ``/health``. ``ChatPage`` wraps
a page with the few actions and DOM reads the tests need; every wait is on DOM content.
Screenshots go to ``artifacts/screenshots/``. Chromium is never downloaded: tests use
``/usr/bin/chromium`` (``scripts/setup-test`` installs it) and block every request that is not
to the server (the page asks for web fonts offline otherwise).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Route

from roundtable.ui.approot import prepare_app_root
from roundtable.ui.server import APP_ROOT, child_env, command, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = APP_ROOT / "artifacts" / "screenshots"
SCRIPT = Path(__file__).parent / "script.yaml"
AGENT = '[data-step-type="assistant_message"]'
USER = '[data-step-type="user_message"]'


@dataclass
class UIServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def transcripts(self) -> Path:
        return self.data_dir / "transcripts"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    data_dir: Path,
    extra_env: Mapping[str, str],
    timeout: float = 90,
    *,
    prelude: str | None = None,
) -> UIServer:
    """Start the server with only ``extra_env`` of the ``ROUNDTABLE_*`` settings.

    ``prelude``: Python source run in the server process before Chainlit starts (a
    benchmark installs its probe with it); the server is otherwise the same.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    # The scripted pages speak fixed words the protocol guards would refuse: off unless asked.
    guards = {"ROUNDTABLE_GUARDS__ENABLED": "false"}
    base.update({"ROUNDTABLE_DATA_DIR": str(data_dir), **guards, **extra_env})
    host, port = "127.0.0.1", free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    root = prepare_app_root(data_dir)  # as the launcher does
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command_with_prelude(host, port, prelude),
            cwd=root,
            env=child_env(base, app_root=root),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = UIServer(f"http://{host}:{port}", data_dir, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"UI server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"UI server did not start in {timeout} s: {log.read_text()[-3000:]}")


def command_with_prelude(host: str, port: int, prelude: str | None) -> list[str]:
    """``chainlit run`` as ``ui.server.command`` has it, after ``prelude`` (if any) has run in
    the same interpreter (``python -c``, with the checkout on ``sys.path``: the server's working
    directory is its app root in the data folder)."""
    argv = command(host, port)
    if prelude is None:
        return argv
    assert argv[1:3] == ["-m", "chainlit"], argv
    checkout = f"import sys\nsys.path.insert(0, {str(APP_ROOT)!r})\n"
    start = f"{checkout}{prelude}\nfrom chainlit.cli import cli\ncli(prog_name='chainlit')\n"
    return [argv[0], "-c", start, *argv[3:]]


def scripted_env(script: Path = SCRIPT) -> dict[str, str]:
    """Every role and the manager on ``script``."""
    return {
        "ROUNDTABLE_ENDPOINTS__DEFAULT__KIND": "scripted",
        "ROUNDTABLE_ENDPOINTS__DEFAULT__SCRIPT": str(script),
        "ROUNDTABLE_BUDGET__MAX_TURNS": "5",
    }


def launch_browser(playwright: Any) -> Browser:
    browser: Browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    return browser


class ChatPage:
    """One browser tab on the UI."""

    def __init__(self, browser: Browser, server: UIServer, name: str) -> None:
        self.server = server
        self.name = name
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.context.route("**/*", self._only_the_server)
        self.page: Page = self.context.new_page()
        self.blocked: list[str] = []
        self.shots = 0
        self.sent = 0

    def _only_the_server(self, route: Route) -> None:
        if route.request.url.startswith(self.server.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self, path: str = "/") -> None:
        """Load the page and wait until the session is ready (the settings button is sent by
        ``on_chat_start``/``on_chat_resume``)."""
        self.page.goto(self.server.url + path)
        self.page.wait_for_selector("#chat-settings-open-modal", timeout=60_000)

    def login(self, name: str, password: str) -> None:
        """Log in through Chainlit's password form (a server with users configured) and wait
        until the session is ready, as ``open`` does."""
        self.page.goto(self.server.url + "/")
        self.submit_login(name, password)
        self.wait_ready()

    def submit_login(self, name: str, password: str) -> None:
        """Fill and submit the password form once it shows (the page is already loading:
        many pages can log in at once this way)."""
        self.page.locator("#email").fill(name, timeout=60_000)
        self.page.locator("#password").fill(password)
        self.page.locator('button[type="submit"]').click()

    def wait_ready(self, timeout: float = 60_000) -> None:
        """Wait until the session is ready (``on_chat_start`` sent the settings button)."""
        self.page.wait_for_selector("#chat-settings-open-modal", timeout=timeout)

    def body_text(self) -> str:
        """Everything the page shows as text, the thread list included."""
        return self.page.locator("body").inner_text()

    def send(self, text: str) -> None:
        """Type and send as a person does: the Send button is briefly disabled while Chainlit
        runs ``on_message``, so wait until it is enabled, click it, and see the box clear."""
        if self.sent and "/thread/" not in self.page.url:
            # the first message moves the page to /thread/<id> and re-mounts the composer
            self.page.wait_for_url("**/thread/*", timeout=30_000)
        self.sent += 1
        box = self.page.locator("#chat-input")
        box.fill(text)
        self.page.locator("#chat-submit:not([disabled])").click(timeout=30_000)
        self.page.wait_for_function(
            "() => document.getElementById('chat-input').value === ''", timeout=30_000
        )

    def submit(self, text: str) -> None:
        """The first half of ``send`` for a fresh page: type and click Send, without waiting
        for the box to clear (``wait_submitted``), so many pages can send at once."""
        self.sent += 1
        self.page.locator("#chat-input").fill(text)
        self.page.locator("#chat-submit:not([disabled])").click(timeout=60_000)

    def wait_submitted(self, timeout: float = 60_000) -> None:
        """The second half: the composer took the message (its box is empty again)."""
        self.page.wait_for_function(
            "() => document.getElementById('chat-input').value === ''", timeout=timeout
        )

    def agent_texts(self) -> list[str]:
        return [t.strip() for t in self.page.locator(f"{AGENT} .message-content").all_inner_texts()]

    def user_texts(self) -> list[str]:
        return [t.strip() for t in self.page.locator(f"{USER}").all_inner_texts()]

    def steps(self, prefix: str) -> list[str]:
        return self.page.locator(f'button[id^="step-{prefix}"]').all_inner_texts()

    def transcript_order(self) -> list[str]:
        """Every message and step in page order, as 'kind: text'."""
        script = """() => Array.from(document.querySelectorAll('.step')).map(e =>
            e.getAttribute('data-step-type') + ': ' + e.innerText.trim().replace(/\\s+/g, ' '))"""
        result: list[str] = self.page.evaluate(script)
        return result

    def wait_text(self, text: str, timeout: float = 60_000) -> None:
        self.page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)

    def wait_stops(self, count: int = 1, timeout: float = 60_000) -> None:
        self.page.wait_for_function(stops_at_least(count), timeout=timeout)

    def wait_for(self, js_predicate: str, timeout: float = 60_000) -> None:
        self.page.wait_for_function(js_predicate, timeout=timeout)

    def screenshot(self, label: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{self.shots:02d}-{label}.png"))

    def close(self) -> None:
        self.context.close()


def wait_title(chat: ChatPage, title: str) -> str:
    """Wait until this thread's entry in the sidebar reads ``title``; its path."""
    chat.page.wait_for_url("**/thread/*", timeout=30_000)
    thread = chat.page.url.removeprefix(chat.server.url)
    chat.page.wait_for_function(
        """([path, title]) => Array.from(document.querySelectorAll(`a[href="${path}"]`))
            .some(a => a.innerText.trim() === title)""",
        arg=[thread, title],
        timeout=30_000,
    )
    return thread


STOPPED = "Debate stopped"


def stops_at_least(count: int) -> str:
    """A page predicate: at least ``count`` stop messages are shown."""
    return f"""() => Array.from(document.querySelectorAll('{AGENT}'))
        .filter(e => e.innerText.includes('{STOPPED}')).length >= {count}"""


@contextlib.contextmanager
def chat_page(browser: Browser, server: UIServer, name: str) -> Iterator[ChatPage]:
    """A tab on ``server``, screenshotted ("end") and closed afterwards."""
    page = ChatPage(browser, server, name)
    try:
        yield page
    finally:
        try:
            page.screenshot("end")
        finally:
            page.close()
