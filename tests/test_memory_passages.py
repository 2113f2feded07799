"""Splitting documents into passages: pure functions, no store, no model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roundtable.memory import split_passages
from roundtable.memory.passages import estimate_tokens


def test_paragraphs_are_packed_and_headings_start_passages() -> None:
    text = "Para one.\n\nPara two.\n\n# Head\n\nPara three."

    passages = split_passages(text, source="s.md", max_tokens=50)

    assert [(p.source, p.position, p.line, p.text) for p in passages] == [
        ("s.md", 0, 1, "Para one.\n\nPara two."),
        ("s.md", 1, 5, "# Head\n\nPara three."),
    ]


def test_a_heading_stays_with_the_start_of_a_long_section() -> None:
    body = " ".join(f"Sentence number {i} is here." for i in range(40))

    passages = split_passages(f"## Long\n\n{body}", source="s.md", max_tokens=40)

    assert passages[0].text.startswith("## Long\n\nSentence number 0 ")
    assert all(estimate_tokens(p.text) <= 40 for p in passages)


def test_an_unbroken_run_of_characters_is_cut_too() -> None:
    passages = split_passages("x" * 500, source="s.txt", max_tokens=50)

    assert "".join("".join(p.text.split()) for p in passages) == "x" * 500
    assert all(estimate_tokens(p.text) <= 50 for p in passages)


_word = st.text(alphabet="abcdefghij.,!?", min_size=1, max_size=12)
_line = st.one_of(
    st.lists(_word, min_size=1, max_size=30).map(" ".join),
    st.lists(_word, min_size=1, max_size=4).map(lambda ws: "## " + " ".join(ws)),
    st.just(""),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_line, max_size=40), max_tokens=st.integers(min_value=8, max_value=80))
def test_passages_fit_and_lose_no_text(lines: list[str], max_tokens: int) -> None:
    text = "\n".join(lines)

    passages = split_passages(text, source="s.md", max_tokens=max_tokens)

    assert [p.position for p in passages] == list(range(len(passages)))
    assert all(estimate_tokens(p.text) <= max_tokens for p in passages)
    assert "".join("".join(p.text.split()) for p in passages) == "".join(text.split())
    assert [p.line for p in passages] == sorted(p.line for p in passages)
