"""envreel: record what thousands of parallel simulation envs see; render it later, anywhere.

The package's rooms, each its own subpackage:

* ``envreel.capture`` — in the simulator: :class:`~envreel.capture.Recorder`, and the Isaac Lab
  adapter ``envreel.capture.isaaclab``;
* ``envreel.schemas`` — the store format: :func:`~envreel.schemas.open_run`,
  :class:`~envreel.schemas.Run`, ``validate``;
* ``envreel.render`` — on any CPU: :class:`~envreel.render.Layout`,
  :func:`~envreel.render.render`, :func:`~envreel.render.frames`, contact sheets;
* ``envreel.tools`` — the ``envreel`` command line, the demo, the benchmarks;
* ``envreel.errors`` — every error envreel raises.

The names below are re-exported here and imported on first use, so ``import envreel`` stays
cheap and a renderer-only install never imports torch.

Example:
    >>> import envreel
    >>> envreel.__version__ >= "0.2"
    True
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from envreel.errors import (
    CorruptChunkError,
    EnvreelError,
    RecorderError,
    RenderError,
    SimulatorError,
    StoreFormatError,
)

from . import errors

__version__ = "0.2.0"

# In a source checkout the rooms sit beside this folder, and pyproject.toml maps them into this
# package when it is installed. Where this folder is imported straight from the checkout
# (``python -m envreel.tools.…`` run there, with envreel installed as a plain wheel or not at
# all), the checkout root joins the package's path so ``envreel.capture`` & co. still resolve.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_ROOT, "pyproject.toml")) and os.path.isfile(
    os.path.join(_ROOT, "schemas", "__init__.py")
):
    __path__.append(_ROOT)

if TYPE_CHECKING:
    from envreel.capture import Recorder
    from envreel.render import Layout, contact_sheet, frames, render, render_envs
    from envreel.schemas import Run, open_run, validate

_LAZY = {
    "Recorder": "envreel.capture",
    "Run": "envreel.schemas",
    "open_run": "envreel.schemas",
    "validate": "envreel.schemas",
    "Layout": "envreel.render",
    "render": "envreel.render",
    "render_envs": "envreel.render",
    "frames": "envreel.render",
    "contact_sheet": "envreel.render",
}

__all__ = [
    "__version__",
    "errors",
    "Recorder",
    "Run",
    "open_run",
    "validate",
    "Layout",
    "render",
    "render_envs",
    "frames",
    "contact_sheet",
    "EnvreelError",
    "StoreFormatError",
    "CorruptChunkError",
    "RecorderError",
    "RenderError",
    "SimulatorError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envreel' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
