"""Observability: structured JSON logs at every orchestration boundary, and optional tracing.

Every log line is one JSON object with the conversation id, turn and agent, written to
``<data>/logs/roundtable.jsonl`` (and to stderr when asked). Secrets never reach a log: a
filter replaces configured secret values, bearer tokens and ``sk-`` keys with ``[redacted]``.
One logger tree: AutoGen's loggers join it (``LIBRARY``) at debug level, one line per record,
through the same filter. AutoGen logs every failed reply, and every agent the team's error
then reaches, with a traceback; those are faults the run already records (a ``turn_failed``
line, an ``error`` event), and on a server the root handler Chainlit installs used to print
them all on stdout, unredacted.
OpenTelemetry spans are exported only when an OTLP endpoint is configured; AutoGen's runtime
picks up the same tracer provider, so its spans nest under ours.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from opentelemetry import trace

from roundtable.common.secrets import scrub

LOGGER = logging.getLogger("roundtable")
LIBRARY = LOGGER.getChild("library")
"""Where the libraries' records go (``fields.library`` names the logger they came from)."""
LIBRARIES = ("autogen_core", "autogen_agentchat", "autogen_ext")
TRACER = trace.get_tracer("roundtable")
_FIELDS = ("conversation_id", "turn", "agent")
_configured = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, the context fields and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key in _FIELDS:
            data[key] = getattr(record, key, None)
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(data, default=str, ensure_ascii=False)


class Redactor(logging.Filter):
    """Scrubs secrets from the message and every field before a record is written."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = ()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                k: self.scrub(v) if isinstance(v, str) else v for k, v in fields.items()
            }
        return True


class Demote(logging.Handler):
    """A library's record into ``LIBRARY`` at debug level: its message, and its exception as one
    line (``error``), both as fields the redactor scrubs; the traceback is dropped."""

    def emit(self, record: logging.LogRecord) -> None:
        if not LIBRARY.isEnabledFor(logging.DEBUG):
            return
        exc = record.exc_info[1] if record.exc_info else None
        error = f"{type(exc).__name__}: {exc}".splitlines()[0] if exc is not None else None
        fields = {"library": record.name, "level_was": record.levelname.lower(), "error": error}
        LIBRARY.debug(record.getMessage(), extra={"fields": fields})


def adopt_libraries() -> None:
    """Route AutoGen's loggers into our tree (their INFO event stream stays off)."""
    for name in LIBRARIES:
        library = logging.getLogger(name)
        library.setLevel(logging.WARNING)
        library.propagate = False
        if not any(isinstance(handler, Demote) for handler in library.handlers):
            library.addHandler(Demote())


def configure(
    *,
    log_file: Path | None,
    level: str = "INFO",
    stderr: bool = False,
    secrets: Iterable[str] = (),
    otlp_endpoint: str | None = None,
) -> None:
    """Set up logging (and tracing when an endpoint is given) once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    redactor = Redactor(secrets)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(RotatingFileHandler(log_file, maxBytes=10_000_000, backupCount=3))
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(redactor)
        LOGGER.addHandler(handler)
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False
    for noisy in ("chromadb", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    adopt_libraries()
    if otlp_endpoint:
        _configure_tracing(otlp_endpoint)


def _configure_tracing(endpoint: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "roundtable"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)


def log(
    event: str,
    *,
    conversation_id: str,
    turn: int | None = None,
    agent: str | None = None,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """Log one orchestration boundary with its context."""
    if not LOGGER.isEnabledFor(level):
        return
    LOGGER.log(
        level,
        event,
        extra={"conversation_id": conversation_id, "turn": turn, "agent": agent, "fields": fields},
    )
