"""The ring of block buffers and the background thread that writes full blocks.

Memory is a fixed budget: ``Ring`` carves ``num_blocks`` block buffers (every per-frame field of
``block_frames`` frames) out of one flat host allocation made once, at the first capture. The
caller fills one block at a time; a full block goes to the writer thread through a queue; the
writer appends it through ``RunWriter`` (which compresses its chunks on a thread pool, see
``schemas/_chunkwrite.py``) and hands the buffer back to the free list. Nothing is allocated per
frame on either side, so memory stays flat whatever the length of the run.

Errors (``on_error``):

* "raise": the first failure stops writing; later blocks are discarded (and their frames counted
  as dropped) so the caller never waits on a dead writer; ``Recorder`` raises ``RecorderError``
  at its next ``capture()`` or ``close()``.
* "warn": one ``warnings.warn``; each failed block counts one write error and its frames as
  dropped; the writer keeps going. The store is valid up to the last committed block either way
  (the schemas writer commits a block only after all its chunks are written).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envreel.schemas import Block, RecorderError, RunSpec

from ._episodes import EpisodeChain

__all__ = [
    "Ring",
    "Slots",
    "BlockSink",
    "WriterCounts",
    "WriterThread",
    "ring_layout",
    "block_nbytes",
]

_ALIGN = 64


@dataclass
class WriterCounts:
    """The writer's counters, declared once for the writer thread, the writer process (which
    sends them back whole after each block) and the ``Recorder``'s stats.

    Written by the writing side only; the caller reads them racily, as plain numbers.
    """

    frames_written: int = 0
    frames_lost: int = 0  # frames of blocks that failed or were discarded after an error
    blocks_written: int = 0
    write_errors: int = 0
    invalid_frames: int = 0  # float CUDA frames outside value_range (warn mode: clamped)
    inf_values: int = 0  # reward and scalar values stored as +-inf (float32; see _count_inf)
    busy_s: float = 0.0  # seconds spent appending blocks (compressing and writing)


@dataclass
class Slots:
    """One block buffer: per-field arrays of ``block_frames`` frames (views into the ring).

    ``words`` holds, per frame, a uint32 view of the frame slot with 3-byte strides (for the
    RGBA fast copy); ``tensors`` holds torch views of each frame of a field and ``whole`` of each
    field (CUDA copies), made on demand.
    """

    index: int
    arrays: dict[str, np.ndarray]
    words: dict[str, list[np.ndarray]] = field(default_factory=dict)
    tensors: dict[str, list[Any]] = field(default_factory=dict)
    whole: dict[str, Any] = field(default_factory=dict)
    ptrs: dict[str, int] = field(default_factory=dict)
    rows: dict[str, tuple[Any, int]] = field(default_factory=dict)
    event: Any = None
    used_cuda: bool = False

    def tensor(self, name: str, i: int) -> Any:
        """torch view of frame ``i`` of field ``name`` (cached)."""
        views = self.tensors.get(name)
        if views is None:
            views = self.tensors[name] = list(self.frames(name).unbind(0))
        return views[i]

    def address(self, name: str) -> int:
        """Host address of field ``name`` (cached)."""
        ptr = self.ptrs.get(name)
        if ptr is None:
            ptr = self.ptrs[name] = self.arrays[name].ctypes.data
        return ptr

    def row(self, name: str) -> tuple[Any, int]:
        """(torch dtype, bytes per frame) of field ``name`` (cached)."""
        row = self.rows.get(name)
        if row is None:
            import torch

            arr = self.arrays[name]
            row = self.rows[name] = (torch.from_numpy(arr[:0]).dtype, arr.strides[0])
        return row

    def frames(self, name: str) -> Any:
        """torch view of field ``name``, all ``block_frames`` frames (cached)."""
        whole = self.whole.get(name)
        if whole is None:
            import torch

            whole = self.whole[name] = torch.from_numpy(self.arrays[name])
        return whole


def ring_layout(
    spec: RunSpec, *, value_range: bool, rgba: tuple[str, ...] = ()
) -> list[tuple[str, tuple[int, ...], Any]]:
    """(field, per-frame shape, dtype) of every field of a block buffer.

    Args:
        spec: the run's spec.
        value_range: reserve per-frame range fields for float CUDA input.
        rgba: frame fields kept with 4 channels, for host input whose pixels are 4 bytes apart
            (an RGBA buffer or its ``[..., :3]`` view): the caller then copies whole pixels,
            a plain memory copy, and the writer drops the 4th byte when it gathers the chunks.
    """
    n = spec.num_envs
    h, w = spec.env_frame_shape

    def ch(name: str) -> int:
        return 4 if name in rgba else 3

    out: list[tuple[str, tuple[int, ...], Any]] = [
        ("env_frames", (n, h, w, ch("env_frames")), np.uint8)
    ]
    if spec.global_frame_shape is not None:
        out.append(("global_frames", (*spec.global_frame_shape, ch("global_frames")), np.uint8))
    out += [
        ("step", (), np.int64),
        ("sim_time", (), np.float64),
        ("wall_time", (), np.float64),
        ("clip", (), np.int32),
        ("reward", (n,), np.float32),
        ("terminated", (n,), np.bool_),
        ("truncated", (n,), np.bool_),
        ("stale", (n,), np.bool_),
        ("stale_done", (), np.bool_),  # capture(stale="done"): stale where done
        ("ep_snapshot", (), np.bool_),  # the frame carries a snapshot of Episodes.gaps
        ("ep_gaps", (2, n), np.int64),  # [done flags of calls that stored nothing, last step]
        ("episode_step", (n,), np.int32),
        ("explicit_episode_step", (), np.bool_),
    ]
    out += [(f"scalar:{s}", (n,), np.float32) for s in spec.scalar_names]
    if spec.env_pose_per_frame:
        out.append(("env_pose", (n, 4, 4), np.float64))
    if spec.global_pose_per_frame:
        out.append(("global_pose", (4, 4), np.float64))
    if value_range:
        out.append(("env_range", (2,), np.float32))
        if spec.global_frame_shape is not None:
            out.append(("global_range", (2,), np.float32))
    return out


BLOCK_DEFAULT_FLAGS = (
    "terminated",
    "truncated",
    "stale",
    "stale_done",
    "explicit_episode_step",
    "ep_snapshot",
)
"""Per-frame flags a ``capture()`` may leave unset: False unless the call sets them."""


def reset_defaults(arrays: dict[str, np.ndarray]) -> None:
    """Put a block buffer back to the values a ``capture()`` may omit: NaN rewards and
    scalars, False flags.

    The writer does it as it frees a block (a new ring, for each of its blocks), not the
    ``capture()`` that starts the next one: a block of 4,096 envs holds 1.3 MB of these.
    """
    arrays["reward"].fill(np.nan)
    for name in BLOCK_DEFAULT_FLAGS:
        arrays[name].fill(False)
    for name, a in arrays.items():
        if name.startswith("scalar:"):
            a.fill(np.nan)


def _carve(layout, t: int) -> tuple[list[tuple[str, int, tuple, Any]], int]:
    """Offsets of each field in one block (aligned; frame fields get one byte of slack)."""
    off, placed = 0, []
    for name, shape, dtype in layout:
        off = -(-off // _ALIGN) * _ALIGN
        placed.append((name, off, (t, *shape), dtype))
        nbytes = t * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        off += nbytes + (1 if name.endswith("frames") else 0)
    return placed, -(-off // _ALIGN) * _ALIGN


def block_nbytes(spec: RunSpec, *, value_range: bool, rgba: tuple[str, ...] = ()) -> int:
    """Bytes one block buffer takes in the ring (arguments as ``ring_layout``)."""
    return _carve(ring_layout(spec, value_range=value_range, rgba=rgba), spec.block_frames)[1]


class Ring:
    """``num_blocks`` block buffers in one host allocation, and their free list.

    Args:
        spec: the run's spec.
        num_blocks: buffers (>= 2).
        memory: a factory ``nbytes -> HostMemory``-like object with ``.array`` and ``.release``.
        value_range: reserve per-frame range fields for float CUDA input.
        rgba: frame fields kept with 4 channels (see ``ring_layout``).
        fresh: new memory, whose blocks are set to their defaults (``reset_defaults``) here;
            False for the writer process's view of the caller's ring. Defaults to True.
    """

    def __init__(
        self,
        spec: RunSpec,
        *,
        num_blocks: int,
        memory: Callable[[int], Any],
        value_range: bool,
        rgba: tuple[str, ...] = (),
        fresh: bool = True,
    ) -> None:
        t = spec.block_frames
        self.rgba = tuple(rgba)
        placed, per_block = _carve(ring_layout(spec, value_range=value_range, rgba=rgba), t)
        self.block_bytes = per_block
        self.num_blocks = num_blocks
        self.nbytes = per_block * num_blocks
        self.memory = memory(per_block * num_blocks)
        flat = self.memory.array
        self.blocks: list[Slots] = []
        for b in range(num_blocks):
            base = b * per_block
            arrays = {
                name: np.ndarray(shape, dtype, buffer=flat, offset=base + off)
                for name, off, shape, dtype in placed
            }
            if fresh:
                reset_defaults(arrays)
            slots = Slots(b, arrays)
            for name, off, shape, _ in placed:
                if name.endswith("frames"):
                    lead = shape[1:-1]  # per frame: (N, H, W) or (Hg, Wg)
                    frame_bytes = int(np.prod(shape[1:]))
                    px = shape[-1]  # 3: words overlap by a byte; 4: whole pixels, contiguous
                    strides = tuple(
                        int(np.prod(lead[k + 1 :], dtype=np.int64)) * px for k in range(len(lead))
                    )
                    slots.words[name] = [
                        np.ndarray(
                            lead,
                            np.uint32,
                            buffer=flat,
                            offset=base + off + i * frame_bytes,
                            strides=strides,
                        )
                        for i in range(t)
                    ]
            self.blocks.append(slots)
        self.free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for b in range(num_blocks):
            self.free.put(b)

    def release(self) -> None:
        self.memory.release()


class BlockSink:
    """Writes blocks from ring buffers through a ``RunWriter``; counts; keeps the first error.

    The write side shared by the writer thread and the writer process (``_process``).

    Args:
        writer: the ``RunWriter``.
        on_error: "raise" or "warn".
        value_range: (lo, hi) of float CUDA frames, checked here from per-frame min/max.
        autoreset: the recorder's autoreset mode (how episodes are derived from done flags).
    """

    def __init__(
        self,
        writer: Any,
        *,
        on_error: str,
        value_range: tuple[float, float] | None,
        autoreset: str,
    ) -> None:
        self.writer = writer
        self.on_error = on_error
        self.value_range = value_range
        self.autoreset = autoreset
        self.episodes = EpisodeChain(writer.spec.num_envs, autoreset=autoreset)
        self.dropped_by_caller = 0  # frames the caller dropped at a full queue (set by the owner)
        self.counts = WriterCounts()
        self.error: BaseException | None = None  # first failure (raise mode: stops writing)
        self.error_message: str | None = None
        self.close_error: BaseException | None = None
        self._warned = False
        self._inf_warned = False
        self._step_warned = False
        self.pending_warning: str | None = None
        # Clips committed whole (a later clip began, or the store closed), in order; appended
        # by the writing side, read by the recorder's clip hooks (``on_clip``).
        self.clips_done: list[dict[str, int]] = []

    def counters(self) -> dict[str, int]:
        c = {
            "dropped_frames": int(self.dropped_by_caller) + self.counts.frames_lost,
            "write_errors": self.counts.write_errors,
        }
        if self.counts.invalid_frames:
            c["invalid_frames"] = self.counts.invalid_frames
        if self.counts.inf_values:
            c["inf_values"] = self.counts.inf_values
        return c

    def write(self, arrays: dict[str, np.ndarray], length: int, clip_ended: bool = False) -> None:
        """Append the first ``length`` frames of a block; failures are counted, not raised.
        ``clip_ended``: the block's last clip is whole (its window ended), so its hook runs now."""
        try:
            if self.error is not None and self.on_error == "raise":
                self.counts.frames_lost += length  # discarded: the recorder has failed
                return
            block = self._block(arrays, length)
            t0 = time.perf_counter()
            try:
                self.writer.append(block, counters=self.counters())
            finally:
                self.counts.busy_s += time.perf_counter() - t0
            self.counts.frames_written += length
            self.counts.blocks_written += 1
            self._note_clips(final=clip_ended)
        except BaseException as exc:  # noqa: BLE001 - a failure never escapes the writer
            self._failed(exc, length)

    def end_clip(self) -> None:
        """The last committed clip is whole (its window ended): list it for its hook."""
        if self.error is None:
            self._note_clips(final=True)

    def _note_clips(self, *, final: bool) -> None:
        """Appends the clips committed whole since the last call to ``clips_done``."""
        clips = self.writer.clips if final else self.writer.clips[:-1]
        self.clips_done.extend(dict(c) for c in clips[len(self.clips_done) :])

    def _block(self, arrays: dict[str, np.ndarray], length: int) -> Block:
        a = {k: v[:length] for k, v in arrays.items()}
        for name in ("env_frames", "global_frames"):
            if name in a and a[name].shape[-1] == 4:
                a[name] = a[name][..., :3]  # an RGBA ring field (see ring_layout)
        spec = self.writer.spec
        if self.value_range is not None:
            self._check_ranges(a)
        self._count_inf(a, spec.scalar_names)
        explicit = a["explicit_episode_step"]
        stale = a["stale"]
        if a["stale_done"].any():
            stale = stale | (a["stale_done"][:, None] & (a["terminated"] | a["truncated"]))
        episode, episode_step = self.episodes.frames(
            a["ep_snapshot"], a["ep_gaps"], a["step"], a["terminated"], a["truncated"], stale
        )
        if explicit.any():
            given = a["episode_step"][explicit]
            ok = self._check_episode_steps(a, explicit, given)
            episode_step[explicit] = np.where(ok, given, episode_step[explicit])
        return Block(
            env_frames=a["env_frames"],
            step=a["step"],
            sim_time=a["sim_time"],
            wall_time=a["wall_time"],
            clip=a["clip"],
            reward=a["reward"],
            terminated=a["terminated"],
            truncated=a["truncated"],
            episode=episode,
            episode_step=episode_step,
            stale=stale,
            scalars={s: a[f"scalar:{s}"] for s in spec.scalar_names},
            global_frames=a.get("global_frames"),
            env_pose=a.get("env_pose"),
            global_pose=a.get("global_pose"),
        )

    def _check_ranges(self, a: dict[str, np.ndarray]) -> None:
        lo, hi = self.value_range
        for name, what in (("env_range", "env_rgb"), ("global_range", "global_rgb")):
            r = a.get(name)
            if r is None:
                continue
            ok = (r[:, 0] >= lo) & (r[:, 1] <= hi)  # NaN compares False
            # Host inputs were checked before copying and left their range fields at [lo, hi].
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                msg = (
                    f"{what} at step {int(a['step'][i])} has values in "
                    f"[{float(r[i, 0]):g}, {float(r[i, 1]):g}] (NaN if shown), outside "
                    f"value_range=({lo:g}, {hi:g}); {int((~ok).sum())} such frame(s) in this block"
                )
                if self.on_error == "raise":
                    raise ValueError(msg)
                # warn: the frames were clamped (NaN -> lo) on the device; keep them, count them.
                self.counts.invalid_frames += int((~ok).sum())
                self._warn(msg)

    def _check_episode_steps(
        self, a: dict[str, np.ndarray], explicit: np.ndarray, given: np.ndarray
    ) -> np.ndarray:
        """Which explicit episode steps (``given``: the ring's int32 rows of the frames in
        ``explicit``) are valid, i.e. non-negative.

        A host ``episode_step`` was range-checked before it was copied; a CUDA one is checked
        here, after the asynchronous copy (checking it on the device would make the caller wait):
        a negative value, or one beyond int32 that the copy into the int32 ring wrapped, shows as
        negative. ``on_error="raise"`` fails the block, as a bad host value fails its call;
        "warn" stores the step derived from the done flags instead and warns once.
        """
        ok = given >= 0
        if ok.all():
            return ok
        t, env = np.argwhere(~ok)[0]
        step = int(a["step"][np.flatnonzero(explicit)[t]])
        msg = (
            f"episode_step at env {int(env)}, step {step} is {int(given[t, env])} as stored in "
            f"int32: episode steps must be in [0, {2**31 - 1}] (a CUDA value beyond int32 wraps "
            f"when copied); {int((~ok).sum())} such value(s) in this block"
        )
        if self.on_error == "raise":
            raise ValueError(msg)
        if not self._step_warned:
            self._step_warned = True
            self._pend(
                f"envreel recorder ({self.writer.url}): {msg}; stored as derived from the done "
                "flags instead (further such warnings suppressed)"
            )
        return ok

    def _count_inf(self, a: dict[str, np.ndarray], scalar_names: tuple[str, ...]) -> None:
        """Count the reward and scalar values that are +-inf in the ring (float32, as stored);
        warn once, naming the first.

        The caller's values became float32 when they were copied into the ring (on the host, or
        by the asynchronous device-to-host copy for CUDA input): a value beyond float32's range
        became +-inf there. Checked here, where the block is read anyway, so the caller pays
        nothing and never waits on the device; an inf the caller passed looks the same.
        """
        first, total = None, 0
        for name, key in [("reward", "reward")] + [
            (f"scalars[{s!r}]", f"scalar:{s}") for s in scalar_names
        ]:
            inf = np.isinf(a[key])
            n = int(np.count_nonzero(inf))
            total += n
            if n and first is None:
                t, env = np.argwhere(inf)[0]
                first = (name, int(env), int(a["step"][t]), float(a[key][t, env]))
        self.counts.inf_values += total
        if first is None or self._inf_warned:
            return
        self._inf_warned = True
        name, env, step, value = first
        self._pend(
            f"envreel recorder ({self.writer.url}): {name} at env {env}, step {step} is stored "
            f"as {value:g}: rewards and scalars are stored as float32, which holds at most "
            f"+-{float(np.finfo(np.float32).max):.8g} (an inf given stays inf); {total} such "
            "value(s) in this block; recording goes on, stats.inf_values and the store's "
            "inf_values counter count them all (further such warnings suppressed)"
        )

    def _failed(self, exc: BaseException, length: int) -> None:
        self.counts.frames_lost += length
        self.counts.write_errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if self.error is None:
            self.error = exc
            self.error_message = message
        if self.on_error == "warn":
            self._warn(f"writing a block of {length} frames failed ({message})")
            try:  # best effort: the store may be the thing that fails
                self.writer.update_counters(self.counters(), error=message)
            except Exception:  # noqa: BLE001
                pass

    def _warn(self, message: str) -> None:
        # Shown by the Recorder on the caller's thread (at its next capture() or close()), so
        # the warning points at the training loop and warning filters apply there.
        if not self._warned:
            self._warned = True
            self._pend(
                f"envreel recorder ({self.writer.url}): {message}; recording goes on, errors "
                "are counted in the store (further warnings suppressed)"
            )

    def _pend(self, message: str) -> None:
        """Queue a warning for the caller's thread, after any not yet shown."""
        pending = self.pending_warning
        self.pending_warning = message if pending is None else f"{pending}\n{message}"

    def close(self, closing_error: str | None) -> None:
        """Mark the store closed with the final counters (failures kept in ``close_error``)."""
        error = closing_error or self.error_message
        try:
            self.writer.close(counters=self.counters(), error=error)
            self._note_clips(final=True)
        except BaseException as exc:  # noqa: BLE001
            self.close_error = exc


class WriterThread(BlockSink):
    """Appends full blocks from the ring to a ``RunWriter`` on a background thread.

    Args:
        writer: the ``RunWriter`` (owned by this thread from now on).
        ring: the ring whose blocks arrive.
        on_error: "raise" or "warn".
        dropped: callable giving the caller's count of frames dropped at a full queue.
        value_range: (lo, hi) of float CUDA frames.
        autoreset: the recorder's autoreset mode.
    """

    def __init__(
        self,
        writer: Any,
        ring: Ring,
        *,
        on_error: str,
        dropped: Callable[[], int],
        value_range: tuple[float, float] | None,
        autoreset: str,
    ) -> None:
        super().__init__(writer, on_error=on_error, value_range=value_range, autoreset=autoreset)
        self.ring = ring
        self._dropped = dropped
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="envreel-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, index: int, length: int, clip_ended: bool = False) -> None:
        """Hand block ``index`` (its first ``length`` frames) to the thread; ``clip_ended``: its
        last clip is whole."""
        self._queue.put((index, length, clip_ended))

    def clip_ended(self) -> None:
        """After the blocks queued so far: the last clip is whole."""
        self._queue.put(("clip_ended",))

    def finish(self, *, closing_error: str | None = None) -> None:
        """Write what is queued, mark the store closed, and stop the thread (blocks until done)."""
        self._queue.put(("close", closing_error))
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            self.dropped_by_caller = self._dropped()
            if item[0] == "close":
                self.close(item[1])
                return
            if item[0] == "clip_ended":
                self.end_clip()
                continue
            index, length, clip_ended = item
            slots = self.ring.blocks[index]
            try:
                if slots.used_cuda:
                    slots.event.synchronize()  # a host wait, on this thread only
                self.write(slots.arrays, length, clip_ended)
            except BaseException as exc:  # noqa: BLE001 - never let the thread die silently
                self._failed(exc, length)
            finally:
                slots.used_cuda = False
                reset_defaults(slots.arrays)
                self.ring.free.put(index)


def raise_for(writer: WriterThread | None, url: str) -> None:
    """Raise the writer's first failure as a RecorderError naming the cause."""
    if writer is not None and writer.error is not None:
        raise RecorderError(
            f"the envreel writer for {url} failed: {writer.error_message}; the store holds "
            f"every block committed before it ({writer.counts.frames_written} frames)"
        ) from writer.error
