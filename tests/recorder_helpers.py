"""Stores that misbehave on purpose, frame generators and timeouts for the recorder tests."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from zarr.storage import LocalStore, WrapperStore


class _WriteHook(WrapperStore):
    # Every write must go through the async ``set`` below: zarr >= 3.4 may otherwise take a
    # synchronous fast path straight to the wrapped store.
    _supports_sync_io = False

    def __init__(self, store):
        super().__init__(store)
        self.sets = 0
        self.bytes = 0
        self.armed = True

    async def set(self, key, value):
        if self.armed:
            await self.before_set(key, value)
        self.sets += 1
        self.bytes += len(value)
        await self._store.set(key, value)

    async def before_set(self, key, value) -> None:  # pragma: no cover - overridden
        pass


class SlowStore(_WriteHook):
    """Sleeps ``delay_s`` before every chunk write (metadata writes are not slowed)."""

    def __init__(self, store, delay_s: float):
        super().__init__(store)
        self.delay_s = delay_s

    async def before_set(self, key, value):
        if not key.endswith("zarr.json"):
            await asyncio.sleep(self.delay_s)


class FullDiskStore(_WriteHook):
    """Raises ENOSPC once ``budget`` more bytes have been written after arming (disk full)."""

    def __init__(self, store, budget: int | None = None):
        super().__init__(store)
        self.budget = budget
        self.failures = 0

    async def before_set(self, key, value):
        if self.budget is None:
            return
        if len(value) > self.budget:
            self.failures += 1
            raise OSError(errno.ENOSPC, "No space left on device (simulated)", key)
        self.budget -= len(value)


class FlakyStore(_WriteHook):
    """Raises EIO on chosen block-write attempts (intermittent failures).

    Attempts are counted on ``env/frames`` chunk writes, one per block append (0-based), so a
    block that fails and the next one (written at the same place) are different attempts.
    """

    def __init__(self, store, fail_attempts: set[int]):
        super().__init__(store)
        self.fail_attempts = set(fail_attempts)
        self.attempts = 0
        self.failures = 0

    async def before_set(self, key, value):
        if key.startswith("env/frames/c/"):
            attempt = self.attempts
            self.attempts += 1
            if attempt in self.fail_attempts:
                self.failures += 1
                raise OSError(errno.EIO, "Input/output error (simulated)", key)


def local(path, cls=None, **kwargs) -> Any:
    """A LocalStore at ``path``, wrapped in ``cls(store, **kwargs)`` when given."""
    store = LocalStore(str(path))
    return store if cls is None else cls(store, **kwargs)


def frames(step: int, n: int, h: int, w: int, *, channels: int = 3) -> np.ndarray:
    """Deterministic (n, h, w, channels) uint8: every byte depends on (step, env, y, x, c)."""
    e = np.arange(n)[:, None, None, None]
    y = np.arange(h)[None, :, None, None]
    x = np.arange(w)[None, None, :, None]
    c = np.arange(channels)[None, None, None, :]
    return ((step * 7 + e * 31 + y * 3 + x * 5 + c * 11) % 251).astype(np.uint8)


def global_frame(step: int, h: int, w: int) -> np.ndarray:
    y = np.arange(h)[:, None, None]
    x = np.arange(w)[None, :, None]
    c = np.arange(3)[None, None, :]
    return ((step * 13 + y * 2 + x * 7 + c * 17) % 253).astype(np.uint8)


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread; fail (instead of hanging the test run) if it takes longer."""
    out: dict[str, Any] = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            out["error"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        raise AssertionError(f"did not finish within {seconds} s (a hang)")
    if "error" in out:
        raise out["error"]
    return out.get("value")
