"""envreel.render: layouts chosen after the run, streamed to mp4, GIF, PNG frames, contact sheets.

CPU only. Imports numpy, Pillow and the store layer (``envreel.schemas``); never torch or
``envreel.capture``. ffmpeg (for mp4) is found on PATH or in imageio-ffmpeg when first needed.

Example:
    >>> from envreel.render import Layout, render, contact_sheet            # doctest: +SKIP
    >>> render("runs/ant.zarr", Layout(envs="0-15", columns=4), "ant.mp4")  # doctest: +SKIP
    >>> render("runs/ant.zarr", Layout.preset("top16"), "best.gif")         # doctest: +SKIP
    >>> contact_sheet("runs/ant.zarr", "sheet.png", num_times=6)            # doctest: +SKIP
"""

from envreel.errors import RenderError

from ._encode import find_ffmpeg
from .api import RenderResult, contact_sheet, render, render_envs
from .frames import FrameSource, Tile, frames
from .layout import PRESETS, Layout, parse_env_spec
from .show import Video, show

__all__ = [
    "Layout",
    "PRESETS",
    "render",
    "render_envs",
    "contact_sheet",
    "RenderResult",
    "frames",
    "FrameSource",
    "Tile",
    "show",
    "Video",
    "RenderError",
    "parse_env_spec",
    "find_ffmpeg",
]
