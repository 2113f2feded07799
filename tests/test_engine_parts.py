"""The run engine's shared parts, each on its own: error families, run control, the recorder
and structured calls. Real components throughout (the scripted client, real transcripts)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from roundtable.agents import (
    ScriptedChatCompletionClient,
    load_prompts,
    manager_prompts,
    resolve_team,
)
from roundtable.agents.prompts import builtin_prompts_file
from roundtable.common.errors import (
    ConfigError,
    InfraError,
    ModelError,
    family_of,
    stops_run,
)
from roundtable.common.tokens import OnceCounter
from roundtable.conversations import Budget, Participant
from roundtable.conversations.control import RunControl, describe_failure
from roundtable.conversations.cutoff import STOP_GRACE_S
from roundtable.conversations.participant import header_for
from roundtable.conversations.recorder import Recorder
from roundtable.conversations.structured import Answer, Refused, ask
from roundtable.transcripts import load
from roundtable.transcripts.events import (
    HUMAN,
    BranchEvent,
    ErrorEvent,
    MessageEvent,
    PlanStep,
    StopEvent,
    Usage,
)
from tests.support.debates import collect, pick, scripted_debate


class KeyRevoked(ConfigError):
    """A subclass: its family is its base's, whatever its name."""


class DiskGone(InfraError):
    pass


# -- error families -------------------------------------------------------------------------


def test_families_are_decided_by_isinstance_subclasses_included() -> None:
    assert family_of(KeyRevoked("key revoked")) == "config"
    assert family_of(DiskGone("disk")) == "infra"
    assert family_of(ModelError("junk")) == "model"
    assert family_of(ValueError("not ours")) == "model"
    assert [f for f in ("config", "model", "infra") if stops_run(f)] == ["config"]


def test_the_original_exception_decides_over_autogens_wrapping() -> None:
    original = KeyRevoked("the key was revoked")
    wrapped = RuntimeError("KeyRevoked: the key was revoked\nTraceback:\n  File ...")
    assert describe_failure(wrapped, original) == ("config", "the key was revoked")
    # Without the original, the name alone says nothing: the last resort calls it model.
    assert describe_failure(wrapped)[0] == "model"
    # The last resort still reads our own families' names.
    assert describe_failure(RuntimeError("InfraError: disk full\nTraceback")) == (
        "infra",
        "disk full",
    )


def test_a_remembered_exception_that_is_not_the_one_wrapped_is_ignored() -> None:
    stale = KeyRevoked("an earlier failure")
    wrapped = RuntimeError("ValueError: bad\nTraceback:")
    assert describe_failure(wrapped, stale) == ("model", "ValueError: bad")
    assert describe_failure(ValueError("bad"), stale) == ("model", "ValueError: bad")


async def test_a_config_error_subclass_from_a_role_stops_the_debate(tmp_path: Path) -> None:
    debate, _, _ = scripted_debate(
        tmp_path / "t.jsonl",
        {"researcher": [KeyRevoked("the key for endpoint x was revoked")]},
        defaults={"analyst": "words", "critic": "words", "writer": "words"},
    )
    events = await collect(debate)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [(e.family, e.message) for e in errors] == [
        ("config", "the key for endpoint x was revoked")
    ]
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.code == "error"
    assert stop.reason == "researcher cannot run: the key for endpoint x was revoked"


# -- run control ----------------------------------------------------------------------------


def _control(**budget: float) -> RunControl:
    return RunControl(threading.Event(), Budget(**budget))  # type: ignore[arg-type]


async def test_a_reply_past_its_deadline_is_stopped_softly_then_disarmed() -> None:
    control = _control(turn_deadline_s=0.05)
    with control.reply():
        assert not control.stop_signal.is_set()
        await asyncio.sleep(0.1)
        assert control.stop_signal.is_set() and control.deadline_hit
        assert control.late == "no complete reply within the turn deadline of 0.05 s"
    await asyncio.sleep(STOP_GRACE_S + 0.1)
    assert not control.cutoff.is_cut  # the hard cut was disarmed with the reply


async def test_a_stalled_model_is_cut_hard_after_the_grace() -> None:
    control = _control(turn_deadline_s=0.05)
    stalled = control.guard(ScriptedChatCompletionClient(["one two three"], chunk_delay=5.0))
    began = asyncio.get_running_loop().time()
    with control.reply(), pytest.raises(ModelError) as raised:
        await stalled.create([])
    took = asyncio.get_running_loop().time() - began
    assert 0.05 + STOP_GRACE_S <= took < 0.05 + STOP_GRACE_S + 0.5
    assert control.explain(raised.value) == ("model", str(raised.value))
    assert "cut 0.5 s after it" in str(raised.value)


async def test_the_wall_clock_shortens_a_reply_deadline() -> None:
    control = _control(turn_deadline_s=60, wall_clock_s=0.05)
    with control.reply():
        await asyncio.sleep(0.1)
        assert control.deadline_hit
        assert control.late.startswith("no complete reply before the wall clock of 0.05 s")
    assert control.ending(tokens=0) == ("wall_clock", "ran 0 s of the 0 s allowed")


async def test_a_stop_before_a_reply_stops_it_at_once_and_ends_the_run() -> None:
    control = _control()
    control.request_stop("enough")
    with control.reply():
        assert control.stop_signal.is_set()  # re-armed, and stopped again straight away
    assert control.ending(tokens=0) == ("user_stop", "enough")


async def test_the_inbox_hands_over_everything_once_stripped() -> None:
    control = _control(max_tokens=100)
    control.put("  first  ", ask="critic")
    control.put("second", cut_short=True)
    assert control.stop_signal.is_set()
    taken = control.take()
    assert [(i.text, i.ask) for i in taken] == [("first", "critic"), ("second", None)]
    assert control.take() == []
    assert control.ending(tokens=100) == ("token_budget", "used 100 of 100 tokens")
    assert control.ending(tokens=99) is None


async def test_the_guard_remembers_what_its_client_raised() -> None:
    control = _control()
    failing = control.guard(ScriptedChatCompletionClient([DiskGone("store locked")]))
    with control.reply(), pytest.raises(DiskGone):
        await failing.create([])
    assert isinstance(control.cutoff.failure, DiskGone)
    with control.reply():  # a new reply forgets it
        assert control.cutoff.failure is None


# -- the recorder ---------------------------------------------------------------------------


def _recorder(path: Path) -> Recorder:
    team = resolve_team(None)
    participants = [
        Participant(card=card, client=ScriptedChatCompletionClient()) for card in team.roles
    ]
    header = header_for("rec-1", "Why?", participants, Budget(), 4096, team=team)
    return Recorder(path, header)


def test_the_recorder_numbers_charges_and_stops(tmp_path: Path) -> None:
    record = _recorder(tmp_path / "t.jsonl")
    record.open()
    question = record.message(HUMAN, "Why?")
    answer = record.message(
        "analyst", "Because.", usage=Usage(prompt_tokens=7, completion_tokens=3)
    )
    stop = record.stop("completed", "done")
    record.close()
    assert (question.seq, question.turn, answer.seq, answer.turn) == (1, 0, 2, 1)
    assert record.tokens == 10
    assert [(r.speaker, r.calls, r.prompt_tokens) for r in stop.ledger] == [("analyst", 1, 7)]
    saved = load(tmp_path / "t.jsonl").events
    assert saved[:2] == [question, answer] and saved[3] == stop
    assert saved[2].kind == "quality" and saved[2].seq == stop.seq - 1  # the report, then the stop


def test_the_recorder_reopens_and_copies_renumbered(tmp_path: Path) -> None:
    record = _recorder(tmp_path / "a.jsonl")
    record.open()
    record.message(HUMAN, "Why?")
    step = PlanStep(id="s1", role="analyst", needs="analysis", question="Why?")
    record.branch(step, "start", "running")
    answer = record.message("analyst", "Because.")
    record.branch(step, "end", "ok", message_seq=answer.seq)
    record.message(HUMAN, "And then?")
    record.stop("completed", "done")
    record.close()
    prior = load(tmp_path / "a.jsonl")

    again = Recorder(prior.path, prior.header)
    again.reopen(prior)
    assert again.stamp()["seq"] == len(prior.events) + 1
    again.close()

    fork = _recorder(tmp_path / "b.jsonl")
    fork.open()
    fork.message(HUMAN, "A new start")  # the copy is renumbered after what is there
    copied = fork.copy(prior.events, until_turn=1)
    fork.close()
    assert [e.seq for e in copied] == [2, 3, 4, 5]
    assert not any(isinstance(e, StopEvent) for e in copied)
    assert all(e.turn <= 1 for e in copied)
    end = copied[-1]
    moved = copied[2]
    assert isinstance(end, BranchEvent) and isinstance(moved, MessageEvent)
    assert end.message_seq == moved.seq == 4


# -- structured calls -----------------------------------------------------------------------


class _Yes(BaseModel):
    ok: bool


def _read(text: str) -> bool:
    if text != '{"ok": true}':
        raise Refused(f"not yes: {text!r}")
    return True


async def _ask_yes(client: ScriptedChatCompletionClient, **overrides: Any) -> Answer[bool]:
    """``ask`` for a yes, three attempts without a time limit unless overridden."""
    options: dict[str, Any] = {
        "schema": _Yes,
        "parse": _read,
        "attempts": 3,
        "limit": lambda: None,
        "extra": {},
    }
    return await ask(client, overrides.pop("prompt", lambda _last: []), **{**options, **overrides})


async def test_a_refused_reply_is_retried_with_its_reason_and_usage_summed() -> None:
    client = ScriptedChatCompletionClient(["nope", '{"ok": true}'])
    seen: list[str | None] = []

    def prompt(last: object) -> list[object]:
        seen.append(getattr(last, "reason", None))
        return []

    answer = await _ask_yes(client, prompt=prompt, limit=lambda: 5.0, extra={"max_tokens": 10})
    assert answer.value is True
    assert [(r.reason, r.text) for r in answer.refusals] == [("not yes: 'nope'", "nope")]
    assert seen == [None, "not yes: 'nope'"]
    assert answer.calls == 2
    # One word then two, one token a word in the scripted client.
    assert answer.usage == Usage(completion_tokens=1) + Usage(completion_tokens=2)
    assert all(call.extra_create_args == {"max_tokens": 10} for call in client.calls)
    assert all(call.json_output is _Yes for call in client.calls)


async def test_every_refusal_is_returned_when_no_attempt_is_accepted() -> None:
    client = ScriptedChatCompletionClient(["a", DiskGone("endpoint down"), "c"])
    answer = await _ask_yes(client, explain=describe_failure)
    assert answer.value is None
    assert [(r.family, r.reason) for r in answer.refusals] == [
        ("model", "not yes: 'a'"),
        ("infra", "endpoint down"),
        ("model", "not yes: 'c'"),
    ]
    assert isinstance(answer.refusals[1].error, DiskGone)
    assert answer.usage.completion_tokens == 2


async def test_a_slow_reply_times_out_and_may_end_the_attempts() -> None:
    slow = ScriptedChatCompletionClient(['{"ok": true}'] * 2, chunk_delay=1.0)
    answer = await _ask_yes(slow, attempts=2, limit=lambda: 0.05, give_up_on_timeout=True)
    assert answer.value is None and answer.calls == 1
    assert [r.timed_out for r in answer.refusals] == [True]
    no_time = await _ask_yes(slow, limit=lambda: 0.0)
    assert no_time.calls == 0 and no_time.refusals == []


async def test_the_manager_pick_uses_the_same_retries(tmp_path: Path) -> None:
    debate, _, manager = scripted_debate(
        tmp_path / "t.jsonl",
        {},
        defaults={r: "words" for r in ("researcher", "analyst", "critic", "writer")},
        picks=["junk", pick("critic")],
        budget=Budget(max_turns=4),
    )
    events = await collect(debate)
    refused = [e.message for e in events if isinstance(e, ErrorEvent)]
    assert refused == ["manager pick refused: not JSON: 'junk'"]
    assert len(manager.calls) == 2


# -- the manager's prompts ------------------------------------------------------------------


def test_a_debate_counts_each_text_once() -> None:
    counted: list[str] = []

    def words(text: str) -> int:
        counted.append(text)
        return len(text.split())

    once = OnceCounter(words)
    assert [once("a b"), once("a b c"), once("a b")] == [2, 3, 2]
    assert counted == ["a b", "a b c"]


def test_the_shipped_prompts_load_and_fill_in() -> None:
    prompts = manager_prompts()
    assert prompts is manager_prompts()  # loaded once
    assert (
        prompts.pick.fill("ask", candidates="a, b") == "Who should speak next? Choose one of: a, b."
    )
    assert set(prompts.plan.needs) >= {"research", "analysis", "review", "writing"}


def test_an_edited_prompt_with_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    shipped = builtin_prompts_file().read_text()
    edited = tmp_path / "manager.yaml"
    edited.write_text(shipped.replace("Choose one of: $candidates", "Choose one of: $roster"))
    with pytest.raises(ConfigError, match=r"field 'pick': ask: unknown placeholder \$roster"):
        load_prompts(edited)
    edited.write_text(shipped.replace('  ask: "Who', '  asks: "Who'))
    with pytest.raises(ConfigError, match=r"field 'pick.ask': Field required"):
        load_prompts(edited)
