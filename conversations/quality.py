"""A run's quality report: how much of a debate it was, measured from its own events.

``report(header, events)`` is a pure function, so the recorder writes it live just before a
run's stop and ``roundtable eval --transcripts`` scores any saved transcript the same way.
Copying is measured with ``overlap`` (word-trigram containment), the one measure the copy
guard uses too.

Definitions, kept simple on purpose:

- a *revision with a point* is a ``REVISE`` verdict whose text after the first colon has at
  least ``POINT_WORDS`` words and is not mostly a copy (containment at most the copy
  threshold) of the speaker's own instructions or of an earlier turn;
- a *copied turn* is a committed agent reply whose containment in the earlier turns (the
  question included) or in its speaker's instructions is above the copy threshold
  (``COPY_THRESHOLD`` by default);
- *distinctness* is the mean, over agent replies, of the share of each reply's trigrams not
  seen in any earlier turn;
- a reason *names the pick* when it mentions the chosen role by name and no other role of the
  roster (``reasons.names_only``; the person's own picks are not counted);
- *seconds* is the span from the header to the last event (a resumed run counts its pause).

Does not own: the guards that act on a reply (the debate), the overlap measure (``overlap``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from roundtable.conversations.overlap import contained, ngrams, words
from roundtable.conversations.reasons import names_only
from roundtable.transcripts.events import (
    HUMAN,
    AggregateEvent,
    Event,
    GuardEvent,
    GuardRule,
    Header,
    LedgerRow,
    MessageEvent,
    Method,
    PlanEvent,
    QualityReport,
    SelectionEvent,
    Usage,
)

Grams = set[tuple[str, ...]]

COPY_THRESHOLD = 0.6
"""Containment above which a reply counts as a copy; the copy guard may tune it."""

POINT_WORDS = 3
"""Words a REVISE needs after its colon to count as a point ("what about deliveries?")."""

__all__ = [
    "COPY_THRESHOLD",
    "POINT_WORDS",
    "Grams",
    "has_point",
    "names_only",
    "pointed",
    "report",
]


def report(
    header: Header,
    events: Sequence[Event],
    *,
    ledger: Sequence[LedgerRow] | None = None,
    ended: datetime | None = None,
    copy_threshold: float = COPY_THRESHOLD,
) -> QualityReport:
    """The quality report of ``events`` (a run's, in order; earlier reports are ignored).

    ``ledger`` gives the cost (the stop's ledger when scoring a saved run); ``ended`` is when
    the run ended (the last event's time by default)."""
    instructions = _instructions(header)
    seen: Grams = set()
    """The trigrams of every message so far: each reply is measured against it once."""
    replies: list[float] = []
    copied, revisions, with_point = 0, 0, 0
    for message in (e for e in events if isinstance(e, MessageEvent)):
        grams = ngrams(message.content)
        if message.speaker != HUMAN:
            own = instructions.get(message.speaker, set())
            before = (grams & seen) | (grams & own)  # what it repeats, without copying `seen`
            if grams:
                replies.append(1.0 - contained(grams, seen))
            copied += contained(grams, before) > copy_threshold
            if message.verdict == "REVISE":
                revisions += 1
                with_point += pointed(message.content, before, copy_threshold)
        seen |= grams
    messages = [e for e in events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    guards = [e for e in events if isinstance(e, GuardEvent)]
    return QualityReport(
        turns=len(messages),
        revisions=revisions,
        revisions_with_point=with_point,
        rejected_copies=sum(g.rule == "copy" and g.action == "rejected" for g in guards),
        copied_turns=copied,
        distinctness=round(sum(replies) / len(replies), 4) if replies else None,
        citations=sum(len(m.citations) for m in messages),
        invalid_citations=sum(not c.valid for m in messages for c in m.citations),
        methods=_methods(events),
        reasons_naming_pick=_naming_share(events, [r.name for r in header.roles]),
        guards=dict(sorted(Counter[GuardRule](g.rule for g in guards).items())),
        usage=_usage(events),
        cost_usd=_cost(ledger),
        seconds=_seconds(header, events, ended),
    )


def has_point(content: str, earlier: Sequence[str], threshold: float = COPY_THRESHOLD) -> bool:
    """Whether a REVISE verdict carries a concrete point (see the module's definition):
    ``earlier`` are the texts it must not copy (earlier turns, the speaker's instructions)."""
    seen: Grams = set()
    for text in earlier:
        seen |= ngrams(text)
    return pointed(content, seen, threshold)


def pointed(content: str, seen: Grams, threshold: float = COPY_THRESHOLD) -> bool:
    """``has_point`` against trigrams already made: ``seen`` holds at least those of
    ``content`` that earlier texts have (a caller measuring every turn of a long run keeps one
    growing set instead of re-reading the run)."""
    _, colon, point = content.partition(":")
    if not colon or len(words(point)) < POINT_WORDS:
        return False
    return contained(ngrams(point), seen) <= threshold


def _instructions(header: Header) -> dict[str, Grams]:
    """Each role's instructions as trigrams (a reply must not echo its own)."""
    if header.team is None:
        return {}
    return {card.name: ngrams(card.instructions) for card in header.team.roles}


def _methods(events: Sequence[Event]) -> dict[Method, int]:
    counted = Counter[Method](e.method for e in events if isinstance(e, SelectionEvent))
    return dict(sorted(counted.items()))


def _naming_share(events: Sequence[Event], roster: Sequence[str]) -> float | None:
    picks = [e for e in events if isinstance(e, SelectionEvent) and e.method != "human"]
    if not picks:
        return None
    named = sum(names_only(p.reason, p.speaker, roster) for p in picks)
    return round(named / len(picks), 4)


def _usage(events: Sequence[Event]) -> Usage:
    total = Usage()
    for event in events:
        if isinstance(event, MessageEvent | SelectionEvent | PlanEvent | AggregateEvent):
            total = total + event.usage
    return total


def _cost(ledger: Sequence[LedgerRow] | None) -> float | None:
    priced = [row.cost_usd for row in ledger or () if row.cost_usd is not None]
    return round(sum(priced), 6) if priced else None


def _seconds(header: Header, events: Sequence[Event], ended: datetime | None) -> float:
    last = ended or (events[-1].at if events else header.created_at)
    return round(max(0.0, (last - header.created_at).total_seconds()), 3)
