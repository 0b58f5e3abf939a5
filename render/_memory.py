"""Large buffers whose pages are mapped before first use, with the GIL released meanwhile.

Touched for the first time, a fresh array page-faults once per 4 KiB page: a block of 32 frames
of a 1024² canvas (100 MB) faults 25,000 times, 0.2 s on the 2-core VM. The kernel maps the
pages in one go in about a third of that when asked up front. Python's ``mmap(MAP_POPULATE)``
asks while holding the GIL: the prefetch thread making its second canvas block of a 1024×512
render held it for 20 ms just as the first block was ready, so the main thread could not hand
ffmpeg a frame. ``madvise(MADV_POPULATE_WRITE)`` (Linux 5.14) called through ctypes, which
releases the GIL, maps them while the other threads run.
"""

from __future__ import annotations

import ctypes
import math
import mmap

import numpy as np

__all__ = ["mapped_empty"]

_MADV_POPULATE_WRITE = 23
"""Linux's madvise advice that maps (and zeroes) a range's pages for writing."""
_SMALL = 1 << 20
"""Below this many bytes an ordinary ``np.empty`` (glibc's heap, often reused pages)."""
_madvise = None


def _libc_madvise():
    """libc's ``madvise`` through ctypes (which releases the GIL for the call), or None."""
    global _madvise
    if _madvise is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).madvise
            fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
            _madvise = fn
        except (OSError, AttributeError):
            _madvise = False
    return _madvise or None


def mapped_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array of ``shape`` whose pages are already mapped.

    Anonymous memory populated by ``madvise(MADV_POPULATE_WRITE)`` without the GIL; on a kernel
    without it, ``mmap(MAP_POPULATE)`` (holding the GIL); elsewhere than Linux, or below 1 MiB,
    a plain ``np.empty``.
    """
    nbytes = math.prod(shape)
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate or nbytes < _SMALL:
        return np.empty(shape, np.uint8)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    try:
        mem = mmap.mmap(-1, nbytes, flags=flags)
    except (OSError, ValueError):
        return np.empty(shape, np.uint8)
    array = np.frombuffer(mem, np.uint8)
    madvise = _libc_madvise()
    if madvise is not None and madvise(array.ctypes.data, nbytes, _MADV_POPULATE_WRITE) == 0:
        return array.reshape(shape)
    try:  # a kernel before 5.14: mapped up front, holding the GIL
        mem = mmap.mmap(-1, nbytes, flags=flags | populate)
    except (OSError, ValueError):
        return array.reshape(shape)  # faulted in on first touch
    return np.frombuffer(mem, np.uint8).reshape(shape)
