"""A run's quality report in words: the few short lines every front end shows after the stop.

The terminal, the browser, the exports and ``roundtable eval`` show the same lines, so they
are written here once. Owns the wording only; the measures are ``conversations.quality``.
"""

from __future__ import annotations

from roundtable.transcripts.events import QualityReport


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
