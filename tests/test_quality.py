"""The quality report: measured from a run's events, recorded before every mode's stop, and
shown by the terminal, the browser's stop message, the export and replay."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

import roundtable
from roundtable.conversations import Settings, load_settings
from roundtable.conversations.overlap import containment, distinctness
from roundtable.conversations.quality import COPY_THRESHOLD, has_point, names_only, report
from roundtable.terminal.render import TerminalRenderer
from roundtable.transcripts import (
    GuardEvent,
    MessageEvent,
    QualityEvent,
    StopEvent,
    load,
    quality_lines,
)
from roundtable.ui.ending import quality_text
from roundtable.ui.export import to_markdown

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"


def quiet() -> Settings:
    return load_settings(memory={"enabled": False})


@pytest.mark.parametrize("mode", ["debate", "pipeline", "panel"])
async def test_every_mode_records_its_quality_just_before_its_stop(
    mode: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{mode}.jsonl"
    result = await roundtable.arun(
        "Trams or buses?",
        mode=mode,
        demo=True,
        settings=quiet(),
        transcript=path,  # type: ignore[arg-type]
    )
    quality, stop = result.events[-2:]
    assert isinstance(quality, QualityEvent) and isinstance(stop, StopEvent)
    assert quality.seq == stop.seq - 1
    saved = load(path)
    assert saved.events[-2] == quality
    expected = report(saved.header, saved.events[:-2], ledger=stop.ledger, ended=quality.at)
    assert quality.report == expected
    agents = [e for e in saved.events if isinstance(e, MessageEvent) and e.speaker != "human"]
    assert quality.report.turns == len(agents) > 0


def test_the_golden_transcript_scores_as_measured_by_hand() -> None:
    saved = load(GOLDEN)
    stop = saved.events[-1]
    assert isinstance(stop, StopEvent)
    got = report(saved.header, saved.events, ledger=stop.ledger)
    assert got.model_dump(exclude={"seconds"}) == {
        "turns": 6,  # researcher, critic x3, analyst, writer
        "revisions": 1,
        "revisions_with_point": 1,  # "what about deliveries?"
        "rejected_copies": 0,
        "copied_turns": 0,
        "distinctness": 1.0,
        "citations": 0,
        "invalid_citations": 0,
        "methods": {"model": 3, "rule": 3},
        # only "the researcher opens a new question" names its pick and no other role
        "reasons_naming_pick": 0.1667,
        "guards": {},
        "usage": {"prompt_tokens": 889, "completion_tokens": 56, "cached_tokens": 0},
        "cost_usd": None,
    }
    assert got.seconds == round((saved.events[-1].at - saved.header.created_at).total_seconds(), 3)


def test_copies_guards_and_citations_are_counted() -> None:
    saved = load(GOLDEN)
    first = saved.events[0]
    stamp = {"at": first.at + timedelta(seconds=1), "turn": 9}
    instructions = saved.header.team.card("critic").instructions  # type: ignore[union-attr]
    extra = [
        MessageEvent(
            seq=100, speaker="writer", content="Cities that did it cut traffic by a third.", **stamp
        ),
        MessageEvent(seq=101, speaker="critic", content=instructions, **stamp),
        MessageEvent(seq=102, speaker="critic", content="REVISE: bad.", verdict="REVISE", **stamp),
        GuardEvent(
            seq=103, speaker="writer", rule="copy", action="rejected", detail="0.9", **stamp
        ),
        GuardEvent(seq=104, speaker="critic", rule="copy", action="retried", detail="0.8", **stamp),
    ]
    got = report(saved.header, [*saved.events, *extra])
    assert (got.copied_turns, got.rejected_copies, got.guards) == (2, 1, {"copy": 2})
    assert (got.revisions, got.revisions_with_point) == (2, 1)
    assert (
        got.copied_turns
        == report(saved.header, [*saved.events, *extra], copy_threshold=0.6).copied_turns
    )
    assert report(saved.header, [*saved.events, *extra], copy_threshold=1.0).copied_turns == 0


@pytest.mark.parametrize(
    ("content", "point"),
    [
        ("REVISE: what about deliveries?", True),
        ("REVISE: no.", False),
        ("REVISE", False),
        ("REVISE: Start with ACCEPT: or REVISE: then say why", False),  # its instructions
    ],
)
def test_a_revision_has_a_point_when_it_says_something_of_its_own(
    content: str, point: bool
) -> None:
    instructions = "Start with ACCEPT: or REVISE:, then say why in one sentence."
    assert has_point(content, [instructions]) is point


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        ("the user researcher knows the users", True),
        ("the engineer, not the designer, should say", False),
        ("time to draft the answer", False),
        ("The ENGINEER checks feasibility", True),
    ],
)
def test_a_reason_names_the_pick_and_no_other_role(reason: str, named: bool) -> None:
    roster = ["user_researcher", "engineer", "designer"]
    chosen = "user_researcher" if "user" in reason else "engineer"
    assert names_only(reason, chosen, roster) is named


def test_the_report_is_shown_after_the_stop_in_the_terminal_browser_and_export() -> None:
    saved = load(GOLDEN)
    stop = saved.events[-1]
    assert isinstance(stop, StopEvent)
    quality = QualityEvent(
        seq=stop.seq, at=stop.at, turn=stop.turn, report=report(saved.header, saved.events)
    )
    moved = stop.model_copy(update={"seq": stop.seq + 1})
    out = io.StringIO()
    show = TerminalRenderer(out, colour=False)
    for event in [saved.header, *saved.events[:-1], quality, moved]:
        show(event)
    lines = quality_lines(quality.report)
    assert lines[0] == "6 turn(s), 1 revision(s) (1 with a point), distinctness 100%"
    tail = out.getvalue().splitlines()[-len(lines) :]
    assert tail == [f"  quality: {line}" for line in lines]
    assert out.getvalue().index("Stopped (accepted)") < out.getvalue().index("quality:")
    assert quality_text(quality.report) == "\n\n**Quality**\n" + "".join(f"\n- {x}" for x in lines)
    assert quality_text(None) == ""
    exported = to_markdown(
        saved.model_copy(update={"events": [*saved.events[:-1], quality, moved]})
    )
    assert "## Quality\n\n- 6 turn(s), 1 revision(s)" in exported


def test_the_report_measures_with_overlap_turn_by_turn() -> None:
    """Measured incrementally, the report agrees with ``overlap`` applied to each reply."""
    saved = load(GOLDEN)
    said = [e for e in saved.events if isinstance(e, MessageEvent)]
    replies = [
        (e, [m.content for m in said[:i]]) for i, e in enumerate(said) if e.speaker != "human"
    ]
    shares = [d for e, before in replies if (d := distinctness(e.content, before)) is not None]
    got = report(saved.header, saved.events)
    assert got.distinctness == round(sum(shares) / len(shares), 4)
    cards = saved.header.team
    assert cards is not None
    copies = sum(
        containment(e.content, [*before, cards.card(e.speaker).instructions]) > COPY_THRESHOLD
        for e, before in replies
    )
    assert got.copied_turns == copies
