"""Reading documents: every format on a real small file, and every refusal in one line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from roundtable.memory import DocumentError, read_document
from tests.support.docfiles import make_docx, make_html, make_pdf


def test_a_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", [["Trams cost (a lot).", "Line two."], ["Page two."]])

    document = read_document(pdf)

    assert document.kind == "pdf" and document.pages == 2
    assert [(p.page, p.text.split()) for p in document.parts] == [
        (1, ["Trams", "cost", "(a", "lot).", "Line", "two."]),
        (2, ["Page", "two."]),
    ]
    assert document.source == str(pdf.resolve()) and len(document.sha256) == 64


def test_a_docx_keeps_its_headings_and_order(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "a.docx", [(1, "Costs"), (0, "Trams are dear."), (2, "Buses")])

    (part,) = read_document(path).parts

    assert part.page is None
    assert [line for line in part.text.split("\n") if line] == [
        "# Costs",
        "Trams are dear.",
        "## Buses",
    ]


def test_html_shows_its_visible_text_only(tmp_path: Path) -> None:
    path = make_html(tmp_path / "a.html", "T", [(2, "Costs"), (0, "Trams & buses.")])

    assert read_document(path).parts[0].text == "## Costs\n\nTrams & buses."


@pytest.mark.parametrize("name", ["notes.md", "notes.txt"])
def test_text_and_markdown_are_read_as_utf8(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes("\ufeff# Café\r\nline\r\n".encode())

    assert read_document(path).parts[0].text == "# Café\nline\n"


def _encrypted(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "locked.pdf", [["secret plans"]], password="pw")


def _scanned(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "scan.pdf", [[], []])


def _corrupt_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)))
    return path


def _corrupt_docx(tmp_path: Path) -> Path:
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", "<not really")
    return path


def _unsupported(tmp_path: Path) -> Path:
    path = tmp_path / "tool.exe"
    path.write_bytes(b"MZ")
    return path


def _too_big(tmp_path: Path) -> Path:
    path = tmp_path / "big.txt"
    path.write_text("word " * 500)
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.md"
    path.write_text("\n  \n")
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_encrypted, "the PDF is encrypted (password-protected)"),
        (_scanned, "the PDF has no text layer (a scanned PDF? run OCR on it first)"),
        (_corrupt_pdf, "corrupt PDF"),
        (_corrupt_docx, "corrupt DOCX"),
        (_unsupported, "unsupported type .exe"),
        (_too_big, "over the size limit of 2000 bytes"),
        (_empty, "no text in it"),
    ],
)
def test_a_bad_file_is_refused_in_one_line_naming_it(tmp_path: Path, make, says: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)

    with pytest.raises(DocumentError) as caught:
        read_document(path, max_bytes=2000)

    message = str(caught.value)
    assert message.startswith(f"document {path}: ") and says in message
    assert "\n" not in message
