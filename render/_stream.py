"""Streaming: cut the output into blocks of time, read each block's tiles, prefetch in a thread.

The output of one page is cut into jobs of consecutive output frames aligned to the store's time
blocks (a chunk is decoded once). A job's tiles are read in small env groups (``TileBatch``) and
composed straight into a canvas block, so at most one group of raw tiles exists at a time. A
thread fills the next canvas block while the encoder consumes the current one (two buffers), so
memory is two canvas blocks plus one group (and one block of the global view, when shown),
whatever the length of the run. Groups and global blocks are read into reused buffers, mapped
before their first read (``mapped_empty``): a fresh buffer per read costs its page faults every
time.
"""

from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from envreel.schemas import CorruptChunkError, Run

from ._memory import mapped_empty
from ._select import Plan, ScalarReader

__all__ = ["Job", "TileBatch", "BlockReader", "Prefetcher"]

BLOCK_BYTES = 64 << 20
"""Canvas bytes composed at once (two such blocks exist at a time); raised to hold one whole
store block, up to twice this, so that no chunk is decoded twice."""
GROUP_BYTES = 4 << 20
"""Largest group of raw env frames read at once."""
MAX_ROWS = 32
"""Most output frames composed at once (unless a store block is longer): one default store
block. Longer jobs only delay the first frame and grow both canvas blocks (a 512² GIF: 64 rows
took 60 ms to the first frame and 100 MB of buffers, 32 rows half that)."""


@dataclass(frozen=True)
class Job:
    """Output frames ``[o0, o1)`` of page ``page``."""

    page: int
    o0: int
    o1: int

    def __len__(self) -> int:
        return self.o1 - self.o0


@dataclass
class TileBatch:
    """Tiles of some envs of a page over some rows of a job.

    Attributes:
        slots: slot of each env on the page.
        envs: stored env indices (0..N-1; ``Plan.global_id`` gives the id users see).
        rows: (first, stop) rows of the job's block these frames fill.
        frames: (rows, len(envs), H, W, 3) uint8 store frames.
        bad: (rows, len(envs)) bool, True where a frame could not be read (skip_bad: a
            placeholder tile is shown instead).
        store_frames: (rows,) store frame index of each row.
        scalars: name -> (rows, len(envs)) values (NaN where unreadable).
        frame_values: "step" / "time" -> (rows,) values, when a label needs them.
        last_rows: per env, the row holding its last frame in this job, or -1.
    """

    slots: list[int]
    envs: list[int]
    rows: tuple[int, int]
    frames: np.ndarray
    bad: np.ndarray
    store_frames: np.ndarray
    scalars: dict[str, np.ndarray]
    frame_values: dict[str, np.ndarray]
    last_rows: list[int]


class BlockReader:
    """Reads what a page needs, one job (block of output frames) at a time.

    Args:
        run: the open run.
        plan: the resolved plan.
        skip_bad: unreadable chunks become placeholders (with a warning) instead of errors.
        scalars: the scalar reader (shares skip_bad and the warning list).
        frame_fields: frame values the labels need: a subset of ("step", "time").
        canvas_bytes: bytes of one output frame (sets the job length).
        reads_global: the global view is read too. Defaults to False.
        block_bytes: bytes of canvas (or of one env's or the global view's frames) per job.
        group_bytes: bytes of env frames read per call.
    """

    def __init__(
        self,
        run: Run,
        plan: Plan,
        *,
        skip_bad: bool,
        scalars: ScalarReader,
        frame_fields: tuple[str, ...],
        canvas_bytes: int,
        reads_global: bool = False,
        block_bytes: int = BLOCK_BYTES,
        group_bytes: int = GROUP_BYTES,
    ):
        self.run, self.plan, self.skip_bad = run, plan, skip_bad
        self.scalars = scalars
        self.frame_fields = frame_fields
        h, w = run.env_frame_shape
        self.env_bytes = h * w * 3
        # Output frames per job: bounded by bytes (large canvases, or large env or global frames
        # shown small) and by frames (small ones), so memory and the prefetch distance do not
        # depend on the length of the run.
        frame_bytes = max(1, canvas_bytes, self.env_bytes)
        if reads_global:
            gh, gw = run.global_frame_shape
            frame_bytes = max(frame_bytes, gh * gw * 3)
        whole = -(-run.block_frames // plan.stride)  # output frames of one store block
        rows = max(1, block_bytes // frame_bytes)
        if rows < whole and whole * frame_bytes <= 2 * block_bytes:
            rows = whole
        self.max_rows = min(rows, max(whole, MAX_ROWS))
        self.group_bytes = group_bytes
        # A store layer whose env_frames takes ``out=`` decodes straight into one reused buffer:
        # no fresh allocation (page faults) and no extra copy per read (-30% CPU measured).
        self._has_out = _takes_out(run.env_frames)
        self._global_has_out = reads_global and _takes_out(run.global_frames)
        self._buffer: np.ndarray | None = None
        self._global_buffer: np.ndarray | None = None

    def _env_frames(self, envs: list[int], fa: int, fb: int, rows: int) -> np.ndarray:
        if not self._has_out:
            return self.run.env_frames(envs, fa, fb, stride=self.plan.stride)
        h, w = self.run.env_frame_shape
        shape = (len(envs), rows, h, w, 3)
        need = int(np.prod(shape))
        if self._buffer is None or self._buffer.size < need:
            self._buffer = mapped_empty((max(need, self.group_bytes),))
        # env-major memory seen as (rows, envs, ...): each env's rows are contiguous, so a
        # store chunk (one env, one block) decodes straight into place and each tile is one
        # contiguous source for its copy into the canvas.
        out = self._buffer[:need].reshape(shape).transpose(1, 0, 2, 3, 4)
        return self.run.env_frames(envs, fa, fb, stride=self.plan.stride, out=out)

    # ---- jobs -----------------------------------------------------------------------------------
    def jobs(self, page: int) -> list[Job]:
        """The page's output frames cut into blocks aligned to the store's time blocks."""
        n = self.plan.page_frames(page)
        bf, stride = self.run.block_frames, self.plan.stride
        s0 = self.plan.window[0] if not self.plan.episode_mode else None

        def block(o: int) -> int:
            return (s0 + o * stride) // bf

        jobs, o0 = [], 0
        while o0 < n:
            o1 = min(n, o0 + self.max_rows)
            if s0 is not None and stride < bf and o1 < n and block(o1) == block(o1 - 1):
                # end the job where a store block starts, so no chunk is decoded twice
                o = o1 - 1
                while o > o0 and block(o) == block(o - 1):
                    o -= 1
                if o > o0:
                    o1 = o
            jobs.append(Job(page, o0, o1))
            o0 = o1
        return jobs

    # ---- tiles ----------------------------------------------------------------------------------
    def batches(self, job: Job) -> Iterator[TileBatch]:
        """The job's tiles, in groups of envs sharing a frame range, at most ``group_bytes``.

        Scalars and frame values are read once per frame range for all its envs (a scalar
        chunk holds every env, so reading it per small group would decode it many times).
        """
        plan = self.plan
        page = plan.pages[job.page]
        groups: dict[tuple[int, int], list[int]] = {}
        for slot, env in enumerate(page):
            groups.setdefault(plan.track(env), []).append(slot)
        for (s, e), slots in groups.items():
            length = len(range(s, e, plan.stride))
            rows = min(job.o1, length) - job.o0
            if rows <= 0:
                continue
            stride = plan.stride
            fa = s + job.o0 * stride
            fb = s + (job.o0 + rows - 1) * stride + 1
            envs = [page[k] for k in slots]
            scalars = {
                name: self.scalars.read(name, fa, fb, envs, stride=stride)
                for name in plan.scalars_needed
            }
            frame_values = self._frame_values(fa, fb, rows)
            last = length - 1 - job.o0
            per_group = max(1, self.group_bytes // (self.env_bytes * rows))
            for i in range(0, len(slots), per_group):
                sub_envs = envs[i : i + per_group]
                bad = np.zeros((rows, len(sub_envs)), bool)
                try:
                    frames = self._env_frames(sub_envs, fa, fb, rows)
                except CorruptChunkError:
                    if not self.skip_bad:
                        raise
                    frames = self._read_around_damage(sub_envs, fa, fb, rows, bad)
                yield TileBatch(
                    slots=slots[i : i + per_group],
                    envs=sub_envs,
                    rows=(0, rows),
                    frames=frames,
                    bad=bad,
                    store_frames=np.arange(fa, fb, stride),
                    scalars={k: v[:, i : i + per_group] for k, v in scalars.items()},
                    frame_values=frame_values,
                    last_rows=[last if 0 <= last < rows else -1] * len(sub_envs),
                )

    def batch_at(self, envs: list[int], slots: list[int], f: int) -> TileBatch:
        """One store frame ``f`` of some envs, for slots ``slots`` (a contact sheet's column):
        placeholders where unreadable (``skip_bad``)."""
        bad = np.zeros((1, len(envs)), bool)
        try:
            frames = self.run.env_frames(envs, f, f + 1)
        except CorruptChunkError:
            if not self.skip_bad:
                raise
            frames = self._read_around_damage(envs, f, f + 1, 1, bad)
        return TileBatch(
            slots=slots,
            envs=envs,
            rows=(0, 1),
            frames=frames,
            bad=bad,
            store_frames=np.array([f]),
            scalars={n: self.scalars.read(n, f, f + 1, envs) for n in self.plan.scalars_needed},
            frame_values=self._frame_values(f, f + 1, 1),
            last_rows=[-1] * len(envs),
        )

    def _frame_values(self, fa: int, fb: int, rows: int) -> dict[str, np.ndarray]:
        out = {}
        for name in self.frame_fields:
            key = "sim_time" if name == "time" else name
            try:
                out[name] = self.run.frame_values(key, fa, fb, stride=self.plan.stride)
            except CorruptChunkError as exc:
                if not self.skip_bad:
                    raise
                self.scalars.warn_corrupt(exc, f"frame {key}, frames {fa}..{fb - 1}")
                out[name] = np.full(rows, np.nan)
        return out

    def _read_around_damage(
        self, envs: list[int], fa: int, fb: int, rows: int, bad: np.ndarray
    ) -> np.ndarray:
        """Read env by env and store block by store block; mark what cannot be read in ``bad``."""
        stride, bf = self.plan.stride, self.run.block_frames
        h, w = self.run.env_frame_shape
        frames = np.zeros((rows, len(envs), h, w, 3), np.uint8)
        store_frames = np.arange(fa, fb, stride)
        damaged: dict[Any, tuple[CorruptChunkError, list[int], int, int]] = {}
        for j, env in enumerate(envs):
            for blk in range(fa // bf, (fb - 1) // bf + 1):
                sel = np.flatnonzero((store_frames >= blk * bf) & (store_frames < (blk + 1) * bf))
                if sel.size == 0:
                    continue
                a, b = int(store_frames[sel[0]]), int(store_frames[sel[-1]]) + 1
                try:
                    frames[sel, j] = self.run.env_frames([env], a, b, stride=stride)[:, 0]
                except CorruptChunkError as exc:
                    bad[sel, j] = True
                    # a shard holds many envs: one warning for it, not one per env
                    where = _object_of(self.run, env, a) or (exc.array, exc.chunk, env)
                    damaged.setdefault(where, (exc, [], a, b))[1].append(env)
        for where, (exc, bad_envs, a, b) in damaged.items():
            self.scalars.damage.add(self.run, where, exc, bad_envs, a, b)
        return frames

    def global_frames(self, job: Job) -> tuple[np.ndarray | None, int, int]:
        """(frames or None when unreadable, first store frame, stop) of the job's global view."""
        s = self.plan.window[0]
        stride = self.plan.stride
        fa = s + job.o0 * stride
        fb = s + (job.o1 - 1) * stride + 1
        try:
            if not self._global_has_out:
                return self.run.global_frames(fa, fb, stride=stride), fa, fb
            shape = (len(job), *self.run.global_frame_shape, 3)
            if self._global_buffer is None or len(self._global_buffer) < len(job):
                # a random-access job (FrameSource.frame) may be longer than max_rows
                self._global_buffer = mapped_empty((max(self.max_rows, len(job)), *shape[1:]))
            out = self._global_buffer[: len(job)]
            return self.run.global_frames(fa, fb, stride=stride, out=out), fa, fb
        except CorruptChunkError as exc:
            if not self.skip_bad:
                raise
            self.scalars.warn_corrupt(exc, f"global view, frames {fa}..{fb - 1}: placeholder")
            return None, fa, fb


def _object_of(run: Any, env: int, frame: int) -> tuple[str, range, range] | None:
    """(name, stored envs, frames) of the store object holding ``env``'s frame ``frame``, or
    None for a store layer that does not say (one warning per chunk then)."""
    find = getattr(run, "_env_frames_object", None)
    return find(env, frame) if find is not None else None


def _takes_out(read: Callable) -> bool:
    """Whether a store layer's read method takes ``out=`` (decodes into a reused buffer)."""
    try:
        return "out" in inspect.signature(read).parameters
    except (TypeError, ValueError):
        return False


class Prefetcher:
    """Fills buffers for a list of jobs in a thread, one job ahead of the consumer.

    ``fill(job, buffer)`` composes a job into a buffer view of ``len(job)`` frames; iterating
    yields ``(job, view)`` in order. A view is valid until the next item is requested. Errors in
    the thread are raised in the consumer; closing stops the thread. ``start()`` begins filling
    before the first item is asked for (while the encoder starts), else iterating starts it.

    Args:
        jobs: the jobs, in output order.
        fill: composes one job into a buffer of shape (len(job), H, W, 3).
        make_buffer: returns a new buffer of the largest job's length.
        n_buffers: buffers in the ring (2: one being filled while one is consumed).
        threaded: use a thread; False runs ``fill`` inline (for tests and debugging).
    """

    _DONE = object()

    def __init__(
        self,
        jobs: list[Job],
        fill: Callable[[Job, np.ndarray], None],
        make_buffer: Callable[[], np.ndarray],
        *,
        n_buffers: int = 2,
        threaded: bool = True,
    ):
        self.jobs, self.fill, self.make_buffer = jobs, fill, make_buffer
        self.n_buffers, self.threaded = n_buffers, threaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._free: queue.Queue = queue.Queue()
        self._ready: queue.Queue = queue.Queue()

    def start(self) -> None:
        """Start filling in the thread (no-op when started, or not threaded)."""
        if not self.threaded or self._thread is not None or self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._work, name="envreel-prefetch", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        free, ready, made = self._free, self._ready, 0
        try:
            for job in self.jobs:
                buf = None
                while buf is None:
                    if self._stop.is_set():
                        return
                    if made < self.n_buffers and free.empty():
                        buf = self.make_buffer()
                        made += 1
                        break
                    try:
                        buf = free.get(timeout=0.1)
                    except queue.Empty:
                        continue
                view = buf[: len(job)]
                self.fill(job, view)
                ready.put((job, buf, view))
            ready.put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            ready.put(exc)

    def __iter__(self) -> Iterator[tuple[Job, np.ndarray]]:
        if not self.threaded:
            buf = self.make_buffer() if self.jobs else None
            for job in self.jobs:
                view = buf[: len(job)]
                self.fill(job, view)
                yield job, view
            return
        self.start()
        try:
            while True:
                item = self._ready.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                job, buf, view = item
                yield job, view
                self._free.put(buf)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (it finishes the job in hand) and wait for it."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=60)
        self._thread = None
