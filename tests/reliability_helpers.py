"""Helpers of the reliability tests (issue 7): damaged and hostile stores, failing disks, bounds.

Everything here works on real stores on disk (zarr ``LocalStore`` folders) written by the real
writer or recorder, and damages them the way disks, copies and strangers do: flipped bytes,
truncated or deleted objects, edited metadata JSON. ``exercise`` runs every reader entry point
over a store so that a test can assert which errors come out.
"""

from __future__ import annotations

import errno
import json
import shutil
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from recorder_helpers import within  # noqa: F401 - shared with the reliability tests
from store_helpers import small_spec, write_run
from zarr.storage import WrapperStore

from envreel.schemas import EnvreelError, open_run

__all__ = [
    "ENVREEL_ERRORS",
    "BAD_ERRORS",
    "build_store",
    "data_objects",
    "metadata_docs",
    "read_doc",
    "write_doc",
    "edit_json",
    "flip_byte",
    "truncate",
    "json_paths",
    "get_at",
    "set_at",
    "delete_at",
    "within",
    "exercise",
    "traced_peak",
    "DiskFullStore",
    "FlakyStore",
    "KeyCountingStore",
]

ENVREEL_ERRORS: tuple[type[BaseException], ...] = (EnvreelError,)
"""What reading a damaged store may raise: envreel's documented store errors only."""

BAD_ERRORS = (KeyError, IndexError, MemoryError, AttributeError, RecursionError, AssertionError)
"""Errors that always mean a bug when they escape an envreel reader."""


# ---- stores ------------------------------------------------------------------------------------
def build_store(path: str | Path, *, block_sizes=(8, 8, 5), **spec_kw: Any) -> Path:
    """A small valid store of deterministic data (``store_helpers.fill_block``) at ``path``.

    Defaults: 4 envs of 12×16, a 10×20 global view, scalars ``speed`` and ``success``, blocks of
    8 frames, 21 frames, static cameras.
    """
    path = Path(path)
    write_run(path, small_spec(**spec_kw), block_sizes=block_sizes)
    return path


def data_objects(root: Path) -> list[str]:
    """Relative paths of every chunk or shard object of a store, sorted."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "/c/" in "/" + p.relative_to(root).as_posix()
    )


def metadata_docs(root: Path) -> list[str]:
    """Relative paths of every ``zarr.json`` of a store (root first), sorted."""
    docs = sorted(p.relative_to(root).as_posix() for p in root.rglob("zarr.json"))
    return sorted(docs, key=lambda d: (d != "zarr.json", d))


def read_doc(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_doc(path: Path, doc: Any) -> None:
    # allow_nan: a hostile store may hold NaN/Infinity tokens, which Python's json reads.
    Path(path).write_text(json.dumps(doc, allow_nan=True))


def edit_json(path: Path, fn: Callable[[Any], Any]) -> None:
    """Apply ``fn`` to the JSON document at ``path``, in place (its return value is ignored)."""
    doc = read_doc(path)
    fn(doc)
    write_doc(path, doc)


def flip_byte(path: Path, offset: int | None = None, mask: int = 0xFF) -> None:
    """XOR one byte of a file (default: a third of the way in)."""
    data = bytearray(Path(path).read_bytes())
    if not data:
        return
    i = len(data) // 3 if offset is None else offset % len(data)
    data[i] ^= mask
    Path(path).write_bytes(bytes(data))


def truncate(path: Path, size: int | None = None) -> None:
    """Cut a file to ``size`` bytes (default: half), as an interrupted copy does."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2 if size is None else size])


# ---- JSON documents as trees -------------------------------------------------------------------
def json_paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every node of a JSON tree as a path of keys and indexes (the root is ``()``)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from json_paths(v, (*prefix, i))


def get_at(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def set_at(doc: Any, path: tuple, value: Any) -> Any:
    """Replace the node at ``path``; returns the (possibly new) root."""
    if not path:
        return value
    get_at(doc, path[:-1])[path[-1]] = value
    return doc


def delete_at(doc: Any, path: tuple) -> Any:
    """Remove the node at ``path`` (a dict key or a list item); the root becomes ``{}``."""
    if not path:
        return {}
    del get_at(doc, path[:-1])[path[-1]]
    return doc


# ---- running readers ---------------------------------------------------------------------------
def exercise(url: str | Path) -> dict[str, Any]:
    """Open a store and read everything through ``Run``; return what was read.

    Raises whatever envreel raises (the caller decides what is allowed).
    """
    run = open_run(url)
    got: dict[str, Any] = {"num_frames": run.num_frames, "info": run.info()}
    got["clips"] = run.clips
    got["counters"] = run.counters
    got["env_frames"] = run.env_frames()
    got["subset"] = run.env_frames([run.num_envs - 1, 0], 0, run.num_frames, stride=2)
    for name in ("step", "sim_time", "wall_time", "clip"):
        got[name] = run.frame_values(name)
    for name in ("reward", "terminated", "truncated", "episode", "episode_step", "stale"):
        got[name] = run.scalar(name)
    for name in run.scalar_names:
        got[name] = run.scalar(name)
    if run.has_global:
        got["global"] = run.global_frames()
    got["cameras"] = run.cameras
    got["origins"] = run.env_origins
    got["env_poses"] = run.env_camera_poses()
    got["global_poses"] = run.global_camera_poses()
    run.refresh()
    return got


def traced_peak(fn: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """(peak bytes traced by tracemalloc while ``fn`` ran, the exception it raised or None).

    numpy reports its array buffers to tracemalloc, so a big array shows up here.
    """
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        exc = None
    except BaseException as e:  # noqa: BLE001 - returned to the caller
        exc = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, exc


# ---- misbehaving stores ------------------------------------------------------------------------
class _Hook(WrapperStore):
    # Every write must take the async path below: zarr >= 3.4 may otherwise write through a
    # synchronous fast path straight to the wrapped store.
    _supports_sync_io = False

    def __init__(self, store):
        super().__init__(store)
        self.lock = threading.Lock()
        self.failures: list[str] = []

    async def set(self, key, value):
        self.before_set(key, value)
        await self._store.set(key, value)

    def before_set(self, key: str, value: Any) -> None:  # pragma: no cover - overridden
        pass


class DiskFullStore(_Hook):
    """Raises ENOSPC for every write that would pass ``budget`` bytes (``None``: no limit).

    Both chunk and metadata writes count, as on a real disk; a write that does not fit fails
    whole (the LocalStore's temporary file is never renamed into place).
    """

    def __init__(self, store, budget: int | None = None):
        super().__init__(store)
        self.budget = budget
        self.written = 0

    def before_set(self, key, value):
        with self.lock:
            if self.budget is not None and self.written + len(value) > self.budget:
                self.failures.append(key)
                raise OSError(errno.ENOSPC, "No space left on device (simulated)", key)
            self.written += len(value)


class FlakyStore(_Hook):
    """Raises EIO on the writes ``should_fail(index, key)`` picks (an intermittent fault).

    ``index`` counts every write attempt (0-based), metadata included.
    """

    def __init__(self, store, should_fail: Callable[[int, str], bool]):
        super().__init__(store)
        self.should_fail = should_fail
        self.attempts = 0

    def before_set(self, key, value):
        with self.lock:
            i = self.attempts
            self.attempts += 1
            if self.should_fail(i, key):
                self.failures.append(key)
                raise OSError(errno.EIO, "Input/output error (simulated)", key)


class KeyCountingStore(WrapperStore):
    """Records every key read (whole or partial), to prove what was never read."""

    _supports_sync_io = False

    def __init__(self, store):
        super().__init__(store)
        self.keys: list[str] = []

    async def get(self, key, prototype, byte_range=None):
        self.keys.append(key)
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        self.keys += [k for k, _ in key_ranges]
        return await self._store.get_partial_values(prototype, key_ranges)

    async def get_ranges(self, key, byte_ranges, *, prototype, **kwargs):
        self.keys.append(key)
        async for group in self._store.get_ranges(key, byte_ranges, prototype=prototype, **kwargs):
            yield group


def wait_until(pred: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``pred`` until true; fail after ``timeout_s``."""
    t_end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > t_end:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.005)


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def frames_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))
