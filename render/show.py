"""``show(run, layout)``: a layout played inline in a notebook (Jupyter, VS Code, Colab).

The layout is rendered to an H.264 mp4 in memory (envreel's own renderer) and shown as an HTML
``<video>`` holding it, so the notebook file keeps the picture and nothing else is needed to see
it again. Works without IPython: the returned object has ``_repr_html_``, which notebooks call.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envreel.schemas import Run

from ._encode import check_output, write_whole
from .api import render
from .layout import Layout

__all__ = ["Video", "show"]

MAX_BYTES = 50 << 20
"""Largest video embedded in a notebook (its file holds every byte of it)."""


class Video:
    """An mp4 shown by notebooks (``_repr_html_``); ``data`` holds its bytes.

    Attributes:
        data: the mp4 file's bytes.
        width, height: frame size in pixels.
        frames: number of frames.
        fps: frames per second.
    """

    def __init__(self, data: bytes, *, width: int, height: int, frames: int, fps: float):
        self.data, self.width, self.height, self.frames, self.fps = data, width, height, frames, fps

    def _repr_html_(self) -> str:
        src = "data:video/mp4;base64," + base64.b64encode(self.data).decode("ascii")
        return (
            f'<video controls autoplay loop muted playsinline width="{self.width}" '
            f'height="{self.height}" src="{html.escape(src)}"></video>'
        )

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Writes the mp4 to ``path``, like every output: through a temporary name, renamed
        when complete.

        Args:
            path: the file to write.
            overwrite: replace an existing file; without it an existing ``path`` is an error.
                Defaults to False.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
        """
        out = check_output(Path(path), "mp4", overwrite=overwrite)
        return write_whole(out, lambda tmp: tmp.write_bytes(self.data))

    def __repr__(self) -> str:
        return (
            f"Video({self.width}×{self.height}, {self.frames} frames at {self.fps:g} fps, "
            f"{len(self.data) / 1e6:.1f} MB)"
        )


def show(
    run: Run | str | os.PathLike | list,
    layout: Layout | Mapping | str | None = None,
    **options: Any,
) -> Video:
    """A layout of ``run`` as a video a notebook plays inline.

    Args:
        run: an open ``Run``, a store path / URL, or a list of rank stores.
        layout: as for :func:`envreel.render.render`. Defaults to None (every env).
        **options: passed to :func:`envreel.render.render` (``crf``, ``preset``...).

    Returns:
        A :class:`Video` (displayed when it is a cell's value).

    Raises:
        ValueError: as for ``render``; also a video over 50 MB (show fewer envs or frames: a
            notebook keeps every byte).

    Example:
        >>> show("envreel-demo/run.zarr", Layout(envs="0-3", stop=60))  # doctest: +SKIP
    """
    options.setdefault("progress", False)
    with tempfile.TemporaryDirectory(prefix="envreel-show-") as tmp:
        path = Path(tmp) / "show.mp4"
        result = render(run, layout, path, **options)
        data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"the video is {len(data) / 1e6:.0f} MB, more than a notebook should hold "
            f"({MAX_BYTES >> 20} MB): show fewer envs or frames (envs=, stop=, stride=)"
        )
    return Video(
        data, width=result.width, height=result.height, frames=result.frames[0], fps=result.fps
    )
