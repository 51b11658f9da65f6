"""The items of a rule's comma list, as matching and validation read them (docs/behaviour.md,
"Address lists", "Ports", "Directive validation"): one parser, `list_items`, for both."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dsiem_sql.config.netparse import list_items
from dsiem_sql.config.validate import _bare_items

# lists made of the characters that matter: separators, negations, blanks, digits, dots
LISTS = st.text(alphabet=",! \t1.0/:a", max_size=30)


def documented_matching_items(value: str) -> list[tuple[bool, str]]:
    """The items as docs/behaviour.md, "Address lists", reads them, step by step."""
    items = []
    for raw in value.split(","):
        item = raw.strip()
        negated = item.startswith("!")
        if negated:
            item = item.replace("!", "")  # removes every '!'
        items.append((negated, item))
    return items


@given(LISTS)
def test_matching_reads_the_items_as_documented(value: str) -> None:
    assert list(list_items(value)) == documented_matching_items(value)


@given(LISTS)
def test_validation_removes_every_bang_then_trims(value: str) -> None:
    assert _bare_items(value) == [raw.replace("!", "").strip() for raw in value.split(",")]


def test_examples() -> None:
    assert list(list_items(" !10.0.0.0/8, 1.2.3.4 ,!!22")) == [
        (True, "10.0.0.0/8"), (False, "1.2.3.4"), (True, "22")]
    assert list(list_items("8!0")) == [(False, "8!0")]  # only a leading `!` negates
    assert _bare_items("8!0, ! 22") == ["80", "22"]  # validation drops every `!`
    assert list(list_items("")) == [(False, "")]
