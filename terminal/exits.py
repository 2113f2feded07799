"""How the ``roundtable`` command exits: one code for each way a run ends, and for each fault.

====  =========================================================================
0     answered: accepted (debate) or completed (pipeline, panel)
1     the run failed: stop code ``error`` or ``no_speaker`` (or a model fault)
2     a configuration mistake or bad input (a setting, a team file, a flag), or a data folder
      that is not a writable folder (a file, a read-only disk): ``ask``, ``list`` and ``ui``
3     an infrastructure fault (a model endpoint unreachable, a disk full)
4     a budget ran out: ``max_turns``, ``token_budget`` or ``wall_clock``
5     a partial answer: a panel answered with some branches missing
130   the person stopped it: Ctrl-C (``user_stop``), as the shell's SIGINT code
====  =========================================================================

Owns the codes and their ``--help`` text (``EPILOG``); which error gives which code is
``cli.main``'s, a run's code ``ask``'s.
"""

from __future__ import annotations

from roundtable.transcripts.events import StopCode

__all__ = [
    "ANSWERED",
    "BUDGET",
    "CONFIG",
    "EPILOG",
    "EXIT_CODES",
    "FAILED",
    "INFRA",
    "PARTIAL",
    "STOPPED",
]

ANSWERED, FAILED, CONFIG, INFRA, BUDGET, PARTIAL, STOPPED = 0, 1, 2, 3, 4, 5, 130
EXIT_CODES: dict[StopCode, int] = {
    "accepted": ANSWERED,
    "completed": ANSWERED,
    "error": FAILED,
    "no_speaker": FAILED,
    "max_turns": BUDGET,
    "token_budget": BUDGET,
    "wall_clock": BUDGET,
    "partial": PARTIAL,
    "user_stop": STOPPED,
}
"""The exit code of each way a run ends."""
EPILOG = """exit codes:
  0    answered (accepted, completed)
  1    the run failed (error, no_speaker)
  2    a configuration mistake or bad input, or a data folder that is not writable
  3    an infrastructure fault (a model endpoint unreachable, a disk full)
  4    a budget ran out (max_turns, token_budget, wall_clock)
  5    a partial answer (a panel with branches missing)
  130  stopped by the person (Ctrl-C, user_stop)
"""
