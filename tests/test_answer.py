"""The run's answer, found once (``transcripts.summary``) and shown first when a run ends."""

from __future__ import annotations

import io
from pathlib import Path

from roundtable.conversations import Budget
from roundtable.terminal.render import TerminalRenderer
from roundtable.transcripts import Answer, final_answer, load
from tests.support.debates import collect, pick, scripted_debate

ANSWER = "Yes, with good transit and delivery exemptions."


async def test_the_answer_is_the_answerers_last_reply_and_names_who_accepted_it(
    tmp_path: Path,
) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": ["Cities that did it cut traffic by a third."],
            "critic": ["REVISE: say what happens to deliveries.", "ACCEPT: well argued."],
            "writer": ["Yes.", ANSWER],
        },
        picks=[pick("writer")],
    )
    out = io.StringIO()
    render = TerminalRenderer(out, colour=False)
    for event in await collect(debate):
        render(event)
    saved = load(tmp_path / "t.jsonl")
    found = final_answer(saved.header, saved.events)
    assert found is not None and found.content == ANSWER
    tracker = Answer(saved.header)
    for event in saved.events:
        tracker.see(event)
    assert tracker.byline() == "by the writer, accepted by the critic"
    printed = out.getvalue()
    stop_at = printed.index("Stopped (accepted)")
    assert printed[stop_at:].splitlines()[1:3] == [
        "Answer, by the writer, accepted by the critic:",
        f"  {ANSWER}",
    ]


async def test_a_revised_answer_is_not_called_accepted_until_the_verdict_comes(
    tmp_path: Path,
) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": ["Cities that did it cut traffic by a third."],
            "critic": ["ACCEPT: fine.", "REVISE: say what happens to deliveries."],
            "writer": ["Yes.", ANSWER],
        },
        picks=[pick("critic"), pick("writer")],
        roles=["researcher", "critic", "writer"],
    )
    await collect(debate)
    saved = load(tmp_path / "t.jsonl")
    tracker = Answer(saved.header)
    for event in saved.events:
        tracker.see(event)
        if tracker.message is not None and tracker.message.content == ANSWER:
            assert tracker.accepted_by is None or event.speaker == "critic"
    assert tracker.message is not None and tracker.message.speaker == "writer"


async def test_a_run_stopped_before_the_answerer_wrote_does_not_call_a_reply_the_answer(
    tmp_path: Path,
) -> None:
    """Seen in the browser: a debate stopped at turn 2 showed the opener's reply under
    "Answer"; it is the latest reply, and the title says the answerer had not written."""
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": ["Cities that did it cut traffic by a third."]},
        picks=[pick("analyst")],
        defaults={"analyst": "Costs fall on shop owners first."},
        budget=Budget(max_turns=2),
    )
    out = io.StringIO()
    render = TerminalRenderer(out, colour=False)
    for event in await collect(debate):
        render(event)
    saved = load(tmp_path / "t.jsonl")
    tracker = Answer(saved.header)
    for event in saved.events:
        tracker.see(event)
    assert tracker.message is not None and tracker.message.speaker == "analyst"
    assert tracker.title == "No answer yet: the writer had not written one; the latest reply"
    assert f"{tracker.title}, by the analyst:" in out.getvalue()
    assert "Answer, by" not in out.getvalue()
