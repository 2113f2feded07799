"""Fuzzing the transcript loader: thousands of malformed files, derived from the golden one.

Every file is either loaded into a valid ``Transcript`` (one whose records save and load back
unchanged) or rejected with a ``TranscriptError`` naming the file and the line, and the field
when one field is at fault. Nothing else may escape, and no load may take a second.

The run is seeded (``derandomize``), so a failure reproduces. The number of files tried is
counted and printed by the last test: ``pytest tests/test_fuzz_transcripts.py -s``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roundtable.transcripts import (
    EVENT_ADAPTER,
    SCHEMA_VERSION,
    Header,
    Transcript,
    TranscriptError,
    load,
)
from roundtable.transcripts.events import MAX_TEXT
from roundtable.transcripts.lines import MAX_LINE_BYTES
from roundtable.transcripts.store import TornTailWarning, encode

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
GOLDEN_BYTES = GOLDEN.read_bytes()
LINES: list[bytes] = GOLDEN_BYTES.split(b"\n")[:-1]
RECORDS: list[dict[str, Any]] = [json.loads(line) for line in LINES]
LOAD_LIMIT_S = 2.0
"""A hang bound, not a speed target: loads take ~1 ms; the slack is for a busy machine."""

TRIED: Counter[str] = Counter()
"""Files loaded, by test: the figure the last test reports."""

QUOTAS = {
    "field_values": 700,
    "removed_fields": 200,
    "extra_fields": 200,
    "schema_versions": 150,
    "seq_games": 200,
    "invalid_utf8": 150,
    "byte_damage": 300,
    "random_lines": 200,
    "random_files": 100,
    "huge_values": 40,
}
"""Examples per test: 2,240 files in all, each one different from the golden file."""


def fuzz(name: str) -> settings:
    return settings(
        max_examples=QUOTAS[name],
        deadline=timedelta(seconds=LOAD_LIMIT_S * 2),  # the load itself is held to 1 s below
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz")


# -- the oracle ---------------------------------------------------------------------------


def check(
    name: str,
    folder: Path,
    data: bytes,
    *,
    line: int | None = None,
    lines: tuple[int, ...] = (),
    field: str | None = None,
    says: str | None = None,
) -> Transcript | None:
    """Load ``data``; it must give a valid transcript or a ``TranscriptError`` that names
    the file, a line that exists, and (when given) the expected line, field and words."""
    TRIED[name] += 1
    path = folder / f"{name}.jsonl"
    path.write_bytes(data)
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TornTailWarning)
            transcript = load(path)
    except TranscriptError as exc:
        elapsed = time.monotonic() - started
        assert elapsed < LOAD_LIMIT_S, f"rejecting took {elapsed:.2f} s"
        message = str(exc)
        assert message.startswith(f"{path}:"), message
        assert len(message) < 1_000, f"a {len(message)}-character message"
        named = re.match(rf"{re.escape(str(path))}:(\d+): ", message)
        if named is None:  # only a whole-file problem may leave the line out
            assert message in (f"{path}: empty file, expected a header line",), message
        else:
            assert 1 <= int(named.group(1)) <= data.count(b"\n") + 1, message
        expected = (line, *lines) if line is not None else lines
        if expected:
            assert named is not None and int(named.group(1)) in expected, (expected, message)
        if field is not None:  # the field, or one inside it ('usage' or 'usage.prompt_tokens')
            assert f"field '{field}" in message, (field, message)
        if says is not None:
            assert says in message, (says, message)
        return None
    elapsed = time.monotonic() - started
    assert elapsed < LOAD_LIMIT_S, f"loading took {elapsed:.2f} s"
    assert_valid(transcript, data)
    return transcript


def assert_valid(transcript: Transcript, data: bytes) -> None:
    """What a loaded transcript promises: ordered ids, aware times, records that round-trip."""
    header = transcript.header
    assert 1 <= header.schema_version <= SCHEMA_VERSION
    if header.schema_version < 2:
        assert header.team is None  # upgraded: a version-1 file recorded no team
    assert header.created_at.tzinfo is not None
    assert Header.model_validate_json(encode(header)) == header
    seqs = [event.seq for event in transcript.events]
    assert seqs == sorted(set(seqs)) and all(seq >= 1 for seq in seqs)
    for event in transcript.events:
        assert event.at.tzinfo is not None
        assert EVENT_ADAPTER.validate_json(encode(event)) == event
    tail = data[data.rfind(b"\n") + 1 :]
    assert transcript.torn_tail == bool(tail)
    assert transcript.committed_bytes == len(data) - len(tail)
    assert len(transcript.events) == data.count(b"\n") - 1


# -- building malformed files -------------------------------------------------------------


def join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def dump(obj: Any) -> bytes:
    return json.dumps(obj).encode("utf-8")  # NaN and Infinity come out as JSON never has them


def replaced(index: int, record: dict[str, Any]) -> bytes:
    lines = list(LINES)
    lines[index] = dump(record)
    return join(lines)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TIMES = st.sampled_from(
    [
        "2026-11-25T22:56:39",  # no timezone
        "2026-11-25T22:56:39+05:00",
        "2026-13-45T99:99:99Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "yesterday",
        "",
    ]
)
BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),  # surrogates
    st.integers(min_value=1, max_value=120).map(nested),
    JSON,
    TIMES,
)


def paths(obj: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every location in a record: fields, nested fields and list items."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


LOCATIONS = [(index, where) for index, record in enumerate(RECORDS) for where in paths(record)]


def put(record: dict[str, Any], where: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(record))
    target = copy
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return copy


def dotted(where: tuple[str | int, ...]) -> str:
    return ".".join(str(step) for step in where)


# -- the tests ----------------------------------------------------------------------------


@fuzz("field_values")
@given(location=st.sampled_from(LOCATIONS), value=BAD_VALUES)
def test_a_field_with_a_wrong_value(
    workdir: Path, location: tuple[int, tuple[str | int, ...]], value: Any
) -> None:
    index, where = location
    data = replaced(index, put(RECORDS[index], where, value))
    top = str(where[0])
    ordering = top == "seq"  # a changed seq may surface as the next line being out of order
    check(
        "field_values",
        workdir,
        data,
        lines=(index + 1, index + 2) if ordering else (index + 1,),
        field=None if top == "kind" else top,
    )


@fuzz("removed_fields")
@given(location=st.sampled_from(LOCATIONS))
def test_a_missing_field(workdir: Path, location: tuple[int, tuple[str | int, ...]]) -> None:
    index, where = location
    record = json.loads(json.dumps(RECORDS[index]))
    target = record
    for step in where[:-1]:
        target = target[step]
    del target[where[-1]]
    top = str(where[0])
    check(
        "removed_fields",
        workdir,
        replaced(index, record),
        lines=(index + 1, index + 2) if top == "seq" else (index + 1,),
        field=top,
    )


@fuzz("extra_fields")
@given(
    index=st.integers(0, len(RECORDS) - 1),
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=30),
    value=JSON,
)
def test_an_unknown_field(workdir: Path, index: int, key: str, value: Any) -> None:
    record = dict(RECORDS[index])
    if key in record:
        return
    record[key] = value
    check("extra_fields", workdir, replaced(index, record), line=index + 1, field=key)


@fuzz("schema_versions")
@given(version=BAD_VALUES | st.integers(min_value=-5, max_value=10))
def test_any_schema_version(workdir: Path, version: Any) -> None:
    loaded = check(
        "schema_versions",
        workdir,
        replaced(0, put(RECORDS[0], ("schema_version",), version)),
        line=1,
        field="schema_version",
    )
    if loaded is not None:
        assert version in range(1, SCHEMA_VERSION + 1) and type(version) is int


@fuzz("seq_games")
@given(
    game=st.sampled_from(["duplicate", "swap", "copy_seq", "delete", "move"]),
    first=st.integers(1, len(LINES) - 1),
    second=st.integers(1, len(LINES) - 1),
)
def test_duplicate_and_out_of_order_events(
    workdir: Path, game: str, first: int, second: int
) -> None:
    lines = list(LINES)
    if game == "duplicate":
        lines.insert(second, lines[first])
    elif game == "swap":
        lines[first], lines[second] = lines[second], lines[first]
    elif game == "copy_seq":
        lines[first] = dump({**RECORDS[first], "seq": RECORDS[second]["seq"]})
    elif game == "delete":
        del lines[first]
    else:
        lines.insert(second, lines.pop(first))
    data = join(lines)
    seqs = [json.loads(line)["seq"] for line in lines[1:]]
    ordered = all(a < b for a, b in itertools.pairwise(seqs))
    loaded = check("seq_games", workdir, data, field=None if ordered else "seq")
    assert (loaded is not None) == ordered  # a gap (a deleted line) still leaves ids ordered


INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]
)


@fuzz("invalid_utf8")
@given(index=st.integers(0, len(LINES) - 1), where=st.floats(0, 1), junk=INVALID_UTF8)
def test_invalid_utf8(workdir: Path, index: int, where: float, junk: bytes) -> None:
    lines = list(LINES)
    at = int(where * len(lines[index]))
    lines[index] = lines[index][:at] + junk + lines[index][at:]
    check("invalid_utf8", workdir, join(lines), line=index + 1, says="not valid UTF-8")


@fuzz("byte_damage")
@given(
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=0, max_size=6),
    cut=st.none() | st.floats(0, 1),
)
def test_flipped_bytes_and_truncations(
    workdir: Path, flips: list[tuple[float, int]], cut: float | None
) -> None:
    data = bytearray(GOLDEN_BYTES)
    for where, mask in flips:
        data[int(where * (len(data) - 1))] ^= mask
    if cut is not None:
        data = data[: int(cut * len(data))]
    if bytes(data) == GOLDEN_BYTES:
        data = data[:-1]  # always damaged: a missing final newline is a torn tail
    check("byte_damage", workdir, bytes(data))


@fuzz("random_lines")
@given(
    index=st.integers(0, len(LINES)),
    line=st.one_of(JSON.map(dump), st.binary(max_size=60).filter(lambda b: b"\n" not in b)),
)
def test_a_random_line(workdir: Path, index: int, line: bytes) -> None:
    lines = list(LINES)
    lines.insert(index, line)
    check("random_lines", workdir, join(lines), lines=(index + 1, index + 2))


@fuzz("random_files")
@given(data=st.binary(max_size=300) | st.lists(JSON.map(dump), max_size=5).map(join))
def test_a_random_file(workdir: Path, data: bytes) -> None:
    check("random_files", workdir, data)


@fuzz("huge_values")
@given(
    location=st.sampled_from(
        [(i, w) for i, w in LOCATIONS if isinstance(w[-1], str) and len(w) == 1]
    ),
    size=st.sampled_from([MAX_TEXT + 1, MAX_LINE_BYTES + 1]),
    shape=st.sampled_from(["text", "digits", "list", "nesting"]),
)
def test_huge_values(
    workdir: Path, location: tuple[int, tuple[str | int, ...]], size: int, shape: str
) -> None:
    index, where = location
    lines = list(LINES)
    if shape == "text":
        value = b'"' + b"x" * size + b'"'
    elif shape == "digits":
        value = b"9" * size
    elif shape == "list":
        value = b"[" + b"0," * (size // 2) + b"0]"
    else:
        value = b"[" * (size // 2) + b"]" * (size // 2)
    record = dump(put(RECORDS[index], where, "HUGE"))
    lines[index] = record.replace(b'"HUGE"', value, 1)
    top = str(where[0])
    check(
        "huge_values",
        workdir,
        join(lines),
        lines=(index + 1, index + 2) if top == "seq" else (index + 1,),
    )


def test_the_fuzzing_tried_at_least_2000_files(request: pytest.FixtureRequest) -> None:
    """Runs last: the figure for the README."""
    if set(TRIED) != set(QUOTAS):
        pytest.skip("only part of the fuzzing ran")
    total = sum(TRIED.values())
    print(f"\nfuzzed transcripts: {total} ({dict(TRIED)})")
    assert total >= 2000
