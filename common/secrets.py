"""Scrubbing secrets out of text: configured values, bearer tokens, ``sk-`` keys, ``key=...``,
and the password of any ``scheme://user:password@host`` URL.

The settings of each front end (``conversations.settings``, ``api.config``, ``ui.config``)
``keep`` every secret they were configured with: endpoint API keys, passwords in endpoint,
memory and database URLs, ``ROUNDTABLE_API_TOKEN`` and the webhook secret. ``error_text`` is
the one point where an error becomes text: ``RoundtableError.__str__`` goes through it, and so
does every message made of a foreign exception (``conversations.control.describe_failure``,
the API's and the UI's last-resort handlers). So an error event, a stop reason, an API
answer, a webhook body, a line on the terminal and a log record (``observe``) never carry one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4
"""Shorter configured values are not scrubbed: they would blank ordinary words."""

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_ASSIGNED = re.compile(r"(?i)(api[_-]?key|password|token|secret)(\"?\s*[:=]\s*\"?)[^\s\",}]+")
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+@")
_KEPT: set[str] = set()
"""Every configured secret of this process (``keep``)."""


def keep(*values: str | None) -> None:
    """Remember configured secret values: ``error_text`` removes them from every error."""
    _KEPT.update(v for v in values if v and len(v) >= MIN_SECRET_CHARS)


def keep_url(url: str | None) -> None:
    """Remember the password of ``scheme://user:password@host/...`` (as written and decoded)."""
    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        return
    if password:
        keep(password, unquote(password))


def error_text(error: BaseException | str) -> str:
    """The text of an error (or of a message made from one) without any secret in it."""
    text = error if isinstance(error, str) else BaseException.__str__(error)
    return _known(text, _KEPT)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets``, every kept secret and every secret-looking token replaced
    (a server's words, a log record: ``key=...`` is scrubbed too, which our own messages may
    say harmlessly)."""
    return _ASSIGNED.sub(rf"\1\2{REDACTED}", _known(text, [*secrets, *_KEPT]))


def _known(text: str, secrets: Iterable[str]) -> str:
    """``text`` without the values, URL passwords, bearer tokens and ``sk-`` keys in it."""
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    for secret in values:
        text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _SK_KEY.sub(REDACTED, text)
