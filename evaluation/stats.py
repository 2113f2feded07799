"""Sums of an evaluation: each run's metrics, their mean and spread, comparisons, findings.

Owns what each metric means for a run (``metrics``), how runs aggregate (the mean over all
runs; the spread is the standard deviation of the per-repeat means, so it measures how much
a whole evaluation moves when it is run again), and when a difference counts: when it is
larger than the larger of the two spreads.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence

from roundtable.evaluation.records import BaselineScore, Difference, RunScore, Stat, Summary

METRICS = (
    "turns",
    "revisions",
    "pointed_revision",
    "copied_turns",
    "rejected_copies",
    "distinctness",
    "reasons_naming_pick",
    "model_picks",
    "fallback_picks",
    "citations",
    "invalid_citations",
    "accepted",
    "tokens",
    "seconds",
    "cost_usd",
    "rubric",
)
"""Every metric of a run, in the order the report shows them."""


def metrics(run: RunScore) -> dict[str, float | None]:
    """A run's metrics: counts, shares (0-1), or 0/1 flags; None when not measured."""
    q = run.quality
    picks = sum(q.methods.values())
    rubric = run.rubric
    return {
        "turns": q.turns,
        "revisions": q.revisions,
        "pointed_revision": float(q.revisions_with_point > 0),
        "copied_turns": q.copied_turns,
        "rejected_copies": q.rejected_copies,
        "distinctness": q.distinctness,
        "reasons_naming_pick": q.reasons_naming_pick,
        "model_picks": q.methods.get("model", 0) / picks if picks else None,
        "fallback_picks": q.methods.get("fallback", 0) / picks if picks else None,
        "citations": q.citations,
        "invalid_citations": q.invalid_citations,
        "accepted": float(run.stop == "accepted"),
        "tokens": q.usage.total,
        "seconds": q.seconds,
        "cost_usd": q.cost_usd,
        "rubric": (
            (rubric.coverage + rubric.evidence + rubric.disagreement + rubric.clarity) / 4
            if rubric is not None
            else None
        ),
    }


def stat(values: Sequence[tuple[int, float | None]]) -> Stat:
    """Mean of the measured values; spread across repeats (``(repeat, value)`` pairs)."""
    known = [(r, v) for r, v in values if v is not None]
    if not known:
        return Stat(mean=None, n=0)
    by_repeat: dict[int, list[float]] = defaultdict(list)
    for repeat, value in known:
        by_repeat[repeat].append(value)
    means = [statistics.fmean(vs) for vs in by_repeat.values()]
    spread = round(statistics.stdev(means), 4) if len(means) > 1 else None
    return Stat(mean=round(statistics.fmean(v for _, v in known), 4), spread=spread, n=len(known))


def summarise(config: str, runs: Sequence[RunScore], baselines: Sequence[BaselineScore]) -> Summary:
    """One configuration's runs and baselines, aggregated."""
    mine = [r for r in runs if r.config == config]
    table = [(r.repeat, metrics(r)) for r in mine]
    summed = {name: stat([(rep, m[name]) for rep, m in table]) for name in METRICS}
    accuracy: dict[str, Stat] = {}
    checked = [r for r in mine if r.correct is not None]
    if checked:
        accuracy["debate"] = stat([(r.repeat, float(bool(r.correct))) for r in checked])
    base = [b for b in baselines if b.config == config]
    if base:
        accuracy["single"] = stat([(b.repeat, float(b.single_correct)) for b in base])
        accuracy["majority"] = stat([(b.repeat, float(b.majority_correct)) for b in base])
    return Summary(config=config, runs=len(mine), metrics=summed, accuracy=accuracy)


def compare(a: Summary, b: Summary) -> list[Difference]:
    """``b`` against ``a``, metric by metric (accuracies included)."""
    pairs = [(n, a.metrics[n], b.metrics[n]) for n in METRICS]
    pairs += [
        (f"accuracy_{k}", a.accuracy[k], b.accuracy[k]) for k in a.accuracy if k in b.accuracy
    ]
    return [_difference(name, x, y) for name, x, y in pairs]


def _difference(name: str, x: Stat, y: Stat) -> Difference:
    diff = round(y.mean - x.mean, 4) if x.mean is not None and y.mean is not None else None
    spreads = [s for s in (x.spread, y.spread) if s is not None]
    spread = max(spreads) if spreads else None
    exceeds = abs(diff) > spread if diff is not None and spread is not None else None
    return Difference(metric=name, a=x.mean, b=y.mean, diff=diff, spread=spread, exceeds=exceeds)


def findings(summary: Summary) -> list[str]:
    """What a reader must not miss: the debate failing to beat a baseline, said plainly."""
    said: list[str] = []
    debate = summary.accuracy.get("debate")
    if debate is None or debate.mean is None:
        return said
    labels: dict[str, Callable[[float], str]] = {
        "single": lambda m: f"a single agent alone ({m:.0%})",
        "majority": lambda m: f"a majority vote over independent answers ({m:.0%})",
    }
    for key, label in labels.items():
        other = summary.accuracy.get(key)
        if other is None or other.mean is None:
            continue
        verb = "beats" if debate.mean > other.mean else "does not beat"
        said.append(f"{summary.config}: the debate ({debate.mean:.0%}) {verb} {label(other.mean)}.")
    return said
