"""Store creation: the run store, the ring of block buffers and the writer, at the first capture.

``open_writer`` sizes the ring from the memory budget, allocates it (page-locked for CUDA input,
shared with the writer process when there is one) and starts the writer: a child process that
creates the store itself, or a thread of this process writing through ``create_run``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envreel.schemas import RunSpec, create_run

from . import _frames as fr
from ._writer import Ring, WriterThread, block_nbytes

__all__ = [
    "Target",
    "auto_block_frames",
    "blocks_for",
    "open_writer",
    "writer_mode",
    "is_store",
    "local_path",
]

MAX_BLOCKS = 64  # more buffers than this add nothing but memory for tiny frames


@dataclass(frozen=True)
class Target:
    """Where and how the store is created.

    Attributes:
        url: the store as the user gave it (for messages).
        store_url: the same, with a local path made absolute (the writer process resolves
            relative paths against its own working directory).
        overwrite: replace an existing store.
        storage_options: fsspec options.
        statics: static arrays written with the store (origins, poses, intrinsics).
    """

    url: Any
    store_url: Any
    overwrite: bool
    storage_options: dict | None
    statics: dict[str, Any]


def is_store(url: Any) -> bool:
    from zarr.abc.store import Store

    return isinstance(url, Store)


def local_path(url: Any) -> Path | None:
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        return None
    if url.startswith("file://"):
        url = url[len("file://") :]
    return None if "://" in url else Path(url).expanduser()


def writer_mode(writer: str, url: Any) -> str:
    """ "process" or "thread" for the ``writer`` option and ``url``."""
    in_process = is_store(url) or (isinstance(url, str) and url.startswith("memory://"))
    if writer == "auto":
        # Windows lacks the fd passing the writer process uses.
        return "thread" if in_process or os.name == "nt" else "process"
    if writer == "process" and in_process:
        raise ValueError(
            f"writer='process' needs a path or URL, got {url!r}: a zarr Store object or a "
            "memory:// store lives in this process; use writer='thread' (or 'auto')"
        )
    return writer


BLOCK_CHOICES = (32, 16, 8, 4, 2, 1)
"""Block lengths ``block_frames=None`` picks from, longest first."""


def auto_block_frames(spec: RunSpec, max_queue_bytes: int, value_range: bool) -> RunSpec:
    """``spec`` with the longest block of ``BLOCK_CHOICES`` that ``max_queue_bytes`` holds
    twice (``blocks_for``'s minimum), or with 1 frame when none is (``blocks_for`` then says
    what budget it takes)."""
    for b in BLOCK_CHOICES:
        shorter = dataclasses.replace(spec, block_frames=b)
        if 2 * block_nbytes(shorter, value_range=value_range) <= max_queue_bytes:
            return shorter
    return dataclasses.replace(spec, block_frames=1)


def blocks_for(
    spec: RunSpec, max_queue_bytes: int, value_range: bool, rgba: tuple[str, ...] = ()
) -> int:
    """Block buffers the budget holds (at most ``MAX_BLOCKS``); ValueError below 2."""
    per = block_nbytes(spec, value_range=value_range, rgba=rgba)
    fit = max_queue_bytes // per
    if fit < 2:
        h, w = spec.env_frame_shape
        frames = spec.block_frames * max_queue_bytes // (2 * per)
        while frames >= 1:  # the largest block that fits twice, if any does
            smaller = dataclasses.replace(spec, block_frames=frames)
            if 2 * block_nbytes(smaller, value_range=value_range, rgba=rgba) <= max_queue_bytes:
                break
            frames -= 1
        raise ValueError(
            f"max_queue_bytes={max_queue_bytes} ({max_queue_bytes / 2**20:.0f} "
            f"MiB) holds {fit} block(s) of block_frames={spec.block_frames} frames × "
            f"{spec.num_envs} envs × {h}×{w}×3 ({per / 1e6:.1f} MB each, with per-frame "
            f"values); the recorder needs at least 2: pass max_queue_bytes >= {2 * per}"
            + (f" or block_frames <= {frames}" if frames >= 1 else "")
        )
    return int(min(fit, MAX_BLOCKS))


def rgba_fields(
    spec: RunSpec, kinds: dict[str, str | None], max_queue_bytes: int, value_range: bool
) -> tuple[str, ...]:
    """Frame fields kept with 4 channels: frames whose pixels are 4 bytes apart go into the ring
    whole, when the budget still holds enough blocks that way: host frames (one memory copy
    instead of a word copy) with 2 blocks; CUDA frames (one device copy instead of a kernel
    launch, ~9 µs of the caller's time) with 3, since a third more bytes a block leaves fewer
    blocks to absorb the writer's pace where frames are many and small (4,096 × 32² on an H200
    host: 41 drops in 1,000 steps with 2 RGBA blocks)."""
    rgba = tuple(name for name, kind in kinds.items() if kind in (fr.NP_WORDS, fr.CUDA_PIXELS))
    if not rgba:
        return ()
    blocks = 3 if any(kinds[name] == fr.CUDA_PIXELS for name in rgba) else 2
    if max_queue_bytes < blocks * block_nbytes(spec, value_range=value_range, rgba=rgba):
        return ()
    return rgba


def cuda_device(*inputs: Any) -> Any:
    """The device of the first CUDA tensor among ``inputs``, or None."""
    for x in inputs:
        if x is not None and fr.is_torch(x) and x.device.type == "cuda":
            return x.device
    return None


def open_writer(
    spec: RunSpec,
    target: Target,
    *,
    proc: Any,
    num_blocks: int,
    rgba: tuple[str, ...],
    cuda_dev: Any,
    value_range: tuple[float, float] | None,
    on_error: str,
    autoreset: str,
    dropped: Callable[[], int],
) -> tuple[Ring, Any]:
    """Create the store, the ring and the writer; ``proc``: a started ``WriterProcess`` to use,
    or None for a writer thread. Returns (ring, writer)."""
    from ._cuda import HostMemory

    pinned = cuda_dev is not None
    shared = proc is not None

    def ring_of() -> Ring:
        return Ring(
            spec,
            num_blocks=num_blocks,
            memory=lambda n: HostMemory(n, pinned=pinned, device=cuda_dev, shared=shared),
            value_range=value_range is not None,
            rgba=rgba,
        )

    if shared:
        ring = ring_of()
        config = dict(
            spec=spec.to_dict(),
            path=ring.memory.path,
            nbytes=ring.nbytes,
            num_blocks=num_blocks,
            value_range=value_range,
            rgba=rgba,
            url=target.store_url,
            overwrite=target.overwrite,
            storage_options=target.storage_options,
            statics=target.statics,
            on_error=on_error,
            autoreset=autoreset,
        )
        try:
            proc.start(ring=ring, dropped=dropped, url=target.url, config=config)
        except BaseException:
            ring.release()
            raise
        finally:
            ring.memory.unlink()  # both processes have it mapped (or the child is gone)
        return ring, proc
    run_writer = create_run(
        target.store_url,
        spec,
        overwrite=target.overwrite,
        storage_options=target.storage_options,
        **target.statics,
    )
    try:
        ring = ring_of()
    except BaseException:
        run_writer.close(error="the recorder could not allocate its ring buffer")
        raise
    writer = WriterThread(
        run_writer,
        ring,
        on_error=on_error,
        dropped=dropped,
        value_range=value_range,
        autoreset=autoreset,
    )
    return ring, writer
