"""One declaration per option: a dataclass field that carries its doc, type, choices and bounds.

Every room declares its options once, as fields made by :func:`option` on a frozen dataclass
(an *option group*). The same declaration then serves everything that used to restate it:

* the group's ``__post_init__`` calls :func:`check_options` (each value checked once, the
  message naming the field and what was expected);
* the command line builds its flags' choices and ranges from :func:`spec` (``tools/cli.py``);
* the docs' option tables come from :func:`options_table` (a test keeps ``docs/`` equal to it).

This module imports nothing beyond the standard library, so schemas, capture and render all
use it.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Grid:
    ...     columns: int | None = option(None, "grid columns", minimum=1, maximum=4096)
    ...     order: str = option("given", "tile order", choices=("given", "ascending"))
    ...     def __post_init__(self) -> None:
    ...         check_options(self)
    >>> Grid(columns=4).columns
    4
    >>> Grid(order="up")
    Traceback (most recent call last):
    ValueError: order must be one of ('given', 'ascending'), got 'up'
    >>> spec(Grid, "columns").describe()
    'an int between 1 and 4096, or None'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import MISSING
from typing import Any

from envreel._checks import check_bool, check_choice, check_int, check_number, short

__all__ = [
    "OptionSpec",
    "option",
    "spec",
    "specs",
    "check_options",
    "adopt",
    "check_one",
    "options_table",
]

_KEY = "envreel.option"
KINDS = ("int", "number", "bool", "choice", "str", "any")


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What an option accepts, and what it means.

    Attributes:
        doc: one line for tables and ``--help``.
        kind: "int", "number", "bool", "choice", "str" or "any" (checked elsewhere).
        choices: the allowed values of a "choice" option.
        minimum: smallest allowed value of an "int" or "number" option.
        maximum: largest allowed value.
        exclusive_minimum: ``minimum`` itself is refused (a "number" > minimum).
        optional: None is allowed (it means the documented default behaviour).
        unit: unit named in messages ("bytes", "frames").
    """

    doc: str
    kind: str = "any"
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    optional: bool = False
    unit: str = ""

    def check(self, value: Any, name: str) -> Any:
        """``value`` normalised (an int as int, a number as float), or the error naming it."""
        if value is None and self.optional:
            return None
        if self.kind == "int":
            lo = None if self.minimum is None else int(self.minimum)
            hi = None if self.maximum is None else int(self.maximum)
            return check_int(value, name, minimum=lo, maximum=hi, unit=self.unit)
        if self.kind == "number":
            return check_number(
                value,
                name,
                minimum=self.minimum,
                maximum=self.maximum,
                exclusive_minimum=self.exclusive_minimum,
                unit=self.unit,
            )
        if self.kind == "bool":
            return check_bool(value, name)
        if self.kind == "choice":
            return check_choice(
                value, name, (None, *self.choices) if self.optional else self.choices
            )
        if self.kind == "str" and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {short(value)}")
        return value

    def describe(self) -> str:
        """What is allowed, in words: ``"an int between 1 and 4096, or None"``."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind in ("int", "number"):
            text = "an int" if self.kind == "int" else "a number"
            lo, hi = self.minimum, self.maximum
            if lo is not None and hi is not None and not self.exclusive_minimum:
                text += f" between {lo:g} and {hi:g}"
            elif lo is not None:
                text += f" {'>' if self.exclusive_minimum else '>='} {lo:g}"
                if hi is not None:
                    text += f" and <= {hi:g}"
            elif hi is not None:
                text += f" <= {hi:g}"
        elif self.kind == "bool":
            text = "True or False"
        elif self.kind == "str":
            text = "a string"
        else:
            text = "see the description"
        if self.unit:
            text += f" ({self.unit})"
        return text + (", or None" if self.optional else "")


def option(
    default: Any = MISSING,
    doc: str = "",
    *,
    default_factory: Callable[[], Any] | Any = MISSING,
    kind: str | None = None,
    choices: Sequence[Any] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    optional: bool | None = None,
    unit: str = "",
) -> Any:
    """A dataclass field declaring one option (see the module doc).

    ``kind`` defaults from the rest: "choice" when ``choices`` are given, else the type of
    ``default`` (bool, int, float → "number", str); "any" when nothing says. ``optional``
    defaults to ``default is None``.
    """
    if not doc:
        raise ValueError("an option needs a doc line")
    if kind is None:
        if choices:
            kind = "choice"
        elif isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int) and default is not MISSING:
            kind = "int"
        elif isinstance(default, float):
            kind = "number"
        elif isinstance(default, str):
            kind = "str"
        elif minimum is not None or maximum is not None:
            kind = "int"
        else:
            kind = "any"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    meta = OptionSpec(
        doc=doc,
        kind=kind,
        choices=tuple(choices),
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_minimum,
        optional=(default is None) if optional is None else optional,
        unit=unit,
    )
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={_KEY: meta})
    return dataclasses.field(default=default, metadata={_KEY: meta})


def specs(cls: type | object) -> dict[str, OptionSpec]:
    """Every declared option of a dataclass (or of an instance's class), in field order."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # any dataclass or instance
    return {f.name: f.metadata[_KEY] for f in fields if _KEY in f.metadata}


def spec(cls: type | object, name: str) -> OptionSpec:
    """The declaration of option ``name``; KeyError naming the options there are."""
    found = specs(cls)
    if name not in found:
        owner = cls if isinstance(cls, type) else type(cls)
        raise KeyError(f"{owner.__name__} has no option {name!r}; it has {sorted(found)}")
    return found[name]


def check_options(obj: object, *, prefix: str = "", skip: Sequence[str] = ()) -> None:
    """Check every declared option of dataclass ``obj`` and store the normalised values.

    Works on frozen dataclasses. Messages name ``prefix + field`` (``"RecorderCfg.fps"``).
    """
    for name, meta in specs(obj).items():
        if name in skip:
            continue
        value = meta.check(getattr(obj, name), prefix + name)
        object.__setattr__(obj, name, value)


def adopt(target: object, group: type, *, prefix: str = "", skip: Sequence[str] = ()) -> Any:
    """Check ``target``'s attributes named like ``group``'s fields through ``group``.

    Builds ``group(**those attributes, prefix=prefix)`` (a group takes the message prefix as an
    ``InitVar``), writes the normalised values back onto ``target`` (a frozen dataclass too) and
    returns the group. Fields ``target`` lacks, or named in ``skip``, keep the group's default.
    This is how a class that restates options for its users (a config, a spec) checks them with
    the one declaration of each.
    """
    names = [
        f.name
        for f in dataclasses.fields(group)
        if f.init and f.name not in skip and hasattr(target, f.name)
    ]
    built = group(**{name: getattr(target, name) for name in names}, prefix=prefix)
    for name in names:
        object.__setattr__(target, name, getattr(built, name))
    return built


def check_one(cls: type, name: str, value: Any, label: str, *, optional: bool | None = None) -> Any:
    """``value`` checked by option ``name`` of ``cls``, messages naming ``label``.

    ``optional=True`` also accepts None: a config whose None means "decide later" (e.g. a block
    size picked from the frame size) shares the declaration of the value it decides.
    """
    meta = spec(cls, name)
    if optional is not None:
        meta = dataclasses.replace(meta, optional=optional)
    return meta.check(value, label)


def options_table(cls: type, *, skip: Sequence[str] = ()) -> str:
    """A markdown table of ``cls``'s options: name, default, what is allowed, meaning."""
    rows = ["| option | default | allowed | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if _KEY not in f.metadata or f.name in skip:
            continue
        meta: OptionSpec = f.metadata[_KEY]
        if f.default is not MISSING:
            default = repr(f.default)
        elif f.default_factory is not MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        allowed = meta.describe().replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{default}` | {allowed} | {meta.doc} |")
    return "\n".join(rows) + "\n"
