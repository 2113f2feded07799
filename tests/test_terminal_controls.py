"""The terminal gets no control sequence from transcript text: a replayed file or a model's
reply could otherwise retitle the window, write the clipboard (OSC 52), clear the screen or
overwrite a line already shown (a carriage return)."""

from __future__ import annotations

import io
import re

import pytest

from roundtable.terminal.render import TerminalRenderer, visible
from tests.test_markdown_export import golden

HOSTILE = "ok\x1b]52;c;ZXZpbA==\x07 \x1b]0;owned\x07\x1b[2J\x9b2J\x00 fake line\rREAL"


@pytest.mark.parametrize("colour", [False, True])
def test_hostile_text_reaches_the_terminal_as_printable_text_only(colour: bool) -> None:
    out = io.StringIO()
    render = TerminalRenderer(out, colour=colour)
    transcript = golden(writer=HOSTILE)
    render(transcript.header)
    for event in transcript.events:
        render(event)
    shown = out.getvalue()
    codes = re.findall(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown)
    assert all(re.fullmatch(r"\x1b\[[0-9;]*m", c) for c in codes)  # colours, nothing else
    assert bool(codes) is colour
    assert "fake line\nREAL" in shown and "\r" not in shown


def test_only_colour_codes_and_line_breaks_are_kept() -> None:
    assert visible("a\x1b[31mb\x1b[0m\tc\r\nd", colour=True) == "a\x1b[31mb\x1b[0m\tc\nd"
    assert visible("a\x1b[31mb\x1b[0m", colour=False) == "ab"
    assert visible("\x1b]0;t\x07x\x1b[5Ay", colour=True) == "]0;tx[5Ay"
