"""The terminal front end: the ``roundtable`` command and the renderer that prints a run.

``cli`` is the command's top level; each group of subcommands has its own module (``ask``,
``transcripts``, ``teams``, ``users``, ``memory``), with the exit codes in ``exits``.

Depends on ``conversations`` (to run), ``transcripts`` (to list and replay) and ``memory``;
nothing depends on it.
"""

from roundtable.terminal.render import TerminalRenderer

__all__ = ["TerminalRenderer"]
