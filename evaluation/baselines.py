"""The baselines a debate must beat on questions with a reference answer.

A *single agent*: the team's answerer (its endpoint, model and temperature) answers alone, in
one call. A *majority vote*: every role of the team answers alone, independently, and the
vote (``answers.vote``) picks the answer; the calls stop once the debate's token budget is
spent, so the vote never gets more tokens than the debate could. Both use one plain system
prompt, not the roles' instructions, which are written for a debate.
"""

from __future__ import annotations

from roundtable.agents import Team
from roundtable.conversations import Settings
from roundtable.evaluation.answers import matches, vote
from roundtable.evaluation.models import answer_alone, client_for
from roundtable.evaluation.questions import Question
from roundtable.evaluation.records import BaselineScore

ALONE = "Answer the question directly and briefly. End with the answer itself."


async def baselines(
    settings: Settings, team: Team, question: Question, *, config: str, repeat: int
) -> BaselineScore:
    """Both baselines of one question (which must have a reference)."""
    assert question.reference is not None
    answerer = team.holder("answers") or team.roster[-1]
    budget = settings.budget.max_tokens
    spent = 0
    answers: dict[str, str] = {}
    for card in [team.card(answerer), *(c for c in team.roles if c.name != answerer)]:
        if spent >= budget:
            break
        endpoint, _ = settings.endpoint_for(card.name)
        client = client_for(
            settings,
            endpoint,
            card.name,
            max_tokens=card.model.max_tokens,
            temperature=card.model.temperature,
        )
        text, usage = await answer_alone(client, ALONE, question.question)
        spent += usage.total
        answers[card.name] = text
    single = answers.get(answerer)
    votes = [answers[c.name] for c in team.roles if c.name in answers]
    majority = vote(votes, question.reference)
    return BaselineScore(
        config=config,
        question=question.id,
        repeat=repeat,
        single=single,
        single_correct=matches(single, question.reference),
        votes=votes,
        majority=majority,
        majority_correct=matches(majority, question.reference),
        tokens=spent,
    )
