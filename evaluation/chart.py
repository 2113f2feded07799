"""The comparison chart: one group of bars per metric, one bar per configuration, as SVG.

Hand-written SVG, not a plotting library: the chart is a few dozen rectangles and labels, a
self-contained file any browser shows offline, and it adds no dependency (plotly, the one
charting library in the lock's reach, writes a 3 MB HTML file). Each metric's bars are scaled
to that metric's largest mean, since the metrics have different units; the value is written
beside each bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from roundtable.evaluation.records import Summary
from roundtable.evaluation.stats import METRICS

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948")
WIDTH, LABEL, BAR, GAP = 760, 180, 14, 10


def chart(summaries: Sequence[Summary]) -> str:
    """The SVG document comparing ``summaries`` metric by metric."""
    rows = _rows(summaries)
    height = 40 + sum(len(summaries) * BAR + GAP for _ in rows) + 20 * len(summaries)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        '<text x="8" y="20" font-size="14" font-weight="bold">roundtable eval: '
        "configurations compared (bars scaled per metric)</text>",
    ]
    y = 36
    for metric, means in rows:
        top = max((abs(m) for m in means if m is not None), default=0.0) or 1.0
        parts.append(f'<text x="8" y="{y + BAR}">{escape(metric)}</text>')
        for index, mean in enumerate(means):
            colour = COLOURS[index % len(COLOURS)]
            length = 0.0 if mean is None else abs(mean) / top * (WIDTH - LABEL - 90)
            shown = "n/a" if mean is None else f"{mean:.3g}"
            parts.append(
                f'<rect x="{LABEL}" y="{y}" width="{length:.1f}" height="{BAR - 2}" '
                f'fill="{colour}"/><text x="{LABEL + length + 4:.1f}" y="{y + BAR - 3}">'
                f"{shown}</text>"
            )
            y += BAR
        y += GAP
    for index, summary in enumerate(summaries):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<rect x="8" y="{y}" width="12" height="12" fill="{colour}"/>'
            f'<text x="26" y="{y + 10}">{escape(summary.config)}</text>'
        )
        y += 20
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _rows(summaries: Sequence[Summary]) -> list[tuple[str, list[float | None]]]:
    rows = [(m, [s.metrics[m].mean for s in summaries]) for m in METRICS]
    kinds = sorted({k for s in summaries for k in s.accuracy})
    for kind in kinds:
        got = [s.accuracy[kind].mean if kind in s.accuracy else None for s in summaries]
        rows.append((f"accuracy ({kind})", got))
    return [(name, means) for name, means in rows if any(m is not None for m in means)]
