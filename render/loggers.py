"""Ready ``on_clip`` hooks: render each committed clip in a layout and log it as a video.

Give one to the recorder and every recording window shows up in the experiment tracker as it
is written, rendered off the training thread by envreel's own renderer::

    from torch.utils.tensorboard import SummaryWriter
    from envreel.render.loggers import TensorBoardClips

    writer = SummaryWriter("runs/ppo")
    rec = Recorder("runs/ppo.zarr", num_envs=64, fps=30, video_length=200, video_interval=2000,
                   on_clip=TensorBoardClips(writer, Layout(envs="0-15", columns=4)))

    import wandb
    from envreel.render.loggers import WandbClips
    rec = Recorder(..., on_clip=WandbClips(wandb.init(project="ppo")))

Neither imports torch, TensorBoard or W&B itself: the writer and the W&B run are passed in.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envreel.schemas import open_run

from .frames import as_layout, frames
from .layout import Layout

__all__ = ["ClipVideos", "TensorBoardClips", "WandbClips"]

DEFAULT_LAYOUT = Layout(max_width=640, max_height=640)
"""Small enough to log: a tracker keeps every clip."""


class ClipVideos:
    """Renders a committed clip (a ``ClipEvent``) in a layout; base of the logger hooks.

    Args:
        layout: the layout (its ``clip`` field is set to each clip). Defaults to a grid of
            every env within 640×640.
        max_frames: longest video, frames; longer clips are strided. Defaults to 300.
    """

    def __init__(
        self, layout: Layout | Mapping | str | None = None, *, max_frames: int = 300
    ) -> None:
        self.layout = as_layout(layout) if layout is not None else DEFAULT_LAYOUT
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(f"max_frames must be a positive int, got {max_frames!r}")
        self.max_frames = max_frames

    def clip_layout(self, event: Any) -> Layout:
        stride = max(self.layout.stride, -(-event.num_frames // self.max_frames))
        return self.layout.replace(clip=event.clip, stride=stride)

    def video(self, event: Any) -> tuple[np.ndarray, float]:
        """(T, H, W, 3) uint8 frames of the clip, and their fps."""
        source = frames(open_run(event.url), self.clip_layout(event), prefetch=False)
        return np.stack(list(source)), source.fps

    def __call__(self, event: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class TensorBoardClips(ClipVideos):
    """Logs each clip with ``SummaryWriter.add_video`` (TensorBoard; needs moviepy there).

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (or tensorboardX's).
        layout, max_frames: see :class:`ClipVideos`.
        tag: the tag prefix; each clip logs as ``{tag}/clip_{id}`` at its first step.
            Defaults to "envreel".
    """

    def __init__(
        self,
        writer: Any,
        layout: Layout | Mapping | str | None = None,
        *,
        tag: str = "envreel",
        max_frames: int = 300,
    ) -> None:
        super().__init__(layout, max_frames=max_frames)
        if not hasattr(writer, "add_video"):
            raise TypeError(f"writer must have add_video (a SummaryWriter), got {writer!r}")
        self.writer, self.tag = writer, tag

    def __call__(self, event: Any) -> None:
        video, fps = self.video(event)
        # add_video takes (N, T, C, H, W), uint8 in [0, 255]
        self.writer.add_video(
            f"{self.tag}/clip_{event.clip}",
            video.transpose(0, 3, 1, 2)[None],
            global_step=event.start_step,
            fps=max(1, round(fps)),
        )
        self.writer.flush()


class WandbClips(ClipVideos):
    """Logs each clip to a W&B run as an mp4 (``wandb.Video``), rendered by envreel.

    Args:
        run: a W&B run (``wandb.init(...)``).
        layout, max_frames: see :class:`ClipVideos`.
        key: the key clips log under; the clip id and its first step log beside it.
            Defaults to "envreel/clip".
    """

    def __init__(
        self,
        run: Any,
        layout: Layout | Mapping | str | None = None,
        *,
        key: str = "envreel/clip",
        max_frames: int = 300,
    ) -> None:
        super().__init__(layout, max_frames=max_frames)
        if not hasattr(run, "log"):
            raise TypeError(f"run must be a W&B run (wandb.init()), got {run!r}")
        self.run, self.key = run, key

    def __call__(self, event: Any) -> None:
        import wandb

        from .api import render

        with tempfile.TemporaryDirectory(prefix="envreel-wandb-") as tmp:
            path = Path(tmp) / f"clip_{event.clip:05d}.mp4"
            result = render(open_run(event.url), self.clip_layout(event), path, progress=False)
            self.run.log(
                {
                    self.key: wandb.Video(str(path), fps=round(result.fps), format="mp4"),
                    f"{self.key}_id": event.clip,
                    f"{self.key}_step": event.start_step,
                }
            )
