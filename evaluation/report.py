"""Writing an evaluation: ``report.json`` (the records), ``report.md`` and ``chart.svg``.

Owns assembling the ``EvalReport`` from scored runs (summaries, comparison, findings) and the
Markdown wording. Each file is written whole to a temporary name and renamed into place, so a
report on disk is never half-written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from roundtable.evaluation.chart import chart
from roundtable.evaluation.records import BaselineScore, EvalReport, RunScore, Stat
from roundtable.evaluation.stats import METRICS, compare, findings, summarise


def build(
    source: str,
    configs: Sequence[str],
    repeats: int,
    runs: list[RunScore],
    baselines: list[BaselineScore],
    skipped: Sequence[str] = (),
) -> EvalReport:
    """The report of these runs: each configuration summed up, the second compared with the
    first, and what the baselines show."""
    summaries = [summarise(c, runs, baselines) for c in configs]
    return EvalReport(
        source=source,
        configs=list(configs),
        repeats=repeats,
        runs=runs,
        baselines=baselines,
        summaries=summaries,
        comparison=compare(summaries[0], summaries[1]) if len(summaries) > 1 else [],
        findings=[line for s in summaries for line in findings(s)],
        skipped=list(skipped),
    )


def write(report: EvalReport, out: Path) -> list[Path]:
    """Write the three files into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "report.json": report.model_dump_json(indent=2) + "\n",
        "report.md": markdown(report),
        "chart.svg": chart(report.summaries),
    }
    written = []
    for name, text in files.items():
        path = out / name
        partial = out / f".{name}.partial"
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
        written.append(path)
    return written


def markdown(report: EvalReport) -> str:
    """The report for people: summary, accuracy, findings, comparison, runs, baselines."""
    lines = [
        "# roundtable eval",
        "",
        f"- source: `{report.source}`",
        f"- configurations: {', '.join(report.configs)}",
        f"- repeats: {report.repeats}",
        f"- runs: {len(report.runs)}",
        "",
        "![configurations compared](chart.svg)",
        "",
        "## Summary",
        "",
        "Mean over runs, ± the spread across repeats (n/a with one repeat).",
        "",
        "| metric | " + " | ".join(report.configs) + " |",
        "|---|" + "---|" * len(report.configs),
    ]
    for name in METRICS:
        cells = [_stat(s.metrics[name]) for s in report.summaries]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += _accuracy(report) + _findings(report) + _comparison(report)
    lines += _runs(report) + _baselines(report) + _skipped(report)
    return "\n".join(lines).rstrip() + "\n"


def _num(value: float | None) -> str:
    """Three significant figures; whole numbers from 1,000 up written out ("1,375")."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _stat(stat: Stat) -> str:
    if stat.mean is None:
        return "n/a"
    return _num(stat.mean) + (f" ± {_num(stat.spread)}" if stat.spread is not None else "")


def _accuracy(report: EvalReport) -> list[str]:
    if not any(s.accuracy for s in report.summaries):
        return []
    lines = ["", "## Accuracy", "", "Questions with a reference answer, share answered right.", ""]
    lines += ["| configuration | debate | single agent | majority vote |", "|---|---|---|---|"]
    for s in report.summaries:
        cells = [_stat(s.accuracy[k]) if k in s.accuracy else "n/a" for k in _KINDS]
        lines.append(f"| {s.config} | " + " | ".join(cells) + " |")
    return lines


_KINDS = ("debate", "single", "majority")


def _findings(report: EvalReport) -> list[str]:
    if not report.findings:
        return []
    return ["", "## Findings", "", *(f"- {line}" for line in report.findings)]


def _comparison(report: EvalReport) -> list[str]:
    if not report.comparison:
        return []
    a, b = report.configs[0], report.configs[1]
    lines = ["", f"## Comparison: {b} against {a}", ""]
    lines += [f"| metric | {a} | {b} | difference | spread | larger than the spread |"]
    lines.append("|---|---|---|---|---|---|")
    for d in report.comparison:
        verdict = {True: "yes", False: "no", None: "n/a"}[d.exceeds]
        lines.append(
            f"| {d.metric} | {_num(d.a)} | {_num(d.b)} | {_num(d.diff)} | {_num(d.spread)} "
            f"| {verdict} |"
        )
    return lines


def _runs(report: EvalReport) -> list[str]:
    lines = ["", "## Runs", ""]
    lines += [
        "| configuration | question | # | stop | turns | revisions (with a point) | copied "
        "| distinctness | reasons naming the pick | correct | rubric |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.runs:
        q = r.quality
        correct = "n/a" if r.correct is None else ("yes" if r.correct else "no")
        rubric = (
            f"{r.rubric.coverage}/{r.rubric.evidence}/{r.rubric.disagreement}/{r.rubric.clarity}"
            if r.rubric is not None
            else "n/a"
        )
        lines.append(
            f"| {r.config} | {r.question} | {r.repeat} | {r.stop or 'none'} | {q.turns} "
            f"| {q.revisions} ({q.revisions_with_point}) | {q.copied_turns} "
            f"| {_num(q.distinctness)} | {_num(q.reasons_naming_pick)} | {correct} | {rubric} |"
        )
    return lines


def _baselines(report: EvalReport) -> list[str]:
    if not report.baselines:
        return []
    lines = ["", "## Baselines", ""]
    lines += ["| configuration | question | # | single agent | majority vote | tokens |"]
    lines.append("|---|---|---|---|---|---|")
    for b in report.baselines:
        lines.append(
            f"| {b.config} | {b.question} | {b.repeat} | {'right' if b.single_correct else 'wrong'}"
            f" | {'right' if b.majority_correct else 'wrong'} ({len(b.votes)} votes) | {b.tokens} |"
        )
    return lines


def _skipped(report: EvalReport) -> list[str]:
    if not report.skipped:
        return []
    return ["", "## Skipped", "", *(f"- {line}" for line in report.skipped)]
