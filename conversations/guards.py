"""Protocol guards: a reply is checked before the debate commits it.

A debate of small models drifts into agreement: the verdict-giver accepts the first draft, a
role repeats the turn before it, a REVISE says nothing. The guards sit between an agent and
its model client (``GuardedReplies``), so the agent, and through it the team, only ever sees
a reply that passed; what a guard did is a ``GuardEvent`` in the transcript.

The rules (``check``), for one speaker:

- ``early_accept``: the verdict-giver accepts before it has asked for
  ``Guards.min_revisions`` revisions in this run, while the budget is not nearly spent;
- ``no_point``: its REVISE names no concrete point (``quality.pointed``);
- ``format``: its reply carries no verdict at all;
- ``copy``: any reply that mostly repeats an earlier turn, its own instructions or the memory
  notes in its prompt (``overlap`` containment above ``Guards.copy_threshold``, the measure
  the quality report uses): a small model given notes last tends to recite them, header and
  all, as its reply.

A broken rule is asked for once more, with a short nudge at the prompt's tail and a warmer
sampling; where the model takes a grammar, a revision still owed is constrained to
``REVISE: <point>`` from the first try. A reply without a verdict the second time is committed
as a REVISE (``rewritten``); any other rule broken twice is not committed (``rejected``), and
the turn fails like any model fault (``GuardRejected``).

Owns the rules and the retry; does not own the debate's state (``GuardView`` is a snapshot of
it) or the transcript (events go to ``on_event``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    RequestUsage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from roundtable.agents import REVISE_GRAMMAR, Guards, parse_verdict
from roundtable.agents.usage import add_usage
from roundtable.agents.wrapped import WrappedClient
from roundtable.common.errors import ModelError
from roundtable.conversations.overlap import contained, ngrams, words
from roundtable.conversations.quality import Grams, pointed
from roundtable.transcripts.events import GuardAction, GuardRule

NUDGE_TOKENS = 48
"""Held back from a retry's ``max_tokens`` for the nudge added to its prompt, so the retried
prompt fits the window the first one was pruned to."""
RETRY_WARMTH = 0.3
"""Added to the temperature of a retry: the same sampling tends to give the same reply."""
RETRY_MARK = "\n↻ "
"""Streamed between a refused reply and its retry, so a live reader sees a second try."""


class GuardRejected(ModelError):
    """A reply broke a protocol rule twice: it is not committed."""


@dataclass(frozen=True)
class GuardView:
    """What the rules look at for the reply under way: a snapshot of the debate."""

    speaker: str
    instructions: str
    gives_verdict: bool
    said: Grams
    """The word trigrams of every committed turn so far, the question included (kept
    growing by the debate's state, never rebuilt per reply)."""
    revisions: int
    """REVISE verdicts committed in this run."""
    nearly_spent: bool
    guards: Guards = field(default_factory=Guards)
    others: frozenset[str] = frozenset()
    """The other roles of the debate (their replies are hidden in an independent turn)."""
    spoke: bool = False
    """Whether this role has already replied in this run."""
    notes: str = ""
    """The memory block in the speaker's prompt, as text (``recall.notes_said``)."""
    objection: str | None = None
    """The latest revision point the answer has not taken up yet (``open_objection``): the
    verdict-giver is asked to judge it, not only the latest reply."""

    @property
    def independent(self) -> bool:
        """Whether this reply is an independent first view (``independent_first_round``)."""
        return self.guards.independent_first_round and not self.gives_verdict and not self.spoke

    @property
    def owes_revision(self) -> bool:
        """Whether the verdict-giver must still ask for a revision before it may accept."""
        return (
            self.gives_verdict
            and self.revisions < self.guards.min_revisions
            and not self.nearly_spent
        )


@dataclass(frozen=True)
class Problem:
    """A broken rule: what to record and what to tell the model on its second try."""

    rule: GuardRule
    detail: str
    nudge: str


def check(text: str, view: GuardView) -> Problem | None:
    """The first rule ``text`` breaks as ``view.speaker``'s reply, or None."""
    grams = ngrams(text)
    # What the reply repeats, found without copying the run's whole set.
    known = (grams & view.said) | (grams & ngrams(view.instructions))
    if view.gives_verdict:
        # A point taken from the notes is a point (a critic correcting a draft by a document).
        problem = _verdict_problem(text, view, known)
        if problem is not None:
            return problem
    share = contained(grams, known | (grams & ngrams(view.notes)))
    if share > view.guards.copy_threshold:
        return Problem(
            "copy",
            f"{share:.0%} of the reply repeats earlier turns, its instructions or its notes",
            "Your reply repeated what was already said. Add one point about the question that "
            "nobody has made yet, in your own words.",
        )
    return None


def _verdict_problem(text: str, view: GuardView, known: Grams) -> Problem | None:
    verdict = parse_verdict(text)
    if verdict is None:
        return Problem(
            "format",
            "the reply carries no verdict (ACCEPT: or REVISE:)",
            "Start your reply with ACCEPT: or REVISE: and then give your reason.",
        )
    if verdict == "ACCEPT" and view.owes_revision:
        owed = view.guards.min_revisions
        return Problem(
            "early_accept",
            f"accepted after {view.revisions} of the {owed} revision(s) the team requires",
            "Do not accept yet. Reply with REVISE: and the one most important thing the "
            "answer must improve.",
        )
    if verdict == "REVISE" and not pointed(text, known, view.guards.copy_threshold):
        return Problem(
            "no_point",
            "the REVISE names no concrete point",
            "Reply with REVISE: and name one concrete point to change, in a short sentence.",
        )
    return None


OBJECTION_CHARS = 120
"""An objection quoted to the verdict-giver is cut to this (with the fixed words, within
``NUDGE_TOKENS``)."""
TAKEN_UP = 0.5
"""The share of an objection's words a later answer must use to count as taking it up."""


def open_objection(point: str, answers: Sequence[str]) -> str | None:
    """``point`` (a REVISE's text after its colon) if no later answer takes it up, cut to
    ``OBJECTION_CHARS``; None once one uses at least ``TAKEN_UP`` of its longer words."""
    wanted = {w for w in words(point) if len(w) > 3}
    if not wanted:
        return None
    for answer in answers:
        if len(wanted & set(words(answer))) >= TAKEN_UP * len(wanted):
            return None
    text = " ".join(point.split())
    return text if len(text) <= OBJECTION_CHARS else text[: OBJECTION_CHARS - 1] + "…"


def own_view(messages: Sequence[LLMMessage], others: frozenset[str]) -> list[LLMMessage]:
    """The prompt without the other roles' replies: the instructions and the person's words."""
    return [m for m in messages if not (isinstance(m, UserMessage) and m.source in others)]


def rewrite(text: str, problem: Problem) -> str | None:
    """The reply committed in place of ``text`` after a second failure, or None to reject it.

    Only a missing verdict is repaired: a critique without a verdict is still a request to
    revise, while an early or pointless verdict or a copy would be a turn the debate
    pretends happened."""
    if problem.rule == "format" and text.strip():
        return f"REVISE: {text.strip()}"
    return None


@dataclass(frozen=True)
class _Call:
    """The arguments a reply's tries share (everything but the prompt and the extras)."""

    tools: Sequence[Tool | ToolSchema]
    tool_choice: Tool | Literal["auto", "required", "none"]
    json_output: bool | type[BaseModel] | None
    cancellation_token: CancellationToken | None

    def stream(
        self,
        client: ChatCompletionClient,
        messages: Sequence[LLMMessage],
        extra: Mapping[str, Any],
    ) -> AsyncGenerator[str | CreateResult, None]:
        return client.create_stream(
            messages,
            tools=self.tools,
            tool_choice=self.tool_choice,
            json_output=self.json_output,
            extra_create_args=extra,
            cancellation_token=self.cancellation_token,
        )


class GuardedReplies(WrappedClient):
    """A role's model client whose plain replies pass the protocol guards.

    ``view`` is called once per reply for a fresh snapshot; ``on_event`` receives each step a
    guard took (rule, action, detail). Structured calls (a JSON schema) pass through, and a
    tool call is not a reply: only text is checked."""

    def __init__(
        self,
        inner: ChatCompletionClient,
        *,
        view: Callable[[], GuardView],
        on_event: Callable[[GuardRule, GuardAction, str], None],
        max_tokens: int,
        temperature: float,
    ) -> None:
        super().__init__(inner)
        self.last_finish: str | None = None
        """Why the last reply ended (``length``: at its token cap, mid-thought)."""
        self._view = view
        self._on_event = on_event
        self._max_tokens = max_tokens
        self._temperature = temperature

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        result: CreateResult | None = None
        stream = self.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        async for item in stream:
            if isinstance(item, CreateResult):
                result = item
        if result is None:
            raise ModelError("the model gave no result")
        return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        view = self._view()
        call = _Call(tools, tool_choice, json_output, cancellation_token)
        if not view.guards.enabled or json_output:
            async for item in call.stream(self.inner, messages, extra_create_args):
                if isinstance(item, CreateResult):
                    self.last_finish = item.finish_reason
                yield item
            return
        extra = dict(extra_create_args)
        if view.owes_revision and not tools:
            extra["grammar"] = REVISE_GRAMMAR
        if view.independent:
            messages = own_view(messages, view.others)
        if view.gives_verdict and view.objection:
            ask = f"Check whether the answer now settles this objection: {view.objection}"
            messages = [*messages, UserMessage(content=ask, source="roundtable")]
            extra = self._retry_args(extra, warmer=False)
        prompt = list(messages)
        spent = RequestUsage(prompt_tokens=0, completion_tokens=0)
        for attempt in (1, 2):
            result: CreateResult | None = None
            async for item in call.stream(self.inner, prompt, extra):
                if isinstance(item, CreateResult):
                    result = item
                else:
                    yield item
            if result is None:
                raise ModelError("the model gave no result")
            spent = add_usage(spent, result.usage)
            self.last_finish = result.finish_reason
            text = result.content if isinstance(result.content, str) else ""
            problem = check(text, view) if text.strip() else None
            if problem is None:  # passed, a tool call, or empty (the debate handles those)
                yield result.model_copy(update={"usage": spent})
                return
            if attempt == 1:
                self._on_event(problem.rule, "retried", problem.detail)
                yield RETRY_MARK
                prompt = [*messages, UserMessage(content=problem.nudge, source="roundtable")]
                extra = self._retry_args(extra)
                continue
            repaired = rewrite(text, problem)
            if repaired is not None:
                self._on_event(problem.rule, "rewritten", problem.detail)
                yield result.model_copy(update={"usage": spent, "content": repaired})
                return
            self._on_event(problem.rule, "rejected", problem.detail)
            raise GuardRejected(f"{view.speaker}'s reply not committed: {problem.detail}")

    def _retry_args(self, extra: Mapping[str, Any], *, warmer: bool = True) -> dict[str, Any]:
        """Room for a line added to the prompt within the window; warmer sampling for a
        retry."""
        cap = int(extra.get("max_tokens") or self._max_tokens)
        args = {**extra, "max_tokens": max(16, cap - NUDGE_TOKENS)}
        if warmer:
            warm = float(extra.get("temperature", self._temperature)) + RETRY_WARMTH
            args["temperature"] = min(1.5, warm)
        return args
