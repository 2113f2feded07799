"""Checking an answer against a reference: normalised match of a number or a short phrase.

A numeric reference ("42") matches an answer whose last number is 42 (1,000 and 1000.0 read as
1000): a reply that shows its working ends with its result. A phrase reference ("Paris")
matches an answer that contains it as whole words, case and punctuation aside. A majority
vote over several answers picks the most common last number, or for a phrase the answer that
shares most words with the others (its medoid). Owns these rules only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from roundtable.conversations.overlap import words

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def number(text: str) -> str | None:
    """``text`` as one canonical number ("1,000.0" -> "1000"), or None when it is not one."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    value = float(match.group().replace(",", ""))
    return str(int(value)) if value.is_integer() else repr(value)


def last_number(text: str) -> str | None:
    """The last number written in ``text``, canonical; None when there is none."""
    found = _NUMBER.findall(text)
    return number(found[-1]) if found else None


def matches(answer: str | None, reference: str) -> bool:
    """Whether ``answer`` gives ``reference`` (see the module's rules)."""
    if not answer:
        return False
    expected = number(reference)
    if expected is not None:
        return last_number(answer) == expected
    phrase, said = words(reference), words(answer)
    size = len(phrase)
    return size > 0 and any(said[i : i + size] == phrase for i in range(len(said) - size + 1))


def vote(answers: Sequence[str], reference: str) -> str | None:
    """The majority's answer among ``answers`` (ties: the earliest); None for none."""
    if not answers:
        return None
    if number(reference) is not None:
        counted = Counter(n for a in answers if (n := last_number(a)) is not None)
        if not counted:
            return answers[0]
        best = max(counted.values())
        return next(a for a in answers if counted.get(last_number(a) or "", 0) == best)
    bags = [set(words(a)) for a in answers]

    def agreement(i: int) -> float:
        return sum(len(bags[i] & other) for j, other in enumerate(bags) if j != i) / max(
            1, len(bags[i])
        )

    return answers[max(range(len(answers)), key=lambda i: (agreement(i), -i))]
