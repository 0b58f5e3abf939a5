"""The read side: ``open_run(url) -> Run``, a lazy, typed, read-only view of a run store."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest, Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore, WrapperStore

from envreel._checks import compact_ids
from envreel.errors import CorruptChunkError, StoreFormatError

from . import _format as F
from ._chunks import _EMPTY, ChunkReader, chunk_format, never_written, shard_index_reader
from ._inspect import OPTIONAL, array_docs, check_array_doc, check_root, expected_arrays
from ._store import StoreLike, describe, open_store, read_json
from .spec import RunSpec

__all__ = ["Run", "Clip", "Cameras", "open_run"]

ENV_SCALARS = F.ENV_SCALARS
_UNSET: Any = object()
_SHARD_INDEXES = 256
"""Shard indexes of ``env/frames`` a Run keeps for reads through zarr (16 bytes per env each)."""
FRAME_VALUES = ("step", "sim_time", "wall_time", "clip")


@dataclass(frozen=True)
class Clip:
    """A recording window: frames ``[start_frame, stop_frame)`` of the store.

    Attributes:
        id: clip id (increasing over the run).
        start_frame, stop_frame: frame range in the store, stop exclusive.
        start_step, stop_step: simulation steps of the first frame and after the last.
    """

    id: int
    start_frame: int
    stop_frame: int
    start_step: int
    stop_step: int

    @property
    def num_frames(self) -> int:
        return self.stop_frame - self.start_frame


@dataclass(frozen=True)
class Cameras:
    """Camera poses (camera-to-world 4×4, OpenGL convention: looks along -Z, +Y up; world Z-up)
    and pinhole intrinsics in pixels. Any field is None when the producer did not record it.

    Attributes:
        env_pose: (N, 4, 4) float64 static poses, or None (also None when poses are per frame:
            use ``Run.env_camera_poses(start, stop)``).
        env_intrinsics: (N, 3, 3) float64.
        global_pose: (4, 4) float64, or None (None too when per frame).
        global_intrinsics: (3, 3) float64.
        env_pose_per_frame, global_pose_per_frame: whether poses are stored per frame.
        source_quat_order: quaternion order of the producer ("xyzw" or "wxyz"), for reference.
    """

    env_pose: np.ndarray | None
    env_intrinsics: np.ndarray | None
    global_pose: np.ndarray | None
    global_intrinsics: np.ndarray | None
    env_pose_per_frame: bool
    global_pose_per_frame: bool
    source_quat_order: str
    convention: str = F.CAMERA_CONVENTION


def _runs(ids: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Split env ids into runs of consecutive ids: (first, stop, positions in the request)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    runs, i = [], 0
    while i < len(sorted_ids):
        j = i + 1
        while j < len(sorted_ids) and sorted_ids[j] == sorted_ids[j - 1] + 1:
            j += 1
        runs.append((int(sorted_ids[i]), int(sorted_ids[j - 1]) + 1, order[i:j]))
        i = j
    return runs


def _object_size(store: Any, key: str, path: str) -> int | None:
    """Bytes of a store object, None when it is missing, -1 when the size is unknown.

    A size, not just existence: zarr reads an empty (0-byte) shard as fill values, so a shard
    emptied by a failed copy would read as black frames. Stores with a real size query answer
    with a stat or a HEAD request (wrappers such as zarr's ``WrapperStore`` pass keys through
    unchanged, so the wrapped store is asked); others are asked for the object's first byte.
    """
    inner = store
    while isinstance(inner, WrapperStore):
        inner = inner._store
    if type(inner) is LocalStore:  # a stat, not a request through zarr's loop (~0.4 ms each)
        try:
            return os.path.getsize(Path(inner.root) / key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:  # e.g. no permission: the read reports it
            return -1
    try:
        if type(inner).getsize is not Store.getsize:
            try:
                return int(sync(inner.getsize(key)))
            except FileNotFoundError:
                return None
            except Exception:  # noqa: BLE001 - e.g. a server without sizes: existence only
                return -1 if sync(store.exists(key)) else None
        head = sync(
            store.get(key, prototype=default_buffer_prototype(), byte_range=RangeByteRequest(0, 1))
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001
        raise StoreFormatError(f"{path}: cannot check {key}: {exc}") from exc
    return None if head is None else len(head)


def _nd_buffer(array: np.ndarray):
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype().nd_buffer.from_numpy_array(array)


def _no_gap_coalescing(arr: zarr.Array) -> zarr.Array:
    """Read only the requested envs' bytes of a shard.

    zarr >= 3.4 merges byte ranges less than 1 MiB apart into one request, which for a few
    scattered envs means fetching the envs between them too. A gap of 0 still merges adjacent
    envs' chunks. Older zarr reads each chunk's range separately and has no such setting.
    """
    try:
        return arr.with_config(cast(Any, {"sharding_coalesce_max_gap_bytes": 0}))
    except (TypeError, ValueError, KeyError):
        return arr


def _frames_out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` if it is a uint8 array of ``shape`` (a fresh one for None); ValueError if not."""
    if out is None:
        return np.empty(shape, np.uint8)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.uint8:
        raise ValueError(
            f"out must be a uint8 numpy array of shape {shape}, got "
            f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        )
    return out


class Run:
    """A read-only view of a run store. Get one with ``open_run``.

    Nothing is read until asked for: frames and scalars are read by time range and env, touching
    only the chunks that hold them. ``num_frames`` is the committed length at open (or at the
    last ``refresh()``); data a writer is still appending beyond it is ignored.
    """

    def __init__(self, store: Any, url: str, static: dict, spec: RunSpec, state: dict):
        self._store = store
        self.url = url
        self._static = static
        self.spec = spec
        self._state = state
        self._group: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._present: set[str] = set()
        self._verified: set[tuple[str, tuple[int, ...]]] = set()
        self._docs: dict[str, Any] = {}
        self._readers: dict[str, ChunkReader | None] = {}
        self._shard_indexes: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self._index_read: Any = _UNSET  # env/frames' shard_index_reader, once looked up
        self._global_ids: tuple[int, ...] | None = None
        # the layout's array table, built once: _per_frame runs on every read
        self._layout = expected_arrays(spec)

    # ---- static facts -------------------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    @property
    def num_frames(self) -> int:
        return int(self._state["num_frames"])

    @property
    def fps(self) -> float:
        return cast(float, self.spec.fps)  # RunSpec fills in fps from step_dt

    @property
    def step_dt(self) -> float:
        return cast(float, self.spec.step_dt)  # RunSpec fills in step_dt from fps

    @property
    def env_frame_shape(self) -> tuple[int, int]:
        """(height, width) of each env's frame."""
        return self.spec.env_frame_shape

    @property
    def global_frame_shape(self) -> tuple[int, int] | None:
        """(height, width) of the global view, or None."""
        return self.spec.global_frame_shape

    @property
    def has_global(self) -> bool:
        return self.spec.global_frame_shape is not None

    @property
    def global_view_envs(self) -> range:
        """Stored env indices of the envs the global view shows: the envs of its simulation
        (every env of one store; of rank stores read as one, the global view's rank's)."""
        return range(self.num_envs)

    @property
    def block_frames(self) -> int:
        return self.spec.block_frames

    @property
    def scalar_names(self) -> tuple[str, ...]:
        """Names of the user scalars (``scalar(name)`` also takes the built-in ones)."""
        return self.spec.scalar_names

    @property
    def format_version(self) -> str:
        return str(self._static["version"])

    @property
    def source(self) -> dict:
        return dict(self.spec.source)

    @property
    def metadata(self) -> dict:
        return dict(self.spec.metadata)

    @property
    def rank(self) -> int:
        return self.spec.rank

    @property
    def world_size(self) -> int:
        return self.spec.world_size

    @property
    def env_id_offset(self) -> int:
        return self.spec.env_id_offset

    @property
    def env_ids(self) -> tuple[int, ...]:
        """Global env id of each stored env, (N,) ints: ``env_id_offset + spec.env_ids[i]``
        (``env_id_offset + i`` for stores of envs 0..N-1, and for format 1.0 stores).

        Reads (``env_frames``, ``scalar``) take stored env indices 0..N-1; renderers show and
        select envs by these ids.
        """
        if self._global_ids is None:
            local = self.spec.env_ids if self.spec.env_ids is not None else range(self.num_envs)
            self._global_ids = tuple(self.spec.env_id_offset + i for i in local)
        return self._global_ids

    # ---- commit state ---------------------------------------------------------------------------
    @property
    def clips(self) -> list[Clip]:
        return [Clip(**{k: c[k] for k in Clip.__dataclass_fields__}) for c in self._state["clips"]]

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._state["counters"])

    @property
    def errors(self) -> list[str]:
        return [str(e) for e in self._state.get("errors", [])]

    @property
    def closed(self) -> bool:
        """Whether the writer closed the run (a run that is not closed still reads fine)."""
        return bool(self._state.get("closed", False))

    def refresh(self) -> Run:
        """Re-read the commit record, to see blocks appended since opening."""
        doc = read_json(self._store, "zarr.json")
        _, spec, state = check_root(doc)
        if spec != self.spec:
            raise StoreFormatError(f"{self.url}: the run's spec changed since it was opened")
        # zarr caches each array's shape from its zarr.json: arrays opened before a writer grew
        # them would clip reads to the old length, so they are opened again when next read,
        # after the same checks as in open_run.
        docs = array_docs(self._store, spec)
        for path in sorted(self._present):
            problems = check_array_doc(
                docs[path], self._layout[path], spec.sizes, int(state["num_frames"]), spec=spec
            )
            if problems:
                raise StoreFormatError(str(problems[0]))
        self._state = state
        self._arrays.clear()
        self._group = None
        self._docs = docs
        self._readers.clear()
        self._shard_indexes.clear()
        self._index_read = _UNSET
        return self

    # ---- arrays ---------------------------------------------------------------------------------
    def _array(self, path: str) -> zarr.Array:
        arr = self._arrays.get(path)
        if arr is None:
            if path not in self._present:
                raise KeyError(path)
            try:
                if self._group is None:
                    self._group = zarr.open_group(self._store, mode="r", zarr_format=3)
                arr = cast(zarr.Array, self._group[path])
                if path == F.ENV_FRAMES.path:
                    arr = _no_gap_coalescing(arr)
            except Exception as exc:  # noqa: BLE001
                raise StoreFormatError(f"{path}: cannot open: {type(exc).__name__}: {exc}") from exc
            self._arrays[path] = arr
        return arr

    def _ndim(self, path: str) -> int:
        """Dimensions of an array, from its ``zarr.json`` when read: opening the array through
        zarr only for that started zarr's event loop and opened the group, ~5-9 ms before a
        render's first frame on the 2-core VM."""
        doc = self._docs.get(path)
        shape = doc.get("shape") if isinstance(doc, dict) and path in self._present else None
        if isinstance(shape, list):
            return len(shape)
        return self._array(path).ndim

    def _chunk_reader(self, path: str) -> ChunkReader | None:
        """The direct reader of ``path`` when its layout is the writer's own, else None (zarr)."""
        if path in self._readers:
            return self._readers[path]
        reader = None
        spec = self._layout.get(path)
        if spec is not None and spec.per_frame:
            shape = F.concrete_shape(spec, {**self.spec.sizes, "T": self.num_frames})
            fmt = chunk_format(self._docs.get(path), shape)
            if fmt is not None:
                reader = ChunkReader(self._store, path, fmt)
        self._readers[path] = reader
        return reader

    def _range(self, start: int | None, stop: int | None, stride: int = 1) -> tuple[int, int, int]:
        n = self.num_frames
        start = 0 if start is None else start
        stop = n if stop is None else stop
        for name, v in (("start", start), ("stop", stop), ("stride", stride)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise TypeError(f"{name} must be an int, got {v!r}")
        if not 0 <= start <= stop <= n:
            raise ValueError(
                f"frame range [{start}, {stop}) must satisfy 0 <= start <= stop <= {n} "
                "(the committed frames)"
            )
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        return int(start), int(stop), int(stride)

    def _env_ids(self, env_ids: Iterable[int] | None) -> np.ndarray:
        if env_ids is None:
            return np.arange(self.num_envs)
        ids = np.asarray(list(env_ids) if not isinstance(env_ids, np.ndarray) else env_ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise TypeError(f"env_ids must be a sequence of ints, got {env_ids!r}")
        bad = ids[(ids < 0) | (ids >= self.num_envs)]
        if bad.size:
            hint = ""
            if self.env_ids != tuple(range(self.num_envs)):
                hint = " (stored env indices; the global ids of those envs are Run.env_ids)"
            raise ValueError(
                f"env ids {bad[:8].tolist()} are out of range: this run has envs "
                f"0..{self.num_envs - 1}{hint}"
            )
        return ids.astype(np.int64)

    def _require_chunks(self, path: str, index: tuple) -> None:
        """Raise CorruptChunkError for a committed chunk missing from the store.

        zarr reads a missing chunk (or shard) as fill values, which would turn a deleted object
        into silently black frames; every committed block wrote every chunk, so a missing one is
        damage. Checked once per chunk per Run (one existence check per object).
        """
        ndim = self._ndim(path)
        if index and isinstance(index[0], slice) and ndim and self._per_frame(path):
            t0, t1, _ = index[0].indices(self.num_frames)
            blocks: Sequence[int] = range(
                t0 // self.block_frames, (max(t0, t1 - 1)) // self.block_frames + 1
            )
            if t1 <= t0:
                return
        else:
            blocks = [0]
        env_shards: Sequence[int] = [0]
        if path == F.ENV_FRAMES.path:
            sel = index[1] if len(index) > 1 else slice(None)
            e0, e1, _ = sel.indices(self.num_envs)
            per = cast(int, self.spec.envs_per_shard)  # RunSpec fills it in
            env_shards = range(e0 // per, (max(e0, e1 - 1)) // per + 1)
        for blk in blocks:
            for s in env_shards:
                coords = ((blk, s) + (0,) * (ndim - 2)) if ndim >= 2 else (blk,)
                if not self._per_frame(path):
                    coords = (0,) * ndim
                if (path, coords) in self._verified:
                    continue
                key = f"{path}/c/" + "/".join(map(str, coords))
                size = _object_size(self._store, key, path)
                if not size:
                    what = "missing from the store (deleted or never written)"
                    if size == 0:
                        what = "empty (0 bytes)"
                    raise CorruptChunkError(
                        f"{path} chunk {coords}: {what} although its frames are committed",
                        array=path,
                        chunk=coords,
                    )
                self._verified.add((path, coords))

    def _require_inner_chunks(self, index: tuple) -> None:
        """Raise CorruptChunkError for an inner chunk of ``env/frames[index]`` that its shard's
        index marks never written, for reads through zarr (which reads it as the fill value:
        black frames). The direct reader checks the index it reads anyway.

        Costs one ranged read of a shard's index (16 bytes per inner chunk) per shard read,
        kept for shards of complete blocks (as the direct reader keeps them).
        """
        path = F.ENV_FRAMES.path
        if self._index_read is _UNSET:
            self._index_read = shard_index_reader(self._store, path, self._docs.get(path))
        read = self._index_read
        if read is None or not index or not isinstance(index[0], slice):
            return
        doc = self._docs[path]
        shard = tuple(doc["chunk_grid"]["configuration"]["chunk_shape"])
        inner = tuple(doc["codecs"][0]["configuration"]["chunk_shape"])
        grid = tuple(-(-s // i) for s, i in zip(shard, inner, strict=True))
        t0, t1, _ = index[0].indices(self.num_frames)
        sel = index[1] if len(index) > 1 and isinstance(index[1], slice) else slice(None)
        e0, e1, _ = sel.indices(self.num_envs)
        if t1 <= t0 or e1 <= e0:
            return
        for st in range(t0 // shard[0], (t1 - 1) // shard[0] + 1):
            for se in range(e0 // shard[1], (e1 - 1) // shard[1] + 1):
                coords = (st, se) + (0,) * (len(shard) - 2)
                entries = self._shard_indexes.get(coords)
                if entries is None:
                    try:
                        entries = read(coords)
                    except Exception as exc:  # noqa: BLE001 - a damaged index names the shard
                        raise CorruptChunkError(
                            f"{path} chunk {coords}: cannot read the shard index: "
                            f"{type(exc).__name__}: {exc}",
                            array=path,
                            chunk=coords,
                        ) from exc
                    if entries is None:  # a missing shard: _require_chunks named it
                        continue
                    if (st + 1) * shard[0] <= self.num_frames:
                        self._shard_indexes[coords] = entries
                        if len(self._shard_indexes) > _SHARD_INDEXES:
                            self._shard_indexes.popitem(last=False)
                cells = entries.reshape(*grid, 2)
                lo_t, lo_e = st * shard[0], se * shard[1]
                ta, tb = max(t0, lo_t) - lo_t, min(t1, lo_t + shard[0]) - lo_t
                ea, eb = max(e0, lo_e) - lo_e, min(e1, lo_e + shard[1]) - lo_e
                part = cells[
                    ta // inner[0] : (tb - 1) // inner[0] + 1,
                    ea // inner[1] : (eb - 1) // inner[1] + 1,
                ]
                empty = np.argwhere((part == _EMPTY).all(axis=-1))
                if empty.size:
                    it, ie = (int(v) for v in empty[0][:2])
                    ct = st * grid[0] + ta // inner[0] + it
                    ce = se * grid[1] + ea // inner[1] + ie
                    chunk = (ct, ce) + tuple(int(v) for v in empty[0][2:])
                    f0 = ct * inner[0]
                    raise never_written(
                        path, chunk, coords, f0, min(self.num_frames, f0 + inner[0])
                    )

    def _per_frame(self, path: str) -> bool:
        spec = self._layout.get(path)
        return spec is not None and spec.per_frame

    def _read(
        self, path: str, index: tuple, chunk_of: Any = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Read ``arr[index]`` (into ``out`` when given), turning decode failures into
        CorruptChunkError naming the chunk."""
        self._require_chunks(path, index)
        direct = self._chunk_reader(path) if index and isinstance(index[0], slice) else None
        if direct is not None and len(index) == (2 if direct.fmt.sharded else 1):
            start, stop, stride = index[0].indices(self.num_frames)
            envs = index[1].indices(self.num_envs)[:2] if direct.fmt.sharded else None
            if out is None:
                shape = F.concrete_shape(self._layout[path], {**self.spec.sizes, "T": 0})[1:]
                if envs is not None:
                    shape = (envs[1] - envs[0], *shape[1:])
                out = np.empty((len(range(start, stop, stride)), *shape), direct.fmt.dtype)
            return direct.read(start, stop, stride, out, envs=envs, committed=self.num_frames)
        if path == F.ENV_FRAMES.path:
            self._require_inner_chunks(index)
        arr = self._array(path)
        try:
            if out is not None:
                # zarr decodes chunks straight into the caller's memory: no fresh array
                # (page faults) and no second copy.
                arr.get_basic_selection(index, out=_nd_buffer(out))
                return out
            return cast(np.ndarray, arr[index])
        except Exception as exc:  # noqa: BLE001
            chunk = chunk_of() if chunk_of else None
            where = f" chunk {chunk}" if chunk is not None else ""
            raise CorruptChunkError(
                f"{path}{where}: cannot read or decode: {type(exc).__name__}: {exc}",
                array=path,
                chunk=chunk,
            ) from exc

    def _env_frames_object(self, env: int, frame: int) -> tuple[str, range, range]:
        """(name, stored envs, frames) of the ``env/frames`` object (shard) holding frame
        ``frame`` of stored env ``env``: what one damaged object takes out of a render."""
        per = cast(int, self.spec.envs_per_shard)  # RunSpec fills it in
        blk, shard = frame // self.block_frames, env // per
        envs = range(shard * per, min(self.num_envs, (shard + 1) * per))
        frames = range(blk * self.block_frames, min(self.num_frames, (blk + 1) * self.block_frames))
        return f"{F.ENV_FRAMES.path}/c/{blk}/{shard}/0/0/0", envs, frames

    def _find_bad_chunk(self, path: str, t0: int, t1: int, e0: int, e1: int) -> tuple | None:
        arr = self._array(path)
        b = self.block_frames
        for blk in range(t0 // b, (t1 - 1) // b + 1):
            for e in range(e0, e1):
                lo, hi = max(t0, blk * b), min(t1, (blk + 1) * b)
                try:
                    arr[lo:hi, e : e + 1]
                except Exception:  # noqa: BLE001
                    return (blk, e, 0, 0, 0)
        return None

    def env_frames(
        self,
        env_ids: Sequence[int] | None = None,
        start: int | None = None,
        stop: int | None = None,
        *,
        stride: int = 1,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Frames of some envs over a frame range.

        Args:
            env_ids: stored env indices 0..N-1 in the order wanted (duplicates allowed); not
                the global ids of ``Run.env_ids``, whose position gives the index. Defaults to
                all.
            start, stop: frame range, stop exclusive. Defaults to all committed frames.
            stride: take every stride-th frame. Defaults to 1.
            out: a (t, len(env_ids), H, W, 3) uint8 array to read into (reused by streaming
                readers to avoid an allocation and a copy per read). Defaults to None.

        Returns:
            (t, len(env_ids), H, W, 3) uint8 (``out`` when given).

        Raises:
            ValueError: an env id or the range is out of bounds, or ``out`` does not fit.
            CorruptChunkError: a chunk cannot be read, naming it.
        """
        ids = self._env_ids(env_ids)
        start, stop, stride = self._range(start, stop, stride)
        h, w = self.env_frame_shape
        t = len(range(start, stop, stride))
        out = _frames_out(out, (t, len(ids), h, w, 3))
        if t == 0 or len(ids) == 0:
            return out
        # One basic slice per run of consecutive envs: orthogonal indexing of scattered envs is
        # pathologically slow on sharded arrays (zarr-python #3829).
        for e0, e1, pos in _runs(ids):
            index = (slice(start, stop, stride), slice(e0, e1))
            find = lambda e0=e0, e1=e1: self._find_bad_chunk(  # noqa: E731
                F.ENV_FRAMES.path, start, stop, e0, e1
            )
            p0 = int(pos[0])
            if np.array_equal(pos, np.arange(p0, p0 + len(pos))):
                # the run lands in consecutive output slots: decode straight into them
                self._read(F.ENV_FRAMES.path, index, find, out=out[:, p0 : p0 + len(pos)])
            else:
                data = self._read(F.ENV_FRAMES.path, index, find)
                out[:, pos] = data[:, ids[pos] - e0]
        return out

    def global_frames(
        self,
        start: int | None = None,
        stop: int | None = None,
        *,
        stride: int = 1,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Frames of the global camera, (t, Hg, Wg, 3) uint8 (``out`` when given).

        Args:
            start, stop: frame range, stop exclusive. Defaults to all committed frames.
            stride: take every stride-th frame. Defaults to 1.
            out: a (t, Hg, Wg, 3) uint8 array to read into (reused by streaming readers: a
                fresh 25 MB block costs its page faults on every read). Defaults to None.

        Raises:
            ValueError: the run has no global view, the range is out of bounds, or ``out``
                does not fit.
            CorruptChunkError: a chunk cannot be read, naming it.
        """
        if not self.has_global:
            raise ValueError(f"{self.url} has no global view (recorded without global frames)")
        start, stop, stride = self._range(start, stop, stride)
        shape = (len(range(start, stop, stride)), *cast(tuple, self.global_frame_shape), 3)
        out = None if out is None else _frames_out(out, shape)
        find = self._time_chunk_finder(F.GLOBAL_FRAMES.path, start, stop, 4)
        return self._read(F.GLOBAL_FRAMES.path, (slice(start, stop, stride),), find, out=out)

    def _time_chunk_finder(self, path: str, start: int, stop: int, ndim: int):
        b = self.block_frames

        def find():
            arr = self._array(path)
            for blk in range(start // b, max(start, stop - 1) // b + 1):
                try:
                    arr[blk * b : min(stop, (blk + 1) * b)]
                except Exception:  # noqa: BLE001
                    return (blk,) + (0,) * (ndim - 1)
            return None

        return find

    def scalar(
        self,
        name: str,
        start: int | None = None,
        stop: int | None = None,
        *,
        env_ids: Sequence[int] | None = None,
        stride: int = 1,
    ) -> np.ndarray:
        """A per-env value over a frame range: (t, len(env_ids)).

        Args:
            name: "reward", "terminated", "truncated", "episode", "episode_step", "stale", or a
                user scalar name (``scalar_names``).
            start, stop: frame range, stop exclusive. Defaults to all committed frames.
            env_ids: stored env indices 0..N-1, as for ``env_frames``. Defaults to all.
            stride: take every stride-th frame. Defaults to 1.
        """
        if name in ENV_SCALARS:
            path = f"env/{name}"
        elif name in self.scalar_names:
            path = f"{F.SCALAR_GROUP}/{name}"
        else:
            raise ValueError(
                f"unknown scalar {name!r}; this run has {list(ENV_SCALARS + self.scalar_names)}"
            )
        ids = self._env_ids(env_ids)
        start, stop, stride = self._range(start, stop, stride)
        data = self._read(
            path, (slice(start, stop, stride),), self._time_chunk_finder(path, start, stop, 2)
        )
        return data if env_ids is None else data[:, ids]

    def frame_values(
        self, name: str, start: int | None = None, stop: int | None = None, *, stride: int = 1
    ) -> np.ndarray:
        """Per-frame values: "step" (int64), "sim_time", "wall_time" (float64 s), "clip" (int32)."""
        if name not in FRAME_VALUES:
            raise ValueError(f"unknown frame value {name!r}; expected one of {FRAME_VALUES}")
        start, stop, stride = self._range(start, stop, stride)
        path = f"frame/{name}"
        return self._read(
            path, (slice(start, stop, stride),), self._time_chunk_finder(path, start, stop, 1)
        )

    def _static_array(self, path: str) -> np.ndarray | None:
        if path not in self._present:
            return None
        return self._read(path, (Ellipsis,), lambda: (0,) * self._array(path).ndim)

    @property
    def env_origins(self) -> np.ndarray | None:
        """(N, 3) float64 env origins in world (metres), or None when not recorded."""
        return self._static_array(F.ENV_ORIGINS.path)

    @property
    def cameras(self) -> Cameras:
        return Cameras(
            env_pose=None if self.spec.env_pose_per_frame else self._static_array(F.ENV_POSE.path),
            env_intrinsics=self._static_array(F.ENV_INTRINSICS.path),
            global_pose=None
            if self.spec.global_pose_per_frame
            else self._static_array(F.GLOBAL_POSE.path),
            global_intrinsics=self._static_array(F.GLOBAL_INTRINSICS.path),
            env_pose_per_frame=self.spec.env_pose_per_frame,
            global_pose_per_frame=self.spec.global_pose_per_frame,
            source_quat_order=self.spec.quat_order,
        )

    def env_camera_poses(
        self, start: int | None = None, stop: int | None = None
    ) -> np.ndarray | None:
        """(t, N, 4, 4) per-env camera poses over a frame range (static poses repeated)."""
        start, stop, _ = self._range(start, stop)
        if self.spec.env_pose_per_frame:
            return self._read(F.ENV_POSE.path, (slice(start, stop),))
        static = self._static_array(F.ENV_POSE.path)
        return None if static is None else np.broadcast_to(static, (stop - start, *static.shape))

    def global_camera_poses(
        self, start: int | None = None, stop: int | None = None
    ) -> np.ndarray | None:
        """(t, 4, 4) global camera poses over a frame range (a static pose repeated)."""
        start, stop, _ = self._range(start, stop)
        if self.spec.global_pose_per_frame:
            return self._read(F.GLOBAL_POSE.path, (slice(start, stop),))
        static = self._static_array(F.GLOBAL_POSE.path)
        return None if static is None else np.broadcast_to(static, (stop - start, 4, 4))

    # ---- summary --------------------------------------------------------------------------------
    def stored_bytes(self) -> int:
        """Bytes the store's objects take (compressed), summed over every array; -1 where the
        store cannot list its objects (an HTTP server lists none: it would read as 0)."""
        total = 0
        for path in sorted(self._present):
            try:
                total += int(self._array(path).nbytes_stored())
            except Exception:  # noqa: BLE001 - some backends cannot list sizes
                return -1
        if total == 0 and self._present:
            return -1  # every array has at least its zarr.json: nothing was listed
        return total

    def raw_bytes(self) -> int:
        """Bytes of the committed data uncompressed."""
        total = 0
        for path in self._present:
            arr = self._array(path)
            n = (
                arr.size // max(1, arr.shape[0]) * self.num_frames
                if self._per_frame(path)
                else arr.size
            )
            total += n * arr.dtype.itemsize
        return total

    def info(self) -> dict[str, Any]:
        """A JSON-able summary of the run."""
        stored, raw = self.stored_bytes(), self.raw_bytes()
        return {
            "url": self.url,
            "format": F.FORMAT_NAME,
            "format_version": self.format_version,
            "created": self._static.get("created"),
            "num_envs": self.num_envs,
            "num_frames": self.num_frames,
            "num_clips": len(self._state["clips"]),
            "clips": self._state["clips"][:50],
            "fps": self.fps,
            "step_dt": self.step_dt,
            "duration_s": self.num_frames / self.fps,
            "env_frame_shape": list(self.env_frame_shape),
            "global_frame_shape": (
                list(self.global_frame_shape) if self.global_frame_shape else None
            ),
            "scalars": list(ENV_SCALARS + self.scalar_names),
            "block_frames": self.block_frames,
            "codec": self.spec.codec,
            "stored_bytes": stored,
            "raw_bytes": raw,
            "compression_ratio": round(raw / stored, 2) if stored > 0 else None,
            "counters": self.counters,
            "errors": self.errors,
            "closed": self.closed,
            "rank": self.rank,
            "world_size": self.world_size,
            "env_id_offset": self.env_id_offset,
            "env_ids": compact_ids(self.env_ids),
            "source": self.source,
            "metadata": self.metadata,
        }

    def __repr__(self) -> str:
        h, w = self.env_frame_shape
        g = f", global {self.global_frame_shape}" if self.has_global else ""
        return (
            f"Run({self.url!r}: {self.num_envs} envs × {self.num_frames} frames of "
            f"{h}×{w}{g} at {self.fps:g} fps)"
        )


def open_run(url: StoreLike | Sequence[StoreLike], *, storage_options: dict | None = None) -> Run:
    """Open a run store for reading; or several rank stores of one run, as one run.

    Checks the format name and version, the spec, the commit record and every array's metadata
    (shape, dtype, standard codecs) before returning; no chunk is read.

    Args:
        url: a local path, a ``.zip``, or an fsspec URL (``file://``, ``memory://``, ``s3://``,
            ``https://``); or a list of them: the rank stores of a multi-GPU run, read as one
            :class:`~envreel.schemas.ranks.RankedRun` with global env ids.
        storage_options: fsspec options for URLs. Defaults to None.

    Raises:
        StoreFormatError: not an envreel store, a newer major version, or inconsistent metadata;
            the message names the attribute or array. For several stores: stores that do not
            belong to one run (mismatched world size, fps, frame size, steps, or overlapping env
            ids). Ranks left out of ``0..world_size-1`` are named in a warning.

    Example:
        >>> run = open_run("runs/ant.zarr")               # doctest: +SKIP
        >>> run.env_frames([0, 3], 0, 64).shape            # doctest: +SKIP
        (64, 2, 128, 128, 3)
    """
    if isinstance(url, list | tuple):
        from .ranks import open_ranks

        return open_ranks([open_run(u, storage_options=storage_options) for u in url])
    url = cast(StoreLike, url)
    store = open_store(url, read_only=True, storage_options=storage_options)
    try:
        static, spec, state = check_root(read_json(store, "zarr.json"))
    except StoreFormatError as exc:  # the store's own messages name the key, not the store
        raise StoreFormatError(f"{describe(url)}: {exc}") from exc
    docs = array_docs(store, spec)
    present: set[str] = set()
    n = int(state["num_frames"])
    for path, s in expected_arrays(spec).items():
        doc = docs[path]
        if doc is None and path in OPTIONAL:
            continue
        problems = check_array_doc(doc, s, spec.sizes, n, spec=spec)
        if problems:
            raise StoreFormatError(str(problems[0]))
        present.add(path)
    run = Run(store, describe(url), static, spec, state)
    run._present = present
    run._docs = docs
    return run
