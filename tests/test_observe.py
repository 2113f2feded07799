"""Structured logs: every boundary of a debate, with context, and never a secret."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from roundtable.conversations import Budget
from roundtable.conversations.observe import LOGGER, JsonFormatter, Redactor
from tests.support.debates import collect, pick, scripted_debate

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redactor([SECRET, "hunter2-password"]))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    yield buffer
    LOGGER.removeHandler(handler)


async def test_every_boundary_is_logged_with_its_context(
    tmp_path: Path, captured: io.StringIO
) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={r: "words" for r in ("researcher", "analyst", "critic", "writer")},
        picks=[pick("analyst")],
        budget=Budget(max_turns=2),
    )
    await collect(debate)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert events[:4] == ["turn_start", "model_call_start", "selection", "model_call_end"]
    assert events[-1] == "stop"
    assert {line["conversation_id"] for line in lines} == {debate.conversation_id}
    calls = [line for line in lines if line["event"] == "model_call_end"]
    assert [c["agent"] for c in calls] == ["researcher", "writer"]
    assert all(c["completion_tokens"] > 0 and c["latency_s"] >= 0 for c in calls)
    assert all(isinstance(line["turn"], int) for line in lines)


def test_secrets_never_reach_a_log(captured: io.StringIO) -> None:
    LOGGER.info(
        "calling with Authorization: Bearer abc.def-ghi and key %s",
        SECRET,
        extra={"fields": {"api_key": SECRET, "note": "password=hunter2-password"}},
    )
    LOGGER.info('config {"api_key": "sk-other-1234567890xyz", "token": "tok123456"}')
    text = captured.getvalue()
    for secret in (
        SECRET,
        "abc.def-ghi",
        "hunter2-password",
        "sk-other-1234567890xyz",
        "tok123456",
    ):
        assert secret not in text
    assert text.count("[redacted]") >= 5


@pytest.mark.parametrize(
    "module",
    [
        "roundtable.ui.session",
        "roundtable.ui.panel",
        "roundtable.api.registry",
        "roundtable.api.webhooks",
    ],
)
def test_the_ui_and_the_api_log_through_the_roundtable_logger(
    module: str, captured: io.StringIO
) -> None:
    log = importlib.import_module(module).log
    assert log.name == module
    ancestor: logging.Logger | None = log
    while ancestor is not None and ancestor is not LOGGER:  # its records reach our handlers
        assert ancestor.propagate
        ancestor = ancestor.parent
    assert ancestor is LOGGER
    log.warning("run failed with key %s", SECRET)
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert line["logger"] == module
    assert line["event"] == "run failed with key [redacted]"
    assert SECRET not in captured.getvalue()
