"""The store's options, each declared once: RunSpec, Recorder and RecorderCfg share them.

An option group is a frozen dataclass of :func:`envreel._options.option` fields; building one
checks every value (the message names the field, with ``prefix``: ``"RecorderCfg.codec"``).
Checks that relate an option to the run's other facts (``envs_per_shard <= num_envs``, the block
size) stay in ``RunSpec``. Like all of schemas, it never imports torch or capture.

Example:
    >>> StoreOptions(codec="gzip").block_frames
    32
    >>> RankOptions(rank=2, world_size=2)
    Traceback (most recent call last):
    ValueError: rank 2 must be below world_size 2
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass

from envreel._options import check_options, option

from . import _format as F
from .geometry import QUAT_ORDERS

__all__ = ["CODECS", "QUAT_ORDERS", "ClockOptions", "StoreOptions", "PoseOptions", "RankOptions"]

CODECS = ("zstd", "blosc-lz4", "gzip", "none")
"""Compressors for frames and per-frame data; all are zarr v3 standard codecs."""

MAX_WORLD_SIZE = 1 << 16


@dataclass(frozen=True)
class ClockOptions:
    """How stored steps map to time: give ``fps`` or ``step_dt`` (``RunSpec`` derives the other)."""

    fps: float | None = option(
        None,
        "playback frames per second; None: round(1 / step_dt)",
        kind="number",
        minimum=0,
        exclusive_minimum=True,
    )
    step_dt: float | None = option(
        None,
        "simulated seconds per env step; None: 1 / fps",
        kind="number",
        minimum=0,
        exclusive_minimum=True,
    )
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)


@dataclass(frozen=True)
class StoreOptions:
    """How frames are chunked and compressed in the store."""

    codec: str = option("zstd", "compressor of frames and per-frame data", choices=CODECS)
    codec_level: int = option(3, "compression level of the codec", kind="int")
    block_frames: int = option(
        32,
        "frames per block: the unit of compression, commit and chunking",
        minimum=1,
        maximum=F.MAX_BLOCK_FRAMES,
    )
    envs_per_shard: int | None = option(
        None, "envs per shard of env/frames; None: all N envs in one shard", kind="int", minimum=1
    )
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)


@dataclass(frozen=True)
class PoseOptions:
    """How camera poses come in: their quaternion order, static or per frame."""

    quat_order: str = option(
        "xyzw", "quaternion order of the source, recorded for reference", choices=QUAT_ORDERS
    )
    env_pose_per_frame: bool = option(False, "per-env camera poses are stored per frame")
    global_pose_per_frame: bool = option(False, "the global camera pose is stored per frame")
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)


@dataclass(frozen=True)
class RankOptions:
    """This process's place in a multi-GPU run."""

    rank: int = option(0, "this process's rank in a multi-GPU run", minimum=0)
    world_size: int = option(1, "number of ranks", minimum=1, maximum=MAX_WORLD_SIZE)
    env_id_offset: int = option(
        0, "global id of local env 0 (rank × N under torchrun)", minimum=0, maximum=F.MAX_ENV_ID
    )
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)
        if self.rank >= self.world_size:
            raise ValueError(f"rank {self.rank} must be below world_size {self.world_size}")
