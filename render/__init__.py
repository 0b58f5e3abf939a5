"""envreel.render: layouts chosen after the run, streamed to mp4, GIF, PNG frames, contact sheets.

CPU only. Imports numpy, Pillow and the store layer (``envreel.schemas``); never torch or
``envreel.capture``. ffmpeg (for mp4) is found on PATH or in imageio-ffmpeg when first needed.

The names below are the public API. Helpers stay importable from their modules
(``envreel.render.layout.parse_env_spec``, ``envreel.render._encode.find_ffmpeg``) but are not
part of it.

Example:
    >>> from envreel.render import Layout, render, contact_sheet            # doctest: +SKIP
    >>> render("runs/ant.zarr", Layout(envs="0-15", columns=4), "ant.mp4")  # doctest: +SKIP
    >>> render("runs/ant.zarr", Layout.preset("top16"), "best.gif")         # doctest: +SKIP
    >>> contact_sheet("runs/ant.zarr", "sheet.png", num_times=6)            # doctest: +SKIP
"""

from envreel.errors import RenderError

from .api import RenderResult, contact_sheet, render, render_envs
from .frames import FrameSource, Tile, frames
from .layout import PRESETS, Layout
from .loggers import ClipVideos, TensorBoardClips, WandbClips
from .show import Video, show

__all__ = [
    # what to show
    "Layout",
    "PRESETS",
    # the verbs
    "render",
    "render_envs",
    "contact_sheet",
    "RenderResult",
    "frames",
    "FrameSource",
    "Tile",
    "show",
    "Video",
    # training loggers (the writer or W&B run is passed in; nothing heavy is imported)
    "ClipVideos",
    "TensorBoardClips",
    "WandbClips",
    "RenderError",
]
