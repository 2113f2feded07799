"""The debate so far, as one plain record: ``DebateState``.

Owns: ``DebateState`` (the floor the rules look at, the tally the budgets look at, every
committed message in model-context order, what was pruned from whose prompt, the pending
selection and memory events, who accepted, a fatal error) and what the protocol guards judge a
reply under way against (``guard_view``), which is read from it.

Does not own: the steps that change it while committing their events (``debate_state``,
which re-exports this module's names so ``debate_state.DebateState`` still works), the turn
loop or AutoGen's team (``debate``), opening, continuing or forking a transcript
(``debate_open``), the transcript itself (``recorder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from roundtable.agents import Guards, RoleCard, Team
from roundtable.conversations.budget import Budget, Tally
from roundtable.conversations.context import PruneReport
from roundtable.conversations.guards import GuardView, open_objection
from roundtable.conversations.overlap import ngrams
from roundtable.conversations.quality import Grams
from roundtable.conversations.recall import notes_said
from roundtable.conversations.selection import Decision, Floor
from roundtable.transcripts.events import (
    GuardAction,
    GuardRule,
    MemoryEvent,
    MemoryHit,
    MessageEvent,
)


@dataclass
class DebateState:
    """Everything about a debate that changes turn by turn."""

    floor: Floor
    tally: Tally = field(default_factory=Tally)
    messages: list[MessageEvent | None] = field(default_factory=list)
    """Every committed message of the conversation, in order (restored ones included).

    Message ``i`` here is message ``i`` in every agent's model context, which is how pruning
    reports map back to transcript messages; an empty reply the agents saw is ``None``."""
    pruned: dict[str, set[int]] = field(default_factory=dict)
    """Seqs of messages pruned from each agent's prompt (they are recalled, not shown)."""
    prune_seen: dict[str, PruneReport | None] = field(default_factory=dict)
    decision: Decision | None = None
    """The manager's decision for the turn under way, until it is committed."""
    pick_seconds: float = 0.0
    memory_events: list[MemoryEvent] = field(default_factory=list)
    """Memory recalled for the turn under way, committed after its selection."""
    prompt_notes: dict[str, list[MemoryHit]] = field(default_factory=dict)
    """The numbered notes each speaker's prompt holds now: its citations are checked on them."""
    last_selected: str | None = None
    accepted: str | None = None
    """Who accepted what, once the verdict-giver has accepted: the run then stops."""
    fatal: str | None = None
    """Why the run cannot go on (a role's configuration is wrong)."""
    stopped: bool = False
    """The person pressed Stop: a reply or a pick that their stop cut off is the stop, not an
    error (the stop event records it); see ``record_failure``."""
    warned: set[str] = field(default_factory=set)
    opened: int = 0
    """Where this run's messages begin in ``messages`` (a continued run counts afresh)."""
    guard_steps: list[tuple[str, GuardRule, GuardAction, str]] = field(default_factory=list)
    """What the protocol guards did for the reply under way, committed before it."""
    _said: Grams = field(default_factory=set, repr=False)
    _said_upto: int = 0
    _committed: list[MessageEvent] = field(default_factory=list, repr=False)
    _committed_upto: int = 0
    _run: tuple[int, int] = (-1, 0)
    """Where this run's tallies begin and how far they have read (``opened``, then up to)."""
    _run_revisions: int = 0
    _run_speakers: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def new(cls, team: Team, cards: Sequence[RoleCard], budget: Budget) -> DebateState:
        """A debate of ``cards`` that has not started: the team's flags say who opens,
        who gives verdicts and who answers."""
        floor = Floor(
            roster=[card.name for card in cards],
            descriptions={card.name: card.description for card in cards},
            turns_left=budget.max_turns,
            opener=team.holder("opens"),
            reviewer=team.holder("gives_verdict"),
            answerer=team.holder("answers"),
            tasks={card.name: card.task or card.description for card in cards},
            fit_reasons=team.guards.enabled,
        )
        return cls(floor=floor, pruned={card.name: set() for card in cards})

    def committed(self) -> list[MessageEvent]:
        """Every committed message that is not an empty reply (a new list; ``messages`` only
        grows, so each message is looked at once)."""
        for message in self.messages[self._committed_upto :]:
            if message is not None:
                self._committed.append(message)
        self._committed_upto = len(self.messages)
        return list(self._committed)

    def said(self) -> Grams:
        """The word trigrams of every committed message; ``messages`` only grows, so each
        message is read once, when it is first asked for."""
        for message in self.messages[self._said_upto :]:
            if message is not None:
                self._said |= ngrams(message.content)
        self._said_upto = len(self.messages)
        return self._said

    def revisions(self) -> int:
        """REVISE verdicts committed in this run."""
        self._read_run()
        return self._run_revisions

    def spoke(self, speaker: str) -> bool:
        """Whether ``speaker`` has said anything in this run."""
        self._read_run()
        return speaker in self._run_speakers

    def _read_run(self) -> None:
        """This run's verdicts and speakers, each message read once (``messages`` only grows;
        counted afresh should ``opened`` move)."""
        start, upto = self._run
        if start != self.opened:
            start = upto = self.opened
            self._run_revisions, self._run_speakers = 0, set()
        for message in self.messages[upto:]:
            if message is not None:
                self._run_revisions += message.verdict == "REVISE"
                self._run_speakers.add(message.speaker)
        self._run = (start, len(self.messages))

    def new_turn(self) -> None:
        self.decision = None
        self.last_selected = None


def guard_view(state: DebateState, card: RoleCard, guards: Guards) -> GuardView:
    """What the protocol guards judge ``card``'s reply under way against."""
    return GuardView(
        speaker=card.name,
        instructions=card.instructions,
        gives_verdict=card.gives_verdict,
        said=state.said(),
        revisions=state.revisions(),
        nearly_spent=state.floor.nearly_spent,
        guards=guards,
        others=frozenset(state.floor.roster) - {card.name},
        spoke=state.spoke(card.name),
        notes=notes_said(state.prompt_notes.get(card.name, [])),
        objection=_objection(state) if card.gives_verdict else None,
    )


def _objection(state: DebateState) -> str | None:
    """The latest REVISE point of this run, if the answers after it have not taken it up."""
    messages = state.messages
    for index in range(len(messages) - 1, state.opened - 1, -1):  # from the latest back
        revise = messages[index]
        if revise is not None and revise.verdict == "REVISE":
            break
    else:
        return None
    _, _, point = revise.content.partition(":")
    after = messages[index + 1 :]
    later = [m.content for m in after if m is not None and m.speaker == state.floor.answerer]
    return open_objection(point, later)
