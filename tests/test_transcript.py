"""Transcript files: the golden reference, round trips, rejection of bad files, torn tails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roundtable.transcripts import (
    SCHEMA_VERSION,
    MessageEvent,
    StopEvent,
    TokenDelta,
    TornTailWarning,
    TranscriptError,
    TranscriptWriter,
    load,
    replay,
    save,
)
from roundtable.transcripts.events import ErrorEvent, MemoryEvent

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
GOLDEN_V2 = Path(__file__).parent / "golden" / "debate-v2.jsonl"
GOLDEN_V1 = Path(__file__).parent / "golden" / "debate-v1.jsonl"


@pytest.mark.parametrize(
    ("path", "version"), [(GOLDEN, 3), (GOLDEN_V2, 2), (GOLDEN_V1, 1)], ids=["v3", "v2", "v1"]
)
def test_the_golden_transcript_pins_the_format(path: Path, version: int) -> None:
    transcript = load(path)
    assert SCHEMA_VERSION == 3
    assert transcript.header.schema_version == version
    assert [(e.kind, getattr(e, "speaker", None)) for e in transcript.events] == [
        ("message", "human"),
        ("selection", "researcher"),
        ("memory", "researcher"),
        ("message", "researcher"),
        ("message", "human"),
        ("error", None),
        ("selection", "critic"),
        ("memory", "critic"),
        ("message", "critic"),
        ("selection", "analyst"),
        ("memory", "analyst"),
        ("message", "analyst"),
        ("selection", "critic"),
        ("memory", "critic"),
        ("message", "critic"),
        ("selection", "writer"),
        ("memory", "writer"),
        ("message", "writer"),
        ("notice", None),
        ("selection", "critic"),
        ("memory", "critic"),
        ("message", "critic"),
        ("stop", None),
    ]
    stop = transcript.events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "accepted"
    assert [row.speaker for row in stop.ledger] == [
        "researcher",
        "manager",
        "critic",
        "analyst",
        "writer",
    ]
    memory = transcript.events[2]
    assert isinstance(memory, MemoryEvent)
    assert "Ghent's 2017 circulation plan" in memory.hits[0].text
    error = transcript.events[5]
    assert isinstance(error, ErrorEvent)
    assert error.message == "manager pick refused: 'judge' is not one of analyst, critic, writer"


def test_a_version_2_header_records_the_team_and_version_1_is_upgraded() -> None:
    team = load(GOLDEN).header.team
    assert team is not None and team.name == "default"
    assert team.roster == ["researcher", "analyst", "critic", "writer"]
    assert team.card("critic").gives_verdict and team.card("writer").answers
    assert load(GOLDEN_V1).header.team is None  # the upgrade step: no cards were recorded


def test_version_3_adds_owners_and_a_version_2_run_belongs_to_the_local_user() -> None:
    assert load(GOLDEN).header.owner is None
    old = load(GOLDEN_V2)
    assert old.header.owner is None  # no owner recorded: the local user's
    assert old.events == load(GOLDEN).events  # every v3 field has a default


def test_save_load_save_is_byte_identical(tmp_path: Path) -> None:
    first = load(GOLDEN)
    copy = tmp_path / "copy.jsonl"
    save(copy, first.header, first.events)
    assert copy.read_bytes() == GOLDEN.read_bytes()
    again = tmp_path / "again.jsonl"
    save(again, load(copy).header, load(copy).events)
    assert again.read_bytes() == GOLDEN.read_bytes()


def _lines() -> list[str]:
    return GOLDEN.read_text(encoding="utf-8").splitlines()


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _edit(line: str, **changes: object) -> str:
    obj = json.loads(line)
    obj.update(changes)
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("line", "change", "expected"),
    [
        (3, {"speaker": 42}, ":4: field 'speaker'"),
        (3, {"kind": "gossip"}, ":4: field 'kind'"),  # an unknown event kind
        (5, {"seq": 3}, ":6: field 'seq': 3 is duplicate"),
        (2, {"method": "magic"}, ":3: field 'method'"),
        (3, {"surprise": True}, ":4: field 'surprise': Extra inputs"),
        (0, {"schema_version": 99}, ":1: field 'schema_version': 99 is newer"),
        (0, {"question": ""}, ":1: field 'question'"),
    ],
)
def test_a_malformed_file_is_rejected_naming_line_and_field(
    tmp_path: Path, line: int, change: dict[str, object], expected: str
) -> None:
    lines = _lines()
    lines[line] = _edit(lines[line], **change)
    path = _write(tmp_path, lines)
    with pytest.raises(TranscriptError) as caught:
        load(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"not json\n", ":1: not valid JSON"),
        (b"[1, 2]\n", ":1: expected a JSON object"),
        (b'{"schema_version": 1, "x": "\xff"}\n', ":1: not valid UTF-8"),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}\n", ":1: nested deeper"),
    ],
)
def test_garbage_is_rejected(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_bytes(content)
    with pytest.raises(TranscriptError, match=expected):
        load(path)


def test_a_bad_middle_line_rejects_the_whole_file(tmp_path: Path) -> None:
    lines = _lines()
    lines[6] = lines[6][: len(lines[6]) // 2]  # a line cut short in the middle is not a torn tail
    with pytest.raises(TranscriptError, match=":7: not valid JSON"):
        load(_write(tmp_path, lines))


def test_a_torn_tail_is_recovered_with_a_warning_and_writing_continues(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    cut = data[: len(data) - 40]  # the stop line, cut off mid-write by a crash
    path = tmp_path / "torn.jsonl"
    path.write_bytes(cut)
    with pytest.warns(TornTailWarning, match="cut short"):
        transcript = load(path)
    assert transcript.torn_tail
    assert len(transcript.events) == len(load(GOLDEN).events) - 1
    writer = TranscriptWriter.reopen(transcript)
    stop = load(GOLDEN).events[-1]
    writer.append(stop)
    writer.close()
    assert path.read_bytes() == data


def test_the_writer_refuses_out_of_order_events(tmp_path: Path) -> None:
    golden = load(GOLDEN)
    writer = TranscriptWriter.create(tmp_path / "t.jsonl", golden.header)
    with pytest.raises(ValueError, match="does not follow"):
        writer.append(golden.events[3])
    writer.close()


def test_a_turn_costs_one_fsync_and_every_line_is_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    golden = load(GOLDEN)
    writer = TranscriptWriter.create(tmp_path / "t.jsonl", golden.header)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    kinds = []
    for event in golden.events:
        writer.append(event)
        kinds.append((event.kind, len(synced)))
        # written at once, synced or not: a killed process loses nothing already appended
        assert load(tmp_path / "t.jsonl").events[-1] == event
    writer.close()
    deferred = {"selection", "memory", "prune", "notice"}
    for (kind, count), (_, before) in zip(kinds, [("", 0), *kinds], strict=False):
        assert count == before + (0 if kind in deferred else 1), kind
    assert len(synced) == sum(1 for e in golden.events if e.kind not in deferred)


async def test_replay_streams_every_event_again_without_a_model() -> None:
    transcript = load(GOLDEN)
    events = [e async for e in replay(transcript)]
    saved = [e for e in events if not isinstance(e, TokenDelta)][1:]
    assert saved == transcript.events
    writer_text = "".join(
        e.text for e in events if isinstance(e, TokenDelta) and e.speaker == "writer"
    )
    assert writer_text == "Yes, with good transit and delivery exemptions."
    assert not any(isinstance(e, TokenDelta) and e.speaker == "human" for e in events)


async def test_replay_keeps_the_pacing_when_asked() -> None:
    import time
    from datetime import timedelta

    golden = load(GOLDEN)
    start = golden.header.created_at
    spaced = golden.model_copy(
        update={
            "events": [
                e.model_copy(update={"at": start + timedelta(seconds=i + 1), "latency_s": 0.0})
                if isinstance(e, MessageEvent)
                else e.model_copy(update={"at": start + timedelta(seconds=i + 1)})
                for i, e in enumerate(golden.events)
            ]
        }
    )
    began = time.monotonic()
    replayed = [e async for e in replay(spaced, speed=20.0)]
    took = time.monotonic() - began
    expected = len(golden.events) / 20.0  # one second apart, twenty times faster
    assert expected * 0.9 <= took <= expected + 1.5
    assert [e for e in replayed if not isinstance(e, TokenDelta)][1:] == spaced.events
    began = time.monotonic()
    assert [e async for e in replay(spaced)]
    assert time.monotonic() - began < 0.5  # no speed: instant
