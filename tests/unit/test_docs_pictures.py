"""The commands docs/rendering.md shows under its pictures give the layouts the pictures were
made with (tools/readme_images.py): a reader who runs one gets that picture."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from envreel.render import Layout
from envreel.tools.readme_images import PICTURES

DOC = Path(__file__).resolve().parents[2] / "docs" / "rendering.md"


def _pairs(args: list[str]) -> set[tuple[str, str]]:
    """Flags and their values, order aside (``--markers`` alone pairs with "")."""
    pairs, i = set(), 0
    while i < len(args):
        flag = args[i]
        value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else None
        if value is not None:
            try:
                value = repr(float(value))  # 10 and 10.0
            except ValueError:
                pass
        pairs.add((flag, value or ""))
        i += 2 if value is not None else 1
    return pairs


def _documented() -> dict[str, list[str]]:
    """Picture name -> the flags of the command shown with it."""
    text = DOC.read_text()
    shown = {}
    for name, command in re.findall(r"!\[\w+\]\(([\w.]+)\) \| `(envreel render [^`]+)`", text):
        shown[name] = shlex.split(command)[4:]
    gif = re.search(r"The GIF at the top of the README: `(envreel render [^`]+)`", text)
    assert gif, "rendering.md no longer shows the README GIF's command"
    shown["demo.gif"] = shlex.split(gif.group(1))[4:]
    return shown


@pytest.mark.parametrize("name", [n for n in PICTURES])
def test_each_pictures_command_gives_its_layout(name: str) -> None:
    documented = _documented()
    assert name in documented, f"rendering.md shows no command for {name}"
    fields, _ = PICTURES[name]
    assert _pairs(documented[name]) == _pairs(Layout(**fields).command_args())
