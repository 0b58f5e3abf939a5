"""``RunSpec``: the static facts of a run, fixed when the store is created."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, cast

from envreel._checks import check_int, first_duplicate
from envreel._options import adopt

from . import _format as F
from .options import CODECS, ClockOptions, PoseOptions, RankOptions, StoreOptions

__all__ = ["RunSpec", "CODECS"]


def _np_int():
    import numpy as np

    return np.integer


def _shape2(name: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be (height, width), got {value!r}")
    h, w = value
    return (
        check_int(h, f"{name}[0] (height)", minimum=1, maximum=F.MAX_IMAGE_SIDE),
        check_int(w, f"{name}[1] (width)", minimum=1, maximum=F.MAX_IMAGE_SIDE),
    )


def _short(ids: Any, limit: int = 8) -> str:
    """``ids`` for an error message: at most ``limit`` items, then how many there are."""
    items = list(ids)
    if len(items) <= limit:
        return repr(items)
    return f"[{', '.join(map(repr, items[:limit]))}, ...] ({len(items)} items)"


def _env_ids(value: Any, num_envs: int) -> tuple[int, ...] | None:
    """Check ``env_ids`` against ``num_envs``; a tuple of ints, or None."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, Sequence):
        value = value.tolist()  # numpy arrays and torch tensors, without importing torch
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(
            f"env_ids must be a sequence of ints (the simulator's index of each stored env) "
            f"or None, got {value!r} ({type(value).__name__})"
        )
    if len(value) != num_envs:
        raise ValueError(
            f"env_ids must hold one id per stored env (num_envs={num_envs}), got {len(value)}: "
            f"{_short(value)}"
        )
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | _np_int()):
            raise TypeError(f"env_ids[{i}] must be an int, got {v!r} ({type(v).__name__})")
    ids = tuple(int(v) for v in value)
    for i, v in enumerate(ids):
        if not 0 <= v <= F.MAX_ENV_ID:
            raise ValueError(f"env_ids[{i}] is {v}; env ids must be between 0 and {F.MAX_ENV_ID}")
    if len(set(ids)) != len(ids):
        dup = first_duplicate(ids)
        raise ValueError(f"env_ids lists env {dup} more than once: {_short(ids)}")
    return ids


def _json_bounded(name: str, value: Any, *, limit: int = 1 << 20) -> dict:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of JSON values, got {type(value).__name__}")
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must hold only JSON values (str, number, list, dict): {exc}"
        ) from None
    if len(text) > limit:
        raise ValueError(f"{name} is {len(text)} bytes as JSON; at most {limit} are stored")
    out = json.loads(text)
    from ._store import _depth

    if _depth(out) > 100:
        raise ValueError(f"{name} nests deeper than 100 levels; readers refuse deeper JSON")
    return out


_CODEC_LEVELS = {"zstd": (-131072, 22), "blosc-lz4": (0, 9), "gzip": (0, 9)}
"""The levels each codec takes (zstd's negative levels trade size for speed)."""


@dataclass(frozen=True)
class RunSpec:
    """The static facts of a run. Checked on construction; round-trips through ``to_dict``.

    Args:
        num_envs: envs recorded per frame (N).
        env_frame_shape: (height, width) of each env's frame.
        fps: playback frames per second. Defaults to round(1 / step_dt) when step_dt is given.
        step_dt: simulated seconds between env steps. Defaults to 1 / fps.
        global_frame_shape: (height, width) of the global camera, or None for no global view.
            Defaults to None.
        block_frames: frames per time block: the unit of commit, chunking and sharding.
            Defaults to 32.
        scalar_names: names of extra per-env scalars recorded each frame. Defaults to ().
        codec: compressor, one of ``CODECS``. Defaults to "zstd".
        codec_level: compression level. Defaults to 3.
        envs_per_shard: envs per shard of ``env/frames`` (each block of N envs is written as
            ceil(N / envs_per_shard) objects). Defaults to None, meaning all N in one shard.
        env_pose_per_frame: per-env camera poses are stored per frame. Defaults to False.
        global_pose_per_frame: the global camera pose is stored per frame. Defaults to False.
        quat_order: quaternion order of the source ("xyzw" or "wxyz"), recorded for reference;
            stored poses are matrices. Defaults to "xyzw".
        rank: this process's rank in a multi-GPU run. Defaults to 0.
        world_size: number of ranks. Defaults to 1.
        env_id_offset: global id of local env 0 (rank × N under torchrun). Defaults to 0.
        env_ids: the simulator's env index of each stored env, (N,) unique non-negative ints,
            e.g. (0, 256, 512, 768) for 4 envs recorded of 1,024; the global id of stored env i
            is ``env_id_offset + env_ids[i]``. Defaults to None, meaning 0..N-1.
        source: free-form description of the producer (simulator, versions, renderer).
            Defaults to {}.
        metadata: free-form user metadata (JSON values). Defaults to {}.
    """

    num_envs: int
    env_frame_shape: tuple[int, int]
    fps: float | None = None
    step_dt: float | None = None
    global_frame_shape: tuple[int, int] | None = None
    block_frames: int = 32
    scalar_names: tuple[str, ...] = ()
    codec: str = "zstd"
    codec_level: int = 3
    envs_per_shard: int | None = None
    env_pose_per_frame: bool = False
    global_pose_per_frame: bool = False
    quat_order: str = "xyzw"
    rank: int = 0
    world_size: int = 1
    env_id_offset: int = 0
    env_ids: tuple[int, ...] | None = None
    source: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # every option is checked by its one declaration (schemas/options.py); what relates it
        # to the other facts of the run is checked here
        set_ = object.__setattr__
        set_(self, "num_envs", check_int(self.num_envs, "num_envs", minimum=1, maximum=F.MAX_ENVS))
        set_(self, "env_frame_shape", _shape2("env_frame_shape", self.env_frame_shape))
        if self.global_frame_shape is not None:
            set_(self, "global_frame_shape", _shape2("global_frame_shape", self.global_frame_shape))
        self._resolve_clock()
        adopt(self, StoreOptions)
        levels = _CODEC_LEVELS.get(self.codec)
        if levels is not None and not levels[0] <= self.codec_level <= levels[1]:
            raise ValueError(
                f"codec_level {self.codec_level} is out of range for codec {self.codec!r}: "
                f"expected {levels[0]}..{levels[1]}"
            )
        self._check_scalar_names()
        shard = self.envs_per_shard if self.envs_per_shard is not None else self.num_envs
        set_(self, "envs_per_shard", check_int(shard, "envs_per_shard", maximum=self.num_envs))
        self._check_block_size()
        adopt(self, PoseOptions)
        adopt(self, RankOptions)
        set_(self, "env_ids", _env_ids(self.env_ids, self.num_envs))
        top = self.num_envs - 1 if self.env_ids is None else max(self.env_ids)
        if self.env_id_offset + top > F.MAX_ENV_ID:
            raise ValueError(
                f"env_id_offset {self.env_id_offset} + env id {top} gives global env id "
                f"{self.env_id_offset + top}; global env ids must be at most {F.MAX_ENV_ID}"
            )
        set_(self, "source", _json_bounded("source", self.source, limit=64 << 10))
        set_(self, "metadata", _json_bounded("metadata", self.metadata))

    def _resolve_clock(self) -> None:
        clock = adopt(self, ClockOptions)
        fps, dt = clock.fps, clock.step_dt
        if fps is None and dt is None:
            raise ValueError("give fps or step_dt (or both); got neither")
        if fps is None:
            fps = max(1, round(1.0 / dt))
        if dt is None:
            dt = 1.0 / fps
        object.__setattr__(self, "fps", float(fps))
        object.__setattr__(self, "step_dt", float(dt))

    def _check_scalar_names(self) -> None:
        names = tuple(self.scalar_names)
        if len(names) > F.MAX_SCALARS:
            raise ValueError(f"at most {F.MAX_SCALARS} scalar names, got {len(names)}")
        for n in names:
            if not isinstance(n, str) or not F.SCALAR_NAME.match(n):
                raise ValueError(
                    f"scalar name {n!r} must be an identifier of letters, digits and _ "
                    "(at most 64 characters)"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"scalar_names has duplicates: {names}")
        object.__setattr__(self, "scalar_names", names)

    def check_new(self) -> None:
        """What a store to be written must also meet (stores already written still open).

        Raises:
            ValueError: a scalar named like one of the run's own per-env arrays, which every
                reader would return in its place.
        """
        taken = [n for n in self.scalar_names if n in F.ENV_SCALARS]
        if taken:
            raise ValueError(
                f"scalar name {taken[0]!r} is taken by the run's own per-env array (every run "
                f"has {', '.join(F.ENV_SCALARS)}): name the scalar otherwise, e.g. "
                f"'{taken[0]}_shaped'"
            )

    def _check_block_size(self) -> None:
        h, w = self.env_frame_shape
        shard = cast(int, self.envs_per_shard)  # filled in by StoreOptions
        block_bytes = self.block_frames * shard * h * w * 3
        if block_bytes > F.MAX_BLOCK_BYTES:
            raise ValueError(
                f"one shard of block_frames={self.block_frames} × envs_per_shard={shard} × "
                f"{h}×{w}×3 is {block_bytes / 2**30:.1f} GiB; lower block_frames or "
                f"envs_per_shard to stay under {F.MAX_BLOCK_BYTES / 2**30:.0f} GiB"
            )

    @property
    def sizes(self) -> dict[str, int]:
        """Sizes of the symbolic dims of the array table (without T)."""
        h, w = self.env_frame_shape
        sizes = {"N": self.num_envs, "H": h, "W": w}
        if self.global_frame_shape is not None:
            sizes["Hg"], sizes["Wg"] = self.global_frame_shape
        return sizes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``RunSpec.from_dict(spec.to_dict()) == spec``."""
        d = asdict(self)
        d["env_frame_shape"] = list(self.env_frame_shape)
        if self.global_frame_shape is not None:
            d["global_frame_shape"] = list(self.global_frame_shape)
        d["scalar_names"] = list(self.scalar_names)
        if self.env_ids is None:
            del d["env_ids"]  # a store of envs 0..N-1 reads the same in format 1.0
        else:
            d["env_ids"] = list(self.env_ids)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        """Build from ``to_dict`` output. Unknown keys (from a newer minor version) are ignored.

        Raises:
            ValueError/TypeError: a value is missing or out of range.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"a run spec must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        for k in ("env_frame_shape", "global_frame_shape", "scalar_names", "env_ids"):
            if isinstance(kwargs.get(k), list):
                kwargs[k] = tuple(kwargs[k])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            if "required positional argument" in str(exc) or "unexpected keyword" in str(exc):
                raise ValueError(f"run spec is incomplete: {exc}") from None
            raise
