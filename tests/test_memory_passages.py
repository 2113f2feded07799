"""Splitting documents into passages: pure functions, no store, no model."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from roundtable.memory import read_document, split_passages
from roundtable.memory.passages import document_passages, estimate_tokens
from tests.support.docfiles import make_pdf


def test_each_paragraph_and_item_is_its_own_passage_under_its_heading() -> None:
    text = "Para one.\n\nPara two.\n- item a\n- item b\n\n# Head\n\nPara three."

    passages = split_passages(text, source="s.md", max_tokens=50)

    assert [(p.position, p.line, p.heading, p.text) for p in passages] == [
        (0, 1, None, "Para one."),
        (1, 3, None, "Para two."),
        (2, 4, None, "- item a"),
        (3, 5, None, "- item b"),
        (4, 7, "Head", "# Head\n\nPara three."),
    ]


def test_a_long_paragraph_becomes_sentence_windows_with_one_sentence_overlap() -> None:
    body = "\n".join(f"Fact {i} is short." for i in range(12))

    passages = split_passages(f"## Long\n\n{body}", source="s.md", max_tokens=24)

    assert passages[0].text.startswith("## Long\n\nFact 0 is short.")
    assert all(estimate_tokens(p.text) <= 24 for p in passages)
    assert all(p.heading == "Long" for p in passages)
    for before, after in itertools.pairwise(passages):
        repeated = after.text[: after.overlap].strip()
        assert repeated and before.text.endswith(repeated)
    # The line of a window is the line of its first new sentence (Fact i is on line 3 + i).
    for p in passages[1:]:
        assert p.line == 3 + int(p.text[p.overlap :].split()[1])
    assert passages[1].embedding_text().startswith("Long\n")


def test_an_unbroken_run_of_characters_is_cut_too() -> None:
    passages = split_passages("x" * 500, source="s.txt", max_tokens=50)

    assert "".join("".join(p.text[p.overlap :].split()) for p in passages) == "x" * 500
    assert all(estimate_tokens(p.text) <= 50 for p in passages)


def test_a_pdf_s_passages_carry_their_page(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", [["Trams are dear."], ["Buses are cheap."]])

    passages = document_passages(read_document(pdf))

    assert [(p.position, p.page, p.line, p.text.strip()) for p in passages] == [
        (0, 1, 1, "Trams are dear."),
        (1, 2, 1, "Buses are cheap."),
    ]


_word = st.text(alphabet="abcdefghij.,!?", min_size=1, max_size=12)
_line = st.one_of(
    st.lists(_word, min_size=1, max_size=30).map(" ".join),
    st.lists(_word, min_size=1, max_size=4).map(lambda ws: "## " + " ".join(ws)),
    st.lists(_word, min_size=1, max_size=6).map(lambda ws: "- " + " ".join(ws)),
    st.just(""),
)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_line, max_size=40), max_tokens=st.integers(min_value=8, max_value=80))
def test_splitting_never_loses_or_duplicates_text_beyond_the_overlap(
    lines: list[str], max_tokens: int
) -> None:
    text = "\n".join(lines)

    passages = split_passages(text, source="s.md", max_tokens=max_tokens)

    assert [p.position for p in passages] == list(range(len(passages)))
    assert all(estimate_tokens(p.text) <= max_tokens for p in passages)
    # Without each passage's overlap, the passages are the text: nothing lost, nothing twice.
    assert "".join("".join(p.text[p.overlap :].split()) for p in passages) == "".join(text.split())
    assert all(p.overlap == 0 or p.text[: p.overlap].strip() for p in passages)
    assert [p.line for p in passages] == sorted(p.line for p in passages)
