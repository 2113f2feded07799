"""The run's pictures as SVG (``transcripts.pictures``) and in the chat (``ui.pictures_view``):
well-formed XML, a bar per committed turn, interjections and prunes marked, hostile names and
contents escaped, cost bars that match the ledger (the browser test is
``test_ui_browser_pictures.py``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from roundtable.transcripts import (
    HUMAN,
    Event,
    Header,
    LedgerRow,
    MessageEvent,
    PruneEvent,
    RoleSummary,
    StopEvent,
    Usage,
    costs_svg,
    load,
    replay,
    timeline_svg,
)
from roundtable.transcripts.pictures import MAX_BARS
from roundtable.ui import pictures_view
from roundtable.ui.render import ChainlitRenderer
from tests.support.chainlit_page import recording_page

SVG = "{http://www.w3.org/2000/svg}"
GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & co'


def _header(*names: str) -> Header:
    roles = [
        RoleSummary(name=n, description="d", endpoint="default", model="m", max_tokens=10)
        for n in names
    ]
    return Header(
        conversation_id="c1",
        created_at=START,
        question="Q?",
        roles=roles,
        max_turns=8,
        context_window=4096,
    )


def _message(seq: int, turn: int, speaker: str, content: str = "text", at: float = 0.0) -> Event:
    return MessageEvent(
        seq=seq,
        at=START + timedelta(seconds=at),
        turn=turn,
        speaker=speaker,
        content=content,
        latency_s=1.0 if speaker != HUMAN else 0.0,
        usage=Usage(prompt_tokens=10, completion_tokens=5),
    )


def _prune(seq: int, turn: int, speaker: str, at: float) -> Event:
    return PruneEvent(
        seq=seq,
        at=START + timedelta(seconds=at),
        turn=turn,
        speaker=speaker,
        kept=2,
        dropped=3,
        tokens_before=900,
        tokens_after=400,
        budget=500,
    )


def _run() -> list[Event]:
    """The question, three agent turns, the person stepping in, a prune, one more turn."""
    return [
        _message(1, 0, HUMAN, "Q?", at=0),
        _message(2, 1, "researcher", at=2),
        _message(3, 2, "analyst", at=4),
        _message(4, 3, "critic", at=6),
        _message(5, 4, HUMAN, "what about buses?", at=7),
        _prune(6, 5, "writer", at=7.5),
        _message(7, 5, "writer", at=9),
    ]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _marks(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def test_the_timeline_is_svg_with_a_bar_per_agent_turn_on_its_speakers_row() -> None:
    root = _parse(timeline_svg(_header("researcher", "analyst", "critic", "writer"), _run()))
    bars = _marks(root, "turn")
    assert len(bars) == 4
    titles = [bar.findtext(f"{SVG}title") or "" for bar in bars]
    assert [t.split(" · ")[0] for t in titles] == ["researcher", "analyst", "critic", "writer"]
    ys = [float(bar.get("y", "")) for bar in bars]
    assert ys == sorted(ys) and len(set(ys)) == 4, "one row per speaker, in the header's order"
    xs = [float(bar.get("x", "")) for bar in bars]
    assert xs == sorted(xs), "placed by time"
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "you" in labels and "Who spoke when: 4 turn(s)" in labels
    assert "bars placed by time" in labels


def test_the_persons_interjection_and_a_prune_are_marked() -> None:
    root = _parse(timeline_svg(_header("researcher", "analyst", "critic", "writer"), _run()))
    [question] = _marks(root, "question")
    [interjection] = _marks(root, "interjection")
    assert question.get("y") == interjection.get("y"), "both on the person's row"
    assert "what about buses?" in (interjection.findtext(f"{SVG}title") or "")
    assert len(_marks(root, "interjection-line")) == 1, "the question is no interjection"
    [prune] = _marks(root, "prune")
    assert "pruned writer: dropped 3 turn(s), kept 2" in (prune.findtext(f"{SVG}title") or "")
    writer_bar = _marks(root, "turn")[-1]
    tip_x = float((prune.get("points") or "").split(",")[0])
    assert tip_x == pytest.approx(float(writer_bar.get("x", "")), abs=0.1), "before its reply"


def test_hostile_names_and_contents_are_escaped_and_labels_cut_short() -> None:
    name = "<script>&x"
    events = [_message(1, 0, HUMAN, HOSTILE), _message(2, 1, name, HOSTILE + " " * 3 + "x" * 500)]
    svg = timeline_svg(_header(name), events)
    assert "<script>" not in svg and "&x" not in svg.replace("&amp;", "")
    root = _parse(svg)
    [bar] = _marks(root, "turn")
    title = bar.findtext(f"{SVG}title") or ""
    assert title.startswith("<script>&x · turn 1: <script>alert") and len(title) <= 120
    assert name in [t.text for t in root.iter(f"{SVG}text")], "the label reads as written"
    ledger = [LedgerRow(speaker=name, prompt_tokens=1), LedgerRow(speaker="a" * 64)]
    costs = costs_svg(ledger)
    assert "<script>" not in costs
    labels = [t.text or "" for t in _parse(costs).iter(f"{SVG}text")]
    assert name in labels and max(len(t) for t in labels) <= 30


def test_times_that_do_not_spread_place_bars_by_turn_order() -> None:
    events = [_message(n, n, r, at=5) for n, r in enumerate(["a", "b", "a"], start=1)]
    events = [e.model_copy(update={"latency_s": 0.0}) for e in events]
    root = _parse(timeline_svg(_header("a", "b"), events))
    xs = [float(b.get("x", "")) for b in _marks(root, "turn")]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert "bars placed by turn order" in [t.text for t in root.iter(f"{SVG}text")]


def test_the_timeline_is_bounded() -> None:
    events = [_message(n, n, f"r{n % 20}", at=n) for n in range(1, 2 * MAX_BARS + 1)]
    root = _parse(timeline_svg(_header("r0"), events))
    assert len(_marks(root, "turn")) <= MAX_BARS
    rows = {b.get("y") for b in _marks(root, "turn")}
    assert len(rows) <= 16, "at most 16 agents' rows beside the person's"


def test_an_empty_run_draws_an_empty_timeline() -> None:
    root = _parse(timeline_svg(_header("a"), []))
    assert _marks(root, "turn") == []


def test_the_cost_bars_match_the_ledger() -> None:
    ledger = [
        LedgerRow(speaker="researcher", prompt_tokens=400, completion_tokens=50, seconds=2.0),
        LedgerRow(speaker="critic", prompt_tokens=100, completion_tokens=100, seconds=8.0),
    ]
    root = _parse(costs_svg(ledger))
    for metric, values in {
        "tokens-in": [400, 100],
        "tokens-out": [50, 100],
        "seconds": [2.0, 8.0],
    }.items():
        bars = _marks(root, metric)
        assert [float(b.get("data-value", "")) for b in bars] == values
        widths = [float(b.get("width", "")) for b in bars]
        assert widths[0] / widths[1] == pytest.approx(values[0] / values[1], rel=0.01)
    assert _marks(root, "usd") == [], "no dollars when nothing is priced"
    roles = ("researcher", "analyst", "critic", "writer")
    timeline = _parse(timeline_svg(_header(*roles), _run()))
    colours = {
        (b.findtext(f"{SVG}title") or "").split(" · ")[0]: b.get("fill")
        for b in _marks(timeline, "turn")
    }
    matched = _marks(_parse(costs_svg(ledger, roles)), "seconds")
    assert [b.get("fill") for b in matched] == [colours["researcher"], colours["critic"]]
    priced = [*ledger[:1], ledger[1].model_copy(update={"cost_usd": 0.25})]
    usd = _marks(_parse(costs_svg(priced)), "usd")
    assert [float(b.get("data-value", "")) for b in usd] == [0.0, 0.25]


async def test_a_replay_draws_the_timeline_as_it_goes_and_both_pictures_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pictures_view, "INTERVAL", 0.0)
    page = recording_page()
    renderer = ChainlitRenderer(live=False)
    transcript = load(GOLDEN)
    async for event in replay(transcript):
        await renderer.show(event)
    images = [e for e in page.elements.values() if e.get("mime") == "image/svg+xml"]
    # A message sends its elements concurrently: their order on the page is not fixed.
    assert sorted(e["name"] for e in images) == ["costs.svg", "timeline.svg", "timeline.svg"]
    timeline = next(i for i in page.items() if i.output == "**Who spoke when**")
    stop = next(i for i in page.items() if "Debate stopped" in i.output)
    placed = sorted((e["forId"] == stop.id, e["name"]) for e in images)
    assert placed == [(False, "timeline.svg"), (True, "costs.svg"), (True, "timeline.svg")]
    assert next(e for e in images if e["forId"] != stop.id)["forId"] == timeline.id
    assert isinstance(transcript.events[-1], StopEvent)
    turns = [e for e in transcript.events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    drawn = timeline_svg(transcript.header, transcript.events)
    assert len(_marks(_parse(drawn), "turn")) == len(turns)


async def test_the_view_keeps_a_bounded_part_of_a_long_run() -> None:
    recording_page()  # a Chainlit context, as elements need
    view = pictures_view.PicturesView()
    view.see(_header("a"))
    for n in range(1, 1001):
        view.see(_message(n, n, "a", "x" * 100_000, at=n))
    [timeline] = view.ending([])
    assert isinstance(timeline.content, bytes) and len(timeline.content) < 60_000
    assert len(_marks(_parse(timeline.content.decode()), "turn")) == MAX_BARS
