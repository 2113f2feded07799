"""Tools a role card may grant, run for the role before it answers.

Owns: ``Toolbox``, the tools this run can offer, and the one real tool, ``search_memory``:
a search of the team's shared memory (the person's documents and, if enabled, past
conversations) with the sub-question as the query. Never this run's own turns: a stage has
them in its prompt already, and a panel's branch must not read its siblings' answers, or
the branches would stop being independent. No tool executes code.

Why the orchestrator runs the tool and the model does not call it: none of our model clients
offers function calling (the embedded model has none), so a card's tool runs before the
role's turn and its result enters the prompt as ONE quoted block of data, never as an
instruction. The hits are recorded as a ``memory`` event for the transcript.

Does not own: searching itself (``memory.MemoryStore``), which roles have which tools (the
role cards), when tools run (``stage``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from roundtable.agents import RoleCard
from roundtable.conversations.recall import Recall, memory_block
from roundtable.memory import Hit

SEARCH_MEMORY = "search_memory"


@dataclass(frozen=True)
class ToolResult:
    """What one tool gave a role: the query, the hits, and the block put in its prompt."""

    tool: str
    query: str
    hits: list[Hit]
    block: str | None


class Toolbox:
    """The tools a run can offer; a role gets those its card lists and the run has."""

    def __init__(self, recall: Recall | None = None) -> None:
        self._recall = recall if recall is not None and recall.settings.enabled else None

    def available(self, card: RoleCard) -> list[str]:
        """The card's tools this run can actually run (memory off: no ``search_memory``)."""
        return [t for t in card.tools if t == SEARCH_MEMORY and self._recall is not None]

    async def run_for(
        self, card: RoleCard, query: str, *, exclude_ids: Sequence[str] = ()
    ) -> list[ToolResult]:
        """Run every available tool of ``card`` with ``query``, in the card's order;
        ``exclude_ids``: memory ids of this run's messages (the archive holds them too)."""
        return [await self.search_memory(query, exclude_ids) for _ in self.available(card)]

    async def search_memory(self, query: str, exclude_ids: Sequence[str] = ()) -> ToolResult:
        """The top hits for ``query`` in documents (and past conversations, if enabled)."""
        recall = self._recall
        if recall is None:
            return ToolResult(SEARCH_MEMORY, query, [], None)
        settings = recall.settings
        hits = await recall.store.asearch(
            query,
            conversation_id=None,
            include_documents=settings.include_documents,
            include_past=settings.include_past,
            exclude_ids=exclude_ids,
            k=settings.k,
            min_score=settings.min_score,
            owner=recall.owner,
        )
        return ToolResult(SEARCH_MEMORY, query, hits, memory_block(hits))
