"""Structured calls of the manager: a constrained reply, read and checked, with bounded retries.

Owns ``ask``, the one loop behind the manager's pick (``selection``), the panel's plan and the
reviewer's comparison (``panel_plan``, ``panel_fan_in``): each attempt is one model call with a
JSON schema (a grammar on the embedded model) under a time limit; the reply is read by the
caller's ``parse``, which raises ``Refused`` saying what is wrong. The result is the parsed
value, or every refusal in order, with the usage of all attempts summed either way.

Does not own: the prompts, schemas and parsers (``selection``, ``plan``, ``aggregate``), nor
what is recorded of a refusal (the caller commits its events).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from autogen_core.models import ChatCompletionClient, LLMMessage
from pydantic import BaseModel

from roundtable.common.errors import Family
from roundtable.conversations.control import describe_failure
from roundtable.transcripts.events import Usage

T = TypeVar("T")


class Refused(Exception):
    """A reply that cannot be used; the message says why (raised by a ``parse``)."""


@dataclass(frozen=True)
class Refusal:
    """One attempt that gave nothing usable."""

    family: Family
    reason: str
    """Why, in one line: what was wrong with the reply, or how the call failed."""
    timed_out: bool = False
    error: BaseException | None = None
    """The exception the call raised, when it raised one."""
    text: str | None = None
    """The reply, when there was one."""


@dataclass
class Answer(Generic[T]):
    """What the attempts came to: ``value`` when one was accepted, else only refusals."""

    value: T | None = None
    refusals: list[Refusal] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    """Attempts made (each one model call)."""
    seconds: float = 0.0


async def ask(
    client: ChatCompletionClient,
    prompt: Callable[[Refusal | None], Sequence[LLMMessage]],
    *,
    schema: type[BaseModel],
    parse: Callable[[str], T],
    attempts: int,
    limit: Callable[[], float | None],
    extra: Mapping[str, Any],
    explain: Callable[[BaseException], tuple[Family, str]] = describe_failure,
    give_up_on_timeout: bool = False,
) -> Answer[T]:
    """Up to ``attempts`` calls of ``client``, each given ``prompt(last refusal)`` and
    ``limit()`` seconds (None: no limit; 0 or less: no time left, no more attempts).

    A call that raises is a refusal described by ``explain``; one that runs out of time is a
    refusal too, and with ``give_up_on_timeout`` the last one.
    """
    answer: Answer[T] = Answer()
    began = time.monotonic()
    last: Refusal | None = None
    for _ in range(attempts):
        left = limit()
        if left is not None and left <= 0:
            break
        answer.calls += 1
        try:
            async with asyncio.timeout(left) as deadline:
                result = await client.create(
                    prompt(last), json_output=schema, extra_create_args=dict(extra)
                )
        except Exception as exc:  # the model failing is model misbehaviour: recorded
            if isinstance(exc, TimeoutError) and deadline.expired():
                last = Refusal("model", "", timed_out=True, error=exc)
            else:
                last = Refusal(*explain(exc), error=exc)
        else:
            answer.usage = answer.usage + Usage.of(result.usage)
            text = result.content if isinstance(result.content, str) else ""
            try:
                answer.value = parse(text)
            except Refused as exc:
                last = Refusal("model", str(exc), text=text)
            else:
                break
        answer.refusals.append(last)
        if last.timed_out and give_up_on_timeout:
            break
    answer.seconds = time.monotonic() - began
    return answer
