"""Small real documents made on the spot: PDFs (pypdf), DOCX (python-docx) and HTML.

Tests and the retrieval set build their files with these, so no binary is checked in and each
file is a genuine output of the library that writes the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

import docx
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def _pdf_string(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(path: Path, pages: Sequence[Sequence[str]], *, password: str | None = None) -> Path:
    """A PDF whose page i shows the lines ``pages[i]`` in Helvetica (an empty page: no text)."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        ops = ["BT /F1 10 Tf 14 TL 50 740 Td"]
        ops += [f"({_pdf_string(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1") if lines else b"")
        page[NameObject("/Contents")] = writer._add_object(stream)
    if password is not None:
        writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    with path.open("wb") as f:
        writer.write(f)
    return path


def make_docx(path: Path, blocks: Sequence[tuple[int, str]]) -> Path:
    """A DOCX of (heading level, text) blocks: level 0 is a body paragraph."""
    document = docx.Document()
    for level, text in blocks:
        if level:
            document.add_heading(text, level=level)
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path


def make_html(path: Path, title: str, blocks: Sequence[tuple[int, str]]) -> Path:
    """An HTML page of (heading level, text) blocks, with a script and style that must not show."""
    body = "".join(
        f"<h{level}>{escape(text)}</h{level}>" if level else f"<p>{escape(text)}</p>"
        for level, text in blocks
    )
    path.write_text(
        f"<!doctype html><html><head><title>{escape(title)}</title>"
        "<style>p { color: red }</style></head>"
        f"<body><script>var hidden = 'NOT TEXT';</script>{body}</body></html>",
        encoding="utf-8",
    )
    return path
