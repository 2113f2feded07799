"""Scrubbing secrets out of text: configured values, bearer tokens, ``sk-`` keys, ``key=...``.

One function for every place a secret could leave the process: log records (``observe``), and
the error messages an endpoint client builds from a server's reply, which become error events,
stop reasons, webhook bodies and lines on the terminal. A server that echoes our API key in its
error body must not put it in any of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4
"""Shorter configured values are not scrubbed: they would blank ordinary words."""

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_ASSIGNED = re.compile(r"(?i)(api[_-]?key|password|token|secret)(\"?\s*[:=]\s*\"?)[^\s\",}]+")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value and every secret-looking token replaced."""
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    for secret in values:
        text = text.replace(secret, REDACTED)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _SK_KEY.sub(REDACTED, text)
    return _ASSIGNED.sub(rf"\1\2{REDACTED}", text)
