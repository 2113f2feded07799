"""Word n-gram containment: the one measure of copying shared by the copy guard and the report."""

from __future__ import annotations

from roundtable.conversations.overlap import containment, distinctness, ngrams, words


def test_words_ignore_case_punctuation_and_markup() -> None:
    assert words("**Buses** carry 12,000 riders; it's fine.") == [
        "buses",
        "carry",
        "12",
        "000",
        "riders",
        "it's",
        "fine",
    ]


def test_a_verbatim_copy_is_fully_contained_and_adds_nothing() -> None:
    earlier = ["A congestion charge cut traffic by 30% in Stockholm within a year."]
    copy = "a congestion charge cut traffic by 30% in Stockholm within a year"
    assert containment(copy, earlier) == 1.0
    assert distinctness(copy, earlier) == 0.0


def test_a_reply_that_copies_part_of_a_long_turn_is_still_mostly_contained() -> None:
    long_turn = " ".join(f"point {i} is about something else entirely" for i in range(30))
    reply = "point 3 is about something else entirely"
    assert containment(reply, [long_turn]) == 1.0  # containment, not Jaccard


def test_new_text_is_distinct_and_short_texts_still_compare() -> None:
    assert containment("Parking garages cost 30 million euros.", ["Buses run hourly."]) == 0.0
    assert distinctness("Yes.", ["Yes."]) == 0.0
    assert ngrams("Yes.") == {("yes",)}
    assert distinctness("", ["anything"]) is None
    half = containment("one two three four five six", ["one two three four"])
    assert 0.4 < half < 0.6  # two of four trigrams seen
