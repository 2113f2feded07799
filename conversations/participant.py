"""Who takes part in a run, and the records every mode starts from.

Owns: ``Participant`` (a role's card, its model client and what we know of its endpoint), the
checks on a question, new conversation ids, and ``header_for``, the header every mode writes
first.

Does not own: running anything (``debate``, ``pipeline``, ``panel``), the role cards
(``agents``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from autogen_core.models import ChatCompletionClient

from roundtable.agents import RoleCard, Team
from roundtable.common.errors import ConfigError
from roundtable.common.owners import header_owner
from roundtable.common.tokens import TokenCounter
from roundtable.conversations.budget import Budget
from roundtable.conversations.ledger import MANAGER, Price
from roundtable.transcripts.events import Header, ParentRef, RoleSummary, now

MAX_QUESTION_CHARS = 20_000


@dataclass(frozen=True)
class Participant:
    """A role in this run: its card and the model client that speaks for it."""

    card: RoleCard
    client: ChatCompletionClient
    endpoint: str = "default"
    model: str = "SmolLM2-135M-Instruct"
    price: Price | None = None
    """What a call costs, when the endpoint's price is configured."""
    window: int = 4096
    """The endpoint's context window: every prompt to this role fits it."""
    counter: TokenCounter | None = None
    """The model's own token counter when known (exact pruning); else tiktoken and a margin."""
    shared_first: bool = False
    """Whether the endpoint's prompts are laid out shared-first (``prompt_layout``)."""


def new_conversation_id() -> str:
    """Sortable by time, unique enough for one person's data folder."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def check_question(question: str) -> str:
    """The question, stripped; an empty or oversized one is a clear ConfigError, and so is one
    with nothing visible in it (only NULs, control or format characters)."""
    text = question.strip()
    if not text:
        raise ConfigError("the question is empty: ask something")
    if not any(char.isprintable() and not char.isspace() for char in text):
        raise ConfigError(
            "the question has nothing visible in it (only control characters): ask something"
        )
    if len(text) > MAX_QUESTION_CHARS:
        raise ConfigError(
            f"the question is {len(text)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    return text


def prices_of(participants: Sequence[Participant], manager_price: Price | None) -> dict[str, Price]:
    """The ledger's prices: each priced role's, and the manager's when configured."""
    prices = {p.card.name: p.price for p in participants if p.price is not None}
    if manager_price is not None:
        prices[MANAGER] = manager_price
    return prices


def header_for(
    conversation_id: str,
    question: str,
    participants: Sequence[Participant],
    budget: Budget,
    context_window: int,
    *,
    team: Team | None = None,
    parent: ParentRef | None = None,
    owner: str | None = None,
) -> Header:
    """The header of a new transcript, the same in every mode; ``owner``: whose run it is
    (None: the local user)."""
    return Header(
        conversation_id=conversation_id,
        created_at=now(),
        question=question,
        roles=[
            RoleSummary(
                name=p.card.name,
                description=p.card.description,
                endpoint=p.endpoint,
                model=p.model,
                max_tokens=p.card.model.max_tokens,
            )
            for p in participants
        ],
        max_turns=budget.max_turns,
        context_window=context_window,
        parent=parent,
        team=team,
        owner=header_owner(owner),
    )
