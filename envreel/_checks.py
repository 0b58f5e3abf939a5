"""Argument checks shared by every room: each says the value and what was expected.

``name`` is what the user wrote (``"num_envs"``, ``"EnvCameraCfg.width"``, ``"--columns"``), so
one check serves a keyword, a config field and a command-line flag alike. This module imports
nothing beyond the standard library.

Example:
    >>> check_int(3, "columns", minimum=1)
    3
    >>> check_number(0.5, "scale", minimum=0, exclusive_minimum=True)
    0.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TypeVar

__all__ = [
    "short",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "compact_ids",
    "first_duplicate",
]

T = TypeVar("T")


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is True or False; TypeError otherwise (1 and "yes" are not booleans)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {short(value)}")
    return value


def check_choice(value: T, name: str, choices: Sequence[T]) -> T:
    """``value`` if it is one of ``choices``; ValueError naming them otherwise."""
    if isinstance(value, list | dict | set) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {short(value)}")
    return value


def check_int(
    value: object,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    unit: str = "",
) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (either bound optional).

    Bools and floats are refused (TypeError), also ``3.0``: a count is an int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{_unit(unit)}, got {short(value)}")
    out = int(value)
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ValueError(f"{name} must be {_range(minimum, maximum)}{_unit(unit)}, got {out}")
    return out


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    unit: str = "",
) -> float:
    """``value`` as a finite float in range; ``exclusive_minimum`` makes ``minimum`` itself bad
    (``minimum=0, exclusive_minimum=True``: a positive number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number{_unit(unit)}, got {short(value)}")
    out = float(value)
    low_bad = minimum is not None and (out <= minimum if exclusive_minimum else out < minimum)
    if not math.isfinite(out) or low_bad or (maximum is not None and out > maximum):
        if minimum == 0 and exclusive_minimum and maximum is None:
            want = "a positive finite number"
        else:
            lo = "" if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum:g}"
            hi = "" if maximum is None else f"<= {maximum:g}"
            want = "a finite number " + " and ".join(p for p in (lo, hi) if p)
        raise ValueError(f"{name} must be {want.strip()}{_unit(unit)}, got {short(value)}")
    return out


def id_runs(ids: Sequence[int], sep: str = "-") -> list[str]:
    """Runs of consecutive ids, each ``"3"`` or ``"0-15"`` (``sep`` between first and last)."""
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}{sep}{ids[j]}")
        i = j + 1
    return parts


def compact_ids(ids: Sequence[int]) -> str:
    """Ids as runs of consecutive ids, ``"0-15"`` or ``"0,256,512,768"`` (the ``--envs`` form)."""
    return ",".join(id_runs(ids))


def first_duplicate(values: Iterable[T]) -> T | None:
    """The first value that appeared before, or None when all differ."""
    seen: set = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum} and {maximum}"
    if minimum is not None:
        return "positive" if minimum == 1 else f">= {minimum}"
    return f"<= {maximum}" if maximum is not None else "an int"


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""
