"""``roundtable eval``: question sets, runs on the scripted model, baselines, comparisons,
scoring saved transcripts, and the report's whole output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from roundtable.conversations.quality import report as measure
from roundtable.evaluation import load_questions, matches, vote
from roundtable.evaluation.stats import stat
from roundtable.terminal.cli import main
from roundtable.transcripts import load

HERE = Path(__file__).parent
SCRIPTS = HERE / "eval"
GOLDEN = HERE / "golden"
UPDATE = False
"""Set to True once to rewrite the golden reports after a deliberate change; read the diff."""


def settings_file(folder: Path, script: str) -> Path:
    """A settings file that runs every role on a scripted model, memory off."""
    path = folder / f"{Path(script).stem}.toml"
    path.write_text(
        f'[endpoints.default]\nkind = "scripted"\nscript = "{SCRIPTS / script}"\n'
        "[memory]\nenabled = false\n"
    )
    return path


def masked(value: Any) -> Any:
    """``value`` with every measured time replaced: the one thing a scripted run varies in."""
    if isinstance(value, dict):
        return {k: "<seconds>" if k == "seconds" else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def masked_md(text: str) -> str:
    return re.sub(r"^\| seconds \|.*$", "| seconds | <seconds> |", text, flags=re.MULTILINE)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


@pytest.fixture
def evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped-format question set run twice on the scripted team, with a judge."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(SCRIPTS / "questions.yaml", "questions.yaml")
    settings_file(tmp_path, "debate.yaml")
    code = main(
        [
            "eval",
            "questions.yaml",
            "--config",
            "debate.toml",
            "--repeat",
            "2",
            "--out",
            "out",
            "--judge",
            "default",
        ]
    )
    assert code == 0
    return tmp_path / "out"


def test_eval_on_the_scripted_model_writes_a_deterministic_report(evaluated: Path) -> None:
    report = json.loads((evaluated / "report.json").read_text())
    check_golden("eval-report.json", json.dumps(masked(report), indent=2) + "\n")
    check_golden("eval-report.md", masked_md((evaluated / "report.md").read_text()))
    names = sorted(p.name for p in (evaluated / "transcripts").iterdir())
    assert names == [f"debate-{q}-{r}.jsonl" for q in ("cars", "sum", "week") for r in (1, 2)]


def test_the_chart_is_a_self_contained_svg_with_every_measured_metric(evaluated: Path) -> None:
    svg = (evaluated / "chart.svg").read_text()
    root = ElementTree.fromstring(svg)
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for metric in ("turns", "revisions", "distinctness", "rubric", "accuracy (majority)"):
        assert metric in labels
    assert "cost_usd" not in labels  # never measured: no bar
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_baselines_accuracy_on_a_scripted_set(evaluated: Path) -> None:
    report = json.loads((evaluated / "report.json").read_text())
    accuracy = {k: v["mean"] for k, v in report["summaries"][0]["accuracy"].items()}
    assert accuracy == {"debate": 0.5, "single": 0.5, "majority": 0.5}
    week = next(b for b in report["baselines"] if b["question"] == "week")
    assert (week["single"], week["majority_correct"]) == ("The answer is 42.", False)
    assert report["findings"] == [
        "debate: the debate (50%) does not beat a single agent alone (50%).",
        "debate: the debate (50%) does not beat a majority vote over independent answers (50%).",
    ]


def test_two_configurations_are_compared_against_their_spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(SCRIPTS / "questions.yaml", "questions.yaml")
    settings_file(tmp_path, "debate.yaml")
    settings_file(tmp_path, "hasty.yaml")
    args = ["eval", "questions.yaml", "--config", "debate.toml", "--config", "hasty.toml"]
    assert main([*args, "--out", "out"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = {d["metric"]: d for d in report["comparison"]}
    assert rows["revisions"] == {
        "metric": "revisions",
        "a": 1.0,
        "b": 0.0,
        "diff": -1.0,
        "spread": None,
        "exceeds": None,
    }
    assert rows["accuracy_debate"]["diff"] == 0.0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Comparison: hasty against debate" in text
    assert "| revisions | 1 | 0 | -1 | n/a | n/a |" in text


def test_the_spread_is_across_repeats_and_decides_what_counts() -> None:
    measured = stat([(1, 1.0), (1, 3.0), (2, 2.0), (2, 6.0)])
    assert (measured.mean, measured.spread, measured.n) == (3.0, 1.4142, 4)
    assert stat([(1, None), (2, None)]).mean is None
    from roundtable.evaluation.records import Stat
    from roundtable.evaluation.stats import _difference

    small = _difference("x", Stat(mean=1.0, spread=0.5, n=2), Stat(mean=1.4, spread=0.1, n=2))
    large = _difference("x", Stat(mean=1.0, spread=0.5, n=2), Stat(mean=2.0, spread=0.1, n=2))
    assert (small.exceeds, large.exceeds, large.spread) == (False, True, 0.5)


@pytest.mark.parametrize(
    ("answer", "reference", "right"),
    [
        ("17 + 25 = 42", "42", True),
        ("It is 1,000.", "1000", True),
        ("42 is 17 + 25", "42", False),  # the last number written is the answer
        ("The capital is Paris.", "paris", True),
        ("Parisian cafes", "Paris", False),
        ("The largest is Jupiter, then Saturn.", "Jupiter", True),
        (None, "7", False),
    ],
)
def test_answers_match_by_last_number_or_whole_phrase(
    answer: str | None, reference: str, right: bool
) -> None:
    assert matches(answer, reference) is right


def test_a_majority_vote_takes_the_commonest_number_or_the_most_shared_answer() -> None:
    assert vote(["It is 41.", "I get 42.", "Surely 42", "43"], "42") == "I get 42."
    assert vote(["Lyon", "Paris, France", "It is Paris in France"], "Paris") == "Paris, France"
    assert vote([], "42") is None


def test_eval_transcripts_scores_saved_ones_and_skips_bad_files(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    shutil.copy(GOLDEN / "debate-v3.jsonl", folder / "golden.jsonl")
    shutil.copy(evaluated / "transcripts" / "debate-sum-1.jsonl", folder)
    (folder / "broken.jsonl").write_text('{"kind": "header"}\n')
    args = ["eval", "questions.yaml", "--transcripts", str(folder), "--out", "scored"]
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("roundtable: skipped broken.jsonl: ")
    report = json.loads((tmp_path / "scored" / "report.json").read_text())
    runs = {r["transcript"]: r for r in report["runs"]}
    assert sorted(runs) == ["debate-sum-1.jsonl", "golden.jsonl"]
    golden = load(GOLDEN / "debate-v3.jsonl")
    measured = measure(golden.header, golden.events, ledger=golden.events[-1].ledger)  # type: ignore[union-attr]
    assert runs["golden.jsonl"]["quality"] == measured.model_dump(mode="json")
    assert (runs["debate-sum-1.jsonl"]["question"], runs["debate-sum-1.jsonl"]["correct"]) == (
        "sum",
        True,
    )
    recorded = json.loads((evaluated / "report.json").read_text())["runs"]
    again = next(r for r in recorded if r["transcript"] == "debate-sum-1.jsonl")
    assert masked(runs["debate-sum-1.jsonl"]["quality"]) == masked(again["quality"])
    assert report["skipped"] == [err[0].removeprefix("roundtable: skipped ")]


BAD = [
    ("questions: [", ":1: not valid YAML"),
    ("- just a list\n", ":1: a question set is a mapping"),
    ("questions:\n  - id: a\n    question: Why?\n  - id: b\n", ":4: field 'questions.1.question'"),
    (
        "questions:\n  - id: a\n    question: Why?\n    answer: 4\n",
        ":4: field 'questions.0.answer'",
    ),
    ("questions:\n  - id: Bad Id\n    question: Why?\n", ":2: field 'questions.0.id'"),
    ("questions:\n  - {id: a, question: x}\n  - {id: a, question: y}\n", "'questions'"),
    ("questions: []\n", ":1: field 'questions'"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_question_file_is_one_line_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(text)
    assert main(["eval", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"roundtable: error: {path}")
    assert expected in err[0]
    assert not (tmp_path / "out").exists()


def test_an_oversized_or_binary_question_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(Exception, match="over the size limit of 1048576 bytes"):
        load_questions(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"questions: \xff\n")
    with pytest.raises(Exception, match="not UTF-8 text"):
        load_questions(binary)


def test_the_shipped_question_set_has_twenty_varied_questions() -> None:
    shipped = load_questions(Path(__file__).parents[1] / "evaluation" / "questions.yaml")
    tags = {t for q in shipped.questions for t in q.tags}
    checked = [q for q in shipped.questions if q.reference is not None]
    assert len(shipped.questions) == 20
    assert {"policy", "science", "everyday", "arithmetic", "fact"} <= tags
    assert len(checked) >= 5
