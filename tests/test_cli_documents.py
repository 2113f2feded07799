"""The ``memory`` commands with documents: add every format, list, remove, refuse empty files."""

from __future__ import annotations

from pathlib import Path

from tests.support.docfiles import make_docx, make_pdf
from tests.test_cli import assert_one_line_error, run


def test_memory_add_list_and_remove_documents(data_dir: Path, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "tram.pdf", [["Trams cost 30 million per km."], ["Buses less."]])
    note = make_docx(tmp_path / "note.docx", [(1, "Depots"), (0, "Depots need chargers.")])

    added = run("memory", "add", str(pdf), str(note))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "Added 3 passage(s) from 2 file(s), 2 PDF page(s)."

    listed = run("memory", "list")
    lines = listed.stdout.strip().splitlines()
    assert [(line.split()[0], line.split()[-1]) for line in lines] == [
        ("1", str(note)),  # sorted by path: note.docx before tram.pdf
        ("2", str(pdf)),
    ]

    removed = run("memory", "remove", str(pdf))
    assert removed.stdout.strip() == f"Removed 2 passage(s) of {pdf}."
    assert run("memory", "list").stdout.strip().splitlines() == [lines[0]]
    assert_one_line_error(run("memory", "remove", str(pdf)), 2, "no document", str(pdf))


def test_an_empty_file_is_an_error_not_zero_passages(data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("\n")

    assert_one_line_error(run("memory", "add", str(empty)), 2, str(empty), "no text in it")
    assert run("memory", "list").stdout.strip() == "No documents."
