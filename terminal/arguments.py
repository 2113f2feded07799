"""Argument types the ``roundtable`` commands share (argparse ``type=`` callables).

Owns how a flag's text becomes a value, with argparse's one-line refusal when it cannot;
which flags a command has is that command's module's.
"""

from __future__ import annotations

import argparse

__all__ = ["positive"]


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


# argparse names the type in its refusal of a non-number ("invalid _positive value: 'x'"):
# the name it had when it was private to ``cli``, kept so the message stays the same.
positive.__name__ = "_positive"
