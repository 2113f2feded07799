"""What the verdict-giver still disputes is shown under the answer on every surface: the
browser's answer card, the terminal, the HTML page (the Markdown export's own test is in
``test_markdown_export``); and nothing is shown when it accepted."""

from __future__ import annotations

import io

from roundtable.terminal.render import TerminalRenderer
from roundtable.transcripts import Answer, StopEvent, Transcript, to_html
from roundtable.ui.ending import send_ending
from tests.support.chainlit_page import recording_page
from tests.test_markdown_export import golden

DISPUTE = "REVISE: <b>deliveries</b> are not covered."


def answer_of(transcript: Transcript) -> Answer:
    answer = Answer(transcript.header)
    for event in transcript.events:
        answer.see(event)
    return answer


def stop_of(transcript: Transcript) -> StopEvent:
    return next(e for e in reversed(transcript.events) if isinstance(e, StopEvent))


async def test_the_answer_card_says_what_is_still_disputed() -> None:
    cases = ((golden(last_critic=("REVISE", DISPUTE)), True), (golden(), False))
    for transcript, disputed in cases:
        page = recording_page()
        await send_ending(stop_of(transcript), answer_of(transcript), None, "debate", None)
        card = page.messages()[0]
        assert card.startswith("### Answer\n\nYes, with good transit")
        assert (f"**Still disputed by the critic:** {DISPUTE}" in card) is disputed


def test_the_terminal_says_what_is_still_disputed_after_the_answer() -> None:
    out = io.StringIO()
    render = TerminalRenderer(out, colour=False)
    transcript = golden(last_critic=("REVISE", DISPUTE))
    render(transcript.header)
    for event in transcript.events:
        render(event)
    tail = out.getvalue().split("Stopped (accepted)", 1)[1].splitlines()
    assert tail[1:5] == [
        "Answer, by the writer:",
        "  Yes, with good transit and delivery exemptions.",
        "Still disputed by the critic:",
        f"  {DISPUTE}",
    ]


def test_the_html_page_says_what_is_still_disputed_escaped() -> None:
    page = to_html(golden(last_critic=("REVISE", DISPUTE)))
    answer = page.split('<section id="answer">', 1)[1].split("</section>", 1)[0]
    assert "<h3>Still disputed by the critic (turn 7)</h3>" in answer
    assert "REVISE: &lt;b&gt;deliveries&lt;/b&gt; are not covered." in answer
    assert "Still disputed" not in to_html(golden())
