"""The errors envreel raises for problems with stores and data.

Bad arguments raise the built-in ``ValueError`` / ``TypeError``; problems found on disk raise
``StoreFormatError``; a chunk that cannot be read or decoded raises ``CorruptChunkError``, which
names the array and the chunk.
"""

from __future__ import annotations

__all__ = ["EnvreelError", "StoreFormatError", "CorruptChunkError", "RecorderError"]


class EnvreelError(Exception):
    """Base class of every error envreel raises on purpose."""


class StoreFormatError(EnvreelError):
    """A store is missing, unreadable, of another format or version, or inconsistent."""


class CorruptChunkError(StoreFormatError):
    """A chunk of an array could not be read or decoded.

    Attributes:
        array: the array's path inside the store, e.g. ``"env/frames"``.
        chunk: the chunk's grid coordinates along each dimension (``None`` when unknown).
    """

    def __init__(self, message: str, *, array: str, chunk: tuple[int, ...] | None = None):
        super().__init__(message)
        self.array = array
        self.chunk = chunk


class RecorderError(EnvreelError):
    """The background writer of a recorder failed (raised with ``on_error="raise"``)."""
