"""Every error envreel raises on purpose, in one place.

Bad arguments raise the built-in ``ValueError`` / ``TypeError``, naming the value and what was
expected. Everything else derives from :class:`EnvreelError`:

* problems found in a store raise :class:`StoreFormatError` (a chunk that cannot be read or
  decoded: :class:`CorruptChunkError`, which names the array and the chunk);
* a recorder's background writer that failed (``on_error="raise"``): :class:`RecorderError`;
* rendering that failed after it started (the encoder): :class:`RenderError`;
* a simulator that cannot give envreel what it needs (e.g. no Newton model to render the
  Isaac Lab 3 global view from): :class:`SimulatorError`.

This module imports nothing, so every room (schemas, capture, render, tools) can use it.
"""

from __future__ import annotations

__all__ = [
    "EnvreelError",
    "StoreFormatError",
    "CorruptChunkError",
    "RecorderError",
    "RenderError",
    "SimulatorError",
]


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


class RenderError(EnvreelError):
    """Rendering failed after it started: the encoder failed or stopped (its message included)."""


class SimulatorError(EnvreelError, RuntimeError):
    """The simulator cannot give envreel what a recording needs (the message says what to
    change), e.g. an Isaac Lab 3 sim without a Newton model for the global view."""
