"""The cost ledger: calls, tokens, seconds and (when priced) dollars per speaker.

Kept while a debate runs and saved with its stop event, so the terminal and the browser
can show what each agent, and the manager's own picks, cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roundtable.agents.endpoints import Price
from roundtable.transcripts.events import LedgerRow, Usage

MANAGER = "manager"

__all__ = ["MANAGER", "Ledger", "Price"]


@dataclass
class _Line:
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0


@dataclass
class Ledger:
    """Running totals per speaker."""

    prices: dict[str, Price] = field(default_factory=dict)
    _lines: dict[str, _Line] = field(default_factory=dict)

    def charge(self, speaker: str, usage: Usage, seconds: float, calls: int = 1) -> None:
        line = self._lines.setdefault(speaker, _Line())
        line.calls += calls
        line.usage = line.usage + usage
        line.seconds += seconds

    def rows(self) -> list[LedgerRow]:
        """One row per speaker that spent anything, in the order they first spent."""
        rows = []
        for speaker, line in self._lines.items():
            price = self.prices.get(speaker)
            usage = line.usage
            rows.append(
                LedgerRow(
                    speaker=speaker,
                    calls=line.calls,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    cached_tokens=usage.cached_tokens,
                    seconds=round(line.seconds, 3),
                    cost_usd=_cost(price, usage),
                )
            )
        return rows


def _cost(price: Price | None, usage: Usage) -> float | None:
    if price is None:
        return None
    return round(price.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens), 6)
