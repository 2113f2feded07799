"""The launcher's hold on its server: signals passed on, the server waited for, none left.

``roundtable ui`` starts Chainlit as a child in its own process group, so a Ctrl-C in the
terminal reaches the launcher only (a second SIGINT would make the server skip its graceful
shutdown). ``Supervisor`` handles SIGTERM and SIGINT from before the child starts: each is
passed on to the server as is, the launcher keeps waiting until the server has ended, and a
server still running ``STOP_GRACE_S`` after the first signal is killed. Leaving the block in
any other way (an error) kills a server still running. The launcher's exit code is then
0 when the server shut down as asked (a service manager's stop is a success, as for uvicorn),
and ``128 + signal`` when it had to be killed after the grace.

Owns nothing of how the server is started (``server.launch``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from types import FrameType, TracebackType
from typing import Any

FORWARDED = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE_S = 10.0
POLL_S = 0.2


class Supervisor:
    """``with Supervisor() as s: s.adopt(process); return s.wait()``."""

    def __init__(self, grace_s: float = STOP_GRACE_S) -> None:
        self.grace_s = grace_s
        self.process: subprocess.Popen[bytes] | None = None
        self.received: list[int] = []
        self._first_at: float | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Supervisor:
        for signum in FORWARDED:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # an error in the launcher: never leave the server behind
            self.process.wait()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def stopping(self) -> bool:
        """Whether a signal has come (the server should not be started any more)."""
        return bool(self.received)

    def adopt(self, process: subprocess.Popen[bytes]) -> None:
        """Watch ``process``; a signal that came while it was starting is passed on now."""
        self.process = process
        if self.received:
            process.send_signal(self.received[0])

    def wait(self) -> int:
        """Wait until the server has ended: its exit code; after a signal, 0 if it shut down as
        asked, ``128 + signal`` if it had to be killed."""
        assert self.process is not None, "adopt a process first"
        while True:
            try:
                code = self.process.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                late = self._first_at is not None and time.monotonic() - self._first_at
                if late and late > self.grace_s:
                    self.process.kill()
        if not self.received:
            return code
        asked = self.received[0]
        return 0 if code in (0, -asked, 128 + asked) else 128 + asked

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self._first_at is None:
            self._first_at = time.monotonic()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
