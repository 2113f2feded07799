"""A debate's budgets and the rules that end it.

``Budget`` is configuration; ``Tally`` is what a running debate has spent; ``stop_reason``
decides, between two turns, whether the debate ends and says why in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from roundtable.transcripts.events import StopCode


class Budget(BaseModel):
    """Limits for one debate; the first one reached ends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: int = Field(default=8, ge=1, le=1000)
    """Agent turns (the person's messages do not count)."""
    max_tokens: int = Field(default=50_000, ge=100)
    """Prompt and completion tokens, the manager's own calls included."""
    wall_clock_s: float = Field(default=900.0, gt=0)
    turn_deadline_s: float = Field(default=180.0, gt=0)
    """A reply still generating after this long is cut short."""
    max_consecutive_errors: int = Field(default=3, ge=1)


@dataclass
class Tally:
    """What a running debate has used so far."""

    agent_turns: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    consecutive_errors: int = 0


def stop_reason(
    budget: Budget, tally: Tally, *, accepted: str | None, user_stop: str | None
) -> tuple[StopCode, str] | None:
    """Whether to stop now, as (code, reason), or None to go on. Checked between turns.

    ``accepted`` says who accepted what, when the verdict-giver has accepted."""
    if user_stop is not None:
        return "user_stop", user_stop
    if accepted is not None:
        return "accepted", accepted
    if tally.consecutive_errors >= budget.max_consecutive_errors:
        return "error", f"{tally.consecutive_errors} turns in a row failed"
    if tally.agent_turns >= budget.max_turns:
        return "max_turns", f"reached the limit of {budget.max_turns} turns"
    if tally.tokens >= budget.max_tokens:
        return "token_budget", f"used {tally.tokens} of {budget.max_tokens} tokens"
    if tally.elapsed_s >= budget.wall_clock_s:
        return (
            "wall_clock",
            f"ran {tally.elapsed_s:.0f} s of the {budget.wall_clock_s:.0f} s allowed",
        )
    return None


def lateness(budget: Budget, limit: float) -> str:
    """Why a reply cut at ``limit`` seconds was late: the turn deadline or the wall clock."""
    if limit < budget.turn_deadline_s:
        return f"no complete reply before the wall clock of {budget.wall_clock_s:g} s ran out"
    return f"no complete reply within the turn deadline of {budget.turn_deadline_s:g} s"


WARN_AT = 0.8


def budget_warnings(budget: Budget, tally: Tally, already: set[str]) -> list[tuple[str, str]]:
    """Budgets that just crossed 80%, as (name, message); ``already`` remembers the warned."""
    used = {
        "turns": (
            tally.agent_turns / budget.max_turns,
            f"{tally.agent_turns} of {budget.max_turns} turns",
        ),
        "tokens": (
            tally.tokens / budget.max_tokens,
            f"{tally.tokens} of {budget.max_tokens} tokens",
        ),
        "time": (
            tally.elapsed_s / budget.wall_clock_s,
            f"{tally.elapsed_s:.0f} of {budget.wall_clock_s:.0f} seconds",
        ),
    }
    fresh: list[tuple[str, str]] = []
    for name, (ratio, words) in used.items():
        if WARN_AT <= ratio < 1.0 and name not in already:
            already.add(name)
            fresh.append((name, f"{round(ratio * 100)}% of the {name} budget used ({words})"))
    return fresh
