"""Reading a user's text and Markdown files and cutting them into passages.

Owns: the strict reading of a document (known suffix, size limit, UTF-8 only) and the split into
passages of at most ``max_tokens`` at heading and paragraph boundaries, each with its source path,
ordinal position and starting line. Does not own: embedding or storing passages (store.py) nor
exact token counts (the caller passes a counter; the default is a conservative estimate).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from roundtable.common.errors import ConfigError

TokenCounter = Callable[[str], int]

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
# all-MiniLM-L6-v2 reads at most 256 word pieces ([CLS] and [SEP] included): passages stay
# below that so no text is silently cut off before it is embedded.
DEFAULT_MAX_TOKENS = 200

_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


class Passage(BaseModel):
    """A piece of a document: ``position`` is its ordinal in the file, ``line`` its first line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    position: int
    line: int
    text: str


def estimate_tokens(text: str) -> int:
    """An over-estimate of word pieces: one per word or punctuation mark, one more per 8 letters.

    Additive over whitespace-separated parts, as the splitter's incremental counts require.
    """
    return sum(1 + len(token) // 8 for token in _TOKEN.findall(text))


def read_document(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The file's text, or a ConfigError naming the file if it is not a readable UTF-8 text file."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        allowed = ", ".join(sorted(TEXT_SUFFIXES))
        raise ConfigError(f"document {path}: not a text or Markdown file (expected {allowed})")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ConfigError(f"document {path}: cannot read it ({e.strerror})") from e
    if not path.is_file():
        raise ConfigError(f"document {path}: not a regular file")
    if size > max_bytes:
        raise ConfigError(f"document {path}: {size} bytes, over the limit of {max_bytes} bytes")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"document {path}: not UTF-8 (invalid byte at offset {e.start})") from e
    if "\x00" in text:
        raise ConfigError(f"document {path}: contains NUL bytes, not a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_passages(
    paths: Iterable[Path],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Passage]:
    """Every passage of every file; reads and checks all files before returning any passage."""
    passages: list[Passage] = []
    seen: set[str] = set()
    for path in paths:
        source = str(path.resolve())
        if source in seen:
            continue
        seen.add(source)
        text = read_document(path, max_bytes=max_bytes)
        passages.extend(
            split_passages(text, source=source, max_tokens=max_tokens, count_tokens=count_tokens)
        )
    return passages


def split_passages(
    text: str,
    *,
    source: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Passage]:
    """Cut ``text`` into passages of at most ``max_tokens``.

    A Markdown heading always starts a new passage; paragraphs are packed together until the
    next one would not fit; a paragraph too long on its own is cut at sentence ends, and a
    sentence too long on its own at word boundaries. Fenced code stays one block.
    """
    if max_tokens < 8:
        raise ValueError(f"max_tokens must be at least 8, got {max_tokens}")
    pieces: list[tuple[int, str, bool]] = []
    heading_tokens = 0  # of the heading just before this block, if it was one
    for line, block, is_heading in _blocks(text):
        tokens = count_tokens(block)
        if tokens <= max_tokens:
            pieces.append((line, block, is_heading))
        else:
            # Leave room for the heading so it shares a passage with the text under it.
            budget = max(max_tokens - heading_tokens, max_tokens // 2)
            pieces.extend((line, part, False) for part in _cut(block, budget, count_tokens))
        heading_tokens = tokens if is_heading else 0

    passages: list[Passage] = []
    current: list[str] = []
    current_line = 0
    current_tokens = 0

    def flush() -> None:
        nonlocal current, current_tokens
        if current:
            passages.append(
                Passage(
                    source=source,
                    position=len(passages),
                    line=current_line,
                    text="\n\n".join(current),
                )
            )
        current, current_tokens = [], 0

    for line, piece, is_heading in pieces:
        tokens = count_tokens(piece)
        if is_heading or current_tokens + tokens > max_tokens:
            flush()
        if not current:
            current_line = line
        current.append(piece)
        current_tokens += tokens
    flush()
    return passages


def _blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line, text, is heading) of each paragraph, heading or fenced code block."""
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
            if not lines:
                start = number
            lines.append(raw)
    close()
    return blocks


def _cut(block: str, max_tokens: int, count_tokens: TokenCounter) -> list[str]:
    """Pack the sentences of an oversized block into parts of at most ``max_tokens``."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(block):
        if count_tokens(sentence) <= max_tokens:
            units.append(sentence)
        else:
            units.extend(_cut_words(sentence, max_tokens, count_tokens))
    parts: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current} {unit}" if current else unit
        if current and count_tokens(candidate) > max_tokens:
            parts.append(current)
            current = unit
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


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
