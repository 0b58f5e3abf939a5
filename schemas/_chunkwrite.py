"""Block writes that compress every chunk on a thread pool, for the store's own codec chains.

zarr-python encodes a write one codec at a time on its event loop: each env's inner chunk of a
block is a strided slice of the block (frames of one env are ``num_envs`` frames apart), and the
``bytes`` codec gathers it into a contiguous buffer there, one chunk after another, before zstd
runs (on at most ``async.concurrency`` threads); the ~20 small per-frame arrays are written one
after another on top. Measured on an H100 host (16 Xeon cores, zarr 3.4.2), one 32-frame block
of 64 envs × 128×128 (100 MB): 80 ms through ``Array.__setitem__`` (~25,000 env-frames/s, the
writer's ceiling); zstd level 3 alone takes 325 ms of CPU for it, 19 ms on 16 threads.

Here each chunk's gather, zstd and crc32c run as one task on a thread pool (numpy copies and
zstd release the GIL; each thread keeps its zstd context, see ``_compressor``). On a local store
each object is written here, as zarr's LocalStore writes it (a temporary file renamed into
place), group of chunks by group as they are encoded, while the pool encodes the next (see
``_put_local``); on any other store shards are assembled from the encoded chunks and stored
through the array's own store, concurrently. The objects are what zarr writes for the same
chunk: the same layout, index and checksums, each chunk one zstd frame of the same level (the
compressed bytes may differ from numcodecs' where the two bundle different zstd versions), so
any zarr v3 reader reads them; ``tests/integration/test_store_chunkwrite.py`` checks that
against zarr-python and tensorstore.

Only the layouts the reader reads directly (``_chunks.chunk_format``) with the chains that
``RunWriter.create`` makes are taken this way (anything else, e.g. a store whose metadata was
edited, goes through zarr):

* plain: ``[bytes(little), zstd(level, checksum=false), crc32c]``;
* sharded: ``sharding_indexed`` with that chain inside, index ``[bytes(little), crc32c]`` at the
  end of the shard;

and only for writes that start on a chunk boundary of the time axis (every block the recorder
writes; a block that ends early is padded with the fill value, as zarr does).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from google_crc32c import value as _crc32c
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore
from zstandard import ZstdCompressor

from ._chunks import _EMPTY, ChunkFormat, chunk_format
from ._pixels import overlap_copy_works, words_into, words_of

__all__ = ["ChunkPlan", "plan_for", "write_block", "encode_threads", "THREADS_ENV"]

THREADS_ENV = "ENVREEL_WRITER_THREADS"
"""The environment variable that sets how many threads compress chunks (``encode_threads``)."""

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def encode_threads() -> int:
    """Threads that compress chunks: ``ENVREEL_WRITER_THREADS``, else one per usable core but
    one (left to the training loop), at most 16."""
    env = os.environ.get(THREADS_ENV)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        return n
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores - 1, 16))


def _forget_pool() -> None:
    # A forked child has none of the parent's threads: it makes its own pool when it writes.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(encode_threads(), thread_name_prefix="envreel-encode")
        return _POOL


@dataclass(frozen=True)
class ChunkPlan:
    """How to encode one array's chunks without zarr's codec pipeline.

    Attributes:
        array: the zarr array (its store and chunk key encoding are used).
        fmt: its layout, as the reader recognises it (``_chunks.chunk_format``).
        level: zstd level of the chunks.
    """

    array: Any
    fmt: ChunkFormat
    level: int


def plan_for(array: zarr.Array) -> ChunkPlan | None:
    """The plan for ``array``, or None when its layout or codec chain is not one this module
    encodes: zstd (without its own checksum) and crc32c, in a layout ``chunk_format`` reads."""
    md = array.metadata
    if getattr(md, "zarr_format", 3) != 3:
        return None
    doc = json.loads(md.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes())
    fmt = chunk_format(doc, tuple(array.shape))
    if fmt is None or not (fmt.zstd and fmt.crc32c):
        return None
    codecs = doc["codecs"][0]["configuration"]["codecs"] if fmt.sharded else doc["codecs"]
    zconf = codecs[1].get("configuration") or {}
    level = zconf.get("level", 0)
    if zconf.get("checksum", False) or not isinstance(level, int) or isinstance(level, bool):
        return None
    return ChunkPlan(array, fmt, level)


_LOCAL = threading.local()
_GATHER_BYTES = 8 << 20
"""Bytes of envs gathered and compressed at once, at most (a task's envs are fewer at 15 threads
and 4,096 × 32² or 1,024 × 64²: one gather and one zstd call a task). Each gather and each zstd
call gives the GIL up and takes it back, and with 15 encode threads those handovers, not the
work, set the pace: ``write_block`` alone, 15 threads, a fresh H100 host, went 1.8× (4,096 ×
32²) and 2.5× (1,024 × 64², whose 1 MB groups of two chunks were compressed one by one) as fast
as with 1 MB groups, the sustained rate of the whole writer 1.11–1.42× on two hosts
(docs/performance.md). Each encode thread keeps a buffer of up to this size."""
_LITTLE = np.dtype("<u2").isnative


def _scratch(nbytes: int) -> np.ndarray:
    """This thread's reused uint8 buffer, at least ``nbytes`` and one byte of slack (for
    ``_pixels.words_into``). A fresh array per chunk (hundreds of kB) costs its page faults
    every time."""
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or buf.nbytes < nbytes + 1:
        buf = _LOCAL.buf = np.empty(nbytes + 1, np.uint8)
    return buf


def _buffer(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of ``shape`` in this thread's reused buffer, little-endian ``dtype``."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    return _scratch(nbytes)[:nbytes].view(dtype.newbyteorder("<")).reshape(shape)


def _rgb_of_rgba(src: np.ndarray) -> bool:
    """``src`` is uint8 RGB whose pixels are 4 bytes apart (a ring block of RGBA frames, see
    ``capture._writer.ring_layout``: each pixel's 4th byte is there to be read)."""
    return src.dtype == np.uint8 and src.shape[-1] == 3 and src.strides[-2:] == (4, 1)


def _copy(out: np.ndarray, src: np.ndarray) -> None:
    """``out[...] = src``; RGB out of RGBA pixels channel by channel (the ring keeps host
    frames' 4th byte, see ``capture._writer.ring_layout``): numpy's generic strided copy of
    that runs at ~0.7 GB/s, a third of copying the three channels one by one (measured on the
    2-core dev VM; zstd 3 itself runs at ~0.8 GB/s a thread)."""
    if _rgb_of_rgba(src):
        for c in range(3):
            out[..., c] = src[..., c]
    else:
        np.copyto(out, src, casting="equiv")


def _gather(region: np.ndarray) -> np.ndarray:
    """``region`` as C-order little-endian bytes, in this thread's reused buffer."""
    if region.flags.c_contiguous and (region.dtype.isnative and _LITTLE or region.itemsize == 1):
        return region
    out = _buffer(region.shape, region.dtype)
    _copy(out, region)
    return out


def _compressor(level: int) -> ZstdCompressor:
    """This thread's zstd compressor for ``level``, reused from chunk to chunk.

    A compressor keeps its context (a few hundred kB of tables): numcodecs' ``Zstd`` makes and
    frees one per chunk, and with many threads those allocations, not the compression, set the
    pace (H200 host, 16 vCPUs, 98 kB chunks: 0.69M env-frames/s on 15 threads against 1.56M
    with reused contexts). Frames carry their content size, as numcodecs' do.
    """
    found = getattr(_LOCAL, "zstd", None)
    if found is None:
        found = _LOCAL.zstd = {}
    if level not in found:
        found[level] = ZstdCompressor(level=level, write_content_size=True)
    return found[level]


def _stored(level: int, raw: np.ndarray) -> bytes:
    """One chunk's stored bytes from its C-order little-endian bytes: zstd, then crc32c."""
    return _checksummed(_compressor(level).compress(raw))


def _checksummed(data: bytes) -> bytes:
    """A chunk's stored bytes from its zstd frame: the frame, then its crc32c (little-endian)."""
    return data + int(_crc32c(data)).to_bytes(4, "little")


_MANY = 4
"""Chunks a group must hold for ``_stored_each`` to compress them in one call. The call makes a
zstd context each time, and larger chunks (fewer to a group) hand the GIL over less often
anyway: 1,024 × 64² in twos measured 0.96× [0.84, 1.07] the rate of chunk by chunk."""


def _stored_each(level: int, out: np.ndarray) -> list[bytes]:
    """The stored bytes of each chunk ``out[j]`` (C-order little-endian bytes), as ``_stored``
    makes them, compressed in one call that releases the GIL once for all of them.

    ``_stored`` takes the GIL back after every chunk. With 15 encode threads and ~100 kB chunks
    the threads wait for it: on an H100 host (16 vCPUs) 4,096 × 32² blocks went at 0.73M
    env-frames/s on 15 threads and 0.71M on 8, the tasks off the CPU for half their time, while
    zstd alone on 15 threads does 1.8M. In one call per group of ~10 chunks the same blocks
    went 1.13× [1.06, 1.27] as fast on a second H100 host (10 blocks alternating; see
    docs/performance.md). zstandard's ``multi_compress_to_buffer`` compresses with the
    compressor's parameters and each chunk's size pledged, as ``compress`` does: the same
    frames, byte for byte. Builds without it (the cffi backend) compress chunk by chunk.
    """
    many = getattr(_compressor(level), "multi_compress_to_buffer", None)
    if many is None or len(out) < _MANY:
        return [_stored(level, c) for c in out]
    got = many(list(out), threads=1)
    return [_checksummed(got[j].tobytes()) for j in range(len(got))]


def _encode(level: int, region: np.ndarray, chunk: tuple[int, ...]) -> bytes:
    """One chunk's stored bytes (a block that ends early is padded with the fill value, 0)."""
    if region.shape != chunk:
        full = np.zeros(chunk, region.dtype)
        full[tuple(slice(0, s) for s in region.shape)] = region
        region = full
    return _stored(level, _gather(region))


def _encode_envs(
    level: int, data: np.ndarray, e0: int, e1: int, inner: tuple[int, ...]
) -> list[bytes]:
    """The inner chunks of envs ``e0..e1`` of a block ``data`` (time, env, ...), one per env.

    Envs are gathered env-major into this thread's buffer, up to ``_GATHER_BYTES`` at a time,
    one copy per channel for the group: each env's chunk is then a contiguous slice, and the
    group is compressed in one call (``_stored_each``). With 32×32 frames a chunk is ~100 kB
    and a block of 4,096 envs has 4,096 of them: per-chunk Python (three channel copies each)
    held the GIL long enough that 15 encode threads sustained ~3x one thread's rate.
    """
    t = data.shape[0]
    chunk_bytes = int(np.prod(inner)) * data.dtype.itemsize
    step = max(1, _GATHER_BYTES // chunk_bytes)
    words = _rgb_of_rgba(data) and overlap_copy_works()
    stored = []
    for g in range(e0, e1, step):
        k = min(e1, g + step) - g
        shape = (k, inner[0], *inner[2:])
        out = _buffer(shape, data.dtype)
        src = data[:, g : g + k].swapaxes(0, 1)
        if words:  # one pass of 4-byte words, not three channel copies (see _pixels)
            np.copyto(words_into(_scratch(out.nbytes), shape[:-1])[:, :t], words_of(src))
        else:
            _copy(out[:, :t], src)
        if t < inner[0]:  # a block that ends early: the rest of each chunk is fill (0); after
            out[:, t:] = 0  # the copy, whose words spill one byte into it
        stored += _stored_each(level, out)
    return stored


def _shard_index(sizes: list[int | None]) -> list[bytes]:
    """The end of a shard whose chunks (None: not stored) have these sizes, stored one after
    another from its start: the index (offset, length per chunk), then its crc32c."""
    lengths = np.array([0 if n is None else n for n in sizes], dtype="<u8")
    index = np.full((len(sizes), 2), _EMPTY, dtype="<u8")
    stored = np.array([n is not None for n in sizes], dtype=bool)
    index[stored, 0] = (np.cumsum(lengths) - lengths)[stored]
    index[stored, 1] = lengths[stored]
    ib = index.tobytes()
    return [ib, _crc32c(ib).to_bytes(4, "little")]


def _shard_parts(chunks: list[bytes | None]) -> list[bytes]:
    """A shard's pieces, in order: the chunks one after another, then the index."""
    sizes = [None if c is None else len(c) for c in chunks]
    return [*(c for c in chunks if c is not None), *_shard_index(sizes)]


_WRITE_BYTES = 4 << 20
"""Bytes handed to the kernel per write call at most. On the 2-core dev VM (ext4) one ``write``
of a 40 MB shard took 115 ms, the same bytes in 4 MiB calls 9–10 ms, while the page cache had
room; a sustained stream of blocks is bound by the disk either way."""
_IOV_MAX = 1024  # Linux's limit on the buffers of one writev


def _write_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` to ``fd`` in order, at most ``_WRITE_BYTES`` a call, short writes
    resumed. One task's chunks (~70 of ~10 kB at 4,096 × 32² with 15 threads) mostly go in one
    call as they are: cutting them into views first held the GIL in the writer's thread for
    ~2 ms a block of 4,096 chunks (written ten at a time), a quarter of the time the writes
    themselves take (2-core dev VM)."""
    total = sum(map(len, parts))
    done = 0
    if len(parts) <= _IOV_MAX and total <= _WRITE_BYTES:
        done = os.writev(fd, parts) if total else 0
        if done == total:
            return
    views = [memoryview(p) for p in parts if len(p)]
    i = _past(views, 0, done)
    while i < len(views):
        batch, size = [], 0
        while i + len(batch) < len(views) and len(batch) < _IOV_MAX:
            v = views[i + len(batch)]
            if batch and size + len(v) > _WRITE_BYTES:
                break
            batch.append(v)
            size += len(v)
        if len(batch) == 1 and size > _WRITE_BYTES:  # one piece larger than a call
            batch = [batch[0][:_WRITE_BYTES]]
        i = _past(views, i, os.writev(fd, batch))


def _past(views: list[memoryview], i: int, done: int) -> int:
    """The first of ``views`` not yet wholly written once ``done`` more bytes were, from
    ``views[i]`` on; a piece cut short is replaced by its rest."""
    while done and i < len(views):
        n = len(views[i])
        if done >= n:
            done -= n
            i += 1
        else:
            views[i] = views[i][done:]
            done = 0
    return i


def _put_local(path: str, sharded: bool, futs: list[Future]) -> None:
    """Store one object of a local store as zarr's LocalStore does (a temporary file beside it,
    renamed into place; nothing left behind on failure), each group of chunks written as soon as
    it is encoded, while the pool encodes the next: a block's shard (40 MB at 4,096 envs × 32²)
    is then mostly on its way to the disk when its last chunk is ready, and never joined into
    one copy."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            sizes: list[int | None] = []
            for f in futs:
                chunks = f.result()
                if None in chunks:  # envs past the array's edge: no chunk
                    sizes += [None if c is None else len(c) for c in chunks]
                    chunks = [c for c in chunks if c is not None]
                else:  # a group of envs: ~70 chunks with 15 threads, one C loop
                    sizes += map(len, chunks)
                _write_all(fd, chunks)
            if sharded:
                _write_all(fd, _shard_index(sizes))
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _store_root(array: Any) -> str | None:
    """The folder of a local store (written directly), else None (written through zarr)."""
    store = array.store_path.store
    return str(store.root) if type(store) is LocalStore else None


def _tasks(
    pool: ThreadPoolExecutor, plan: ChunkPlan, t0: int, data: np.ndarray, tasks: int
) -> list[tuple[tuple[int, ...], list]]:
    """Submit the encoding of one write: (object coords, [futures of lists of chunk bytes or
    None]) per stored object, each object's inner chunks in groups of envs, one task a group
    (a task per chunk costs ~20–50 µs of handoff in the writer's own thread, 1,024 times per
    block of 1,024 envs)."""
    fmt = plan.fmt
    blk, rest = t0 // fmt.chunk[0], (0,) * (len(fmt.chunk) - 2)
    if not fmt.sharded:  # one chunk per block holds every other axis whole
        coords = (blk,) + (0,) * (len(fmt.chunk) - 1)
        return [(coords, [pool.submit(lambda: [_encode(plan.level, data, fmt.chunk)])])]
    n, per = data.shape[1], fmt.chunk[1]
    size = max(1, -(-min(n, per) // tasks))
    out = []
    for shard in range(-(-n // per)):
        e0, e1 = shard * per, min(n, (shard + 1) * per)
        futs = [
            pool.submit(_encode_envs, plan.level, data, g, min(e1, g + size), fmt.inner)
            for g in range(e0, e1, size)
        ]
        if e1 - e0 < per:  # envs past the array's edge (a last shard not full) have no chunk
            futs.append(_done([None] * (per - (e1 - e0))))
        out.append(((blk, shard, *rest), futs))
    return out


def _done(value: Any) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


def write_block(writes: list[tuple[ChunkPlan, int, np.ndarray]]) -> None:
    """Encode and store the chunks of ``(plan, t0, data)`` writes; return when all are stored.

    ``t0`` must be a multiple of the time chunk and ``data`` at most one chunk long in time.
    Raises whatever the store raises (objects already stored then hold data of no committed
    frame: harmless, the next write of the block replaces them).
    """
    pool = _pool()
    objects = []  # (plan, object coords, [futures of groups of inner chunks])
    tasks = 4 * encode_threads()  # enough to keep every thread busy while groups finish
    for plan, t0, data in writes:
        for coords, futs in _tasks(pool, plan, t0, data, tasks):
            objects.append((plan, coords, futs))
    proto = default_buffer_prototype()
    blobs = []  # objects of other stores, written through zarr once whole
    try:
        for plan, coords, futs in objects:
            key = plan.array.metadata.encode_chunk_key(coords)
            root = _store_root(plan.array)
            if root is not None:
                _put_local(
                    os.path.join(root, plan.array.store_path.path, key), plan.fmt.sharded, futs
                )
                continue
            chunks = [c for f in futs for c in f.result()]
            blob = chunks[0] if not plan.fmt.sharded else b"".join(_shard_parts(chunks))
            blobs.append((plan.array.store_path / key, proto.buffer.from_bytes(blob)))
    except BaseException:
        # no task may still read ``data`` (a ring block the caller reuses) once this raises
        wait([f for _, _, futs in objects for f in futs])
        raise

    async def store_all() -> None:
        await asyncio.gather(*(path.set(buf) for path, buf in blobs))

    if blobs:
        sync(store_all())
