"""The manager's stated reason for a pick: it names the chosen role's task, never another role.

A small model's free-text reason often contradicts its own pick ("the writer should speak
next" while it picks the analyst), and the person reads that reason as the manager's. So a
model pick's reason is built here: the chosen role and its task first, then the model's own
words only when they name no other role of the roster. What was dropped is returned so that
the debate can record the rewrite (a ``reason`` guard event).

Owns how a role is recognised in a text (``mentions``), which the quality report uses too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REASON_CHARS = 240
"""The longest reason shown (the task and the model's words together)."""


def mentions(text: str, name: str) -> bool:
    """A role's name as a whole word; ``user_researcher`` also as "user researcher"."""
    spelled = r"[\s_-]+".join(re.escape(part) for part in re.split(r"[_-]", name))
    return re.search(rf"(?<![\w-]){spelled}(?![\w-])", text, re.IGNORECASE) is not None


def names_only(reason: str, chosen: str, roster: Sequence[str]) -> bool:
    """Whether ``reason`` names ``chosen`` and no other role of ``roster``."""
    named = {name for name in roster if mentions(reason, name)}
    return named == {chosen}


def fit_reason(chosen: str, task: str, said: str, roster: Sequence[str]) -> tuple[str, str | None]:
    """The reason to show for picking ``chosen``, and the model's words if they were dropped.

    ``said`` is kept after the task when it names no role but ``chosen``."""
    head = f"the {chosen} speaks next: {task.strip().rstrip('.')}"
    words = " ".join(said.split())
    others = [name for name in roster if name != chosen and mentions(words, name)]
    if others:
        return head[:REASON_CHARS], words
    if not words or words.lower() in head.lower():
        return head[:REASON_CHARS], None
    return f"{head} ({words})"[:REASON_CHARS], None
