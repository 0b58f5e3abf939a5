"""Where ``RecordEnvs`` gets each recorded step's pixels: Isaac Lab camera sensors, or envreel's
own Newton views (see ``_views``). Reading either renders; nothing renders between recorded
steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .._frames import is_torch
from ._views import NewtonViews

_PLAIN: set[type] = set()  # types ``tensor()`` returns unchanged, as it found them


def tensor(value: Any) -> Any:
    """The torch tensor of an Isaac Lab 3.0 ProxyArray; anything else unchanged."""
    if type(value) in _PLAIN:  # the per-step inputs, after their first step: one set lookup
        return value
    if is_torch(value) or isinstance(value, np.ndarray):
        _PLAIN.add(type(value))
        return value
    proxied = getattr(value, "torch", None)
    return value if proxied is None else proxied


def sensor_rgb(camera: Any) -> Any:
    """A camera sensor's ``rgb`` output; reading ``data`` renders outdated cameras."""
    return tensor(camera.data.output["rgb"])


class Selection:
    """The recorded envs of a run: all of them, or an index into the env axis.

    Args:
        env_ids: the recorded envs, in store order, or None for all ``num_envs``.
        num_envs: the env's number of envs.
    """

    def __init__(self, env_ids: tuple[int, ...] | None, num_envs: int) -> None:
        self.env_ids = env_ids
        self.count = num_envs if env_ids is None else len(env_ids)
        self._host = None if env_ids is None else np.asarray(env_ids, np.int64)
        self._device: dict[str, Any] = {}

    def take(self, value: Any) -> Any:
        """``self(tensor(value))``: the recorded envs of a per-env tensor, array or ProxyArray."""
        value = tensor(value)
        return value if self._host is None else self(value)

    def __call__(self, value: Any) -> Any:
        """``value[env_ids]`` along the first axis (one gather on the value's device)."""
        if self._host is None or value is None:
            return value
        if is_torch(value):
            key = str(value.device)
            index = self._device.get(key)
            if index is None:
                import torch

                index = self._device[key] = torch.as_tensor(self._host, device=value.device)
            return value.index_select(0, index)
        return np.asarray(value)[self._host]  # a copy, like index_select

    def columns(self, value: Any) -> Any:
        """``value[:, env_ids]``: the recorded envs of a (steps, num_envs) array."""
        if self._host is None:
            return value
        if is_torch(value):
            return self(value.T).T
        return np.asarray(value)[:, self._host]


def done_flags(terminated: Any, truncated: Any, select: Selection) -> Any:
    """``select(terminated | truncated)``: NumPy for host tensors (a few µs less per step
    than torch's operators on (N,) tensors, on the path of every unrecorded step)."""
    terminated, truncated = tensor(terminated), tensor(truncated)
    if is_torch(terminated) and terminated.device.type == "cpu" and is_torch(truncated):
        terminated, truncated = terminated.numpy(), truncated.numpy()
    return select(terminated | truncated)


IDLE_STEPS = 64
"""Steps outside the recording windows whose done flags are counted in one recorder call."""


def _flags_key(terminated: Any, truncated: Any) -> tuple | None:
    """What ``IdleSteps`` buffers flags by: their types, shapes, dtypes and devices; None for
    anything but two torch tensors or two numpy arrays of one kind."""
    if is_torch(terminated) and is_torch(truncated):
        key = (terminated.shape, terminated.dtype, terminated.device)
        if (truncated.shape, truncated.dtype, truncated.device) == key:
            return (type(terminated), *key)
    elif isinstance(terminated, np.ndarray) and isinstance(truncated, np.ndarray):
        if terminated.shape == truncated.shape and terminated.dtype == truncated.dtype:
            return (np.ndarray, terminated.shape, terminated.dtype)
    return None


class IdleSteps:
    """The done flags of steps outside the recording windows, counted ``IDLE_STEPS`` at a time.

    Outside the windows a step leaves only its done flags (for the episode indices). Checked
    and counted one step at a time they cost a real Isaac Lab step ~0.14 ms of Python, each
    piece of it running cache-cold after the physics; here a step costs one ``logical_or`` into
    a row of a (``IDLE_STEPS``, N) buffer on the flags' device, and ``Recorder.count_done``
    counts the rows in one call when the buffer is full or before anything else reaches the
    recorder (``flush``). The first step of flags of a new kind goes through ``capture()``'s
    checks as before.

    Args:
        recorder: the recorder the counts go to.
        select: the recorded envs.
    """

    def __init__(self, recorder: Any, select: Selection) -> None:
        self._recorder = recorder
        self._select = select
        self._key: tuple | None = None
        self._rows: list[Any] = []
        self._buffer: Any = None
        self.steps: list[int] = []  # kept, not counted yet

    def push(self, step: int, terminated: Any, truncated: Any) -> None:
        """Keeps (or counts) the flags of ``step``, which the windows do not keep."""
        terminated, truncated = tensor(terminated), tensor(truncated)
        key = _flags_key(terminated, truncated)
        if key is None or key != self._key:
            self.flush()
            done = done_flags(terminated, truncated, self._select)
            self._recorder.capture(None, step=step, terminated=done)  # checked as it comes
            self._allocate(key, terminated)
            return
        k = len(self.steps)
        if key[0] is np.ndarray:
            np.logical_or(terminated, truncated, out=self._rows[k])
        else:
            import torch

            torch.logical_or(terminated, truncated, out=self._rows[k])
        self.steps.append(step)
        if k + 1 == IDLE_STEPS:
            self.flush()

    def _allocate(self, key: tuple | None, like: Any) -> None:
        self._key = key
        if key is None:
            self._buffer, self._rows = None, []
        elif key[0] is np.ndarray:
            self._buffer = np.empty((IDLE_STEPS, *like.shape), bool)
            self._rows = list(self._buffer)
        else:
            import torch

            with torch.inference_mode(False):  # written to inside and outside inference mode
                self._buffer = torch.empty(
                    (IDLE_STEPS, *like.shape), dtype=torch.bool, device=like.device
                )
            self._rows = list(self._buffer.unbind(0))

    def flush(self) -> None:
        """Counts the kept steps (in stream order on a CUDA device, without synchronising: a
        row is rewritten only by work enqueued after its count)."""
        if not self.steps:
            return
        steps, self.steps = self.steps, []
        done = self._select.columns(self._buffer[: len(steps)])
        self._recorder.count_done(steps, done)


class StepBuffers:
    """Reused CUDA outputs for the small per-step values the wrapper computes (episode steps):
    two per name, used in turn, since one recorded step may wait in flight until
    the next recorder call (``RecordEnvs._drain``). The recorder copies them in stream order
    before ``capture()`` returns, so a buffer is rewritten only by work enqueued after its copy.
    Allocating a fresh tensor instead costs a dispatcher call every step."""

    def __init__(self) -> None:
        # name -> (the two buffers, the one to hand out next, the tensor they were made like)
        self._bufs: dict[str, tuple[list[Any], int, Any]] = {}

    def __call__(self, name: str, like: Any, dtype: Any) -> Any:
        """An output of ``like``'s shape and device, of ``dtype``; not the one handed out last."""
        bufs, k, last = self._bufs.get(name, (None, 0, None))
        if like is not last and (
            bufs is None or bufs[0].shape != like.shape or bufs[0].device != like.device
        ):
            import torch

            bufs = [torch.empty(like.shape, dtype=dtype, device=like.device) for _ in range(2)]
        self._bufs[name] = (bufs, 1 - k, like)
        return bufs[k]


def episode_steps(length: Any, plus: int, out: StepBuffers | None = None) -> Any:
    """``length + plus`` as int32, the store's type: on a CUDA device one kernel into an int32
    tensor (from ``out`` when given), which the recorder then copies to the host as it is (an
    int64 tensor would take torch's converting copy, several times the caller's time of a plain
    one)."""
    if is_torch(length) and length.is_cuda:
        import torch

        dst = (
            out("episode_step", length, torch.int32)
            if out is not None
            else torch.empty(length.shape, dtype=torch.int32, device=length.device)
        )
        return torch.add(length, plus, out=dst)
    return length + plus if plus else length


class StepFrames:
    """Takes one recorded step's env frames (and the global frame): from sensors, from Newton
    views, or both (one pose snapshot for all Newton views of the step).

    With ``background`` (a CPU sim whose recorded frames all come from Newton views), the views
    render on a worker thread from the step's pose snapshot while the caller steps the sim on:
    Warp's CPU kernels release the GIL, so on a machine with a free core the ray tracing costs
    the training loop nothing but the snapshot. One step is in flight at a time.

    Args:
        env_camera: the per-env camera sensor, read when ``env_view`` is None.
        select: the recorded envs, applied to the sensor's frames.
        views: the Newton views, when any view below is one.
        env_view: a Newton view of the recorded envs, or None.
        global_camera: a global scene camera sensor (Isaac Lab 2.x), or None.
        global_view: a Newton global view, or None.
        background: render Newton views on a worker thread (see above). Defaults to False.
    """

    def __init__(
        self,
        *,
        env_camera: Any,
        select: Selection,
        views: NewtonViews | None = None,
        env_view: Any = None,
        global_camera: Any = None,
        global_view: Any = None,
        background: bool = False,
    ) -> None:
        self._env_camera = env_camera
        self._select = select
        self._views = views
        self._env_view = env_view
        self._global_camera = global_camera
        self._global_view = global_view
        self._newton = [v for v in (env_view, global_view) if v is not None]
        self.has_global = global_camera is not None or global_view is not None
        self.background = bool(background and env_view is not None and global_camera is None)
        self._pool: ThreadPoolExecutor | None = None
        self._drawn = False

    def start(self) -> Callable[[], tuple[Any, Any]]:
        """Takes this step's pixels: reads the sensors and snapshots the Newton views' poses.

        Returns:
            A function that returns (env frames (K, H, W, 3 or 4) uint8, global frame
            (Hg, Wg, 3 or 4) or None), waiting for a background render; call it before the next
            ``start()``.
        """
        snapshot = self._views.snapshot() if self._newton else None
        if self.background and self._drawn:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="envreel-newton-views")
            future = self._pool.submit(self._views.draw, self._newton, snapshot)
            return lambda: self._split(future.result())
        # The first draw runs here: Warp loads its kernels once, on one thread.
        drawn = self._views.draw(self._newton, snapshot) if self._newton else []
        self._drawn = True
        return lambda: self._split(drawn)

    def _split(self, drawn: Sequence[Any]) -> tuple[Any, Any]:
        it = iter(drawn)
        env = next(it) if self._env_view is not None else self._select(sensor_rgb(self._env_camera))
        glob = None
        if self._global_view is not None:
            glob = next(it)[0]
        elif self._global_camera is not None:
            glob = sensor_rgb(self._global_camera)[0]
        return env, glob

    def read(self) -> tuple[Any, Any]:
        """This step's frames, now: ``start()()``."""
        if not self._newton:  # the sensors alone: read them
            return self._split(())
        return self.start()()

    def close(self) -> None:
        """Stops the worker thread (after its render in flight)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
