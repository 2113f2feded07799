# mypy: disallow-untyped-calls=False
# (Chainlit's Message.send is unannotated.)
"""How a run ends on screen: the answer first, then the stop line, the ledger and the quality.

When a run stops, its answer (the answerer's latest reply, ``transcripts.Answer``) is shown
first as a card of its own, then the stop line with the export links, the run bar's last
count, the cost ledger, the quality report and the run's pictures (``pictures_view``). Owns
that wording and drawing; what the answer is, is ``transcripts.summary``'s business.
"""

from __future__ import annotations

from collections.abc import Sequence

import chainlit as cl

from roundtable.transcripts import Answer, LedgerRow, Mode, QualityReport, StopEvent, quality_lines
from roundtable.ui.downloads import export_links, page_root
from roundtable.ui.runbar import Progress

EXPORT_ACTION = "export_transcript"


async def send_ending(
    event: StopEvent,
    answer: Answer,
    progress: Progress | None,
    mode: Mode,
    quality: QualityReport | None,
    pictures: Sequence[cl.Image] = (),
) -> None:
    """The answer card (if the run has an answer), then the stop line with the exports: links
    to ``downloads``' route (one click, and saved in the thread, so they work once reopened);
    the older buttons only for a run with no usable transcript name; and ``pictures`` (the
    final timeline and the costs, ``pictures_view``)."""
    links = export_links(answer.conversation_id or "", page_root())
    actions = [] if links else export_actions()
    message = answer.message
    if message is not None:  # the answer first: the ledger and the rest under it
        body = f"### {answer.title}\n\n{message.content}\n\n*{answer.byline()}*"
        if (review := answer.disputed) is not None:  # what the verdict-giver still disputes
            body += f"\n\n**Still disputed by the {review.speaker}:** {review.content}"
        await cl.Message(content=body, author="Roundtable").send()
    text = stop_text(event, progress, mode) + quality_text(quality)
    text += f"\n\n{links}" if links else ""
    elements = list(pictures)
    await cl.Message(content=text, author="Roundtable", actions=actions, elements=elements).send()


def export_actions() -> list[cl.Action]:
    """The export buttons (``EXPORT_ACTION``): the file comes as a card in the chat."""
    return [
        cl.Action(name=EXPORT_ACTION, payload={"fmt": "md"}, label="Download Markdown"),
        cl.Action(name=EXPORT_ACTION, payload={"fmt": "json"}, label="Download JSON"),
        cl.Action(name=EXPORT_ACTION, payload={"fmt": "html"}, label="Download HTML"),
    ]


def stop_text(event: StopEvent, progress: Progress | None, mode: Mode = "debate") -> str:
    spent = f"\n\n{progress.line()}" if progress is not None else ""
    ledger = f"\n\n{ledger_table(event.ledger)}" if event.ledger else ""
    ended = "finished" if event.code in ("completed", "partial") else "stopped"
    return f"**{mode.capitalize()} {ended}** ({event.code}): {event.reason}{spent}{ledger}"


def quality_text(report: QualityReport | None) -> str:
    """The run's quality report as a compact list under the stop line (none: nothing)."""
    if report is None:
        return ""
    return "\n\n**Quality**\n" + "".join(f"\n- {line}" for line in quality_lines(report))


def ledger_table(rows: Sequence[LedgerRow]) -> str:
    """The cost ledger as a small Markdown table: one row per speaker (the manager's own picks
    included), a total when there are several, and dollars only when an endpoint is priced."""
    priced = any(row.cost_usd is not None for row in rows)
    lines = [
        "| Cost ledger | calls | tokens in + out | seconds |" + (" USD |" if priced else ""),
        "|---|--:|--:|--:|" + ("--:|" if priced else ""),
    ]

    def line(
        name: str, calls: int, prompt: int, completion: int, seconds: float, cached: int
    ) -> str:
        reused = f" ({cached:,} cached)" if cached else ""
        return f"| {name} | {calls} | {prompt:,}{reused} + {completion:,} | {seconds:.1f} |"

    for row in rows:
        cost = "" if not priced else f" {_dollars(row.cost_usd)} |"
        lines.append(
            line(
                row.speaker,
                row.calls,
                row.prompt_tokens,
                row.completion_tokens,
                row.seconds,
                row.cached_tokens,
            )
            + cost
        )
    if len(rows) > 1:
        known = [row.cost_usd for row in rows if row.cost_usd is not None]
        cost = "" if not priced else f" {_dollars(sum(known))} |"
        total = line(
            "total",
            sum(row.calls for row in rows),
            sum(row.prompt_tokens for row in rows),
            sum(row.completion_tokens for row in rows),
            sum(row.seconds for row in rows),
            sum(row.cached_tokens for row in rows),
        )
        lines.append(total + cost)
    return "\n".join(lines)


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"
