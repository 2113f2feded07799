"""One line of a transcript file, read as hostile input: parsed, bounded, upgraded, checked.

Owns: the line format's limits (length, nesting, digits; no NaN, no infinity, no key twice),
upgrading an old schema version's records by the numbered functions in ``UPGRADES``, and the
one-line ``TranscriptError`` naming the file, line and field that was wrong.

Does not own: the file (``transcripts.store`` reads, writes and syncs it), the event models
(``transcripts.events``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from roundtable.common.errors import ConfigError
from roundtable.transcripts.events import EVENT_ADAPTER, SCHEMA_VERSION, Event, Header

MAX_LINE_BYTES = 4_000_000
MAX_DEPTH = 32
MAX_DIGITS = 30
"""Longer integers are refused before Python converts them (no saved count needs more)."""


def _v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    """Version 2 headers record the team's cards; a version-1 run used the shipped default
    cards, so its header says ``team: null`` and a resume takes the default team's cards."""
    if obj.get("kind") == "header":
        return {**obj, "team": None}
    return obj


def _v2_to_v3(obj: dict[str, Any]) -> dict[str, Any]:
    """Version 3 adds owners, cached tokens, citations, passage places, guards and quality
    reports, all with defaults: a version-2 run has no owner (the local user's) and none of
    the rest."""
    return obj


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}
"""``UPGRADES[n]`` turns a version-n record into version n+1."""


class TranscriptError(ConfigError):
    """A transcript file that cannot be loaded; the message names file, line and field."""


def parse_header(path: Path, raw: bytes) -> Header:
    """Line 1: the header, its schema version checked before anything else is read."""
    obj = _decode(path, 1, raw)
    version = obj.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TranscriptError(f"{path}:1: field 'schema_version': missing or not an integer")
    if version > SCHEMA_VERSION:
        raise TranscriptError(
            f"{path}:1: field 'schema_version': {version} is newer than this Roundtable "
            f"understands ({SCHEMA_VERSION}); upgrade Roundtable"
        )
    if version < 1:
        raise TranscriptError(f"{path}:1: field 'schema_version': {version} is not a version")
    obj = _upgrade(obj, version)
    try:
        header = Header.model_validate(obj)
    except ValidationError as exc:
        raise TranscriptError(_describe(path, 1, exc)) from exc
    if header.created_at.tzinfo is None:
        raise TranscriptError(f"{path}:1: field 'created_at': time without a timezone")
    return header


def parse_event(path: Path, number: int, raw: bytes, version: int) -> Event:
    """Line ``number``: one event of a file written at schema ``version``, upgraded."""
    obj = _upgrade(_decode(path, number, raw), version)
    try:
        event: Event = EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise TranscriptError(_describe(path, number, exc, tagged=True)) from exc
    if event.at.tzinfo is None:  # replay subtracts times: naive and aware ones do not mix
        raise TranscriptError(f"{path}:{number}: field 'at': time without a timezone")
    return event


def _decode(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise TranscriptError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptError(f"{path}:{number}: not valid UTF-8 at byte {exc.start}") from exc
    hooks = _Hooks()
    try:
        obj = json.loads(
            text,
            object_pairs_hook=hooks.object,
            parse_int=hooks.integer,
            parse_float=hooks.number,
            parse_constant=hooks.constant,
        )
    except RecursionError as exc:
        raise TranscriptError(f"{path}:{number}: nested deeper than {MAX_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"{path}:{number}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise TranscriptError(f"{path}:{number}: expected a JSON object")
    # The walk costs more than the parse: skip it when the parse refused nothing and there
    # are too few brackets to nest deeper than allowed.
    if hooks.refused or text.count("[") + text.count("{") > MAX_DEPTH:
        problem = _find_problem(obj)
        if problem is not None:
            raise TranscriptError(f"{path}:{number}: {problem}")
    return obj


class _Refused:
    """Stands in for a value the parser refuses, so the check after parsing names its field."""

    def __init__(self, why: str) -> None:
        self.why = why


class _Hooks:
    """The parser's hooks for one line: a value we refuse becomes a ``_Refused`` in place."""

    def __init__(self) -> None:
        self.refused = False

    def _refuse(self, why: str) -> _Refused:
        self.refused = True
        return _Refused(why)

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            obj[key] = self._refuse("appears twice") if key in obj else value
        return obj

    def integer(self, digits: str) -> int | _Refused:
        if len(digits) > MAX_DIGITS:  # Python refuses to convert over 4,300 digits anyway
            return self._refuse(f"a number of more than {MAX_DIGITS} digits")
        return int(digits)

    def number(self, text: str) -> float | _Refused:
        value = float(text)  # 1e999 parses as infinity: the writer never saves one
        if math.isfinite(value):
            return value
        return self._refuse(f"{text[:20]} is not a finite number")

    def constant(self, name: str) -> _Refused:
        return self._refuse(f"{name} is not a JSON number")


def _find_problem(obj: dict[str, Any]) -> str | None:
    """The first refused value, or nesting deeper than ``MAX_DEPTH``, naming its field.

    Depth is measured on the parsed value, so brackets inside strings do not count; the walk
    is iterative, so no value can exhaust the stack.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(obj, ())]
    while stack:
        value, where = stack.pop()
        if isinstance(value, _Refused):
            return f"field {'.'.join(where)[:200]!r}: {value.why}"
        if isinstance(value, dict | list) and len(where) >= MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels in field {where[0]!r}"
        if isinstance(value, dict):
            stack.extend((item, (*where, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, (*where, str(i))) for i, item in reversed(list(enumerate(value))))
    return None


def _upgrade(obj: dict[str, Any], version: int) -> dict[str, Any]:
    for step in range(version, SCHEMA_VERSION):
        obj = UPGRADES[step](obj)
    return obj


def check_order(path: Path, number: int, events: list[Event], event: Event) -> None:
    """Refuse an event whose ``seq`` does not follow the events before it."""
    previous = events[-1].seq if events else 0
    if event.seq <= previous:
        problem = "duplicate" if any(e.seq == event.seq for e in events) else "out of order"
        raise TranscriptError(f"{path}:{number}: field 'seq': {event.seq} is {problem}")


def _describe(path: Path, number: int, exc: ValidationError, *, tagged: bool = False) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if tagged and loc:  # the union's first location is the event kind, not a field
        loc = loc[1:]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = ["kind"]
    field = ".".join(loc)[:200] or "record"
    return f"{path}:{number}: field {field!r}: {err['msg'][:300]}"
