"""Forks as a tree of transcripts (``transcripts.fork_tree``): the tree's shape, built only from
one person's transcripts (another user's parent is dropped, its question never drawn), cycles
and self-parents placed once, the size bounded, hostile text escaped; and the catalogue
records each fork's parent from its header."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from roundtable.transcripts import (
    HUMAN,
    Header,
    MessageEvent,
    ParentRef,
    RoleSummary,
    TranscriptSummary,
    owned,
    save,
)
from roundtable.transcripts.fork_tree import MAX_NODES, ForkNode, family, forest, fork_svg

NS = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def row(
    cid: str, parent: str | None = None, *, minute: int = 0, question: str = ""
) -> TranscriptSummary:
    return TranscriptSummary(
        path=Path(f"{cid}.jsonl"),
        conversation_id=cid,
        question=question or f"question of {cid}",
        created_at=START + timedelta(minutes=minute),
        turns=3,
        stop="completed: accepted",
        parent=parent,
        fork_turn=2 if parent else None,
    )


def shape(branches: list[ForkNode]) -> list[tuple[str, int, str | None]]:
    """(id, depth, parent id) per placed transcript, in drawing order."""
    return [
        (
            b.summary.conversation_id,
            b.depth,
            None if b.parent is None else branches[b.parent].summary.conversation_id,
        )
        for b in branches
    ]


def drawn(svg: str) -> dict[str, str]:
    """Each drawn node's conversation id and its class."""
    root = ET.fromstring(svg)
    return {g.get("data-conversation", ""): g.get("class", "") for g in root.iter(f"{NS}g")}


def test_a_family_is_its_first_ancestor_and_every_fork_below_in_fork_order() -> None:
    rows = [
        row("other"),
        row("b2", "b", minute=5),
        row("a", minute=0),
        row("c", "a", minute=4),
        row("b", "a", minute=1),
        row("b1", "b", minute=2),
    ]
    expected = [
        ("a", 0, None),
        ("b", 1, "a"),
        ("b1", 2, "b"),
        ("b2", 2, "b"),
        ("c", 1, "a"),
    ]
    assert shape(family(rows, "b1")) == expected
    assert shape(family(rows, "a")) == expected
    assert shape(family(rows, "other")) == [("other", 0, None)]
    assert family(rows, "missing") == []
    svg = fork_svg(family(rows, "b1"), "b1")
    assert drawn(svg) == {"a": "fork", "b": "fork", "b1": "fork current", "b2": "fork", "c": "fork"}
    assert "(this one)" in svg and "forked at turn 2" in svg
    assert len(ET.fromstring(svg).findall(f"{NS}path")) == 4  # one line per fork


def test_a_fork_is_drawn_by_what_the_person_said_where_it_branched_off() -> None:
    rows = [row("a"), row("b", "a").model_copy(update={"fork_text": "what if buses were free?"})]
    svg = fork_svg(family(rows, "b"), "b")
    assert "question of a" in svg and "what if buses were free? (this one)" in svg
    assert "question of b" not in svg


def test_a_parent_of_another_owner_is_dropped_and_never_drawn(tmp_path: Path) -> None:
    """The person's fork of a transcript they do not own (say, made before owners were
    checked) roots its own tree: the other user's transcript and its question are absent."""
    secret = "SECRET question of bob"
    _write(tmp_path, "bobs", "bob", secret)
    _write(tmp_path, "mine", "alice", "my fork", parent="bobs")
    _write(tmp_path, "kid", "alice", "fork of my fork", parent="mine")
    rows = owned(tmp_path, "alice")
    assert {r.conversation_id: r.parent for r in rows} == {"mine": "bobs", "kid": "mine"}
    assert {r.conversation_id: r.fork_text for r in rows} == {"mine": "", "kid": "and trams?"}
    branches = family(rows, "kid")
    assert shape(branches) == [("mine", 0, None), ("kid", 1, "mine")]
    svg = fork_svg(branches, "kid")
    assert "bobs" not in svg and "SECRET" not in svg
    assert all(b.summary.conversation_id != "bobs" for b in forest(rows))


def test_a_cycle_and_a_self_parent_place_each_transcript_once() -> None:
    cycle = [row("x", "y", minute=0), row("y", "z", minute=1), row("z", "x", minute=2)]
    placed = shape(family(cycle, "x"))
    assert sorted(cid for cid, _, _ in placed) == ["x", "y", "z"]
    assert placed[0][2] is None  # the climb stopped at the cycle: that one is drawn as the root
    assert sorted(cid for cid, _, _ in shape(forest(cycle))) == ["x", "y", "z"]
    alone = [row("s", "s")]
    assert shape(family(alone, "s")) == [("s", 0, None)]
    assert shape(forest(alone)) == [("s", 0, None)]


def test_the_tree_is_bounded_and_a_long_chain_does_not_overflow() -> None:
    chain = [row("n0")] + [row(f"n{i}", f"n{i - 1}", minute=i) for i in range(1, 3000)]
    assert len(family(chain, "n2999")) == MAX_NODES
    assert len(forest(chain)) == 3000  # the terminal's listing: every one, iteratively
    fork_svg(family(chain, "n5"), "n5")  # draws (the deepest levels share one indent)


def test_hostile_text_is_escaped_in_the_picture() -> None:
    payload = "<script>alert(1)</script><a href='javascript:x'>\"&amp;"
    rows = [
        row("a", question=payload),
        TranscriptSummary(
            path=Path("b.jsonl"),
            conversation_id="b",
            question=payload,
            stop=payload,
            parent="a",
            fork_turn=1,
            created_at=START,
        ),
    ]
    svg = fork_svg(family(rows, "b"), "b")
    root = ET.fromstring(svg)  # still one well-formed picture
    assert not [e for e in root.iter() if e.tag in (f"{NS}script", f"{NS}a", "script", "a")]
    assert "<script" not in svg and "&lt;script&gt;" in svg


def _write(folder: Path, cid: str, owner: str, question: str, parent: str | None = None) -> None:
    role = RoleSummary(name="writer", description="d", endpoint="default", model="m", max_tokens=9)
    header = Header(
        conversation_id=cid,
        created_at=START,
        question=question,
        roles=[role],
        max_turns=4,
        context_window=4096,
        owner=owner,
        parent=ParentRef(conversation_id=parent, turn=1) if parent else None,
    )
    said = [MessageEvent(seq=1, at=START, turn=2, speaker=HUMAN, content="and trams?")]
    save(folder / f"{cid}.jsonl", header, said if cid == "kid" else [])
