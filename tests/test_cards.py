"""Role cards: the shipped four load; every kind of bad card is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents import ROLE_NAMES, load_card, load_roster, parse_verdict
from common.errors import ConfigError


def test_the_four_shipped_cards_load_in_roster_order() -> None:
    cards = load_roster()
    assert [c.name for c in cards] == list(ROLE_NAMES)
    assert [c.name for c in cards if c.gives_verdict] == ["critic"]
    assert all(c.model.max_tokens <= 160 for c in cards)


def test_a_subset_of_roles(tmp_path: Path) -> None:
    assert [c.name for c in load_roster(None, ["writer", "critic"])] == ["critic", "writer"]
    with pytest.raises(ConfigError, match="role 'judge' has no card"):
        load_roster(None, ["judge"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: judge\ndescription: judges everything fairly\ninstructions: be fair always\n",
            "field 'name': Value error, unknown role 'judge'",
        ),
        ("name: critic\ndescription: [unclosed\n", "not valid YAML"),
        ("- a list\n", "expected a mapping of fields, got list"),
        (
            "name: critic\ndescription: checks things well\n"
            "instructions: check it all\nmood: grumpy\n",
            "field 'mood': Extra inputs are not permitted",
        ),
        (
            "name: critic\ndescription: short\ninstructions: check it all please\n",
            "field 'description'",
        ),
    ],
)
def test_bad_cards_name_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_card(path)
    assert str(caught.value).startswith(f"role card {path}")
    assert expected in str(caught.value)


def test_two_cards_for_one_role_are_refused(tmp_path: Path) -> None:
    for n in (1, 2):
        (tmp_path / f"{n}.yaml").write_text(
            "name: critic\ndescription: checks the reasoning\ninstructions: check it all\n"
        )
    with pytest.raises(ConfigError, match="two cards for role 'critic'"):
        load_roster(tmp_path)


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("ACCEPT: fine", "ACCEPT"),
        ("  **revise**: more data", "REVISE"),
        ("I accept", None),
        ("REVISED plan", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, verdict: str | None) -> None:
    assert parse_verdict(text) == verdict
