"""``roundtable eval`` on the real embedded model: two shipped questions, every metric there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from roundtable.evaluation.stats import METRICS
from roundtable.terminal.cli import main

pytestmark = [pytest.mark.model, pytest.mark.timeout(1800)]

SHIPPED = Path(__file__).parents[1] / "evaluation" / "questions.yaml"
PICKED = ("car-free-centre", "capital-france")


def test_eval_of_two_shipped_questions_on_the_embedded_model_reports_every_metric(
    tmp_path: Path,
) -> None:
    shipped = yaml.safe_load(SHIPPED.read_text())["questions"]
    questions = tmp_path / "two.yaml"
    questions.write_text(yaml.safe_dump({"questions": [q for q in shipped if q["id"] in PICKED]}))
    settings = tmp_path / "small.toml"
    settings.write_text("[budget]\nmax_turns = 4\n[memory]\nenabled = false\n")
    out = tmp_path / "out"
    args = ["eval", str(questions), "--config", str(settings), "--out", str(out)]
    assert main([*args, "--judge", "default"]) == 0

    report = json.loads((out / "report.json").read_text())
    assert [r["question"] for r in report["runs"]] == list(PICKED)
    metrics = report["summaries"][0]["metrics"]
    assert list(metrics) == list(METRICS)
    for name in ("turns", "revisions", "distinctness", "accepted", "tokens", "seconds"):
        assert metrics[name]["mean"] is not None, name
    assert metrics["turns"]["mean"] >= 1
    for run in report["runs"]:  # the judge scored it, or said why it could not
        assert (run["rubric"] is None) != (run["judge_error"] is None)
    assert set(report["summaries"][0]["accuracy"]) == {"debate", "single", "majority"}
    assert len(report["baselines"]) == 1 and report["baselines"][0]["votes"]
    text = (out / "report.md").read_text()
    for section in ("## Summary", "## Accuracy", "## Runs", "## Baselines"):
        assert section in text
    assert (out / "chart.svg").read_text().startswith("<svg")
    assert sorted(p.name for p in (out / "transcripts").iterdir()) == [
        f"small-{q}-1.jsonl" for q in sorted(PICKED)
    ]
