"""The judge: an endpoint that scores an answer on a rubric, through structured output.

The judge is any endpoint of the settings (``--judge NAME``), asked for a ``Rubric`` (coverage,
evidence, disagreement handling, clarity, 1-5 each, with reasons) the way the manager is asked
for a pick: a JSON schema (a grammar on the embedded model, the negotiated form on a server),
read and checked, retried once. A judge that gives nothing usable is recorded, not fatal.
"""

from __future__ import annotations

from autogen_core.models import LLMMessage, SystemMessage, UserMessage
from pydantic import ValidationError

from roundtable.conversations import Settings
from roundtable.conversations.structured import Refused, ask
from roundtable.evaluation.models import client_for
from roundtable.evaluation.records import Rubric

ATTEMPTS = 2
JUDGE_MAX_TOKENS = 300
TIMEOUT_S = 120.0
RUBRIC = (
    "You grade an answer to a question. Score each from 1 (poor) to 5 (excellent): coverage "
    "(does it answer all of the question), evidence (facts, figures or sources behind its "
    "claims), disagreement (are the debate's disagreements stated and weighed), clarity. "
    "Reply with JSON only: coverage, evidence, disagreement, clarity, and reasons (one or two "
    "sentences)."
)


def _read(text: str) -> Rubric:
    try:
        return Rubric.model_validate_json(text)
    except ValidationError as exc:
        raise Refused(f"not a rubric: {exc.errors()[0]['msg']}") from exc


async def judge(
    settings: Settings, endpoint: str, question: str, answer: str, debate: str
) -> tuple[Rubric | None, str | None]:
    """The rubric of ``answer`` (with the debate that led to it), or why there is none."""
    client = client_for(settings, endpoint, "judge", max_tokens=JUDGE_MAX_TOKENS, temperature=0.0)
    prompt: list[LLMMessage] = [
        SystemMessage(content=RUBRIC),
        UserMessage(
            content=f"Question: {question}\n\nDebate:\n{debate}\n\nAnswer: {answer}",
            source="human",
        ),
    ]
    got = await ask(
        client,
        lambda _refused: prompt,
        schema=Rubric,
        parse=_read,
        attempts=ATTEMPTS,
        limit=lambda: TIMEOUT_S,
        extra={"max_tokens": JUDGE_MAX_TOKENS, "temperature": 0.0},
    )
    if got.value is not None:
        return got.value, None
    return None, "; ".join(r.reason or "timed out" for r in got.refusals)[:500]
