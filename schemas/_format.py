"""The store layout as data: names, versions, array table and limits.

Everything that writes, reads or validates a store takes the layout from here, so the three cannot
drift apart. ``FORMAT.md`` beside this file explains it for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMAT_NAME = "envreel.run"
FORMAT_VERSION = (1, 1)
"""(major, minor). A reader accepts any minor of its major and refuses a newer major.

1.1 added ``spec.env_ids`` (the simulator's env index of each stored env); 1.0 stores, which
have none, read as env ids ``0..N-1``.
"""

ATTR_KEY = "envreel"
"""Root-group attribute holding the static description of the run (written once)."""
STATE_KEY = "envreel_state"
"""Root-group attribute holding the commit record: committed frames, clips, counters."""

CAMERA_CONVENTION = "opengl"
"""Stored poses are camera-to-world, camera looks along its -Z with +Y up in the image."""
WORLD_UP = "+z"

# Codecs that every zarr v3 reader knows without registration (zarr v3 core specification and
# its standard extensions). Anything else in a store is reported by validate().
STANDARD_CODECS = frozenset(
    {"bytes", "transpose", "zstd", "blosc", "gzip", "crc32c", "sharding_indexed"}
)
NUMERIC_DTYPES = frozenset(
    {
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint16",
        "uint32",
        "uint64",
        "float32",
        "float64",
    }
)

# Limits that keep a hostile or broken store from asking for absurd memory or time. They are far
# above what a real run needs (10^8 frames is 38 days at 30 fps).
MAX_FRAMES = 100_000_000
MAX_ENVS = 1 << 20
MAX_ENV_ID = (1 << 31) - 1
"""Largest global env id (``env_id_offset + env_ids[i]``): fits an int32 and any real sim."""
MAX_IMAGE_SIDE = 16384
MAX_BLOCK_FRAMES = 4096
MAX_BLOCK_BYTES = 4 << 30
MAX_METADATA_BYTES = 16 << 20
MAX_CLIPS = 1_000_000
MAX_SCALARS = 256

SCALAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ENV_SCALARS = ("reward", "terminated", "truncated", "episode", "episode_step", "stale")
"""The per-env arrays every run has, read by these names: user scalars cannot take them."""
COUNTERS = ("dropped_frames", "write_errors")
"""Counters every store carries (non-negative ints); writers may add more."""


@dataclass(frozen=True)
class ArraySpec:
    """One array of the layout.

    Attributes:
        path: path inside the root group, e.g. ``"env/frames"``.
        dims: symbolic shape; ``"T"`` frames, ``"N"`` envs, ``"H"``/``"W"`` env frame size,
            ``"Hg"``/``"Wg"`` global frame size, ints are literal sizes.
        dtype: numpy dtype name.
        doc: one line for FORMAT.md and error messages.
    """

    path: str
    dims: tuple[str | int, ...]
    dtype: str
    doc: str

    @property
    def per_frame(self) -> bool:
        return bool(self.dims) and self.dims[0] == "T"


ENV_FRAMES = ArraySpec("env/frames", ("T", "N", "H", "W", 3), "uint8", "per-env RGB frames")
GLOBAL_FRAMES = ArraySpec("global/frames", ("T", "Hg", "Wg", 3), "uint8", "global-camera RGB")

FRAME_ARRAYS = (
    ArraySpec("frame/step", ("T",), "int64", "simulation step index of the frame"),
    ArraySpec("frame/sim_time", ("T",), "float64", "simulation time of the frame, seconds"),
    ArraySpec("frame/wall_time", ("T",), "float64", "wall-clock capture time, Unix seconds"),
    ArraySpec("frame/clip", ("T",), "int32", "id of the recording window (clip)"),
)
ENV_ARRAYS = (
    ArraySpec("env/reward", ("T", "N"), "float32", "reward of the step that led to the frame"),
    ArraySpec("env/terminated", ("T", "N"), "bool", "episode terminated at this step"),
    ArraySpec("env/truncated", ("T", "N"), "bool", "episode truncated (time out) at this step"),
    ArraySpec("env/episode", ("T", "N"), "int32", "episode index of the env, from 0"),
    ArraySpec("env/episode_step", ("T", "N"), "int32", "step within the episode, from 0"),
    ArraySpec("env/stale", ("T", "N"), "bool", "frame was rendered before the env's reset"),
)
SCALAR_GROUP = "env/scalars"
SCALAR_DTYPE = "float32"

ENV_ORIGINS = ArraySpec("scene/env_origins", ("N", 3), "float64", "env origins in world, metres")
ENV_POSE = ArraySpec("camera/env/pose", ("N", 4, 4), "float64", "per-env camera-to-world")
ENV_POSE_PER_FRAME = ArraySpec(
    "camera/env/pose", ("T", "N", 4, 4), "float64", "per-env camera-to-world, per frame"
)
ENV_INTRINSICS = ArraySpec("camera/env/intrinsics", ("N", 3, 3), "float64", "per-env pinhole K")
GLOBAL_POSE = ArraySpec("camera/global/pose", (4, 4), "float64", "global camera-to-world")
GLOBAL_POSE_PER_FRAME = ArraySpec(
    "camera/global/pose", ("T", 4, 4), "float64", "global camera-to-world, per frame"
)
GLOBAL_INTRINSICS = ArraySpec("camera/global/intrinsics", (3, 3), "float64", "global pinhole K")


def scalar_spec(name: str) -> ArraySpec:
    """The array spec of the user scalar ``name``."""
    return ArraySpec(f"{SCALAR_GROUP}/{name}", ("T", "N"), SCALAR_DTYPE, f"user scalar {name!r}")


def concrete_shape(spec: ArraySpec, sizes: dict[str, int]) -> tuple[int, ...]:
    """Replace the symbolic dims of ``spec`` with ``sizes``."""
    return tuple(d if isinstance(d, int) else sizes[d] for d in spec.dims)
