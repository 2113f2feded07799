"""What every front end shows when a run ends: its answer, and its quality report in words.

The terminal, the browser, the exports, the API and ``roundtable eval`` show the same answer
and the same lines (and the same one line of why a speaker speaks), so they are found and
written here once. Owns the wording and which
message is the answer; the measures are ``conversations.quality``.
"""

from __future__ import annotations

from collections.abc import Iterable

from roundtable.transcripts.events import (
    HUMAN,
    Event,
    Header,
    MessageEvent,
    Method,
    QualityReport,
    SelectionEvent,
)

CHOSEN: dict[Method, str] = {
    "model": "chosen by the manager",
    "rule": "by the team's rules",
    "fallback": "the manager could not choose, so by turn order",
    "human": "at your request",
}
"""How a speaker was chosen, in plain words (not the method's name)."""


def why_line(selection: SelectionEvent) -> str:
    """Why a speaker speaks, in one line: the manager's reason and how it was chosen."""
    return f"{selection.reason} ({CHOSEN[selection.method]})"


class Answer:
    """The run's answer as its events go by: the answerer's latest reply (the role with the
    team's ``answers`` flag), else the latest agent reply; and who accepted it, if anyone."""

    def __init__(self, header: Header | None) -> None:
        self.conversation_id = header.conversation_id if header is not None else None
        """Whose answer: the run's conversation (its transcript's name), None without a header."""
        team = header.team if header is not None else None
        self.answerer = team.holder("answers") if team is not None else None
        self.reviewer = team.holder("gives_verdict") if team is not None else None
        self._by_answerer: MessageEvent | None = None
        self._latest: MessageEvent | None = None
        """The latest reply of any role but the verdict-giver."""
        self._review: MessageEvent | None = None
        self.accepted_by: str | None = None

    @property
    def message(self) -> MessageEvent | None:
        return self._by_answerer or self._latest or self._review

    def see(self, event: Event | Header) -> None:
        if not isinstance(event, MessageEvent) or event.speaker == HUMAN:
            return
        if event.speaker == self.reviewer:
            if event.verdict == "ACCEPT" and (self._by_answerer or self._latest) is not None:
                self.accepted_by = event.speaker
            self._review = event
            return
        before = self.message
        if event.speaker == self.answerer:
            self._by_answerer = event
        self._latest = event
        if self.message is not before:
            self.accepted_by = None

    @property
    def title(self) -> str:
        """ "Answer", or, when the team has an answerer who has not written yet (a run stopped
        early), a title that says the text shown is only the latest reply."""
        message = self.message
        if message is None or self.answerer is None or message.speaker == self.answerer:
            return "Answer"
        return f"No answer yet: the {self.answerer} had not written one; the latest reply"

    @property
    def disputed(self) -> MessageEvent | None:
        """The reviewer's latest review when it came after the answer and asked for a revision
        (what the critic still disputes); None when it accepted, or had nothing to say after."""
        review, message = self._review, self.message
        if review is None or message is None or review is message:
            return None
        return review if review.verdict == "REVISE" and review.seq > message.seq else None

    def byline(self) -> str:
        """ "by the writer, accepted by the critic" (or without the acceptance)."""
        if self.message is None:
            return ""
        accepted = f", accepted by the {self.accepted_by}" if self.accepted_by else ""
        return f"by the {self.message.speaker}{accepted}"


def final_answer(header: Header | None, events: Iterable[Event]) -> MessageEvent | None:
    """The answer of a finished (or saved) run; see ``Answer``."""
    answer = Answer(header)
    for event in events:
        answer.see(event)
    return answer.message


def quality_lines(report: QualityReport) -> list[str]:
    """The report as short lines: debate shape, copying, the manager, citations, cost."""
    distinct = f"{report.distinctness:.0%}" if report.distinctness is not None else "n/a"
    naming = (
        f"{report.reasons_naming_pick:.0%}" if report.reasons_naming_pick is not None else "n/a"
    )
    methods = ", ".join(f"{k} {v}" for k, v in report.methods.items()) or "none"
    guards = ", ".join(f"{k} {v}" for k, v in report.guards.items()) or "none"
    cost = f", ${report.cost_usd:.4f}" if report.cost_usd is not None else ""
    return [
        f"{report.turns} turn(s), {report.revisions} revision(s) "
        f"({report.revisions_with_point} with a point), distinctness {distinct}",
        f"copies: {report.copied_turns} committed, {report.rejected_copies} rejected; "
        f"guards: {guards}",
        f"manager: {methods}; reasons naming the pick {naming}",
        f"citations: {report.citations} ({report.invalid_citations} invalid); "
        f"{report.usage.total} tokens, {report.seconds:.1f} s{cost}",
    ]
