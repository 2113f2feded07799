"""The Markdown export (``transcripts.to_markdown``): text reads as written (escaped only where
Markdown must be), a hostile reply cannot render as HTML, a link, a heading, a list, a quote, a
table or code in a viewer, and the answer (who wrote it, who accepted it, what the critic still
disputes) and the cost ledger come before the turns.

"Cannot render" is checked by rendering the export with markdown-it-py (CommonMark with HTML
allowed, plus GFM tables), the parser many viewers use."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from roundtable.transcripts import (
    MessageEvent,
    StopEvent,
    Transcript,
    escape_md,
    load,
    to_markdown,
)

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
PLAIN = "Costs rose 20-40%. Then fell."
ORDINARY = "e.g. (a) *this* or snake_case, C:\\Users\\me, 3 + 4 = 7, #1 fan! 1.5 km; a > b."
HOSTILE = (
    "<script>alert(1)</script>\n"
    "[x](javascript:alert(2)) ![i](http://e.example/i.png) <http://e.example>\n"
    "# heading\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n"
    '<img src=x onerror="alert(3)">\n'
    "> quoted\n- item\n+ item\n* item\n1. first\n\n1) second\n"
    "---\nSetext\n===\n"
    "```\ncode\n```\n~~~\nfenced\n~~~\n"
    "`inline`\n"
    "[r]: javascript:alert(4)\nsee [r]\n"
    "\\[y](javascript:alert(5))\n"
    "lone CR\r# after it"
)


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def tags(html: str) -> set[str]:
    return set(re.findall(r"<([a-z0-9]+)", html))


def golden(writer: str | None = None, last_critic: tuple[str, str] | None = None) -> Transcript:
    """The golden debate, with the writer's answer (turn 6) and the critic's last review
    (turn 7: verdict, text) replaced when given."""
    transcript = load(GOLDEN)
    events = []
    for event in transcript.events:
        if isinstance(event, MessageEvent) and event.turn == 6 and writer is not None:
            event = event.model_copy(update={"content": writer})
        if isinstance(event, MessageEvent) and event.turn == 7 and last_critic is not None:
            verdict, text = last_critic
            event = event.model_copy(update={"verdict": verdict, "content": text})
        events.append(event)
    return transcript.model_copy(update={"events": events})


def test_ordinary_text_is_exported_as_written() -> None:
    assert escape_md(PLAIN) == PLAIN
    assert escape_md(ORDINARY) == ORDINARY
    text = to_markdown(golden(writer=PLAIN))
    assert f"## Answer\n\n{PLAIN}\n" in text
    assert f"## Turn 6: Writer\n\n{PLAIN}\n" in text
    assert "\\" not in text  # nothing in the golden run needs escaping
    assert f"<p>{PLAIN}</p>" in rendered(text)


def test_a_hostile_reply_renders_as_plain_text() -> None:
    alone = rendered(escape_md(HOSTILE))
    assert tags(alone) <= {"p"}, alone  # no HTML, link, image, heading, list, quote, table, code
    shown = re.sub(r"<[^>]+>", "", alone).replace("&lt;", "<").replace("&gt;", ">")
    shown = shown.replace("&quot;", '"').replace("&amp;", "&")
    assert shown.split() == HOSTILE.split(), "every character still shows, as written"

    html = rendered(to_markdown(golden(writer=HOSTILE)))
    assert "<script" not in html and "<img" not in html and "<a " not in html
    assert "<code>" not in html and "<pre>" not in html
    assert html.count("<table>") == 1, "the cost ledger's, not the reply's"
    assert html.count("<h1>") == 1 and "<h1>heading" not in html and "<h1>after it" not in html
    assert "<li>item" not in html and "<li>first" not in html and "<h1>Setext" not in html
    assert "<blockquote>\n<p>quoted" not in html


def test_a_hostile_role_name_renders_as_plain_text() -> None:
    """A name is any text up to 64 characters: where it heads a turn, a pick or a ledger row,
    it is escaped too."""
    evil = "<img src=x onerror=alert(3)>[a](javascript:x)"
    transcript = load(GOLDEN)
    events = [
        e.model_copy(update={"speaker": evil}) if getattr(e, "speaker", None) == "analyst" else e
        for e in transcript.events
    ]
    stop = events[-1]
    assert isinstance(stop, StopEvent)
    ledger = [r.model_copy(update={"speaker": evil}) for r in stop.ledger]
    events[-1] = stop.model_copy(update={"ledger": ledger})
    html = rendered(to_markdown(transcript.model_copy(update={"events": events})))
    assert "<img" not in html and "<a " not in html
    assert html.count("&lt;img src=x onerror=alert(3)&gt;[a](javascript:x)") >= 4


def test_the_answer_and_the_ledger_come_before_the_turns() -> None:
    text = to_markdown(golden())
    answer, ledger, turns = (
        text.index("## Answer\n\nYes, with good transit and delivery exemptions.\n"),
        text.index("## Cost ledger\n\n| speaker | calls | tokens in | tokens out | seconds |"),
        text.index("## Turn 0: You"),
    )
    assert answer < text.index("*by the writer, accepted by the critic*") < ledger < turns
    assert text.index("**Stopped (accepted):**") < turns
    assert "| total | 10 | 889 | 56 | 0.3 |" in text
    assert "Still disputed" not in text


def test_what_the_critic_still_disputes_is_under_the_answer() -> None:
    text = to_markdown(golden(last_critic=("REVISE", "REVISE: deliveries are not covered.")))
    disputed = text.index(
        "*by the writer*\n\n### Still disputed by the critic (turn 7)\n\n"
        "REVISE: deliveries are not covered.\n"
    )
    assert disputed < text.index("## Cost ledger") < text.index("## Turn 0: You")
