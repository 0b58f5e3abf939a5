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
2. The side stream waits for that point of the current stream, then copies the staging slot to
   page-locked host memory (~0.1 ms for 64 × 128×128 over PCIe) and records the staging slot's
   event; when a block is full (or flushed), the block's event is recorded there once.

The producer's stream never waits for the device-to-host copy of the frames: it overlaps with the
next step's work on a copy engine. Before the current stream writes a staging slot again (K = 3
captures later) it waits for that slot's event, a stream-ordering command that costs the caller
nothing and the GPU nothing unless copies fall more than K steps behind.

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

import ctypes
import mmap
import os
import sys
import tempfile
import warnings
from typing import Any

import numpy as np

__all__ = ["CudaCopier", "HostMemory"]

COPY_MODE_ENV = "ENVREEL_CUDA_COPY"  # "torch": no driver calls (a fallback and a comparison)


def _shared_dir() -> str:
    # tmpfs where there is one: the ring never touches a disk.
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


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
        if shared:
            fd, self.path = tempfile.mkstemp(prefix="envreel-ring-", dir=_shared_dir())
            try:
                os.ftruncate(fd, self.nbytes)
                self._map = mmap.mmap(fd, self.nbytes)
            finally:
                os.close(fd)
        else:
            self._map = mmap.mmap(-1, self.nbytes)
        self.array = np.frombuffer(self._map, np.uint8)
        if pinned:
            self._pin(device)
        self.array.fill(0)  # touch every page now: RSS is flat from the first frame on

    @classmethod
    def attach(cls, path: str, nbytes: int) -> HostMemory:
        """Map the shared buffer created by another process (the writer process's side)."""
        self = cls.__new__(cls)
        self.nbytes, self._registered, self._tensor = nbytes, 0, None
        self.pinned, self.path = False, None
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


class CudaCopier:
    """Enqueues one capture's copies (see the module doc); never waits on the host.

    Args:
        device: the torch CUDA device of the inputs.
        pinned: the ring is page-locked (else the copies are synchronous, through torch).
            Defaults to True.
        slots: device staging buffers for frames (copies in flight at most). Defaults to 3.
    """

    def __init__(self, device: Any, *, pinned: bool = True, slots: int = 3) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.index = device.index if device.index is not None else torch.cuda.current_device()
        self.side = torch.cuda.Stream(device=device)
        self._side_raw = self.side.cuda_stream
        self._slots = slots
        self._stage: list[tuple[list[Any], Any]] = []  # (views, copied event) per slot
        self._shapes: tuple = ()
        self._next = 0
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

    def _staging(self, frames: list[tuple[Any, Any, bool]]) -> tuple[int, list[Any], Any]:
        shapes = tuple(tuple(dst.shape) for dst, _, _ in frames)
        if shapes != self._shapes:
            torch = self.torch
            for views, _ in self._stage:  # freed only after the side stream's copies from them
                for v in views:
                    v.record_stream(self.side)
            self._stage = []
            for _ in range(self._slots):
                views = [torch.empty(sh, dtype=torch.uint8, device=self.device) for sh in shapes]
                self._stage.append((views, None))
            self._shapes = shapes
        k = self._next
        self._next = (k + 1) % self._slots
        return k, *self._stage[k]

    def copy(self, frames: list[tuple[Any, Any, bool]], values: list[tuple[Any, Any]]) -> None:
        """Enqueue one capture's copies.

        Args:
            frames: (host ring view, CUDA uint8 frames, whole): staged on the device, then copied
                to the host on the side stream. ``whole``: the frames' pixels are 4 bytes apart
                (``_frames.CUDA_PIXELS``) and the view holds 4 channels: all 4 bytes of every
                pixel are copied as one block (no kernel; the writer drops the 4th byte).
            values: (host ring view, small CUDA tensor): copied to the host on the current stream.
        """
        drv = self._usable_driver()
        # Streams as each way names them: raw handles for the driver, torch streams for torch.
        if drv is not None:
            cur, side = self._raw_stream(self.index), self._side_raw
        else:
            cur, side = self.torch.cuda.current_stream(self.index), self.side
        views: list[Any] = []
        if frames:
            k, views, copied = self._staging(frames)
            if copied is not None:  # the slot's previous copy to the host is done
                self._wait(drv, cur, copied)
            for view, (_, src, whole) in zip(views, frames, strict=True):
                self._stage_frames(drv, view, src, whole, cur)
        for dst, src in values:
            self._to_host(drv, dst, src, cur, on_side=False)
        self._record(drv, self._mark, cur)
        self._wait(drv, side, self._mark)
        if frames:
            for view, (dst, _, _) in zip(views, frames, strict=True):
                self._to_host(drv, dst, view, side, on_side=True)
            copied = self._stage[k][1] or self.new_event()
            self._record(drv, copied, side)
            self._stage[k] = (views, copied)

    def finish(self, event: Any) -> None:
        """Record a block's ``event`` on the side stream, after every copy enqueued so far (the
        side stream waited for the current one's values too): once per block, at its hand-off
        to the writer, which waits for the event before it reads the block."""
        drv = self._usable_driver()
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
