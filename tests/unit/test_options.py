"""The option declarations every room shares (envreel._options)."""

from __future__ import annotations

import dataclasses

import pytest

from envreel._options import check_options, option, options_table, spec, specs


@dataclasses.dataclass(frozen=True)
class Group:
    count: int = option(3, "how many", minimum=1, maximum=10)
    ratio: float = option(0.5, "a share", minimum=0.0, maximum=1.0)
    speed: float | None = option(
        None, "positive speed", kind="number", minimum=0, exclusive_minimum=True
    )
    mode: str = option("a", "the mode", choices=("a", "b"))
    flag: bool = option(False, "a switch")
    name: str = option("x", "a name")
    extra: dict = option(default_factory=dict, doc="free-form")

    def __post_init__(self) -> None:
        check_options(self, prefix="Group.")


def test_kinds_are_inferred_from_defaults_and_choices() -> None:
    kinds = {name: s.kind for name, s in specs(Group).items()}
    assert kinds == {
        "count": "int",
        "ratio": "number",
        "speed": "number",
        "mode": "choice",
        "flag": "bool",
        "name": "str",
        "extra": "any",
    }
    assert spec(Group, "speed").optional and not spec(Group, "count").optional


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"count": 0}, ValueError, "Group.count must be between 1 and 10, got 0"),
        ({"count": 2.0}, TypeError, "Group.count must be an int, got 2.0"),
        ({"count": True}, TypeError, "Group.count must be an int, got True"),
        ({"ratio": 2}, ValueError, "Group.ratio must be a finite number >= 0 and <= 1"),
        ({"speed": 0}, ValueError, "Group.speed must be a positive finite number, got 0"),
        ({"mode": "c"}, ValueError, "Group.mode must be one of ('a', 'b'), got 'c'"),
        ({"flag": 1}, TypeError, "Group.flag must be True or False, got 1"),
        ({"name": 3}, TypeError, "Group.name must be a string, got 3"),
    ],
)
def test_bad_values_name_the_field_and_the_expectation(kwargs, error, message) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        Group(**kwargs)


def test_values_are_normalised_once() -> None:
    g = Group(ratio=1, speed=2)
    assert isinstance(g.ratio, float) and g.speed == 2.0 and g.extra == {}


def test_describe_and_table() -> None:
    assert spec(Group, "count").describe() == "an int between 1 and 10"
    assert spec(Group, "speed").describe() == "a number > 0, or None"
    assert spec(Group, "mode").describe() == "one of 'a', 'b'"
    table = options_table(Group)
    assert "| `count` | `3` | an int between 1 and 10 | how many |" in table
    assert "| `extra` | `{}` |" in table
    with pytest.raises(KeyError, match="Group has no option 'nope'"):
        spec(Group, "nope")


def test_an_option_needs_a_doc_line() -> None:
    with pytest.raises(ValueError, match="needs a doc line"):
        option(1)
