"""RGB pixels 4 bytes apart (an RGBA buffer or its ``[..., :3]`` view) copied as 4-byte words.

numpy's strided copy of 3-byte pixels out of 4-byte ones is slow (~0.7 GB/s; three channel-by-
channel copies ~3x that); copying each pixel as one unaligned 4-byte word into destinations 3
bytes apart, in ascending order so that each word's 4th byte is overwritten by the next pixel,
is one pass (~2x the channel copies again). The destination needs one byte of slack after its
last pixel. Whether numpy copies overlapping words in ascending order is checked once per
process against the plain copy (``overlap_copy_works``); where it disagrees, callers copy plainly.

Used by the recorder (frames into ring slots) and the writer (ring blocks into chunks).
"""

from __future__ import annotations

import numpy as np

__all__ = ["c_strides", "overlap_copy_works", "words_of", "words_into"]

_OVERLAP_OK: bool | None = None


def overlap_copy_works() -> bool:
    """Whether numpy copies overlapping 4-byte words in ascending order here (checked once)."""
    global _OVERLAP_OK
    if _OVERLAP_OK is None:
        rng = np.random.default_rng(7)
        src = rng.integers(0, 256, (3, 5, 7, 4), dtype=np.uint8)
        out = np.zeros(3 * 5 * 7 * 3 + 1, np.uint8)
        try:
            np.copyto(words_into(out, (3, 5, 7)), src.view(np.uint32)[..., 0])
            out2 = np.zeros_like(out)
            np.copyto(words_into(out2, (3, 5, 7)), words_of(src[..., :3]))
            ref = np.ascontiguousarray(src[..., :3]).reshape(-1)
            _OVERLAP_OK = bool(np.array_equal(out[:-1], ref) and np.array_equal(out2[:-1], ref))
        except Exception:  # noqa: BLE001 - any failure means: use the plain copy
            _OVERLAP_OK = False
    return _OVERLAP_OK


def words_of(view: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 with pixel stride >= 4 and channel stride 1 -> (...) unaligned uint32 words.

    Reads one byte past each pixel (the alpha); the caller has checked that byte is readable.
    """
    lead = view.shape[:-1]
    wide = np.lib.stride_tricks.as_strided(
        view, shape=(*lead, 4), strides=(*view.strides[:-1], 1), writeable=False
    )
    return wide.view(np.uint32)[..., 0]


def c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The byte strides of a C-order array of ``shape`` whose items are ``itemsize`` bytes."""
    strides, step = [], itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def words_into(buffer: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A (shape) uint32 view of ``buffer`` (uint8, at least prod(shape) * 3 + 1 bytes) whose
    words start 3 bytes apart: copying ``words_of(src)`` into it writes C-order RGB bytes."""
    return np.ndarray(shape, np.uint32, buffer=buffer, strides=c_strides(shape, 3))
