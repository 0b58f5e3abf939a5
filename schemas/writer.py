"""Writer primitives: create a run store, append blocks that commit atomically, update counters.

How a block commits (``RunWriter.append``):

1. every per-frame array is resized to hold the block, when it does not yet (metadata only;
   arrays grow 16 blocks at a time and are trimmed to the committed length on close);
2. the block's chunks and shards are written (one object per array per block; ``env/frames``
   one shard per ``envs_per_shard`` envs);
3. the root group's ``envreel_state.num_frames`` is raised to the new length, in one write of the
   root ``zarr.json``.

Readers trust ``num_frames`` only, so a reader, or a process killed anywhere in 1–2, sees the
previous committed state; every object is written whole (LocalStore writes a temporary file and
renames it; object stores PUT whole objects), so step 3 itself is all-or-nothing.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import zarr
from zarr.core.sync import sync

from envreel.errors import StoreFormatError

from . import _format as F
from ._chunkwrite import ChunkPlan, plan_for, write_block
from ._inspect import check_root
from ._store import StoreLike, compressors, describe, is_zip, open_store, read_json
from .spec import RunSpec

__all__ = ["Block", "RunWriter", "create_run"]

GROW_BLOCKS = 16
"""Per-frame arrays grow this many blocks ahead of the committed frames (see RunWriter._grow)."""

_DIM_NAMES = {
    "T": "time",
    "N": "env",
    "H": "height",
    "W": "width",
    "Hg": "height",
    "Wg": "width",
}


@dataclass
class Block:
    """A block of consecutive frames, ready to append. Leading dimension t (1..block_frames).

    Attributes:
        env_frames: (t, N, H, W, 3) uint8.
        step: (t,) int64 simulation step of each frame.
        sim_time: (t,) float64 seconds.
        wall_time: (t,) float64 Unix seconds.
        clip: (t,) int32 recording-window id, non-decreasing over the run.
        reward: (t, N) float32.
        terminated, truncated, stale: (t, N) bool.
        episode, episode_step: (t, N) int32.
        scalars: name -> (t, N) float32, exactly the spec's scalar_names.
        global_frames: (t, Hg, Wg, 3) uint8 when the spec has a global view, else None.
        env_pose: (t, N, 4, 4) float64 when ``spec.env_pose_per_frame``, else None.
        global_pose: (t, 4, 4) float64 when ``spec.global_pose_per_frame``, else None.
    """

    env_frames: np.ndarray
    step: np.ndarray
    sim_time: np.ndarray
    wall_time: np.ndarray
    clip: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray
    episode_step: np.ndarray
    stale: np.ndarray
    scalars: dict[str, np.ndarray] = field(default_factory=dict)
    global_frames: np.ndarray | None = None
    env_pose: np.ndarray | None = None
    global_pose: np.ndarray | None = None

    @classmethod
    def empty(cls, spec: RunSpec, length: int | None = None) -> Block:
        """A zero-filled block of ``length`` frames (default ``spec.block_frames``) for ``spec``."""
        t = spec.block_frames if length is None else length
        n = spec.num_envs
        h, w = spec.env_frame_shape
        gf = None
        if spec.global_frame_shape is not None:
            gf = np.zeros((t, *spec.global_frame_shape, 3), np.uint8)
        return cls(
            env_frames=np.zeros((t, n, h, w, 3), np.uint8),
            step=np.zeros(t, np.int64),
            sim_time=np.zeros(t, np.float64),
            wall_time=np.zeros(t, np.float64),
            clip=np.zeros(t, np.int32),
            reward=np.zeros((t, n), np.float32),
            terminated=np.zeros((t, n), bool),
            truncated=np.zeros((t, n), bool),
            episode=np.zeros((t, n), np.int32),
            episode_step=np.zeros((t, n), np.int32),
            stale=np.zeros((t, n), bool),
            scalars={s: np.zeros((t, n), np.float32) for s in spec.scalar_names},
            global_frames=gf,
            env_pose=np.zeros((t, n, 4, 4)) if spec.env_pose_per_frame else None,
            global_pose=np.zeros((t, 4, 4)) if spec.global_pose_per_frame else None,
        )

    def __len__(self) -> int:
        return int(self.env_frames.shape[0])

    def head(self, length: int) -> Block:
        """The first ``length`` frames (views, no copy)."""

        def cut(a):
            return None if a is None else a[:length]

        return Block(
            env_frames=self.env_frames[:length],
            step=self.step[:length],
            sim_time=self.sim_time[:length],
            wall_time=self.wall_time[:length],
            clip=self.clip[:length],
            reward=self.reward[:length],
            terminated=self.terminated[:length],
            truncated=self.truncated[:length],
            episode=self.episode[:length],
            episode_step=self.episode_step[:length],
            stale=self.stale[:length],
            scalars={k: v[:length] for k, v in self.scalars.items()},
            global_frames=cut(self.global_frames),
            env_pose=cut(self.env_pose),
            global_pose=cut(self.global_pose),
        )

    def arrays(self, spec: RunSpec) -> dict[str, np.ndarray]:
        """Array path -> data, checked against ``spec``.

        Raises:
            ValueError/TypeError: a missing, extra or misshapen field, naming it.
        """
        t = len(self)
        if not 1 <= t <= spec.block_frames:
            raise ValueError(f"a block holds 1 to {spec.block_frames} frames, got {t}")
        out: dict[str, np.ndarray] = {}
        sizes = {**spec.sizes, "T": t}

        def put(s: F.ArraySpec, value: Any, what: str) -> None:
            if value is None:
                raise ValueError(f"block.{what} is required by this run's spec, got None")
            if not isinstance(value, np.ndarray):
                raise TypeError(f"block.{what} must be a numpy array, got {type(value).__name__}")
            want = F.concrete_shape(s, sizes)
            if value.shape != want:
                raise ValueError(f"block.{what} must have shape {want}, got {value.shape}")
            if value.dtype != np.dtype(s.dtype):
                raise TypeError(f"block.{what} must be {s.dtype}, got {value.dtype}")
            out[s.path] = value

        put(F.ENV_FRAMES, self.env_frames, "env_frames")
        for s in F.FRAME_ARRAYS + F.ENV_ARRAYS:
            put(s, getattr(self, s.path.split("/")[1]), s.path.split("/")[1])
        if set(self.scalars) != set(spec.scalar_names):
            raise ValueError(
                f"block.scalars must have exactly the names {sorted(spec.scalar_names)}, "
                f"got {sorted(self.scalars)}"
            )
        for name in spec.scalar_names:
            put(F.scalar_spec(name), self.scalars[name], f"scalars[{name!r}]")
        optional = (
            (spec.global_frame_shape is not None, F.GLOBAL_FRAMES, "global_frames"),
            (spec.env_pose_per_frame, F.ENV_POSE_PER_FRAME, "env_pose"),
            (spec.global_pose_per_frame, F.GLOBAL_POSE_PER_FRAME, "global_pose"),
        )
        for wanted, s, what in optional:
            if wanted:
                put(s, getattr(self, what), what)
            elif getattr(self, what) is not None:
                raise ValueError(f"block.{what} was given but this run's spec has none")
        if t > 1 and np.any(np.diff(self.clip) < 0):
            raise ValueError(f"block.clip must be non-decreasing, got {self.clip.tolist()}")
        return out


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def static_arrays(spec: RunSpec) -> list[F.ArraySpec]:
    """The array specs of a run, per-frame ones first."""
    specs = [F.ENV_FRAMES, *F.FRAME_ARRAYS, *F.ENV_ARRAYS]
    specs += [F.scalar_spec(n) for n in spec.scalar_names]
    if spec.global_frame_shape is not None:
        specs.append(F.GLOBAL_FRAMES)
    if spec.env_pose_per_frame:
        specs.append(F.ENV_POSE_PER_FRAME)
    if spec.global_pose_per_frame:
        specs.append(F.GLOBAL_POSE_PER_FRAME)
    return specs


class RunWriter:
    """Appends blocks to a run store. Not thread-safe: one writer thread owns it.

    Create with ``create_run`` (or ``RunWriter.create``).
    """

    def __init__(self, root: zarr.Group, spec: RunSpec, url: str):
        self._root = root
        self.spec = spec
        self.url = url
        # Every committed chunk is written, even all-zero ones (zarr skips those by default), so
        # a chunk missing from a store is always damage that readers can report.
        self._arrays = {
            s.path: cast(zarr.Array, root[s.path]).with_config({"write_empty_chunks": True})
            for s in static_arrays(spec)
            if s.per_frame
        }
        self._plans: dict[str, tuple[zarr.Array, ChunkPlan | None]] = {}
        self.num_frames = 0
        self.num_blocks = 0
        self.clips: list[dict[str, int]] = []
        self.counters: dict[str, int] = {k: 0 for k in F.COUNTERS}
        self.errors: list[str] = []
        self.closed = False
        self._capacity = 0

    @classmethod
    def create(
        cls,
        url: StoreLike,
        spec: RunSpec,
        *,
        env_origins: np.ndarray | None = None,
        env_camera_poses: np.ndarray | None = None,
        env_intrinsics: np.ndarray | None = None,
        global_camera_pose: np.ndarray | None = None,
        global_intrinsics: np.ndarray | None = None,
        overwrite: bool = False,
        storage_options: dict | None = None,
    ) -> RunWriter:
        """Create an empty run store. See ``create_run``."""
        if not isinstance(spec, RunSpec):
            raise TypeError(f"spec must be a RunSpec, got {type(spec).__name__}")
        spec.check_new()
        statics = _check_statics(
            spec,
            env_origins=env_origins,
            env_camera_poses=env_camera_poses,
            env_intrinsics=env_intrinsics,
            global_camera_pose=global_camera_pose,
            global_intrinsics=global_intrinsics,
        )
        store = open_store(url, read_only=False, storage_options=storage_options)
        # the debris of a creation that failed (a full disk) holds nothing: replaced unasked
        replace = _check_replaceable(store, url, overwrite) == "unfinished" or overwrite
        try:
            root = zarr.open_group(store, mode="w" if replace else "w-", zarr_format=3)
        except (FileExistsError, zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError):
            raise FileExistsError(
                f"a store already exists at {describe(url)}; pass overwrite=True to replace it"
            ) from None
        try:
            return cls._make(root, spec, statics, url, global_camera_pose is not None)
        except OSError as exc:  # a full disk, a lost mount: name the store
            raise OSError(
                exc.errno, f"{exc.strerror or exc} while creating the store at {describe(url)}"
            ) from exc

    @classmethod
    def _make(
        cls,
        root: Any,
        spec: RunSpec,
        statics: dict[str, np.ndarray],
        url: StoreLike,
        global_camera: bool,
    ) -> RunWriter:
        """The arrays and attributes of a new store in the empty group ``root``."""
        for grp in ("env", "env/scalars", "frame", "scene", "camera", "camera/env"):
            root.require_group(grp)
        if spec.global_frame_shape is not None or global_camera:
            root.require_group("global")
            root.require_group("camera/global")
        b = spec.block_frames
        comp = compressors(spec.codec, spec.codec_level)
        for s in static_arrays(spec):
            shape = F.concrete_shape(s, {**spec.sizes, "T": 0})
            chunks = (b, *shape[1:])
            shards = None
            if s is F.ENV_FRAMES:
                # One inner chunk per env per block, so reading a few envs reads their bytes only;
                # one shard per block (per envs_per_shard envs) keeps the object count low.
                chunks = (b, 1, *shape[2:])
                shards = (b, spec.envs_per_shard, *shape[2:])
            elif s.dims[:2] == ("T", "N") and len(shape) > 2:
                chunks = (b, *shape[1:])
            root.create_array(
                s.path,
                shape=shape,
                dtype=s.dtype,
                chunks=chunks,
                shards=cast(Any, shards),
                compressors=comp,
                fill_value=0,
                dimension_names=[
                    _DIM_NAMES.get(d, None) if isinstance(d, str) else None for d in s.dims
                ],
                attributes={"description": s.doc},
            )
        for path, value in statics.items():
            arr = root.create_array(
                path,
                shape=value.shape,
                dtype=value.dtype,
                chunks=value.shape,
                compressors=compressors("zstd", 3),
                fill_value=0,
                config={"write_empty_chunks": True},
            )
            arr[...] = value
        attrs = {
            "format": F.FORMAT_NAME,
            "version": f"{F.FORMAT_VERSION[0]}.{F.FORMAT_VERSION[1]}",
            "created": _now(),
            "spec": spec.to_dict(),
            "camera": {
                "pose": "camera_to_world",
                "convention": F.CAMERA_CONVENTION,
                "world_up": F.WORLD_UP,
                "source_quat_order": spec.quat_order,
            },
        }
        writer = cls(root, spec, describe(url))
        # The static description goes in with the first commit record, in one write.
        root.attrs.update(cast(Any, {F.ATTR_KEY: attrs, F.STATE_KEY: writer._state()}))
        return writer

    def _state(self) -> dict[str, Any]:
        return {
            "num_frames": self.num_frames,
            "num_blocks": self.num_blocks,
            "clips": self.clips,
            "counters": dict(self.counters),
            "errors": self.errors[-20:],
            "closed": self.closed,
            "updated": _now(),
        }

    def _commit(self) -> None:
        self._root.attrs[F.STATE_KEY] = self._state()

    def append(self, block: Block, *, counters: Mapping[str, int] | None = None) -> None:
        """Write a block and commit it (see the module docstring for the protocol).

        Args:
            block: frames and per-frame data, checked against the spec before anything is written.
            counters: new absolute values of counters (e.g. dropped_frames), committed with it.

        Raises:
            ValueError/TypeError: the block does not fit the spec (nothing written).
            RuntimeError: the writer is closed.
            Exception: whatever the store raises; the committed state is then unchanged.
        """
        if self.closed:
            raise RuntimeError(f"the writer of {self.url} is closed")
        data = block.arrays(self.spec)
        new_counters = self._check_counters(counters)
        clips = self._extend_clips(block)
        t0, t1 = self.num_frames, self.num_frames + len(block)
        if t1 > self._capacity:
            self._grow(t1)
        aligned = t0 % self.spec.block_frames == 0
        plans = {p: self._plan(p, a) for p, a in self._arrays.items()} if aligned else {}
        pooled = [(plan, t0, data[p]) for p, plan in plans.items() if plan is not None]
        if pooled:
            write_block(pooled)
        for path, arr in self._arrays.items():
            if plans.get(path) is None:
                arr[t0:t1] = data[path]
        before = (self.num_frames, self.num_blocks, self.clips, dict(self.counters))
        self.num_frames = t1
        self.num_blocks += 1
        self.clips = clips
        self.counters.update(new_counters)
        try:
            self._commit()
        except BaseException:
            # The commit record was not written, so the block is not committed: keep this
            # writer's state equal to the store's, or a later commit (the next block, a counter
            # update, close) would commit this block's frames while the caller counts them lost.
            self.num_frames, self.num_blocks, self.clips, self.counters = before
            raise

    def _plan(self, path: str, arr: zarr.Array) -> ChunkPlan | None:
        """How ``arr``'s block chunks are written: encoded on a thread pool when its codec chain
        is the store's own (see ``_chunkwrite``), else None (zarr writes them)."""
        cached = self._plans.get(path)
        if cached is None or cached[0] is not arr:
            cached = self._plans[path] = (arr, plan_for(arr))
        return cached[1]

    def _grow(self, frames: int) -> None:
        """Resize every per-frame array to hold ``frames`` and ``GROW_BLOCKS`` more blocks.

        Each resize rewrites an array's ``zarr.json``; doing it every ``GROW_BLOCKS`` blocks
        instead of every block takes ~20 metadata writes off most appends. The arrays may be
        longer than the committed frames (the format allows it; ``close`` trims them).
        """
        b = self.spec.block_frames
        capacity = -(-frames // b) * b + GROW_BLOCKS * b
        for arr in self._arrays.values():
            arr.resize((capacity, *arr.shape[1:]))
        self._capacity = capacity

    def _trim(self) -> None:
        """Shrink the per-frame arrays to the committed frames (tidy for other readers)."""
        if self._capacity == self.num_frames:
            return
        for arr in self._arrays.values():
            arr.resize((self.num_frames, *arr.shape[1:]))
        self._capacity = self.num_frames

    def _check_counters(self, counters: Mapping[str, int] | None) -> dict[str, int]:
        if counters is None:
            return {}
        out = {}
        for k, v in counters.items():
            if not isinstance(k, str) or not F.SCALAR_NAME.match(k):
                raise ValueError(f"counter name {k!r} must be an identifier")
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"counter {k!r} must be a non-negative int, got {v!r}")
            out[k] = int(v)
        return out

    def _extend_clips(self, block: Block) -> list[dict[str, int]]:
        clips = [dict(c) for c in self.clips]
        ids = block.clip
        if clips and ids[0] < clips[-1]["id"]:
            raise ValueError(
                f"block.clip starts at {int(ids[0])}, before the last clip id {clips[-1]['id']}"
            )
        if len(clips) + len(np.unique(ids)) > F.MAX_CLIPS:
            raise ValueError(f"a run holds at most {F.MAX_CLIPS} clips")
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        for s, e in zip(starts, ends, strict=True):
            cid = int(ids[s])
            if clips and clips[-1]["id"] == cid and clips[-1]["stop_frame"] == self.num_frames + s:
                clips[-1]["stop_frame"] = self.num_frames + int(e)
                clips[-1]["stop_step"] = int(block.step[e - 1]) + 1
                continue
            if cid < 0:
                raise ValueError(f"clip ids must be non-negative, got {cid}")
            if clips and clips[-1]["id"] == cid:
                raise ValueError(f"clip {cid} resumes after a gap; each clip must be contiguous")
            clips.append(
                {
                    "id": cid,
                    "start_frame": self.num_frames + int(s),
                    "stop_frame": self.num_frames + int(e),
                    "start_step": int(block.step[s]),
                    "stop_step": int(block.step[e - 1]) + 1,
                }
            )
        return clips

    def update_counters(self, counters: Mapping[str, int], *, error: str | None = None) -> None:
        """Commit new absolute counter values (and optionally an error message) without data."""
        self.counters.update(self._check_counters(counters))
        if error is not None:
            self.errors.append(str(error)[:2000])
        self._commit()

    def close(self, *, counters: Mapping[str, int] | None = None, error: str | None = None) -> None:
        """Mark the run closed (a reader does not need this; it is informational). Idempotent."""
        if self.closed:
            return
        self.counters.update(self._check_counters(counters or {}))
        if error is not None:
            self.errors.append(str(error)[:2000])
        try:
            self._trim()
        except Exception as exc:  # noqa: BLE001 - longer arrays are valid; keep the record
            self.errors.append(f"could not trim arrays to {self.num_frames} frames: {exc}"[:2000])
        self.closed = True
        self._commit()


def _check_statics(spec: RunSpec, **given: np.ndarray | None) -> dict[str, np.ndarray]:
    n = spec.num_envs
    specs = {
        "env_origins": (F.ENV_ORIGINS, (n, 3)),
        "env_camera_poses": (F.ENV_POSE, (n, 4, 4)),
        "env_intrinsics": (F.ENV_INTRINSICS, (n, 3, 3)),
        "global_camera_pose": (F.GLOBAL_POSE, (4, 4)),
        "global_intrinsics": (F.GLOBAL_INTRINSICS, (3, 3)),
    }
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        s, shape = specs[name]
        if name == "env_camera_poses" and spec.env_pose_per_frame:
            raise ValueError("env_camera_poses are per frame in this spec; pass them in blocks")
        if name == "global_camera_pose" and spec.global_pose_per_frame:
            raise ValueError("global_camera_pose is per frame in this spec; pass it in blocks")
        if name == "env_intrinsics" and np.shape(value) == (3, 3):
            value = np.broadcast_to(value, (n, 3, 3))
        try:
            arr = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a numeric array of shape {shape}") from None
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got NaN or inf")
        out[s.path] = arr
    return out


def check_new_store(path: str | os.PathLike, *, overwrite: bool) -> None:
    """Check, writing nothing, that ``create_run(path, overwrite=overwrite)`` may make its store
    at a local ``path``: new or empty, or an envreel store (and ``overwrite`` is True).

    Raises:
        FileExistsError: a store exists and ``overwrite`` is False, or the place holds other
            files (which ``overwrite`` never deletes).
    """
    url = os.fspath(path)
    if is_zip(Path(url).expanduser()):
        open_store(url, read_only=False)  # refuses: a .zip store is read-only
    store = zarr.storage.LocalStore(url, read_only=True)
    if _check_replaceable(store, url, overwrite) == "store" and not overwrite:
        raise FileExistsError(
            f"a store already exists at {describe(url)}; pass overwrite=True to replace it"
        )


def _check_replaceable(store: Any, url: StoreLike, overwrite: bool) -> str:
    """Refuse a place that holds anything but an envreel store: ``overwrite`` replaces a store
    (zarr's mode "w" deletes everything under the path), never someone's other files.

    Returns:
        What the place holds: "empty", "unfinished" (what a creation that failed before the
        store's attributes left: no data), or "store".

    Raises:
        FileExistsError: the place holds files and is not an envreel store.
    """
    if isinstance(store, zarr.storage.LocalStore) and os.path.isfile(store.root):
        raise FileExistsError(f"{describe(url)} is a file; a store is a folder: choose a new path")
    if sync(store.is_empty("")):
        return "empty"
    try:
        doc = read_json(store, "zarr.json")
        if _half_made(store, doc):
            return "unfinished"
        check_root(doc)
    except StoreFormatError as exc:
        raise FileExistsError(
            f"{describe(url)} already holds files and is not an envreel store ({exc}); "
            + ("overwrite=True replaces only an envreel store: " if overwrite else "")
            + "choose a new path"
        ) from None
    return "store"


_TOP = {"zarr.json", "env", "frame", "scene", "camera", "global"}
"""What ``RunWriter.create`` makes at the top of a store."""


def _half_made(store: Any, doc: dict[str, Any] | None) -> bool:
    """Whether the store is a group ``RunWriter.create`` began and did not finish: a zarr v3
    group without attributes holding nothing but what ``create`` makes."""
    if doc is None or doc.get("node_type") != "group" or doc.get("attributes"):
        return False

    async def names() -> set[str]:
        return {name async for name in store.list_dir("")}

    return sync(names()) <= _TOP


def create_run(url: StoreLike, spec: RunSpec, **kwargs: Any) -> RunWriter:
    """Create an empty run store at ``url`` and return its writer.

    Args:
        url: a local path, ``file://`` / ``memory://`` / ``s3://`` URL (fsspec), or a zarr store.
        spec: the run's static facts.
        env_origins: (N, 3) world positions of the env origins, metres. Defaults to None.
        env_camera_poses: (N, 4, 4) camera-to-world (OpenGL convention) of each env camera, when
            static. Defaults to None.
        env_intrinsics: (N, 3, 3) or (3, 3) pinhole matrices in pixels. Defaults to None.
        global_camera_pose: (4, 4) camera-to-world of the global camera. Defaults to None.
        global_intrinsics: (3, 3) pinhole matrix of the global camera. Defaults to None.
        overwrite: replace an existing store. Defaults to False.
        storage_options: fsspec options for URLs. Defaults to None.

    Raises:
        ValueError/TypeError: a bad argument (nothing is written).
        FileExistsError: a store exists and ``overwrite`` is False.

    Example:
        >>> w = create_run("memory://doc.zarr", RunSpec(num_envs=2, env_frame_shape=(8, 8), fps=30))
        >>> w.append(Block.empty(w.spec, 4)); w.close()
    """
    return RunWriter.create(url, spec, **kwargs)
