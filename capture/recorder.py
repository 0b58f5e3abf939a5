"""``Recorder``: record what N parallel envs see into a run store, at almost no cost per step.

The class is a facade over named steps, each in its own module:

1. check the call's inputs (``_inputs``: a ``CheckedStep``, nothing written);
2. count the step's episodes and decide its recording window (``_episodes``, ``_windows``);
3. fill the step's slot of a ring block, routing CUDA inputs through the copier (``_fill``);
4. hand each full block to the writer (``_writer``: a thread; ``_process``: a child process).

The store, the ring and the writer are created at the first capture (``_open``); the options are
declared once in ``options`` (and the store's in ``envreel.schemas.options``).
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - see _register_exit
import functools
import os
import queue
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

from envreel.schemas import RecorderError, RunSpec
from envreel.schemas.writer import check_new_store

from . import _frames as fr
from ._cuda import SharedMemoryFullError
from ._episodes import Episodes
from ._fill import SlotFiller
from ._hooks import ClipEvent, ClipHooks
from ._inputs import CheckedStep, Inputs
from ._lock import StoreLock
from ._open import (
    Target,
    auto_block_frames,
    blocks_for,
    cuda_device,
    is_store,
    local_path,
    open_writer,
    rgba_fields,
    writer_mode,
)
from ._windows import Windows
from ._writer import Ring, WriterCounts, WriterThread, raise_for
from .options import DEFAULT_MAX_QUEUE_BYTES, InputOptions, WindowOptions, WriterOptions

__all__ = ["Recorder", "RecorderStats", "DEFAULT_MAX_QUEUE_BYTES"]

_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _close_open_recorders() -> None:
    # A forgotten close() still flushes the last partial block at interpreter exit.
    for rec in list(_OPEN):
        try:
            rec._close(measure=False)
        except Exception:  # noqa: BLE001 - nothing useful to do at exit
            pass


# zarr compresses and writes on thread pools that refuse new work once interpreter shutdown has
# begun (concurrent.futures' own exit hook), i.e. before plain atexit handlers run. threading's
# exit hooks run in reverse order of registration: registering after concurrent.futures.thread
# is imported makes ours run first, while the pools still work.
_register_exit = getattr(threading, "_register_atexit", atexit.register)
_register_exit(_close_open_recorders)


@dataclass(frozen=True)
class RecorderStats:
    """A snapshot of a recorder's counters (``Recorder.stats``).

    Attributes:
        steps: ``capture()`` calls.
        frames_captured: frames kept and copied into the queue.
        frames_dropped: frames lost: the queue was full (``on_full="drop"``) or their block
            failed to write. Also in the store's ``dropped_frames`` counter.
        frames_written: frames committed to the store.
        blocks_written: blocks committed.
        write_errors: blocks that failed to write.
        bytes_in: uncompressed RGB bytes of the frames captured (env and global views).
        bytes_stored: bytes the store takes on its backend, measured at ``close()``; -1 before
            that, or where the backend cannot list sizes.
        queue_bytes: ring bytes holding captured frames not yet written.
        queue_high_water_bytes: the most ``queue_bytes`` reached.
        queue_capacity_bytes: bytes of the ring (<= ``max_queue_bytes``).
        blocked_s: seconds ``capture()`` waited for a free buffer (``on_full="block"``).
        writer_busy_s: seconds the writer spent appending blocks (compressing and writing).
        inf_values: reward and scalar values stored as +-inf: beyond float32's range (about
            +-3.4e38, the dtype they are stored in) or infinite as given. Warned about once;
            also in the store's ``inf_values`` counter.
    """

    steps: int
    frames_captured: int
    frames_dropped: int
    frames_written: int
    blocks_written: int
    write_errors: int
    bytes_in: int
    bytes_stored: int
    queue_bytes: int
    queue_high_water_bytes: int
    queue_capacity_bytes: int
    blocked_s: float
    writer_busy_s: float
    inf_values: int = 0


class Recorder:
    """Records per-env (and optional global) camera frames of N parallel envs into a run store.

    ``capture()`` is meant to be called every env step and costs about a memory copy: it checks
    the inputs (cached per input kind), starts one batched copy into a preallocated ring of block
    buffers (CUDA tensors: an asynchronous copy to page-locked memory on a side stream) and
    returns. A background thread compresses and appends whole blocks through the store writer.
    No per-env Python loop, device synchronisation, compression or disk I/O happens on the
    caller's thread. Memory is fixed at ``max_queue_bytes`` whatever the length of the run.

    The store is created at the first ``capture()``, when the frame shapes are known (shapes not
    given here are taken from that first call and fixed). Nothing is created by a constructor
    that raises or by a ``capture()`` whose inputs are rejected. The first ``capture()`` is the
    slow one (it creates the store, allocates and page-locks the ring and, with the default
    writer process, waits for that process to have started: about 1.3 s on an H100 host);
    construct the recorder before building the environment to overlap the process's start.

    Episodes: each frame's episode index and step within the episode are derived from
    ``terminated | truncated``. With ``autoreset="same_step"`` (Isaac Lab, which resets envs
    inside ``step()``), the frame returned with done=True already shows the new episode: it
    gets the next episode index and episode step 0, unless it is marked ``stale`` (rendered
    before the reset), in which case it keeps the finished episode's index and last step and the
    new episode shows from the next frame. With ``autoreset="next_step"`` (gymnasium's default
    for vector envs) the done frame is the finished episode's last and the step after it is the
    new episode's step 0. Counting needs ``capture()`` every step (frames outside a recording window
    cost only the checks); or pass ``episode_step`` (e.g. Isaac Lab's ``episode_length_buf``),
    which is then stored as given.

    Recording windows: without ``video_length`` the whole run is clip 0; ``stop_clip()`` /
    ``start_clip()`` cut it into clips by hand. With ``video_length``, ``video_length`` steps are
    recorded every ``video_interval`` steps from ``step_offset`` (gymnasium's ``RecordVideo``
    vocabulary); ``frame_stride`` keeps every k-th step. Each window is a clip in the store.

    Not thread-safe: call ``capture()`` from one thread.

    Args:
        url: where the store goes: a local path, a ``file://``, ``memory://`` or other fsspec
            URL, or a zarr ``Store`` object.
        num_envs: N, envs per frame (this process's envs under multi-GPU training).
        fps: playback frames per second. Defaults to None: round(1 / step_dt).
        step_dt: simulated seconds per env step (Isaac Lab's ``env.step_dt``). Defaults to None:
            1 / fps. Give fps or step_dt.
        env_frame_shape: (height, width) of each env's frame. Defaults to None: fixed by the
            first capture.
        global_frame_shape: (height, width) of the global camera. Defaults to None: fixed by
            the first capture if it passes ``global_rgb``, else the run has no global view.
        env_origins: (N, 3) env origins in world, metres (numpy or torch). Defaults to None.
        env_camera_poses: (N, 4, 4) static camera-to-world poses (OpenGL convention: camera
            looks along -Z, +Y up). Defaults to None.
        env_intrinsics: (N, 3, 3) or (3, 3) pinhole matrices in pixels. Defaults to None.
        global_camera_pose: (4, 4) static camera-to-world of the global camera. Defaults to None.
        global_intrinsics: (3, 3) pinhole matrix of the global camera. Defaults to None.
        scalar_names: names of extra per-env float values passed to ``capture(scalars=)``.
            Defaults to ().
        source: JSON description of the producer (simulator, versions, renderer).
            Defaults to None ({}).
        metadata: JSON user metadata. Defaults to None ({}).
        rank: this process's rank under multi-GPU training. Defaults to 0.
        world_size: number of ranks. Defaults to 1.
        env_id_offset: global id of local env 0 (rank × N). Defaults to 0.
        env_ids: the simulator's env index of each recorded env, (N,) unique ints (a
            sequence, numpy or torch), when the frames are a subset of the sim's envs; the
            global id of env i is ``env_id_offset + env_ids[i]``. Defaults to None (0..N-1).
        quat_order: quaternion order of the source ("xyzw" Isaac Lab 3, "wxyz" 2.x), recorded
            for reference. Defaults to "xyzw".
        env_pose_per_frame: per-env camera poses are passed to every ``capture()``.
            Defaults to False.
        global_pose_per_frame: the global camera pose is passed to every ``capture()``.
            Defaults to False.
        codec: "zstd", "blosc-lz4", "gzip" or "none". Defaults to "zstd".
        codec_level: compression level: zstd -131072..22, blosc-lz4 and gzip 0..9. Defaults to
            3.
        block_frames: frames per block: the unit of compression, commit and chunking.
            Defaults to None: 32, or where ``max_queue_bytes`` holds fewer than 2 blocks of 32
            frames (many envs, large frames: 1,024 × 64² with a 720p global view), the longest
            of 16, 8, 4, 2, 1 it holds twice, with a warning below 8.
        max_queue_bytes: host memory for the ring of block buffers, allocated once at the first
            capture (page-locked for CUDA input); it must hold at least 2 blocks. Defaults to
            512 MiB (``DEFAULT_MAX_QUEUE_BYTES``).
        on_full: what ``capture()`` does when every buffer waits for the writer: "block" waits
            (back-pressure), "drop" drops the frame and counts it. Defaults to "block".
        on_error: when the writer fails: "warn" warns once, counts the error and the lost frames
            in the store and keeps going (if the writer process itself is killed, recording
            stops there and training goes on); "raise" makes the next ``capture()`` or
            ``close()`` raise ``RecorderError``. Defaults to "warn".
        value_range: (lo, hi) of float frames, mapped to 0 and 255; required for float input.
            Values outside it (or NaN/inf) are an error. Defaults to None.
        autoreset: "same_step" or "next_step": when a done env's new episode shows (above).
            Defaults to "same_step".
        video_length: steps per recording window. Defaults to None (no automatic windows).
        video_interval: steps between window starts (>= video_length). Defaults to None (one
            window when video_length is given).
        step_offset: first step that may be recorded. Defaults to 0.
        frame_stride: record every k-th step of a window or clip. Defaults to 1.
        overwrite: replace an existing envreel store at ``url`` (a folder holding other files
            is refused, never emptied). Defaults to False.
        storage_options: fsspec options for URLs. Defaults to None.
        writer: where blocks are compressed and written: "process" (a child process started
            by this constructor: compression and zarr's Python code never hold the training
            process's GIL), "thread" (a thread of this process), or "auto": "process" for paths
            and URLs, "thread" for zarr Store objects and memory:// stores, which live in this
            process. Defaults to "auto".
        on_clip: called with a ``ClipEvent`` (store URL, clip id, frames, steps) each time a
            clip is committed to the store (a recording window ended, ``stop_clip()``, or
            ``close()``), on a thread of its own: off the training loop and the writer, so it
            may render and log (``envreel.render.loggers``). ``close()`` waits for it. A hook
            that raises is warned about once. Defaults to None.

    Raises:
        TypeError/ValueError: an argument is invalid (named in the message); nothing is written.
        FileExistsError: a store exists at a local ``url`` and ``overwrite`` is False, or the
            place holds files that are not an envreel store.

    Example:
        >>> import numpy as np
        >>> from envreel.capture import Recorder
        >>> with Recorder("memory://doc.zarr", num_envs=4, fps=30) as rec:
        ...     for step in range(100):
        ...         frames = np.zeros((4, 64, 64, 3), np.uint8)  # (N, H, W, 3) from the sim
        ...         kept = rec.capture(frames, reward=np.ones(4), terminated=np.zeros(4, bool))
        >>> rec.stats.frames_written
        100
    """

    def __init__(
        self,
        url: Any,
        *,
        num_envs: int,
        fps: float | None = None,
        step_dt: float | None = None,
        env_frame_shape: tuple[int, int] | None = None,
        global_frame_shape: tuple[int, int] | None = None,
        env_origins: Any = None,
        env_camera_poses: Any = None,
        env_intrinsics: Any = None,
        global_camera_pose: Any = None,
        global_intrinsics: Any = None,
        scalar_names: tuple[str, ...] | list[str] = (),
        source: dict | None = None,
        metadata: dict | None = None,
        rank: int = 0,
        world_size: int = 1,
        env_id_offset: int = 0,
        env_ids: Any = None,
        quat_order: str = "xyzw",
        env_pose_per_frame: bool = False,
        global_pose_per_frame: bool = False,
        codec: str = "zstd",
        codec_level: int = 3,
        block_frames: int | None = None,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        on_full: str = "block",
        on_error: str = "warn",
        value_range: tuple[float, float] | None = None,
        autoreset: str = "same_step",
        video_length: int | None = None,
        video_interval: int | None = None,
        step_offset: int = 0,
        frame_stride: int = 1,
        overwrite: bool = False,
        storage_options: dict | None = None,
        writer: str = "auto",
        on_clip: Callable[[ClipEvent], Any] | None = None,
    ) -> None:
        args = {k: v for k, v in locals().items() if k != "self"}  # the keywords, as given
        self._closed = True  # until construction succeeds: close() is then a no-op
        _check_url(url)
        # Each option is checked by its one declaration: the recorder's groups here (built from
        # the keywords of the same names), the store's by RunSpec.
        writer_opts, input_opts, windows = (
            _group(group, args) for group in (WriterOptions, InputOptions, WindowOptions)
        )
        spec_kwargs = _spec_kwargs(args)
        # The full spec is built at the first capture; build one now to check every field.
        probe = RunSpec(
            env_frame_shape=env_frame_shape if env_frame_shape is not None else (1, 1),
            global_frame_shape=global_frame_shape,
            **spec_kwargs,
        )
        probe.check_new()
        statics = _check_statics(probe, {name: args[name] for name in _STATIC_KEYS})
        self._auto_block = block_frames is None
        if env_frame_shape is not None:
            budget, floats = writer_opts.max_queue_bytes, input_opts.value_range is not None
            if self._auto_block:
                probe = auto_block_frames(probe, budget, floats)
            blocks_for(probe, budget, floats)
        path = local_path(url)
        self._lock = StoreLock(path) if path is not None else None  # before any check of it
        try:
            target = _target(url, path, writer_opts.overwrite, storage_options, statics)
        except BaseException:
            self._release_lock()
            raise
        self._setup(probe, spec_kwargs, target, writer_opts, input_opts, windows, env_frame_shape)
        self._proc = self._start_process(writer)
        self._hooks = None if on_clip is None else ClipHooks(on_clip, target.store_url)
        self._closed = False
        _OPEN.add(self)

    def _setup(
        self,
        probe: RunSpec,
        spec_kwargs: dict[str, Any],
        target: Target,
        writer_opts: WriterOptions,
        input_opts: InputOptions,
        windows: WindowOptions,
        env_frame_shape: tuple[int, int] | None,
    ) -> None:
        """The recorder's state before the first capture (arguments all checked)."""
        self.url = target.url
        self.num_envs = probe.num_envs
        self.spec: RunSpec | None = None  # set when the store is created
        self._target = target
        self._spec_kwargs = spec_kwargs
        self._writer_opts = writer_opts
        self._value_range = input_opts.value_range
        self._step_dt = probe.step_dt
        self._inputs = Inputs(
            probe.num_envs,
            env_frame_shape=env_frame_shape and probe.env_frame_shape,
            global_frame_shape=probe.global_frame_shape,
            value_range=input_opts.value_range,
            scalar_names=probe.scalar_names,
            env_pose_per_frame=probe.env_pose_per_frame,
            global_pose_per_frame=probe.global_pose_per_frame,
            step_dt=cast(float, probe.step_dt),  # RunSpec fills it in
        )
        self._filler = SlotFiller(self._inputs, input_opts.value_range)
        self._windows = Windows(**{f.name: getattr(windows, f.name) for f in fields(windows)})
        self._episodes = Episodes(probe.num_envs, autoreset=input_opts.autoreset)
        self._ring: Ring | None = None
        self._writer: WriterThread | None = None
        self._cur = None  # the block being filled (Slots), or None
        self._fill = 0
        self._handed_over = 0  # frames handed to the writer so far
        self._clip_open = False  # a kept frame's clip has not been told ended to the writer
        self._block_length = 0  # frames the block being filled takes (set at the start)
        self._steps = 0
        self._captured = 0
        self._dropped = 0
        self._blocked_s = 0.0
        self._high_water = 0
        self._frame_bytes = 0
        self._slot_bytes = 0
        self._bytes_stored = -1
        self._error_reported = False
        self._stopped = False  # the writer died under on_error="warn": nothing more is recorded
        self._writer_mode = writer_mode(writer_opts.writer, target.url)

    def _start_process(self, writer: str) -> Any:
        """The writer process, started now so that its imports overlap the caller's setup (it
        creates nothing until the first capture); None for a writer thread."""
        if self._writer_mode != "process":
            return None
        from ._process import WriterProcess

        try:
            return WriterProcess()
        except OSError as exc:
            if writer == "process":
                raise
            warnings.warn(
                f"envreel: cannot start the writer process ({exc}); writing from a thread "
                "of this process instead",
                RuntimeWarning,
                stacklevel=3,
            )
            self._writer_mode = "thread"
            return None

    # -- public ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def stats(self) -> RecorderStats:
        """Counters so far (cheap; safe to read every step)."""
        w = self._writer
        c = w.counts if w else WriterCounts()
        pending = max(0, self._captured - c.frames_written - c.frames_lost)
        gone = 0
        if w is not None and w.error is not None and not w.alive:
            gone, pending = pending, 0  # lost with the writer: dropped, never to be written
        return RecorderStats(
            steps=self._steps,
            frames_captured=self._captured,
            frames_dropped=self._dropped + c.frames_lost + gone,
            frames_written=c.frames_written,
            blocks_written=c.blocks_written,
            write_errors=c.write_errors,
            bytes_in=self._captured * self._frame_bytes,
            bytes_stored=self._bytes_stored,
            queue_bytes=pending * self._slot_bytes,
            queue_high_water_bytes=self._high_water,
            queue_capacity_bytes=self._ring.nbytes if self._ring else 0,
            blocked_s=self._blocked_s,
            writer_busy_s=c.busy_s,
            inf_values=c.inf_values,
        )

    def start_clip(self) -> None:
        """Open a new clip: later captures are recorded under a new clip id.

        Only without ``video_length`` (automatic windows). Closes the open clip if any.
        """
        self._windows.start_clip()
        if not self._closed:
            self._end_of_clip()

    def stop_clip(self) -> None:
        """Close the open clip: nothing is recorded until ``start_clip()``. Its last frames go
        to the store now, and its ``on_clip`` hook runs once they are there.

        Call it right after construction to record only between ``start_clip()`` and
        ``stop_clip()``.
        """
        self._windows.stop_clip()
        if not self._closed:
            self._end_of_clip()

    def wants(self, step: int | None = None) -> bool:
        """Whether a frame captured at ``step`` would be kept by the recording windows.

        Lets a caller skip rendering frames nobody keeps: outside the windows, call
        ``capture(None, ...)`` with the done flags instead. A frame may still be dropped when
        the queue is full (``on_full="drop"``).

        Args:
            step: the step of the next ``capture()``. Defaults to None: the previous step + 1.

        Returns:
            True inside a recording window (and on its stride), False outside.
        """
        if step is None:
            last = self._inputs.last_step
            step = 0 if last is None else last + 1
        return not self._closed and self._windows.keeps(int(step))

    def capture(
        self,
        env_rgb: Any,
        global_rgb: Any = None,
        *,
        step: int | None = None,
        sim_time: float | None = None,
        reward: Any = None,
        terminated: Any = None,
        truncated: Any = None,
        episode_step: Any = None,
        stale: Any = None,
        scalars: dict[str, Any] | None = None,
        env_camera_poses: Any = None,
        global_camera_pose: Any = None,
    ) -> bool:
        """Record one env step: start copying its frames and values, and return.

        Every input may be a numpy array or a torch tensor on the CPU or a CUDA device; the
        caller may overwrite its buffers as soon as this returns (CUDA: see ``_cuda``).

        Args:
            env_rgb: (N, H, W, 3) or (N, H, W, 4) per-env frames, channels last; uint8, or
                float with the recorder's ``value_range``. Strided views are fine (Isaac Lab's
                ``rgb`` is ``rgba[..., :3]``); alpha is dropped. None for a step that
                ``wants()`` says is not kept: only its done flags are counted (episodes), and
                nothing else of the call is used.
            global_rgb: (Hg, Wg, 3 or 4) frame of the global camera (or (1, Hg, Wg, C), a
                single camera's output), required on every call once the run has a global view.
                Defaults to None.
            step: simulation step of the frame, increasing from call to call. Defaults to None:
                the previous step + 1, starting at 0.
            sim_time: simulated time of the frame, seconds. Defaults to None: step × step_dt.
            reward: (N,) reward of the step that led to the frame. Defaults to None: stored as
                NaN, as a NaN reward is.
            terminated: (N,) bool (or integer: nonzero is True), the env's episode terminated in
                this step. Defaults to None (False).
            truncated: (N,) bool, the episode was truncated (time out). Defaults to None.
            episode_step: (N,) int step within the episode, stored as given. Defaults to None:
                derived from the done flags (see the class doc).
            stale: (N,) bool, the frame was rendered before the env's reset; or ``"done"``:
                the frame of every env done (terminated or truncated) in this step is stale,
                as with a renderer that renders before the resets (nothing is copied for it).
                Defaults to None (False).
            scalars: name -> (N,) float for names in ``scalar_names``; a missing name stores
                NaN. Defaults to None.
            env_camera_poses: (N, 4, 4) camera-to-world, with ``env_pose_per_frame`` only
                (then required). Defaults to None.
            global_camera_pose: (4, 4) camera-to-world, with ``global_pose_per_frame`` only
                (then required). Defaults to None.

        Returns:
            True when the frame was kept; False when it is outside the recording windows or
            stride, or was dropped because the queue was full (``on_full="drop"``).

        Raises:
            TypeError/ValueError: a bad input, naming the value and what was expected; nothing
                of this call is recorded.
            RecorderError: the writer failed and ``on_error="raise"``.
            RuntimeError: the recorder is closed.
        """
        if not self._check_usable("capture()"):
            self._steps += 1  # recording stopped (the writer died); the loop's steps still count
            return False
        if env_rgb is None:
            return self._count_only(step, global_rgb, terminated, truncated)
        checked = self._inputs.check(
            env_rgb,
            global_rgb,
            step,
            sim_time,
            reward,
            terminated,
            truncated,
            stale,
            episode_step,
            scalars,
            env_camera_poses,
            global_camera_pose,
        )
        if self.spec is None:
            self._start(env_rgb, global_rgb, checked)
        return self._record(checked)

    def count_done(self, steps: Sequence[int], done: Any) -> None:
        """Count the done flags of several steps outside the recording windows, in one call.

        The batch form of ``capture(None, step=s, terminated=...)`` for each of ``steps``: the
        stored episodes are the same. A loop that keeps its steps' flags (``terminated |
        truncated``) in a buffer and hands it over every few dozen steps pays one elementwise
        operation a step instead of a call; ``RecordEnvs`` does so between its windows.

        Args:
            steps: the steps, increasing, each after the last one given to this recorder, none
                of them kept by the windows (``wants(step)`` False).
            done: (len(steps), N) bool (or integer: nonzero is done): whether each env was
                terminated or truncated at each step; numpy or torch, CPU or CUDA (counted on
                the device, without a synchronisation).

        Raises:
            TypeError/ValueError: a bad step, a step inside a window, or ``done`` of another
                shape or type; nothing of the call is counted.
            RecorderError: the writer failed and ``on_error="raise"``.
            RuntimeError: the recorder is closed.

        Example:
            >>> rec.count_done([100, 101, 102], done)  # done: (3, num_envs)  # doctest: +SKIP
        """
        if not self._check_usable("count_done()"):
            return
        steps, flags = self._inputs.check_done_steps(steps, done)
        if not steps:
            return
        for step in steps:
            if self._windows.keeps(step):
                raise ValueError(
                    f"step {step} is inside a recording window (wants({step}) is True): "
                    "pass its frames to capture()"
                )
        # Counted like ``_advance`` counts a step without frames: outside the windows its
        # ``decide`` returns None and changes nothing.
        self._inputs.last_step = steps[-1]
        self._steps += len(steps)
        self._episodes.first(steps[0], (flags[0], flags[1][0]), None)
        self._episodes.skipped_steps(steps, flags)
        self._end_of_clip(steps[-1])

    def close(self) -> None:
        """Write the partial last block, mark the store closed with its counters, stop the writer.

        Idempotent. Blocks until the queued blocks are written.

        Raises:
            RecorderError: ``on_error="raise"`` and the writer failed (unless ``capture()``
                already raised it).
        """
        self._close(measure=True)

    def _close(self, *, measure: bool) -> None:
        """close(); ``measure=False`` at interpreter exit, where reading the store back (its
        size) needs zarr's event loop, which shutdown may already have stopped."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        try:
            self._close_writer(measure)
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _close_writer(self, measure: bool) -> None:
        w = self._writer
        if w is None:
            if self._inputs.env.shape is None:
                if self._proc is not None:
                    self._proc.finish()  # the idle writer process exits
                    self._proc = None
                return
            # Never captured, but the shapes are known: leave an empty, valid run.
            self._start(None, None, None)
            w = cast(WriterThread, self._writer)
        if self._cur is not None and self._fill:
            self._submit()
        self._cur, self._fill = None, 0
        w.finish()
        if self._hooks is not None:
            # the last clips' hooks run before close() returns; not at interpreter exit, where
            # a hook reading the store would wait on zarr's stopped event loop
            self._hooks.close() if measure else self._hooks.abandon()
        if self._ring is not None:
            self._ring.release()
        if w.counts.frames_written and w.error is None and measure:
            self._bytes_stored = self._measure_stored()
        if w.pending_warning is not None:
            self._emit_warning(w)
        if (
            w.error is not None
            and self._writer_opts.on_error == "raise"
            and not self._error_reported
        ):
            self._report_error()
        if w.close_error is not None and w.error is None:
            msg = (
                f"closing the envreel store {self.url} failed: "
                f"{type(w.close_error).__name__}: {w.close_error}"
            )
            if self._writer_opts.on_error == "raise" and not self._error_reported:
                self._error_reported = True
                raise RecorderError(msg) from w.close_error
            _warn_caller(msg)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        # Do not mask the exception in flight; the writer's error is in the store anyway.
        try:
            self.close()
        except RecorderError:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Recorder({self.url!r}, num_envs={self.num_envs}, {state})"

    # -- the steps of capture() ------------------------------------------------------------------

    def _check_usable(self, call: str) -> bool:
        """Refuse a closed recorder; raise or warn what the writer reported since the last call.

        Returns:
            Whether this call records: False once the writer died under ``on_error="warn"``.
        """
        if self._closed:
            raise RuntimeError(f"{call} on a closed Recorder ({self.url})")
        w = self._writer
        if w is not None:
            if w.error is not None and not w.alive:
                self._writer_died()
            elif w.error is not None and self._writer_opts.on_error == "raise":
                self._report_error()
            if w.pending_warning is not None:
                self._emit_warning(w)
        return not self._stopped

    def _writer_died(self) -> None:
        """A writer that is gone stores nothing more: "raise" raises; "warn" warns once and
        stops recording, and training goes on (the store holds what was committed)."""
        if self._writer_opts.on_error == "raise":
            self._report_error()
        if not self._stopped:
            self._stopped = True
            w = cast(WriterThread, self._writer)
            warnings.warn(
                f"envreel: the writer for {self.url} stopped ({w.error_message}); recording "
                f"stops here, training goes on; the store holds the {w.counts.frames_written} "
                "frames committed before it",
                RuntimeWarning,
                stacklevel=4,
            )

    def _count_only(self, step: Any, global_rgb: Any, terminated: Any, truncated: Any) -> bool:
        """A step without frames, outside the recording windows: count its done flags."""
        if global_rgb is not None:
            raise ValueError("global_rgb was given without env_rgb; pass both or neither")
        step, terminated, truncated = self._inputs.check_flags(step, terminated, truncated)
        if self._windows.keeps(step):
            raise ValueError(
                f"env_rgb is None at step {step}, which is inside a recording window "
                "(wants(step) is True): pass the frames"
            )
        self._advance(step, terminated, truncated)
        return False

    def _advance(self, step: int, terminated: Any, truncated: Any) -> int | None:
        """Count the step and its episodes; its clip id if the windows keep it, else None."""
        self._inputs.last_step = step
        self._steps += 1
        self._episodes.first(step, terminated, truncated)
        clip = self._windows.decide(step)
        if clip is None:
            self._episodes.skipped(step, terminated, truncated)
            self._end_of_clip(step)
        return clip

    def _end_of_clip(self, step: int | None = None) -> None:
        """Tell the writer that the clip of the last kept frame has ended (by ``step``, or now: a
        manual clip stopped), with the partial block holding its last frames, so they are
        stored and its hook runs now, not when the next window fills the block."""
        if not self._clip_open or (step is not None and not self._windows.past_window(step)):
            return
        self._clip_open = False
        if self._fill:
            self._submit(clip_ended=True)
        elif self._writer is not None:
            self._writer.clip_ended()

    def _record(self, c: CheckedStep) -> bool:
        """Put a checked step into its ring slot; hand the block to the writer when full."""
        clip = self._advance(c.step, *c.flags)
        if clip is None:
            return False
        if self._cur is None:
            self._cur = self._acquire()
            if self._cur is None:
                self._dropped += 1
                self._episodes.skipped(c.step, *c.flags)
                return False
        gaps = self._episodes.snapshot()  # None after a stored frame: the writer counts
        self._filler.fill(self._cur, self._fill, c, clip, gaps, self._ring.memory.pinned)
        self._captured += 1
        self._fill += 1
        self._clip_open = True
        counts = self._writer.counts
        pending = (self._captured - counts.frames_written - counts.frames_lost) * self._slot_bytes
        if pending > self._high_water:
            self._high_water = pending
        if self._fill == self._block_length:
            self._submit()
        return True

    def _submit(self, clip_ended: bool = False) -> None:
        """Hand the block being filled to the writer.

        A partial block (a clip ended) leaves the store's frame count off a multiple of
        ``block_frames``; the next block is that much shorter, so the blocks after it start on
        a store block again (written as whole chunks, not merged into written ones).
        """
        cur, w = self._cur, self._writer
        assert cur is not None and w is not None
        self._filler.finish(cur)
        w.submit(cur.index, self._fill, clip_ended)
        self._handed_over += self._fill
        b = cast(RunSpec, self.spec).block_frames
        self._block_length = b - self._handed_over % b
        self._cur, self._fill = None, 0

    def _start(self, env_rgb: Any, global_rgb: Any, checked: CheckedStep | None) -> None:
        """Create the store, the ring and the writer (first capture, or close)."""
        env_shape = self._inputs.env.shape or tuple(env_rgb.shape[1:3])
        gshape = self._inputs.global_shape
        if gshape is None and global_rgb is not None:
            gshape = tuple(global_rgb.shape[-3:-1])
        spec = RunSpec(env_frame_shape=env_shape, global_frame_shape=gshape, **self._spec_kwargs)
        budget, value_range = self._writer_opts.max_queue_bytes, self._value_range is not None
        if self._auto_block:
            spec = auto_block_frames(spec, budget, value_range)
            blocks_for(spec, budget, value_range)  # a budget no block fits twice: the error
            if spec.block_frames < 8:
                _warn_short_blocks(spec, budget)
        kinds: dict[str, str | None] = {
            "env_frames": checked.env[0] if checked else None,
            "global_frames": checked.glob[0] if checked and checked.glob else None,
        }
        rgba = rgba_fields(spec, kinds, budget, value_range)
        cuda_dev = cuda_device(env_rgb, global_rgb)
        opened = functools.partial(
            open_writer,
            spec,
            self._target,
            num_blocks=blocks_for(spec, budget, value_range, rgba),
            rgba=rgba,
            cuda_dev=cuda_dev,
            value_range=self._value_range,
            on_error=self._writer_opts.on_error,
            autoreset=self._episodes.autoreset,
            dropped=lambda: self._dropped,
        )
        proc = self._take_process()
        try:
            ring, writer = opened(proc=proc)
        except SharedMemoryFullError as exc:  # nothing is created before the ring
            proc.finish()
            if self._writer_opts.writer == "process":
                raise
            warnings.warn(
                f"envreel: {exc.strerror}; writing from a thread of this process instead",
                RuntimeWarning,
                stacklevel=3,
            )
            self._writer_mode = "thread"
            ring, writer = opened(proc=None)
        if cuda_dev is not None:
            self._filler.make_copier(cuda_dev, ring.memory.pinned)
        self._inputs.fix_shapes(env_shape, gshape)
        self._ring = ring
        self._frame_bytes = spec.num_envs * env_shape[0] * env_shape[1] * 3 + (
            gshape[0] * gshape[1] * 3 if gshape else 0
        )
        self._slot_bytes = ring.block_bytes // spec.block_frames
        self._block_length = spec.block_frames
        self._writer = writer
        self.spec = spec
        if self._hooks is not None:
            self._hooks.watch(writer)

    def _take_process(self) -> Any:
        """The writer process for this store (a child is used for one store only), or None."""
        if self._writer_mode != "process":
            return None
        from ._process import WriterProcess

        proc = self._proc if self._proc is not None and self._proc.usable else WriterProcess()
        self._proc = None
        return proc

    @property
    def _copier(self) -> Any:
        """The CUDA copier, once CUDA input was seen (None before)."""
        return self._filler.copier

    def _acquire(self):
        """A free block buffer, at its defaults (the writer reset it as it freed it); None when
        full and ``on_full="drop"``."""
        free = self._ring.free
        try:
            return self._ring.blocks[free.get_nowait()]
        except queue.Empty:
            if self._writer_opts.on_full == "drop":
                return None
        t0 = time.perf_counter()
        w = self._writer
        try:
            while True:
                try:
                    return self._ring.blocks[free.get(timeout=0.05)]
                except queue.Empty:
                    # Never wait on a writer that cannot hand a buffer back.
                    if w.error is not None and self._writer_opts.on_error == "raise":
                        self._report_error()
                    if not w.alive:
                        if w.error is not None:
                            self._writer_died()
                            return None  # "warn": this frame is dropped, and the rest
                        raise RecorderError(
                            f"the envreel writer for {self.url} stopped unexpectedly"
                        ) from None
        finally:
            self._blocked_s += time.perf_counter() - t0

    def _report_error(self) -> None:
        self._error_reported = True
        raise_for(self._writer, str(self.url))

    def _emit_warning(self, w: WriterThread) -> None:
        msg, w.pending_warning = w.pending_warning, None
        if msg is not None:
            _warn_caller(msg)

    def _measure_stored(self) -> int:
        try:
            from envreel.schemas import open_run

            run = open_run(self._target.store_url, storage_options=self._target.storage_options)
            return int(run.stored_bytes())
        except Exception:  # noqa: BLE001 - a size we cannot list is reported as -1
            return -1


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _warn_caller(message: str) -> None:
    """A RuntimeWarning pointing at the first frame outside envreel.capture: the user's
    ``capture()``, ``close()`` or ``with`` block, however deep inside the recorder it is raised
    (so warning filters on the training loop apply to it)."""
    level, frame = 2, cast(Any, sys._getframe(1))
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


def _check_url(url: Any) -> None:
    if not (isinstance(url, str | os.PathLike) or is_store(url)):
        raise TypeError(f"url must be a path, a URL or a zarr Store, got {url!r}")
    if isinstance(url, str) and not url:
        raise ValueError("url must not be empty")


_SPEC_KEYS = (
    "num_envs",
    "fps",
    "step_dt",
    "block_frames",
    "codec",
    "codec_level",
    "env_pose_per_frame",
    "global_pose_per_frame",
    "quat_order",
    "rank",
    "world_size",
    "env_id_offset",
    "env_ids",
)
"""Constructor keywords passed to ``RunSpec`` as given (it checks them)."""

_STATIC_KEYS = (
    "env_origins",
    "env_camera_poses",
    "env_intrinsics",
    "global_camera_pose",
    "global_intrinsics",
)


def _group(group: type, args: dict[str, Any]) -> Any:
    """Option group ``group`` built from the constructor keywords of the same names."""
    return group(**{f.name: args[f.name] for f in fields(group)})


def _spec_kwargs(args: dict[str, Any]) -> dict[str, Any]:
    """The constructor's store facts, as ``RunSpec`` keywords (RunSpec checks them)."""
    scalar_names = args["scalar_names"]
    if isinstance(scalar_names, str):
        raise TypeError(
            f"scalar_names must be a sequence of names, got the string {scalar_names!r}"
        )
    return dict(
        {key: args[key] for key in _SPEC_KEYS},
        block_frames=32 if args["block_frames"] is None else args["block_frames"],
        scalar_names=tuple(scalar_names),
        source={} if args["source"] is None else args["source"],
        metadata={} if args["metadata"] is None else args["metadata"],
    )


def _warn_short_blocks(spec: RunSpec, max_queue_bytes: int) -> None:
    h, w = spec.env_frame_shape
    warnings.warn(
        f"envreel: a step of {spec.num_envs} envs × {h}×{w} frames"
        + (" and the global view" if spec.global_frame_shape else "")
        + f" is so large that max_queue_bytes={max_queue_bytes} ({max_queue_bytes / 2**20:.0f} "
        f"MiB) holds 2 blocks of only {spec.block_frames} frame(s), which compress worse and "
        "leave the writer little slack: raise max_queue_bytes, or pass block_frames to choose",
        RuntimeWarning,
        stacklevel=4,
    )


def _target(
    url: Any, path: Path | None, overwrite: bool, storage_options: Any, statics: dict
) -> Target:
    """Where the store goes (``path``: the local path of ``url``, if it has one);
    FileExistsError for an existing local store (no overwrite) or a local place holding other
    files."""
    if path is not None:
        # refused now, before training starts: an existing store without overwrite, a place
        # holding other files (overwrite replaces only an envreel store), a .zip
        check_new_store(path, overwrite=overwrite)
    # The writer process resolves relative paths against its own working directory, which
    # is the one at construction: pin it.
    store_url = os.path.abspath(os.fspath(path)) if path is not None else url
    return Target(url, store_url, overwrite, storage_options, statics)


def _check_statics(probe: RunSpec, statics: dict[str, Any]) -> dict[str, Any]:
    """The static arrays as float64 numpy (None dropped), checked against the spec."""
    n = probe.num_envs
    shapes = {
        "env_origins": ((n, 3),),
        "env_camera_poses": ((n, 4, 4),),
        "env_intrinsics": ((n, 3, 3), (3, 3)),
        "global_camera_pose": ((4, 4),),
        "global_intrinsics": ((3, 3),),
    }
    checked = {name: fr.check_static(name, statics[name], shapes[name]) for name in shapes}
    if probe.env_pose_per_frame and statics["env_camera_poses"] is not None:
        raise ValueError(
            "env_camera_poses are per frame (env_pose_per_frame=True): pass them to capture()"
        )
    if probe.global_pose_per_frame and statics["global_camera_pose"] is not None:
        raise ValueError(
            "global_camera_pose is per frame (global_pose_per_frame=True): pass it to capture()"
        )
    return {k: v for k, v in checked.items() if v is not None}
