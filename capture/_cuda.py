"""The CUDA path: page-locked ring memory, a device staging ring, a side stream, per-block events.

Per ``capture()`` with CUDA inputs (all on the caller's thread, none of it waits for the GPU):

1. On the producer's current stream, in stream order after the kernels that rendered this step:
   the frames (one batched copy of all N envs, not one per env) are copied into a slot of a small
   ring of device staging buffers (a device-to-device copy: ~5 µs of GPU time for 64 envs of
   128×128), and the small per-env values (reward, flags, episode state, scalars: a few hundred
   bytes) are copied to their page-locked host slots directly. Frames whose pixels are 4 bytes
   apart (an RGBA tensor, or Isaac Lab's ``rgb``, its ``rgba[..., :3]`` view) are copied whole,
   4 bytes a pixel, by one ``cuMemcpyDtoDAsync`` into a 4-channel staging buffer and ring field
   (the writer drops the 4th byte as it gathers chunks): no kernel launch on the caller's thread,
   for a third more bytes over PCIe. Other layouts become contiguous RGB in one copy kernel.
2. Once a group of consecutive captures of one ring block is staged (up to ``MAX_GROUP`` = 4,
   as many as two staging sets fit in ``STAGING_BYTES`` of device memory; where not even two
   captures a set fit, 1 capture a set and three sets), the point of the current stream after
   its last capture is marked with an event; the side stream waits for it, copies the whole
   group's staged frames to page-locked host memory in one copy per frame field (~0.1 ms for
   64 × 128×128 over PCIe) and records the set's event. A group also ends where the next
   capture is not the block's next frame, where the caller's current stream changes, and at
   the block's hand-off to the writer; there the block's event is recorded on the side
   stream, once.

The producer's stream never waits for the device-to-host copy of the frames: it overlaps with the
next steps' work on a copy engine. Before the current stream stages into a set again (a group
later) it waits for that set's event, a stream-ordering command that costs the caller nothing and
the GPU nothing unless the copies fall a group behind. Groups cut the caller's driver calls for
a capture from nine (stage, three values, mark, side wait, copy, event, wait) to about five.

Why the source cannot be overwritten before it is copied: every copy out of the caller's tensors
is enqueued on the current stream, so it runs before anything enqueued there later. The
simulator's buffer (Isaac Lab's camera ``rgb`` and ``reset_terminated`` are reused in place every
step) is next written by work ordered after it: either launched on the current stream itself, or
on another stream or library that must already wait for the current stream, or synchronise the
device, before it may overwrite a buffer the training code reads on the current stream (otherwise
the training code itself would race). A temporary the caller frees right after ``capture()``
(e.g. ``cam.float() / 255``) was only used on the current stream, so torch's caching allocator
reuses its memory only for work that runs after the copies. The side stream reads only the
staging ring, which belongs to the recorder. The writer thread calls ``event.synchronize()`` on
a block's event before reading it (a host wait on the writer thread, never on the caller's).

The copies and event calls that need no kernel (device-to-host copies of contiguous tensors,
event records and stream waits, whole-pixel staging copies) go straight to the CUDA driver
(``cuMemcpyDtoHAsync``, ``cuMemcpyDtoDAsync``, ``cuEventRecord``, ``cuStreamWaitEvent`` through
ctypes): ~1–2 µs each on the caller's thread
against ~7 µs for the same operation through torch's dispatcher. They are the same operations on
the same streams and events, so the ordering argument above holds unchanged. Where the driver
library cannot be loaded, the input's device is not the current one, or a tensor is not a plain
contiguous copy of its ring field, the torch calls are used (``ENVREEL_CUDA_COPY=torch`` forces
them).

Ring memory is page-locked with ``cudaHostRegister`` on a mapping of exactly the ring's size
(torch's pinned allocator would round each allocation up to a power of two: 101 MB becomes
128 MB), shared with the writer process through a file in /dev/shm; if registration fails, torch's
pinned allocator is used instead (thread writer) or the copies are synchronous (with a warning).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import sys
import tempfile
import warnings
from typing import Any

import numpy as np

from envreel.schemas._store import lock_held

__all__ = ["CudaCopier", "HostMemory"]

COPY_MODE_ENV = "ENVREEL_CUDA_COPY"  # "torch": no driver calls (a fallback and a comparison)


def _shared_dir() -> str:
    # tmpfs where there is one: the ring never touches a disk.
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


_RING_PREFIX = "envreel-ring-"
"""Shared ring files are named ``envreel-ring-<pid of the recording process>-<random>``."""


def _remove_orphans(folder: str) -> None:
    """Remove ring files whose recording process is gone.

    A ring file is unlinked once both processes have it mapped; a recording killed in the
    moment between (SIGKILL while its writer process starts) leaves its file in /dev/shm,
    which holds the ring's whole size in memory until reboot. The next recording removes it.

    Its creator holds a shared ``flock`` on it while it has a name, and the kernel drops the
    lock with the process: a file whose lock can be taken, and whose pid is not alive here
    either, is an orphan. The pid alone would not do: a recorder in another PID namespace
    sharing /dev/shm (``docker --ipc=host``, containers of one pod) has a pid this process
    cannot see.
    """
    try:
        names = [n for n in os.listdir(folder) if n.startswith(_RING_PREFIX)]
    except OSError:
        return
    for name in names:
        pid_text = name[len(_RING_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue  # not named by this scheme, or this process's own
        try:
            os.kill(int(pid_text), 0)
            continue  # alive here
        except ProcessLookupError:
            pass
        except OSError:
            continue  # alive, another user's process
        path = os.path.join(folder, name)
        if lock_held(path) is False:  # else its creator holds it: alive in another PID namespace
            with contextlib.suppress(OSError):
                os.unlink(path)


class SharedMemoryFullError(OSError):
    """The shared folder (/dev/shm) has no room for the writer process's ring."""


def _reserve(fd: int, nbytes: int, folder: str) -> None:
    """Allocate the file's pages now: on a full tmpfs, an error here instead of SIGBUS at the
    first write into the mapping (Docker gives containers a 64 MiB /dev/shm)."""
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.ENOMEM, errno.EFBIG):
            return  # a filesystem without fallocate: pages come on first touch
        st = os.statvfs(folder)
        raise SharedMemoryFullError(
            exc.errno,
            f"{folder} has {st.f_bavail * st.f_frsize / 2**20:.0f} MiB free of "
            f"{st.f_blocks * st.f_frsize / 2**20:.0f} MiB; the writer process's ring needs "
            f"{nbytes / 2**20:.0f} MiB (a smaller max_queue_bytes, writer='thread', or a "
            "larger /dev/shm, e.g. docker run --shm-size=2g)",
        ) from None


class HostMemory:
    """A flat uint8 host buffer for the ring: page-locked for CUDA input, shareable with the
    writer process.

    Args:
        nbytes: size in bytes.
        pinned: page-lock it for asynchronous device-to-host copies.
        device: torch CUDA device of the inputs (with ``pinned``).
        shared: back it by a file in /dev/shm that the writer process maps too; the file is
            unlinked (``unlink()``) as soon as both processes have it mapped, so nothing is left
            behind even if both are killed.
    """

    def __init__(
        self, nbytes: int, *, pinned: bool, device: Any = None, shared: bool = False
    ) -> None:
        self.nbytes = int(nbytes)
        self._registered = 0
        self._tensor = None
        self.pinned = False
        self.path: str | None = None
        self._lock_fd = -1
        if shared:
            folder = _shared_dir()
            _remove_orphans(folder)
            fd, self.path = tempfile.mkstemp(prefix=f"{_RING_PREFIX}{os.getpid()}-", dir=folder)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)  # held while it has a name: see _remove_orphans
                os.ftruncate(fd, self.nbytes)
                _reserve(fd, self.nbytes, folder)
                self._map = mmap.mmap(fd, self.nbytes)
            except BaseException:
                os.close(fd)
                self.unlink()
                raise
            self._lock_fd = fd
        else:
            self._map = mmap.mmap(-1, self.nbytes)
        try:
            self.array = np.frombuffer(self._map, np.uint8)
            if pinned:
                self._pin(device)
            self.array.fill(0)  # touch every page now: RSS is flat from the first frame on
        except BaseException:  # Ctrl-C in the fill (~0.3 s for 500 MB) leaves no file behind
            self.release()
            raise

    @classmethod
    def attach(cls, path: str, nbytes: int) -> HostMemory:
        """Map the shared buffer created by another process (the writer process's side)."""
        self = cls.__new__(cls)
        self.nbytes, self._registered, self._tensor = nbytes, 0, None
        self.pinned, self.path, self._lock_fd = False, None, -1
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, nbytes)
        finally:
            os.close(fd)
        self.array = np.frombuffer(self._map, np.uint8)
        return self

    def _pin(self, device: Any) -> None:
        import torch

        try:
            cudart = torch.cuda.cudart()
            ptr = self.array.ctypes.data
            with torch.cuda.device(device):
                err = cudart.cudaHostRegister(ptr, self.nbytes, 0)
            if int(err) != 0:
                raise RuntimeError(f"cudaHostRegister returned {err}")
            self._registered = ptr
            self.pinned = True
        except Exception as exc:  # noqa: BLE001 - fall back to torch's pinned allocator
            if self.path is not None:
                warnings.warn(
                    f"envreel: cannot page-lock the {self.nbytes}-byte ring shared with the "
                    f"writer process ({exc}); device-to-host copies will be synchronous. "
                    "Recorder(writer='thread') uses torch's pinned memory instead.",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return
            try:
                self._tensor = torch.empty(self.nbytes, dtype=torch.uint8, pin_memory=True)
                self.array = self._tensor.numpy()
                self.pinned = True
            except Exception as exc2:  # noqa: BLE001
                warnings.warn(
                    f"envreel: cannot page-lock {self.nbytes} bytes of ring memory ({exc}; "
                    f"{exc2}); device-to-host copies will be synchronous",
                    RuntimeWarning,
                    stacklevel=4,
                )

    def unlink(self) -> None:
        """Remove the shared file's name (the mappings stay valid)."""
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def release(self) -> None:
        """Unregister page-locked memory and unlink. Views into it must not be used afterwards."""
        self.unlink()
        if self._registered:
            import torch

            try:
                torch.cuda.cudart().cudaHostUnregister(self._registered)
            except Exception:  # noqa: BLE001 - at interpreter exit CUDA may be gone
                pass
            self._registered = 0


class _Driver:
    """The few CUDA driver calls of the hot path, through ctypes.

    Loaded as a ``PyDLL``: the calls keep the GIL. They only enqueue work (~1–2 µs), and
    releasing the GIL around each would let another Python thread (the writer's) take it in the
    middle of ``capture()``, for longer than the call itself. They are used only with
    page-locked ring memory, where device-to-host copies are asynchronous.
    """

    def __init__(self) -> None:
        lib = ctypes.PyDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
        vp, u64, sz = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t
        self.dtoh = self._fn(lib, "cuMemcpyDtoHAsync_v2", [vp, u64, sz, vp])
        self.dtod = self._fn(lib, "cuMemcpyDtoDAsync_v2", [u64, u64, sz, vp])
        self.record = self._fn(lib, "cuEventRecord", [vp, vp])
        self.wait = self._fn(lib, "cuStreamWaitEvent", [vp, vp, ctypes.c_uint])
        name_out = ctypes.POINTER(ctypes.c_char_p)
        self._name = self._fn(lib, "cuGetErrorName", [ctypes.c_int, name_out])

    @staticmethod
    def _fn(lib: Any, name: str, argtypes: list) -> Any:
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, ctypes.c_int
        return fn

    def fail(self, call: str, code: int) -> RuntimeError:
        name = ctypes.c_char_p()
        self._name(code, ctypes.byref(name))
        what = name.value.decode() if name.value else f"error {code}"
        return RuntimeError(f"envreel: CUDA driver call {call} failed with {what}")


_DRIVER: list[Any] = []  # [] not tried yet; [None] unavailable; [_Driver]


def _driver() -> _Driver | None:
    """The driver calls, or None where libcuda cannot be loaded or ENVREEL_CUDA_COPY=torch."""
    if os.environ.get(COPY_MODE_ENV, "").lower() == "torch":
        return None
    if not _DRIVER:
        try:
            _DRIVER.append(_Driver())
        except (OSError, AttributeError):
            _DRIVER.append(None)
    return _DRIVER[0]


STAGING_BYTES = 128 << 20
"""Device memory a copier stages frames in; it sets how many captures share one host copy.
128 MiB groups the 16.8 MB captures of 1,024 envs × 64² or 4,096 × 32² (4-byte pixels) by
three; 64 MiB fitted one a group, whose host copy, wait and events cost the caller about three
more driver calls a capture."""

MAX_GROUP = 4
"""Captures whose frames go to the host in one copy on the side stream, at most."""


class _Group:
    """Captures staged in one staging set and not yet copied to the host: consecutive frames of
    one ring block, enqueued on one stream (``stream``: its raw handle; ``torch_stream``: the
    torch object, when torch's calls enqueued them)."""

    __slots__ = ("slots", "first", "count", "key", "set", "stream", "torch_stream")

    def __init__(self, slots: Any, first: int, key: tuple, k: int, stream: int, ts: Any) -> None:
        self.slots, self.first, self.count, self.key, self.set = slots, first, 0, key, k
        self.stream, self.torch_stream = stream, ts


class CudaCopier:
    """Enqueues one capture's copies (see the module doc); never waits on the host.

    Args:
        device: the torch CUDA device of the inputs.
        pinned: the ring is page-locked (else the copies are synchronous, through torch).
            Defaults to True.
        staging_bytes: device memory for staged frames. Two staging sets of up to
            ``MAX_GROUP`` captures each where two captures fit per set; else three sets of one.
            Defaults to None: ``STAGING_BYTES``.
    """

    def __init__(
        self, device: Any, *, pinned: bool = True, staging_bytes: int | None = None
    ) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.index = device.index if device.index is not None else torch.cuda.current_device()
        self.side = torch.cuda.Stream(device=device)
        self._side_raw = self.side.cuda_stream
        self._budget = STAGING_BYTES if staging_bytes is None else staging_bytes
        self.group_size = 1  # captures per staging set; set with the sets
        # per set, per frame field: ((group_size, ...) tensor, its per-capture views, their
        # addresses, bytes per capture)
        self._sets: list[list[tuple[Any, list[Any], list[int], int]]] = []
        self._copied: list[Any] = []  # per set: event after its last copy to the host, or None
        self._key: tuple = ()  # ((field, whole, three), ...) the sets were made for
        self._next = 0
        self._group: _Group | None = None
        self.driver = _driver() if pinned else None
        self._raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        self._get_device = getattr(torch._C, "_cuda_getDevice", torch.cuda.current_device)
        self._mark = self.new_event()  # the point of the current stream the side stream waits for

    def new_event(self) -> Any:
        """An event for one ring block (timing disabled: cheaper to record); created on the
        device now, so the driver can record it by handle."""
        ev = self.torch.cuda.Event(enable_timing=False)
        ev.record(self.side)
        return ev

    def _restage(self, key: tuple, slots: Any) -> None:
        """Staging sets for frames of ``key`` (no group may be pending)."""
        torch = self.torch
        for bufs in self._sets:  # freed only after the side stream's copies from them
            for whole, *_ in bufs:
                whole.record_stream(self.side)
        shapes = []
        for field, _, three in key:
            shape = slots.arrays[field].shape[1:]
            shapes.append((*shape[:-1], 3 if three else shape[-1]))
        per_capture = sum(int(np.prod(s)) for s in shapes)
        g = max(1, min(MAX_GROUP, self._budget // max(1, 2 * per_capture)))
        self.group_size = g
        self._sets = []
        for _ in range(2 if g > 1 else 3):
            bufs = []
            for shape in shapes:
                whole = torch.empty((g, *shape), dtype=torch.uint8, device=self.device)
                views = list(whole.unbind(0))
                bufs.append((whole, views, [v.data_ptr() for v in views], views[0].nbytes))
            self._sets.append(bufs)
        self._copied = [None] * len(self._sets)
        self._key, self._next = key, 0

    def copy(self, frames: list[tuple], values: list[tuple[Any, Any]]) -> None:
        """Enqueue one capture's copies.

        Args:
            frames: (ring block, frame field, frame index, CUDA uint8 frames, whole, three):
                staged on the device now, then copied to the host with the rest of their group
                on the side stream. ``whole``: the frames' pixels are 4 bytes apart
                (``_frames.CUDA_PIXELS``) and the field holds 4 channels: all 4 bytes of every
                pixel are copied (no kernel; the writer drops the 4th byte). ``three``: the
                frames fill the first 3 channels of a 4-channel field.
            values: (ring block, field, frame index, small CUDA tensor): copied to the host on
                the current stream.
        """
        drv = self._usable_driver()
        # Streams as each way names them: raw handles for the driver, torch streams for torch.
        if drv is not None:
            cur = raw = self._raw_stream(self.index)
        else:
            cur = self.torch.cuda.current_stream(self.index)
            raw = cur.cuda_stream
        g = self._group
        if frames:
            block, first = frames[0][0], frames[0][2]
            key = tuple([(f[1], f[4], f[5]) for f in frames])
            if g is not None and (
                g.slots is not block
                or g.first + g.count != first
                or g.key != key
                or g.stream != raw
            ):
                self._flush(drv)
                g = None
            if key != self._key:
                self._restage(key, block)
            if g is None:
                k = self._next
                self._next = (k + 1) % len(self._sets)
                if self._copied[k] is not None:  # the set's last copy to the host is done
                    self._wait(drv, cur, self._copied[k])
                g = self._group = _Group(block, first, key, k, raw, None if drv else cur)
            j = g.count
            for (_, views, ptrs, n), f in zip(self._sets[g.set], frames, strict=True):
                if drv is not None and f[4]:  # whole pixels: one copy of their bytes
                    if err := drv.dtod(ptrs[j], f[3].data_ptr(), n, cur):
                        raise drv.fail("cuMemcpyDtoDAsync", err)
                else:
                    self._stage_frames(drv, views[j], f[3], f[4], cur)
            g.count = j + 1
        for s, key, i, src in values:
            if drv is not None:  # a plain copy of the row's bytes where dtype and size agree
                dtype, n = s.row(key)
                if src.dtype == dtype and src.nbytes == n and src.is_contiguous():
                    if err := drv.dtoh(s.address(key) + i * n, src.data_ptr(), n, cur):
                        raise drv.fail("cuMemcpyDtoHAsync", err)
                    continue
            self._to_host(drv, s.tensor(key, i), src, cur, on_side=False)
        if not frames:  # values alone: the side stream waits for them now (the block's event)
            self._record(drv, self._mark, cur)
            self._wait(drv, self._side_raw if drv is not None else self.side, self._mark)
        elif g is not None and g.count == self.group_size:
            self._flush(drv)

    def _flush(self, drv: _Driver | None) -> None:
        """Copy the pending group's staged frames to the host on the side stream, after the
        point of its stream where they were staged."""
        g, self._group = self._group, None
        if g is None:
            return
        if drv is not None:
            cur, side = g.stream, self._side_raw
        else:
            cur = g.torch_stream
            if cur is None:
                cur = self.torch.cuda.ExternalStream(g.stream, device=self.device)
            side = self.side
        self._record(drv, self._mark, cur)
        self._wait(drv, side, self._mark)
        m, first = g.count, g.first
        for (whole, _, _, n), (field, _, three) in zip(self._sets[g.set], g.key, strict=True):
            if drv is not None and not three:  # both sides contiguous: addresses, no views
                dst = g.slots.address(field) + first * n
                if err := drv.dtoh(dst, whole.data_ptr(), m * n, side):
                    raise drv.fail("cuMemcpyDtoHAsync", err)
                continue
            dst = g.slots.frames(field)[first : first + m]
            self._to_host(drv, dst[..., :3] if three else dst, whole[:m], side, on_side=True)
        copied = self._copied[g.set] or self.new_event()
        self._record(drv, copied, side)
        self._copied[g.set] = copied

    def finish(self, event: Any) -> None:
        """Record a block's ``event`` on the side stream, after every copy enqueued so far (the
        side stream waited for the current one's values too): once per block, at its hand-off
        to the writer, which waits for the event before it reads the block."""
        drv = self._usable_driver()
        self._flush(drv)
        self._record(drv, event, self._side_raw if drv is not None else self.side)

    def _usable_driver(self) -> _Driver | None:
        """The driver calls, unless unavailable or the current device is not the inputs'."""
        drv = self.driver
        if drv is not None and (self._raw_stream is None or self._get_device() != self.index):
            return None
        return drv

    @staticmethod
    def _stage_frames(drv: _Driver | None, view: Any, src: Any, whole: bool, stream: Any) -> None:
        """Frames into their staging buffer, on the current stream."""
        if not whole:
            view.copy_(src)  # a kernel: gathers strided input
        elif drv is not None:  # one device-to-device copy of the pixels' bytes
            if err := drv.dtod(view.data_ptr(), src.data_ptr(), view.nbytes, stream):
                raise drv.fail("cuMemcpyDtoDAsync", err)
        else:
            view.copy_(src.as_strided(view.shape, src.stride()))

    @staticmethod
    def _wait(drv: _Driver | None, stream: Any, event: Any) -> None:
        """``stream`` runs nothing enqueued later before ``event``'s work is done."""
        if drv is None:
            stream.wait_event(event)
        elif err := drv.wait(stream, event.cuda_event, 0):
            raise drv.fail("cuStreamWaitEvent", err)

    @staticmethod
    def _record(drv: _Driver | None, event: Any, stream: Any) -> None:
        if drv is None:
            event.record(stream)
        elif err := drv.record(event.cuda_event, stream):
            raise drv.fail("cuEventRecord", err)

    def _to_host(
        self, drv: _Driver | None, dst: Any, src: Any, stream: Any, *, on_side: bool
    ) -> None:
        """Copy ``src`` to the host view ``dst`` on ``stream`` (the current or the side one)."""
        if src.requires_grad:  # a value tensor, handed over as it is by the checks' fast path:
            src = src.detach()  # torch's copy would record it and the ring view keep the graph
        if drv is not None and (
            src.dtype == dst.dtype and src.is_contiguous() and dst.is_contiguous()
        ):
            if err := drv.dtoh(dst.data_ptr(), src.data_ptr(), src.nbytes, stream):
                raise drv.fail("cuMemcpyDtoHAsync", err)
            return
        # A dtype conversion, or an RGBA ring field (the run began with host input): torch's copy.
        if not on_side:
            dst.copy_(src, non_blocking=True)
            return
        torch = self.torch
        current = torch.cuda.current_stream(self.index)
        torch.cuda.set_stream(self.side)
        try:
            dst.copy_(src, non_blocking=True)
        finally:
            torch.cuda.set_stream(current)
