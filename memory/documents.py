"""Reading a user's document into text: PDF, DOCX, HTML, Markdown and plain text.

Owns: the one place the converter libraries (pypdf, python-docx) are imported, the checks every
file passes before any of it is used (known type, size limit, readable, not encrypted, has a text
layer), and the shape of a converted document: its pages (PDF) or one part, each Markdown-like
text whose ``#`` lines are headings. Does not own: cutting text into passages (passages.py) nor
storing them (store.py).

Every failure is a ConfigError whose one line names the file and what is wrong with it, raised
before anything of the file is returned: a caller that stores passages stores all or nothing.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from roundtable.common.bounded import read_bounded
from roundtable.common.errors import ConfigError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
MAX_PAGES = 2000
WORD = re.compile(r"\w")
"""A part with no letter or digit holds no text to find (a lone ``#``, a zero-width space)."""


class DocumentError(ConfigError):
    """A document that cannot be added: the message names the file and the reason."""


class Part(BaseModel):
    """A page of a PDF (``page`` from 1) or the whole text of another document (``page`` None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    page: int | None = None
    text: str


class Document(BaseModel):
    """A converted file: where it came from, its content hash, and its text by part."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    sha256: str
    kind: str
    parts: list[Part]

    @property
    def pages(self) -> int | None:
        """How many pages a PDF has; None for other documents."""
        return len(self.parts) if self.kind == "pdf" else None


def supported(path: Path) -> bool:
    """Whether ``path`` has a suffix this module reads."""
    return path.suffix.lower() in SUFFIXES


def read_document(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """The converted document, or a DocumentError naming the file and what is wrong."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        allowed = ", ".join(sorted(SUFFIXES))
        raise DocumentError(f"document {path}: unsupported type {suffix or '(none)'} ({allowed})")
    data = read_bounded(path, max_bytes, "document", error=DocumentError)
    converters: dict[str, tuple[str, Callable[[Path, bytes], list[Part]]]] = {
        ".pdf": ("pdf", _pdf),
        ".docx": ("docx", _docx),
        ".html": ("html", _html),
        ".htm": ("html", _html),
    }
    kind, convert = converters.get(suffix, ("text", _text))
    parts = [p for p in convert(path, data) if WORD.search(p.text)]
    if not parts:  # empty, or only markup, spaces, control or format characters
        raise DocumentError(f"document {path}: no text in it (an empty file?)")
    return Document(
        source=str(path.resolve()),
        sha256=hashlib.sha256(data).hexdigest(),
        kind=kind,
        parts=parts,
    )


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError(f"document {path}: not UTF-8 (invalid byte at {e.start})") from e
    if "\x00" in text:
        raise DocumentError(f"document {path}: contains NUL bytes, not a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text(path: Path, data: bytes) -> list[Part]:
    return [Part(text=_decode(path, data))]


def _pdf(path: Path, data: bytes) -> list[Part]:
    """Each page's text layer; refuses encrypted, corrupt and text-less (scanned) files."""
    import pypdf
    from pypdf.errors import PyPdfError

    if not data.startswith(b"%PDF"):
        raise DocumentError(f"document {path}: not a PDF file (corrupt or mislabelled)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"document {path}: the PDF is encrypted (password-protected)")
        if len(reader.pages) > MAX_PAGES:
            raise DocumentError(f"document {path}: over {MAX_PAGES} pages")
        parts = [
            Part(page=number, text=_tidy(page.extract_text() or ""))
            for number, page in enumerate(reader.pages, start=1)
        ]
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        raise DocumentError(f"document {path}: corrupt PDF ({type(e).__name__}: {e})") from e
    if not any(p.text.strip() for p in parts):
        raise DocumentError(
            f"document {path}: the PDF has no text layer (a scanned PDF? run OCR on it first)"
        )
    return parts


def _docx(path: Path, data: bytes) -> list[Part]:
    """Paragraphs and tables in order; ``Heading N`` and ``Title`` styles become ``#`` lines."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    lines.append(" | ".join(cell.text.strip() for cell in row.cells))
                lines.append("")
                continue
            text = block.text.strip()
            style = (block.style.name if block.style is not None else "") or ""
            level = _heading_level(style)
            if text and level:
                lines.extend(["", "#" * level + " " + text, ""])
            elif text:
                lines.extend([text, ""])
    except Exception as e:  # python-docx raises many kinds on a damaged package (zip, xml, key)
        raise DocumentError(f"document {path}: corrupt DOCX ({type(e).__name__}: {e})") from e
    return [Part(text="\n".join(lines))]


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return min(int(match.group(1)), 6) if match else 0


def _html(path: Path, data: bytes) -> list[Part]:
    parser = _HtmlText()
    try:
        parser.feed(_decode(path, data))
        parser.close()
    except AssertionError as e:  # HTMLParser's way of failing on some malformed markup
        raise DocumentError(f"document {path}: corrupt HTML ({e})") from e
    return [Part(text=parser.text())]


class _HtmlText(HTMLParser):
    """Visible text of an HTML page, with headings as ``#`` lines and blocks as paragraphs."""

    _SKIP = frozenset({"script", "style", "head", "template", "noscript", "svg"})
    _BLOCK = frozenset(
        {"p", "div", "section", "article", "br", "tr", "table", "ul", "ol", "blockquote", "pre"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self._out.append("\n- ")
        elif tag in self._BLOCK:
            self._out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self._out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._out.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = (line.strip() for line in "".join(self._out).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _tidy(text: str) -> str:
    """A PDF page's text with line ends normalised and no NUL bytes."""
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
