"""One factory: a role card and a model client become an AutoGen ``AssistantAgent``.

No subclass per role: everything that differs between roles is in the card.
"""

from __future__ import annotations

from autogen_agentchat.agents import AssistantAgent
from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import ChatCompletionClient

from roundtable.agents.cards import RoleCard


def build_agent(
    card: RoleCard,
    client: ChatCompletionClient,
    *,
    model_context: ChatCompletionContext | None = None,
    instructions_in_context: bool = False,
) -> AssistantAgent:
    """An agent that streams its replies, with the card's instructions as its system prompt;
    with ``instructions_in_context`` the model context places them (the shared-first layout
    puts them last) and the agent sends none of its own."""
    return AssistantAgent(
        name=card.name,
        description=card.description,
        model_client=client,
        system_message=None if instructions_in_context else card.instructions,
        model_client_stream=True,
        model_context=model_context,
    )
