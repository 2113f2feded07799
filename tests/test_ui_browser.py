"""The browser UI end to end: the real Chainlit server, headless Chromium, a scripted model.

Each test drives the page as a person would and reads what the page shows; the transcripts
the server writes are checked too. Screenshots land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from roundtable.transcripts import (
    HUMAN,
    MessageEvent,
    SelectionEvent,
    load,
)
from tests.browser.harness import AGENT, USER, ChatPage

pytest_plugins = ["tests.browser.fixtures"]

pytestmark = pytest.mark.browser

GOLDEN = Path(__file__).parent / "golden" / "debate-v1.jsonl"
STREAMING = f"""() => Array.from(document.querySelectorAll('{AGENT} .message-content'))
    .some(e => e.innerText.includes('Researcher · turn 1'))"""


def _after(order: list[str], marker: str) -> list[str]:
    """Entries after the first one containing ``marker``."""
    index = next(i for i, entry in enumerate(order) if marker in entry)
    return order[index + 1 :]


def _agent_messages(order: list[str]) -> list[str]:
    return [e for e in order if e.startswith("assistant_message") and " · turn " in e]


HEADING = re.compile(
    r"^assistant_message: \w+ · turn \d+"
    r"( — .*?\((chosen by the manager|by the team's rules|at your request|"
    r"the manager could not choose, so by turn order)\))?"
)
"""A reply's heading: its speaker, turn and why."""


def _spoken(order: list[str]) -> list[str]:
    """Agent replies that said something (a reply cut short before its first word is empty)."""
    return [
        e
        for e in _agent_messages(order)
        if HEADING.sub("", e).replace("(cut short)", "").replace("Used Decision", "").strip()
    ]


def test_a_debate_streams_replies_from_the_agents_with_their_names(chat: ChatPage) -> None:
    chat.open()
    chat.send("Should our city ban private cars downtown?")
    chat.wait_for(STREAMING)
    partial = next(t for t in chat.agent_texts() if t.startswith("Researcher · turn 1"))
    chat.screenshot("streaming")
    chat.wait_stops()
    texts = chat.agent_texts()
    full = next(t for t in texts if t.startswith("Researcher · turn 1"))
    assert len(partial) < len(full), "the first reply should be seen while it streams"
    names = {t.split(" · turn")[0] for t in texts if " · turn " in t}
    assert {"Researcher", "Analyst", "Critic", "Writer"} <= names
    assert chat.steps("Decision"), "the manager's choices show, collapsed in the messages"
    assert not chat.steps("Manager picks"), "not as rows of their own"
    assert any("Debate stopped (max_turns)" in t for t in texts)
    avatar = chat.page.locator(f'{AGENT} img[alt="Avatar for critic"]').first
    assert avatar.evaluate("img => img.complete && img.naturalWidth > 0")
    assert all(url.startswith(("https://fonts.", "https://cdn.")) for url in chat.blocked)


def test_a_message_typed_mid_reply_is_heard_by_the_next_agent(chat: ChatPage) -> None:
    chat.open()
    chat.send("Should our city ban private cars downtown?")
    chat.wait_for(STREAMING)
    chat.send("What about <b>bicycles</b>?")
    chat.wait_text("heard human: What about <b>bicycles</b>?")
    chat.screenshot("interjected")
    order = chat.transcript_order()
    after = _after(order, "user_message: What about <b>bicycles</b>?")
    assert "heard human: What about <b>bicycles</b>?" in _spoken(after)[0]
    assert any("(cut short)" in e for e in _agent_messages(order)), "a reply ended softly"
    assert chat.page.locator(f"{AGENT} b, {USER} b").count() == 0, "user text is never HTML"
    chat.send("/stop that is enough")
    chat.wait_stops()


def test_ask_critic_makes_the_critic_answer_next(chat: ChatPage) -> None:
    chat.open()
    chat.send("Should our city ban private cars downtown?")
    chat.wait_for(STREAMING)
    chat.send("/ask critic is that evidence sound?")
    chat.wait_text("critic heard human: is that evidence sound?")
    after = _after(chat.transcript_order(), "user_message: /ask critic is that evidence sound?")
    assert _spoken(after)[0].startswith("assistant_message: Critic · turn")
    assert "— the person asked the critic to answer next (at your request)" in _spoken(after)[0]
    chat.wait_stops()


def test_the_stop_button_ends_the_debate_with_a_reason(chat: ChatPage) -> None:
    chat.open()
    chat.send("Should our city ban private cars downtown?")
    chat.wait_for(STREAMING)
    chat.page.locator("#stop-button").click()  # the composer's stop square
    chat.wait_text("Debate stopped (user_stop): stopped with the Stop button")
    texts = chat.agent_texts()
    assert len([t for t in texts if " · turn " in t]) < 5


def test_a_reloaded_thread_shows_everything_once_and_continues(chat: ChatPage) -> None:
    chat.open()
    chat.send("Should our city ban private cars downtown?")
    chat.wait_stops()
    chat.page.wait_for_url("**/thread/*")
    before = chat.transcript_order()
    chat.page.reload()
    chat.page.wait_for_selector("#chat-settings-open-modal", timeout=60_000)
    chat.wait_stops()
    after = chat.transcript_order()
    chat.screenshot("reloaded")
    assert _agent_messages(after) == _agent_messages(before)
    assert [e for e in after if e.startswith("user_message")] == [
        e for e in before if e.startswith("user_message")
    ]
    assert sorted(e for e in after if e.startswith("tool")) == sorted(
        e for e in before if e.startswith("tool")
    )
    # the thread continues the same transcript
    chat.send("And what about taxis?")
    chat.wait_stops(2)
    files = list(chat.server.transcripts.glob("*.jsonl"))
    continued = [load(p) for p in files if "And what about taxis?" in p.read_text()]
    assert len(continued) == 1
    humans = [
        e.content for e in continued[0].events if isinstance(e, MessageEvent) and e.speaker == HUMAN
    ]
    assert humans == ["Should our city ban private cars downtown?", "And what about taxis?"]


def test_replay_renders_the_golden_transcript_and_fork_makes_a_child(chat: ChatPage) -> None:
    golden = load(GOLDEN)
    folder = chat.server.transcripts
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(GOLDEN, folder / f"{golden.header.conversation_id}.jsonl")
    before = {p.name for p in folder.glob("*.jsonl")}
    chat.open()
    chat.send("/replay")
    chat.wait_text("Replay #1")
    chat.send(f"/replay {golden.header.conversation_id} fast")
    chat.wait_stops()
    chat.screenshot("replayed")
    order = chat.transcript_order()
    shown = _agent_messages(order)
    agent_events = [e for e in golden.events if isinstance(e, MessageEvent) and e.speaker != HUMAN]
    assert len(shown) == len(agent_events)
    for number, (entry, event) in enumerate(zip(shown, agent_events, strict=True), start=1):
        assert f"{event.speaker.capitalize()} · turn {number}" in entry  # as the person counts
        assert event.content in entry
    human_turns = [
        e.content for e in golden.events if isinstance(e, MessageEvent) and e.speaker == HUMAN
    ]
    for content in human_turns:
        assert any(content in e for e in order if e.startswith("user_message"))
    picks = [e for e in golden.events if isinstance(e, SelectionEvent)]
    assert len(chat.steps("Decision")) == len(picks)
    assert len(chat.steps("Error")) == sum(1 for e in golden.events if e.kind == "error")
    assert {p.name for p in folder.glob("*.jsonl")} == before, "a replay writes nothing"

    chat.send("/fork 3 Suppose buses were free?")
    chat.wait_stops(2)
    children = [load(p) for p in folder.glob("*.jsonl") if p.name not in before]
    assert len(children) == 1
    child = children[0]
    assert child.header.parent is not None
    assert (child.header.parent.conversation_id, child.header.parent.turn) == (
        golden.header.conversation_id,
        3,
    )
    assert any(
        isinstance(e, MessageEvent) and e.content == "Suppose buses were free?"
        for e in child.events
    )
    exported = chat.server.data_dir / "export-check.json"
    exported.write_text(json.dumps({"child": child.header.conversation_id}))


def test_a_message_over_the_limit_is_refused_before_anything_else(chat: ChatPage) -> None:
    chat.open()
    chat.send("x" * 20_001)
    chat.wait_text("the limit is 20,000")
    assert not chat.steps("Debate"), "no debate started"
