"""The speakers of one debate: each role's pruned context, guarded client and agent.

Owns: building a ``Seat`` for a participant. Its context prunes to the role's window and hands
pruned turns to shared memory; its client is bounded by the run's deadlines and has every
reply checked by the protocol guards before the team sees it; its agent is the AutoGen agent
the group chat calls.

Does not own: the turn loop (``conversations.debate``), what the guards judge
(``conversations.guards``), the state they judge against (``conversations.debate_record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autogen_agentchat.agents import AssistantAgent

from roundtable.agents import Guards, build_agent
from roundtable.common.tokens import TokenCounter
from roundtable.conversations.context import BudgetedContext, SharedLayout
from roundtable.conversations.control import RunControl
from roundtable.conversations.debate_record import DebateState, guard_view
from roundtable.conversations.debate_state import remember_pruned
from roundtable.conversations.guards import GuardedReplies
from roundtable.conversations.margin import ESTIMATE_MARGIN, EXACT_MARGIN
from roundtable.conversations.participant import Participant
from roundtable.conversations.recall import Recall
from roundtable.conversations.recorder import Recorder
from roundtable.transcripts.events import GuardAction, GuardRule


@dataclass(frozen=True)
class Seat:
    """One role at the table: what its prompts keep, who answers for it, its agent."""

    context: BudgetedContext
    client: GuardedReplies
    agent: AssistantAgent


def take_seat(
    participant: Participant,
    *,
    peers: Sequence[Participant],
    state: DebateState,
    record: Recorder,
    recall: Recall | None,
    control: RunControl,
    counter: TokenCounter,
    guards: Guards,
) -> Seat:
    """The participant's seat in this debate (see the module docstring); ``peers`` are every
    participant, of which those on the same endpoint share its prompts' prefix."""
    card = participant.card
    shared = _shared_layout(participant, peers, recall) if participant.shared_first else None
    context = BudgetedContext(
        window=participant.window,
        reserve=card.model.max_tokens,
        system_prompt=card.instructions,
        counter=participant.counter or counter,
        margin=EXACT_MARGIN if participant.counter is not None else ESTIMATE_MARGIN,
        on_prune=lambda items: remember_pruned(state, record, recall, card.name, items),
        shared=shared,
    )

    def step(rule: GuardRule, action: GuardAction, detail: str) -> None:
        state.guard_steps.append((card.name, rule, action, detail))

    client = GuardedReplies(
        control.guard(participant.client),
        view=lambda: guard_view(state, card, guards),
        on_event=step,
        max_tokens=card.model.max_tokens,
        temperature=card.model.temperature,
    )
    agent = build_agent(
        card, client, model_context=context, instructions_in_context=shared is not None
    )
    return Seat(context, client, agent)


def _shared_layout(
    participant: Participant, peers: Sequence[Participant], recall: Recall | None
) -> SharedLayout:
    """The layout every caller on ``participant``'s endpoint shares (``SharedLayout``)."""
    same = [p for p in peers if p.endpoint == participant.endpoint]
    return SharedLayout(
        peers=tuple((p.card.instructions, p.card.model.max_tokens) for p in same),
        memory=recall is not None and recall.settings.enabled,
    )
