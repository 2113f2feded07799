"""Cutting a document's text into passages sized for the embedder, each about one thing.

Owns: the split of text into passages of at most ``max_tokens`` at heading, paragraph, list item
and sentence boundaries, with a one-sentence overlap inside a long paragraph, each passage
recording its source, page, heading and first line; and the metadata a stored passage carries.
Does not own: reading files (documents.py), embedding or storing passages (store.py), nor exact
token counts (the caller passes a counter; the default is a conservative estimate).

Why small passages: all-MiniLM-L6-v2 was trained on 128 word pieces, and a passage mixing
unrelated sentences matches none of them well (issue 11 measured 0.12-0.23 against a direct
question). A paragraph stays whole when it fits; a long one becomes windows of sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from roundtable.memory.documents import DEFAULT_MAX_BYTES, Document, read_document

TokenCounter = Callable[[str], int]

# all-MiniLM-L6-v2 was trained on 128 word pieces: passages (with their heading) stay well below.
DEFAULT_MAX_TOKENS = 80

_HEADING = re.compile(r"^ {0,3}(#{1,6})(\s|$)")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_ITEM = re.compile(r"^ {0,3}([-*+]|\d{1,3}[.)])\s")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


class Passage(BaseModel):
    """A piece of a document.

    ``position`` is its ordinal in the document, ``line`` its first line (in its page for a
    PDF), ``page`` its PDF page, ``heading`` the nearest heading above it, ``overlap`` how many
    leading characters of ``text`` repeat the end of the passage before it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    position: int
    line: int
    text: str
    page: int | None = None
    heading: str | None = None
    overlap: int = 0

    def embedding_text(self) -> str:
        """What is embedded and searched: the text under its heading, so context is kept."""
        if self.heading and not self.text.lstrip().startswith("#"):
            return f"{self.heading}\n{self.text}"
        return self.text


class PassageMetadata(BaseModel):
    """What the store keeps beside a passage; extra keys (an ``owner``) are allowed."""

    model_config = ConfigDict(extra="allow")

    kind: str = "document"
    source: str
    position: int
    line: int
    sha256: str
    page: int | None = None
    heading: str | None = None

    def as_chroma(self) -> dict[str, str | int | float | bool]:
        """Chroma's metadata: scalars only, None left out."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def estimate_tokens(text: str) -> int:
    """An over-estimate of word pieces: one per word or punctuation mark, one more per 8 letters.

    Additive over whitespace-separated parts, as the splitter's incremental counts require.
    """
    return sum(1 + len(token) // 8 for token in _TOKEN.findall(text))


def document_passages(
    document: Document,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Passage]:
    """Every passage of a converted document, numbered across its pages."""
    passages: list[Passage] = []
    for part in document.parts:
        for p in split_passages(
            part.text,
            source=document.source,
            max_tokens=max_tokens,
            count_tokens=count_tokens,
            page=part.page,
        ):
            passages.append(p.model_copy(update={"position": len(passages)}))
    return passages


def load_documents(
    paths: Iterable[Path],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[tuple[Document, list[Passage]]]:
    """Each distinct file with its passages; reads and checks all files before returning any."""
    loaded: list[tuple[Document, list[Passage]]] = []
    seen: set[str] = set()
    for path in paths:
        if str(path.resolve()) in seen:
            continue
        seen.add(str(path.resolve()))
        document = read_document(path, max_bytes=max_bytes)
        passages = document_passages(document, max_tokens=max_tokens, count_tokens=count_tokens)
        loaded.append((document, passages))
    return loaded


def split_passages(
    text: str,
    *,
    source: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter = estimate_tokens,
    page: int | None = None,
) -> list[Passage]:
    """Cut ``text`` into passages of at most ``max_tokens``.

    A heading starts a new passage and is its first line; each paragraph or list item is its
    own passage when it fits; a longer one is cut into windows of whole sentences, each but
    the first starting with the previous window's last sentence when that fits (the overlap);
    a sentence too long on its own is cut at word boundaries. Fenced code stays one block.
    """
    if max_tokens < 8:
        raise ValueError(f"max_tokens must be at least 8, got {max_tokens}")
    passages: list[Passage] = []
    heading: str | None = None
    pending: tuple[int, str] | None = None  # a heading waiting for the text under it

    def emit(line: int, body: str, overlap: int = 0) -> None:
        passages.append(
            Passage(
                source=source,
                position=len(passages),
                line=line,
                text=body,
                page=page,
                heading=heading,
                overlap=overlap,
            )
        )

    for line, block, is_heading in _blocks(text):
        if is_heading:
            if pending is not None:
                emit(*pending)
            heading = block.lstrip("# ").strip()[:200] or None
            pending = (line, block)
            if count_tokens(block) > max_tokens:  # a heading too long to share a passage
                pending = None
                for lines_in, overlap, window in _windows(block, max_tokens, count_tokens):
                    emit(line + lines_in, window, overlap)
            continue
        prefix = pending[1] if pending is not None else None
        budget = max_tokens - (count_tokens(prefix) if prefix else 0)
        if budget < max_tokens // 2:  # a long heading: let it stand alone
            assert pending is not None
            emit(*pending)
            prefix, budget = None, max_tokens
        first_line = pending[0] if pending is not None and prefix is not None else line
        pending = None
        windows = _windows(block, max_tokens, count_tokens)
        for index, (lines_in, overlap, window) in enumerate(windows):
            if index == 0 and prefix is not None:
                if count_tokens(window) <= budget:
                    emit(first_line, f"{prefix}\n\n{window}")
                    continue
                emit(first_line, prefix)
            emit(line + lines_in, window, overlap)
    if pending is not None:
        emit(*pending)
    return passages


def _windows(block: str, max_tokens: int, count_tokens: TokenCounter) -> list[tuple[int, int, str]]:
    """(lines into the block, overlap in characters, text) of the windows of one block."""
    if count_tokens(block) <= max_tokens:
        return [(0, 0, block)]
    units: list[tuple[int, str]] = []  # (line into the block, sentence or part of one)
    start = 0
    for match in [*_SENTENCE_END.finditer(block), None]:
        end = match.start() if match else len(block)
        sentence, line = block[start:end], block.count("\n", 0, start)
        if count_tokens(sentence) <= max_tokens:
            units.append((line, sentence))
        else:
            units.extend((line, part) for part in _cut_words(sentence, max_tokens, count_tokens))
        start = match.end() if match else start
    windows: list[tuple[int, int, str]] = []
    current: list[tuple[int, str]] = []
    carried = 0  # how many units at the start of ``current`` repeat the previous window
    for unit in units:
        candidate = " ".join(text for _, text in [*current, unit])
        if len(current) > carried and count_tokens(candidate) > max_tokens:
            windows.append(_window(current, carried))
            last = current[-1][1]
            overlap_fits = count_tokens(f"{last} {unit[1]}") <= max_tokens
            small = count_tokens(last) <= max_tokens // 3
            current, carried = ([current[-1]], 1) if overlap_fits and small else ([], 0)
        current.append(unit)
    if len(current) > carried:
        windows.append(_window(current, carried))
    return windows


def _window(units: list[tuple[int, str]], carried: int) -> tuple[int, int, str]:
    texts = [text for _, text in units]
    overlap = len(" ".join(texts[:carried])) + 1 if carried else 0
    return units[carried][0], overlap, " ".join(texts)


def _blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line, text, is heading) of each paragraph, list item, heading or code block."""
    blocks: list[tuple[int, str, bool]] = []
    lines: list[str] = []
    start = 0
    in_fence = False

    def close() -> None:
        nonlocal lines
        body = "\n".join(lines).strip()
        if body:
            blocks.append((start, body, False))
        lines = []

    for number, raw in enumerate(text.split("\n"), start=1):
        if in_fence:
            lines.append(raw)
            if _FENCE.match(raw):
                in_fence = False
                close()
            continue
        if _FENCE.match(raw):
            close()
            start, in_fence = number, True
            lines.append(raw)
        elif _HEADING.match(raw):
            close()
            blocks.append((number, raw.strip(), True))
        elif not raw.strip():
            close()
        else:
            if _ITEM.match(raw):
                close()
            if not lines:
                start = number
            lines.append(raw)
    close()
    return blocks


def _cut_words(sentence: str, max_tokens: int, count_tokens: TokenCounter) -> list[str]:
    """Pack words into parts of at most ``max_tokens``; counted word by word (counts add up)."""
    parts: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for word in sentence.split():
        tokens = count_tokens(word)
        if current and current_tokens + tokens > max_tokens:
            parts.append(" ".join(current))
            current, current_tokens = [], 0
        if tokens > max_tokens:
            # One "word" too long on its own (a hash, base64): cut it into parts of
            # max_tokens characters, which always fit since a word piece is at least one.
            parts.extend(word[i : i + max_tokens] for i in range(0, len(word), max_tokens))
            continue
        current.append(word)
        current_tokens += tokens
    if current:
        parts.append(" ".join(current))
    return parts


def describe_added(added: Sequence[tuple[Document, Sequence[Passage]]]) -> str:
    """What was added, in one line: files, PDF pages and passages."""
    passages = sum(len(p) for _, p in added)
    pages = sum(d.pages or 0 for d, _ in added)
    page_note = f", {pages} PDF page(s)" if pages else ""
    return f"Added {passages} passage(s) from {len(added)} file(s){page_note}."
