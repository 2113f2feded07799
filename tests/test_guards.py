"""The protocol guards on scripted debates: each rule blocks, retries, rewrites or rejects.

The scripted client is right here: what is under test is what the debate does with a reply,
not what a model would say. The real model's side is ``test_guards_model.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from autogen_core.models import UserMessage

from roundtable.agents import REVISE_GRAMMAR, Guards, resolve_team
from roundtable.conversations import Budget
from roundtable.conversations.debate_state import DebateState
from roundtable.conversations.guards import GuardView, check, rewrite
from roundtable.conversations.overlap import ngrams
from roundtable.conversations.reasons import fit_reason, names_only
from roundtable.conversations.recall import MEMORY_HEADER, notes_said
from roundtable.transcripts import (
    ErrorEvent,
    GuardEvent,
    MemoryHit,
    MessageEvent,
    QualityEvent,
    SelectionEvent,
    StopEvent,
    load,
    now,
)
from tests.support.debates import collect, pick, scripted_debate

pytestmark = pytest.mark.guards

ON = Guards()
FACTS = "Cities that closed their centres to cars cut traffic by a third within two years."
ANSWER = "Yes: ban private cars downtown, with delivery windows and better buses first."


def guards_of(events: list[object]) -> list[tuple[str, str, str]]:
    return [(e.speaker, e.rule, e.action) for e in events if isinstance(e, GuardEvent)]


def said(events: list[object], speaker: str) -> list[str]:
    return [e.content for e in events if isinstance(e, MessageEvent) and e.speaker == speaker]


def view(**overrides: object) -> GuardView:
    base: dict[str, object] = {
        "speaker": "critic",
        "instructions": "Start with ACCEPT: or REVISE: and say why in one sentence.",
        "gives_verdict": True,
        "said": ngrams("Should our city ban private cars downtown?") | ngrams(FACTS),
        "revisions": 0,
        "nearly_spent": False,
    }
    base.update(overrides)
    return GuardView(**base)  # type: ignore[arg-type]


# -- the rules, one by one ------------------------------------------------------------------


def test_an_early_acceptance_is_a_problem_until_a_revision_was_asked_for() -> None:
    accept = "ACCEPT: the answer is sound."
    problem = check(accept, view())
    assert problem is not None and problem.rule == "early_accept"
    assert check(accept, view(revisions=1)) is None
    assert check(accept, view(nearly_spent=True)) is None
    assert check(accept, view(guards=Guards(min_revisions=0))) is None


def test_a_revise_must_name_a_point_that_is_not_a_copy() -> None:
    assert check("REVISE: no.", view()).rule == "no_point"  # type: ignore[union-attr]
    copied = f"REVISE: {FACTS}"
    assert check(copied, view()).rule == "no_point"  # type: ignore[union-attr]
    assert check("REVISE: it ignores how deliveries reach the shops.", view()) is None


def test_a_reply_without_a_verdict_is_a_format_problem_and_is_rewritten_as_a_revise() -> None:
    text = "The answer forgets the night buses."
    problem = check(text, view())
    assert problem is not None and problem.rule == "format"
    assert rewrite(text, problem) == "REVISE: The answer forgets the night buses."
    assert check(text, view(gives_verdict=False)) is None


def test_a_copy_of_an_earlier_turn_or_of_its_own_instructions_is_a_problem() -> None:
    writer = view(speaker="writer", gives_verdict=False, instructions="Write the final answer.")
    problem = check(f"As they said: {FACTS}", writer)
    assert problem is not None and problem.rule == "copy" and "%" in problem.detail
    assert rewrite(FACTS, problem) is None  # a copy is never repaired
    own = view(speaker="critic", instructions="ACCEPT: if the latest answer is sound.")
    echo = "ACCEPT: if the latest answer is sound."
    assert check(echo, own.__class__(**{**own.__dict__, "revisions": 1})).rule == "copy"  # type: ignore[union-attr]
    assert check("Buses first, then the ban, over two years.", writer) is None
    assert check(FACTS, view(gives_verdict=False, guards=Guards(copy_threshold=1.0))) is None


def test_a_reply_reciting_its_memory_notes_is_a_copy_but_a_point_taken_from_them_is_not() -> None:
    """With the notes last in the prompt, a small model recited them, header and all, as its
    answer (seen on SmolLM2 with a document added): that is a copy. A critic's REVISE that
    corrects a draft from a note is a point, and a reply quoting one fact is an answer."""
    passage = (
        "The empty lot is 600 square metres, faces south, and its soil is sandy and slightly"
        " acidic; the city lends it for five years without rent but water costs 300 euros."
    )
    note = MemoryHit(id="c:1", source="document site.md, passage 0", score=0.6, text=passage, n=1)
    notes = notes_said([note])
    writer = view(speaker="writer", gives_verdict=False, instructions="Write the plan.")
    recital = f"{MEMORY_HEADER} [1] (document site.md, passage 0) '{passage}'"
    assert check(recital, writer) is None, "without its notes in view nothing was copied"
    problem = check(recital, view(**{**writer.__dict__, "notes": notes}))
    assert problem is not None and problem.rule == "copy" and "notes" in problem.detail
    answer = "Plant beans and squash along the south side; water is the main cost, 300 euros."
    assert check(answer, view(**{**writer.__dict__, "notes": notes})) is None
    correction = "REVISE: the draft says the lot is small, but it is 600 square metres."
    assert check(correction, view(notes=notes)) is None


def test_a_reason_naming_another_role_is_rewritten_to_the_picks_task() -> None:
    roster = ["researcher", "analyst", "critic", "writer"]
    task = "Weigh the facts gathered so far."
    reason, dropped = fit_reason("analyst", task, "who should speak next is the writer", roster)
    assert dropped == "who should speak next is the writer"
    assert names_only(reason, "analyst", roster) and "Weigh the facts" in reason
    kept, none = fit_reason("analyst", task, "the costs are unclear", roster)
    assert none is None and kept.endswith("(the costs are unclear)")
    assert names_only(kept, "analyst", roster)


# -- in a debate --------------------------------------------------------------------------


async def test_an_early_accept_is_retried_with_a_nudge_and_a_revise_grammar(
    tmp_path: Path,
) -> None:
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": [FACTS],
            "critic": [
                "ACCEPT: that is a great example.",
                "REVISE: it says nothing about how deliveries reach the shops.",
                "ACCEPT: deliveries are now covered.",
            ],
            "writer": [ANSWER, ANSWER + " Deliveries come before ten."],
        },
        picks=[pick("critic", "check the facts")],
        guards=ON,
        budget=Budget(max_turns=8),
    )
    events = await collect(debate)
    assert guards_of(events) == [("critic", "early_accept", "retried")]
    verdicts = [e.verdict for e in events if isinstance(e, MessageEvent) and e.speaker == "critic"]
    assert verdicts[0] == "REVISE"
    first, second = clients["critic"].calls[:2]
    assert first.extra_create_args["grammar"] == REVISE_GRAMMAR  # a revision is still owed
    nudge = second.messages[-1]
    assert isinstance(nudge, UserMessage) and "Do not accept yet" in str(nudge.content)
    assert second.extra_create_args["temperature"] > first.extra_create_args.get("temperature", 0)
    assert len(clients["critic"].calls) == 3  # once revised, ACCEPT is allowed
    third = clients["critic"].calls[2]
    assert "grammar" not in third.extra_create_args
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "accepted"
    saved = load(tmp_path / "t.jsonl")
    assert guards_of(saved.events) == guards_of(events)  # the guard's step is in the transcript


async def test_a_copied_reply_is_retried_then_committed_in_its_own_words(tmp_path: Path) -> None:
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": [FACTS],
            "analyst": [FACTS, "Cleaner air and safer streets, but shops fear the loss."],
        },
        picks=[pick("analyst")],
        guards=ON,
        budget=Budget(max_turns=2),
    )
    events = await collect(debate)
    assert guards_of(events) == [("analyst", "copy", "retried")]
    assert said(events, "analyst") == ["Cleaner air and safer streets, but shops fear the loss."]
    assert len(clients["analyst"].calls) == 2
    reply = next(e for e in events if isinstance(e, MessageEvent) and e.speaker == "analyst")
    assert reply.usage.completion_tokens > 0
    quality = next(e for e in events if isinstance(e, QualityEvent)).report
    assert quality.copied_turns == 0 and quality.guards == {"copy": 1}


async def test_a_reply_copied_twice_is_not_committed_and_is_recorded_as_an_error(
    tmp_path: Path,
) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": [FACTS], "analyst": [FACTS, FACTS.upper()]},
        picks=[pick("analyst")],
        defaults={"writer": ANSWER},
        guards=ON,
        budget=Budget(max_turns=3),
    )
    events = await collect(debate)
    assert ("analyst", "copy", "rejected") in guards_of(events)
    assert said(events, "analyst") == []
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.speaker == "analyst"]
    assert len(errors) == 1 and "not committed" in errors[0].message
    quality = next(e for e in events if isinstance(e, QualityEvent)).report
    assert quality.rejected_copies == 1 and quality.copied_turns == 0


async def test_a_revise_without_a_point_is_asked_again(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": [FACTS],
            "critic": ["REVISE: no.", "REVISE: the answer never says who pays for the buses."],
        },
        picks=[pick("critic")],
        defaults={"writer": ANSWER, "critic": "ACCEPT: the buses are paid for now."},
        guards=ON,
        budget=Budget(max_turns=4),
    )
    events = await collect(debate)
    assert guards_of(events) == [("critic", "no_point", "retried")]
    assert said(events, "critic")[0] == "REVISE: the answer never says who pays for the buses."


async def test_the_managers_reason_states_the_picks_task_and_never_another_role(
    tmp_path: Path,
) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": [FACTS], "analyst": ["Cleaner air, but the shops fear losing trade."]},
        picks=[pick("analyst", "who should speak next is the writer")],
        guards=ON,
        budget=Budget(max_turns=2),
    )
    events = await collect(debate)
    chosen = [e for e in events if isinstance(e, SelectionEvent) and e.method == "model"]
    assert len(chosen) == 1
    roster = ["researcher", "analyst", "critic", "writer"]
    assert names_only(chosen[0].reason, "analyst", roster)
    assert "Weigh the facts" in chosen[0].reason
    assert guards_of(events) == [("manager", "reason", "rewritten")]
    quality = next(e for e in events if isinstance(e, QualityEvent)).report
    assert quality.reasons_naming_pick == 1.0


async def test_with_the_budget_nearly_spent_the_verdict_giver_may_accept_at_once(
    tmp_path: Path,
) -> None:
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": [FACTS], "critic": ["ACCEPT: the facts settle it."]},
        picks=[pick("critic")],
        guards=ON,
        budget=Budget(max_turns=2),
    )
    events = await collect(debate)
    assert guards_of(events) == []
    assert said(events, "critic") == ["ACCEPT: the facts settle it."]
    assert "grammar" not in clients["critic"].calls[0].extra_create_args


async def test_guards_off_commit_the_first_draft_unchanged(tmp_path: Path) -> None:
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": [FACTS], "analyst": [FACTS]},
        picks=[pick("analyst")],
        budget=Budget(max_turns=2),
    )
    events = await collect(debate)
    assert guards_of(events) == [] and said(events, "analyst") == [FACTS]
    assert len(clients["analyst"].calls) == 1


async def test_an_independent_first_round_hides_the_other_roles_replies_once(
    tmp_path: Path,
) -> None:
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": [FACTS],
            "analyst": ["Cleaner air, but shops fear the loss.", "Buses first, then the ban."],
            "writer": [ANSWER],
            "critic": ["REVISE: the answer never says who pays for the buses."],
        },
        picks=[pick("analyst"), pick("writer"), pick("analyst")],
        guards=Guards(independent_first_round=True),
        budget=Budget(max_turns=6),
        defaults={"writer": ANSWER + " The city pays.", "critic": "ACCEPT: paid for now."},
    )
    await collect(debate)

    def heard(call_messages: list[object]) -> set[str]:
        return {m.source for m in call_messages if isinstance(m, UserMessage)}

    analyst_first, analyst_second = clients["analyst"].calls[:2]
    assert "researcher" not in heard(analyst_first.messages)  # its own view first
    assert "human" in heard(analyst_first.messages)  # the question is always there
    assert {"researcher", "writer", "critic"} <= heard(analyst_second.messages)
    assert "writer" in heard(clients["critic"].calls[0].messages)  # the reviewer sees all


def test_a_reply_that_ends_at_its_cap_shows_a_cut_mark_in_both_front_ends() -> None:
    import io

    from roundtable.terminal.render import TerminalRenderer
    from roundtable.ui.render import CAP_MARK, _message_text

    event = MessageEvent(
        seq=3,
        at="2026-01-01T00:00:00Z",
        turn=2,
        speaker="analyst",
        content="Trams are",
        truncated=True,
    )
    assert _message_text(event, None).endswith(CAP_MARK)
    out = io.StringIO()
    TerminalRenderer(out, colour=False)(event)
    assert out.getvalue() == "[analyst] Trams are [… cut at its token cap]\n"


async def test_the_verdict_giver_is_asked_about_the_objection_the_answer_left_open(
    tmp_path: Path,
) -> None:
    point = "REVISE: it never says how deliveries reach the shops downtown."
    debate, clients, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": [FACTS],
            "critic": [point, "REVISE: the buses still lack a budget line.", "ACCEPT: done."],
            "writer": [
                ANSWER,
                "Buses every five minutes make the ban workable; shops get a tram stop.",
                "Deliveries reach the shops downtown before ten; parking fees fund the buses.",
            ],
        },
        picks=[pick("writer")],
        guards=ON,
        budget=Budget(max_turns=9),
    )
    await collect(debate)

    def asked(call: object) -> str:
        last = call.messages[-1]  # type: ignore[attr-defined]
        return str(last.content) if isinstance(last, UserMessage) else ""

    first, second, third = clients["critic"].calls[:3]
    assert "objection" not in asked(first)  # nothing revised yet
    assert "deliveries reach the shops" in asked(second)  # the answer ignored the point
    assert "objection" in asked(third) and "budget line" in asked(third)
    assert clients["critic"].calls[1].extra_create_args["max_tokens"] < 90  # room for it


async def test_the_answerer_drafts_by_mid_budget_so_a_revision_has_room(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {
            "researcher": [FACTS, "Paris and Oslo cut traffic by a third in two years."],
            "analyst": ["Cleaner air, but shops fear the loss.", "Deliveries are the risk."],
            "critic": ["REVISE: it never says how deliveries reach the shops downtown."],
            "writer": [ANSWER],
        },
        picks=[pick("analyst"), pick("researcher"), pick("analyst")],
        defaults={"writer": "Deliveries reach the shops before ten.", "critic": "ACCEPT: ok."},
        guards=ON,
        budget=Budget(max_turns=8),
    )
    events = await collect(debate)
    chosen = [(e.turn, e.speaker, e.reason) for e in events if isinstance(e, SelectionEvent)]
    assert chosen[4] == (5, "writer", "the writer drafts the answer: half the turns are used")
    assert chosen[5][1] == "critic"
    assert said(events, "critic")[0].startswith("REVISE:")  # a revision owed, room to give it


def test_the_run_s_trigrams_grow_with_each_message_and_match_a_fresh_count() -> None:
    """The copy rule measures each reply against one set kept growing, not rebuilt per reply:
    it must still hold exactly the trigrams of every committed message (an empty one skipped)."""
    team = resolve_team("default")
    state = DebateState.new(team, team.roles, Budget())
    texts = ["Should trams replace buses?", "Trams carry more people per hour.", "x y"]
    at = now()
    for seq, text in enumerate(texts, start=1):
        state.messages.append(MessageEvent(seq=seq, at=at, turn=seq, speaker="a", content=text))
        if seq == 2:
            state.messages.append(None)  # an empty reply the agents saw
        expected = set().union(*(ngrams(m.content) for m in state.committed()))
        assert state.said() == expected
    assert ("trams", "carry", "more") in state.said() and ("x", "y") in state.said()
