"""The terminal front end: the ``roundtable`` command and the renderer that prints a run.

Depends on ``conversations`` (to run), ``transcripts`` (to list and replay) and ``memory``;
nothing depends on it.
"""

from roundtable.terminal.render import TerminalRenderer

__all__ = ["TerminalRenderer"]
