"""The CUDA path: page-locked ring memory, a side stream, and per-block events.

Per ``capture()`` with CUDA inputs (all on the caller's thread, none of it waits for the GPU):

1. ``side.wait_stream(current)``: the copies start only after everything already queued on the
   producer's current stream, i.e. after the kernels that rendered this step's frames.
2. On the side stream, one ``copy_(non_blocking=True)`` per input (frames: one batched copy of
   all N envs, not one per env) into page-locked host slots; then ``event.record(side)``.
3. ``current.wait_event(event)``: the producer's stream waits for the copies to finish before
   running anything enqueued later. This costs the caller nothing (it is a stream-ordering
   command, not a host wait) and costs the GPU at most the copy time (~0.06 ms for 64 envs of
   128×128 on an H100), since the copy runs on a copy engine.

Why the source cannot be overwritten before it is copied: the simulator's buffer (Isaac Lab's
camera ``rgb`` and ``reset_terminated`` are reused in place every step) is next written by work
that is ordered after this step's work on the current stream: either it is launched on the
current stream itself (then step 3 orders it after the copy), or it runs on another stream or
library that must already wait for the current stream, or synchronise the device, before it may
overwrite a buffer the training code reads on the current stream (otherwise the training code
itself would race), which again puts it after step 3. ``tensor.record_stream(side)`` tells
torch's caching allocator that the side stream uses the source, so a temporary the caller frees
right after ``capture()`` (e.g. ``cam.float() / 255``) is not handed out again before the copy
ran. The writer thread calls ``event.synchronize()`` on a block's event before reading it (a
host wait on the writer thread, never on the caller's).

Ring memory is page-locked with ``cudaHostRegister`` on a mapping of exactly the ring's size
(torch's pinned allocator would round each allocation up to a power of two: 101 MB becomes
128 MB), shared with the writer process through a file in /dev/shm; if registration fails, torch's
pinned allocator is used instead (thread writer) or the copies are synchronous (with a warning).
"""

from __future__ import annotations

import mmap
import os
import tempfile
import warnings
from typing import Any

import numpy as np

__all__ = ["CudaCopier", "HostMemory"]


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


class CudaCopier:
    """Orders batched device-to-host copies on a side stream (see the module doc).

    Args:
        device: the torch CUDA device of the inputs.
    """

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.side = torch.cuda.Stream(device=device)

    def new_event(self) -> Any:
        """An event for one ring block (timing disabled: cheaper to record)."""
        return self.torch.cuda.Event(enable_timing=False)

    def copy(self, pairs: list[tuple[Any, Any]], event: Any) -> None:
        """Enqueue ``dst.copy_(src)`` for each pair on the side stream; never waits on the host.

        Args:
            pairs: (destination: a host tensor view of a ring slot, source: a CUDA tensor).
            event: the destination block's event, recorded after the copies.
        """
        torch = self.torch
        current = torch.cuda.current_stream(self.device)
        side = self.side
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for dst, src in pairs:
                dst.copy_(src, non_blocking=True)
                src.record_stream(side)
            event.record(side)
        current.wait_event(event)
