"""A speaker's recall of shared memory, just before it speaks: one step of a debate's turn.

Owns: ``remind``, which searches memory for the speaker (its query built by ``recall``), puts
the numbered block in that speaker's prompt tail, keeps the notes its citations are checked
against, and queues the ``memory`` event the turn commits.

Does not own: the search and ranking (``recall``, ``memory``), the turn loop (``debate``), the
state it writes into (``debate_record``).
"""

from __future__ import annotations

import time

from roundtable.conversations.debate_cast import Seat
from roundtable.conversations.debate_record import DebateState
from roundtable.conversations.recall import Recall, as_event_hits, memory_block
from roundtable.conversations.recorder import Recorder
from roundtable.transcripts.events import MemoryEvent


async def remind(
    recall: Recall | None,
    question: str,
    speaker: str,
    seat: Seat,
    state: DebateState,
    record: Recorder,
) -> None:
    """Recall shared memory for the speaker: one block in its prompt, one memory event."""
    if recall is None or not recall.settings.enabled:
        return
    committed = state.committed()
    pruned = state.pruned[speaker]
    in_prompt = [m.seq for m in committed if m.seq not in pruned]
    began = time.monotonic()
    query, hits = await recall.recall(
        question,
        committed,
        in_prompt,
        any_pruned=bool(pruned),
        task=seat.agent.description,
    )
    record.log(
        "memory_query",
        agent=speaker,
        hits=len(hits),
        top_score=round(hits[0].score, 3) if hits else None,
        ms=round((time.monotonic() - began) * 1000, 1),
    )
    seat.context.set_memory_block(memory_block(hits))
    notes = as_event_hits(hits)
    state.prompt_notes[speaker] = notes
    state.memory_events.append(
        MemoryEvent(**record.stamp(turn=record.turn + 1), speaker=speaker, query=query, hits=notes)
    )
