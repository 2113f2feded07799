"""The self-contained HTML export (``transcripts.to_html``): a page that parses, shows the
answer first, then the pictures, the ledger, every turn with why its speaker speaks and the
sources; that makes no request (no script, link, image or URL to fetch; a CSP meta tag that
forbids it all); and that shows hostile text as text, wherever in the transcript it sits.
The route and the browser's one click are ``test_ui_downloads.py`` and
``test_ui_browser_exports.py``."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from roundtable.transcripts import (
    HTML_CSP,
    HUMAN,
    AggregateEvent,
    BranchEvent,
    Citation,
    Conflict,
    ErrorEvent,
    Event,
    Header,
    LedgerRow,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
    PlanEvent,
    PlanStep,
    QualityEvent,
    QualityReport,
    RoleSummary,
    SelectionEvent,
    StopEvent,
    Transcript,
    load,
    to_html,
)

GOLDEN = Path(__file__).parent / "golden" / "debate-v3.jsonl"
START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>\"' &amp;"
EVIL = "<img src=x onerror=alert(3)>"
"""A role's name (at most 64 characters): it is the speaker of turns and a ledger row."""
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "source", "col", "area", "base"}
SVG_NS = "http://www.w3.org/2000/svg"


class Page(HTMLParser):
    """The page parsed: every element with its attributes, the text of each, the order of the
    sections, and whether every element that was opened was closed in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {}
        self.sections: list[str] = []
        self.open: list[str] = []
        self.unbalanced: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))  # <rect .../> in the SVG: opened and closed

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.unbalanced.append(tag)

    def handle_data(self, data: str) -> None:
        where = self.open[-1] if self.open else ""
        self.texts.setdefault(where, []).append(data)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def text(self, tag: str) -> str:
        return "".join(self.texts.get(tag, []))


def parsed(html: str) -> Page:
    page = Page(html)
    assert page.unbalanced == [] and page.open == []
    return page


def assert_fetches_nothing(html: str, page: Page) -> None:
    """No script, no element that loads anything, no attribute that names a URL, no CSS
    that could fetch; and a CSP meta tag that forbids all of it and admits only the page's
    own stylesheet, by its hash."""
    assert "<script" not in html.lower()
    loaders = {"script", "link", "img", "iframe", "object", "embed", "base", "form", "audio"}
    assert loaders.isdisjoint(tag for tag, _ in page.elements)
    for tag, attrs in page.elements:
        for name, value in attrs.items():
            assert name not in ("src", "href", "srcset", "action", "poster", "xlink:href")
            assert not name.startswith("on"), (tag, name)
            if name != "xmlns":
                assert "//" not in (value or ""), (tag, name, value)
        assert attrs.get("xmlns") in (None, SVG_NS)
    style = page.text("style")
    assert "url(" not in style and "@import" not in style
    [csp] = [a for a in page.tags("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp["content"] == HTML_CSP
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in HTML_CSP
    assert "default-src 'none'" in HTML_CSP and "unsafe" not in HTML_CSP
    assert "script-src" not in HTML_CSP  # default-src 'none' covers scripts


def test_the_golden_debate_is_one_page_with_the_answer_first_and_the_pictures() -> None:
    golden = load(GOLDEN)
    html = to_html(golden)
    page = parsed(html)
    assert page.sections == ["answer", "pictures", "ledger", "turns"]
    assert page.text("h1") == golden.header.question
    answer = html.split('<section id="answer">')[1].split("</section>")[0]
    assert "Yes, with good transit and delivery exemptions." in answer
    assert "by the writer, accepted by the critic" in answer
    titles = [t for t in page.texts.get("text", [])]
    assert any(t.startswith("Who spoke when: 6 turn(s)") for t in titles)
    assert "What each agent cost" in titles
    assert len(page.tags("svg")) == 2
    assert len([a for a in page.tags("rect") if a.get("class") == "turn"]) == 6
    assert "Stopped (accepted): the critic accepted the writer's answer" in page.text("p")
    headings = page.texts["h3"]
    assert headings[:3] == ["Turn 0 · You", "Turn 1 · Researcher", "Turn 2 · You"]
    assert "check the reasoning (chosen by the manager)" in page.text("p")
    assert "the researcher opens a new question (by the team's rules)" in page.text("p")
    ledger = page.text("td")
    assert "manager" in ledger and "total" in ledger
    assert_fetches_nothing(html, page)


def test_every_hostile_text_is_shown_as_text_and_nothing_can_run() -> None:
    html = to_html(hostile())
    page = parsed(html)
    assert_fetches_nothing(html, page)
    assert not page.tags("img") and not page.tags("script")
    assert page.text("h1") == PAYLOAD and page.texts["title"][0] == PAYLOAD
    shown = "".join("".join(texts) for texts in page.texts.values())
    # The reply (twice: the answer and its turn), the manager's reason, the stop, the error,
    # the plan, the branch, the comparison and the source all show the payload verbatim.
    assert shown.count(PAYLOAD) >= 10
    assert f"Turn 1 · {EVIL.capitalize()}" in page.texts["h3"]
    assert EVIL in page.text("td")  # the ledger's row for the hostile speaker
    sources = html.split('<section id="sources">')[1]
    assert "[1] turn 1" in sources and "&lt;script&gt;" in sources
    assert re.search(r"<img|<script", html, re.IGNORECASE) is None


def test_a_page_lists_a_valid_citation_once_and_no_invalid_one() -> None:
    transcript = hostile()
    html = to_html(transcript)
    sources = html.split('<section id="sources">')[1]
    assert sources.count("<li>") == 1
    assert "nowhere" not in sources  # the passage cited with an invalid number


def test_a_run_with_no_reply_says_it_has_no_answer() -> None:
    golden = load(GOLDEN)
    question = golden.events[0]
    html = to_html(golden.model_copy(update={"events": [question]}))
    page = parsed(html)
    assert "No answer" in page.texts["h2"]
    assert "The run did not record its end." in page.text("p")
    assert_fetches_nothing(html, page)


# -- a hostile transcript ------------------------------------------------------------------


def hostile() -> Transcript:
    """A run whose every free text (and one role's name) is ``PAYLOAD`` or ``EVIL``."""
    roles = [
        RoleSummary(name=name, description=PAYLOAD, endpoint="default", model=PAYLOAD, max_tokens=9)
        for name in ("researcher", EVIL)
    ]
    header = Header(
        conversation_id="c1",
        created_at=START,
        question=PAYLOAD,
        roles=roles,
        max_turns=4,
        context_window=4096,
    )
    return Transcript(path=Path("c1.jsonl"), header=header, events=list(_events()))


def _at(seq: int) -> dict[str, object]:
    return {"seq": seq, "at": START + timedelta(seconds=seq), "turn": 1 if seq > 1 else 0}


def _events() -> list[Event]:
    hits = [
        MemoryHit(id="h1", source=PAYLOAD, score=0.9, text=PAYLOAD, n=1),
        MemoryHit(id="h2", source="nowhere", score=0.1, text="nowhere", n=2),
    ]
    citations = [Citation(n=1, hit_id="h1", valid=True), Citation(n=2, hit_id="h2", valid=False)]
    step = PlanStep(id="q1", role=EVIL, needs="facts", question=PAYLOAD)
    conflict = Conflict(topic=PAYLOAD, branches=["q1", "q2"], detail=PAYLOAD)
    report = QualityReport(
        turns=1,
        revisions=0,
        revisions_with_point=0,
        rejected_copies=0,
        copied_turns=0,
        citations=1,
        invalid_citations=1,
    )
    return [
        MessageEvent(**_at(1), speaker=HUMAN, content=PAYLOAD),
        PlanEvent(**_at(2), mode="panel", steps=[step], accepted=True, reason=PAYLOAD),
        BranchEvent(
            **_at(3), phase="start", branch="q1", role=EVIL, question=PAYLOAD, status="running"
        ),
        SelectionEvent(**_at(4), candidates=[EVIL], speaker=EVIL, method="model", reason=PAYLOAD),
        MemoryEvent(**_at(5), speaker=EVIL, query=PAYLOAD, hits=hits),
        ErrorEvent(**_at(6), family="model", speaker=EVIL, message=PAYLOAD),
        MessageEvent(**_at(7), speaker=EVIL, content=PAYLOAD, citations=citations),
        BranchEvent(
            **_at(8),
            phase="end",
            branch="q1",
            role=EVIL,
            question=PAYLOAD,
            status="failed",
            error=PAYLOAD,
        ),
        AggregateEvent(**_at(9), answered=["q1"], conflicts=[conflict], compared=True),
        QualityEvent(**_at(10), report=report),
        StopEvent(
            **_at(11),
            code="user_stop",
            reason=PAYLOAD,
            ledger=[LedgerRow(speaker=EVIL, calls=1, prompt_tokens=5, cost_usd=0.5)],
        ),
    ]
