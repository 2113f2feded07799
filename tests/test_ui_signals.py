"""``roundtable ui`` passes SIGTERM and SIGINT on to its Chainlit server and waits for it.

The launcher is started as a person or a service manager would (the console script, on a free
port, a scripted endpoint); the signal goes to the launcher alone, and its server must be gone
(not a zombie: the launcher waited for it) by the time the launcher has ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from roundtable.ui.server import free_port

ROUNDTABLE = str(Path(sys.executable).with_name("roundtable"))


@contextmanager
def running_launcher(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The launcher, once its server answers /health, and the server's pid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    env.update(
        ROUNDTABLE_DATA_DIR=str(data_dir),
        ROUNDTABLE_ENDPOINTS__DEFAULT__KIND="scripted",
        ROUNDTABLE_MEMORY__ENABLED="false",
    )
    port = free_port()
    launcher = subprocess.Popen(
        [ROUNDTABLE, "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = 0
    try:
        deadline = time.monotonic() + 90
        while True:
            assert launcher.poll() is None, launcher.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the UI did not start in 90 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.25)
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
        assert len(children) == 1, children
        server = int(children[0])
        yield launcher, server
    finally:
        for pid in (launcher.pid, server):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        launcher.wait()


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_to_the_launcher_stops_its_server_and_is_waited_for(
    tmp_path: Path, signum: int
) -> None:
    with running_launcher(tmp_path / "data") as (launcher, server):
        os.kill(launcher.pid, signum)
        code = launcher.wait(timeout=20)
        server_alive = alive(server)
        output = launcher.communicate()[0]
    assert not server_alive, "the Chainlit server was left running"
    assert code == 0, output[-2000:]  # a shutdown that was asked for and done is a success
    assert "Traceback" not in output


def test_a_second_signal_still_waits_for_the_server(tmp_path: Path) -> None:
    """A second TERM while the server shut down raised out of the launcher's wait: it died
    with a traceback before its server had ended."""
    with running_launcher(tmp_path / "data") as (launcher, server):
        os.kill(launcher.pid, signal.SIGTERM)
        time.sleep(0.05)
        os.kill(launcher.pid, signal.SIGTERM)
        launcher.wait(timeout=20)
        server_alive = alive(server)
        output = launcher.communicate()[0]
    assert not server_alive, "the launcher ended before its server"
    assert "Traceback" not in output, output[-2000:]


STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True)"
)
"""A server that ignores SIGTERM (a shutdown that hangs)."""


def test_a_server_that_ignores_the_signal_is_killed_after_the_grace() -> None:
    from roundtable.ui.supervise import Supervisor

    child = [sys.executable, "-c", STUBBORN + "; time.sleep(60)"]
    with Supervisor(grace_s=0.5) as supervisor:
        os.kill(os.getpid(), signal.SIGTERM)  # comes before the server started: passed on later
        process = subprocess.Popen(child, stdout=subprocess.PIPE)
        assert process.stdout is not None and process.stdout.readline()  # SIGTERM ignored now
        supervisor.adopt(process)
        started = time.monotonic()
        code = supervisor.wait()
    assert code == 128 + signal.SIGTERM
    assert process.returncode == -signal.SIGKILL
    assert 0.4 < time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


def test_an_error_in_the_launcher_leaves_no_server_behind() -> None:
    from roundtable.ui.supervise import Supervisor

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(RuntimeError), Supervisor() as supervisor:
        supervisor.adopt(process)
        raise RuntimeError("the launcher failed")
    assert process.poll() is not None
