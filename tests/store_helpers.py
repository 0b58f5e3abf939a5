"""Store wrappers and run builders shared by the store tests."""

from __future__ import annotations

import numpy as np
from zarr.storage import LocalStore, WrapperStore

from envreel.schemas import Block, RunSpec, create_run, open_run


class CountingStore(WrapperStore):
    """Counts keys and bytes read through ``get``/``get_partial_values``."""

    def __init__(self, store):
        super().__init__(store)
        self.reads: list[tuple[str, int]] = []

    async def get(self, key, prototype, byte_range=None):
        buf = await self._store.get(key, prototype, byte_range)
        self.reads.append((key, 0 if buf is None else len(buf)))
        return buf

    # zarr >= 3.4 may read through a synchronous fast path; keep every read on the counted path.
    _supports_sync_io = False

    async def get_ranges(self, key, byte_ranges, *, prototype, **kwargs):
        async for group in self._store.get_ranges(key, byte_ranges, prototype=prototype, **kwargs):
            for _, buf in group:
                self.reads.append((key, 0 if buf is None else len(buf)))
            yield group

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        out = await self._store.get_partial_values(prototype, key_ranges)
        for (key, _), buf in zip(key_ranges, out, strict=True):
            self.reads.append((key, 0 if buf is None else len(buf)))
        return out


class FailingStore(WrapperStore):
    """Raises OSError on every ``set`` once ``fail_after`` sets have succeeded."""

    def __init__(self, store, fail_after: int | None = None):
        super().__init__(store)
        self.fail_after = fail_after
        self.sets = 0

    async def set(self, key, value):
        if self.fail_after is not None and self.sets >= self.fail_after:
            raise OSError(28, "No space left on device (simulated)", key)
        self.sets += 1
        await self._store.set(key, value)


def frames_for(t0: int, t: int, n: int, h: int, w: int) -> np.ndarray:
    """Deterministic (t, n, h, w, 3) uint8 frames: every value depends on (frame, env, pixel)."""
    f = np.arange(t0, t0 + t)[:, None, None, None, None]
    e = np.arange(n)[None, :, None, None, None]
    y = np.arange(h)[None, None, :, None, None]
    x = np.arange(w)[None, None, None, :, None]
    c = np.arange(3)[None, None, None, None, :]
    return ((f * 7 + e * 31 + y * 3 + x * 5 + c * 11) % 251).astype(np.uint8)


def fill_block(spec: RunSpec, t0: int, t: int, *, clip: int = 0) -> Block:
    """A block of deterministic data for frames [t0, t0 + t)."""
    b = Block.empty(spec, t)
    n = spec.num_envs
    b.env_frames[:] = frames_for(t0, t, n, *spec.env_frame_shape)
    frames = np.arange(t0, t0 + t)
    b.step[:] = frames * 2
    b.sim_time[:] = frames * spec.step_dt
    b.wall_time[:] = 1.7e9 + frames
    b.clip[:] = clip
    b.reward[:] = (frames[:, None] * 0.5 + np.arange(n)[None, :]).astype(np.float32)
    b.terminated[:] = (frames[:, None] + np.arange(n)) % 7 == 0
    b.truncated[:] = (frames[:, None] + np.arange(n)) % 11 == 0
    b.episode[:] = frames[:, None] // 10 + np.arange(n)
    b.episode_step[:] = frames[:, None] % 10
    b.stale[:] = (frames[:, None] + np.arange(n)) % 13 == 0
    for i, name in enumerate(spec.scalar_names):
        b.scalars[name][:] = (frames[:, None] * (i + 1) - np.arange(n)).astype(np.float32)
    if b.global_frames is not None:
        gh, gw = spec.global_frame_shape
        b.global_frames[:] = (
            (frames[:, None, None, None] + np.arange(gw)[None, None, :, None]) % 256
        ).astype(np.uint8)
    if b.env_pose is not None:
        b.env_pose[:] = np.eye(4)
        b.env_pose[:, :, 0, 3] = frames[:, None] + np.arange(n)
    if b.global_pose is not None:
        b.global_pose[:] = np.eye(4)
        b.global_pose[:, 2, 3] = frames
    return b


def small_spec(**kw) -> RunSpec:
    base = dict(
        num_envs=4,
        env_frame_shape=(12, 16),
        fps=30,
        global_frame_shape=(10, 20),
        block_frames=8,
        scalar_names=("speed", "success"),
    )
    base.update(kw)
    return RunSpec(**base)


def statics(spec: RunSpec) -> dict:
    n = spec.num_envs
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 0, 3] = np.arange(n) * 2.0
    k = np.array([[20.0, 0, 8], [0, 20.0, 6], [0, 0, 1]])
    out = dict(
        env_origins=np.c_[np.arange(n) * 2.0, np.zeros(n), np.zeros(n)],
        env_intrinsics=np.broadcast_to(k, (n, 3, 3)).copy(),
        global_intrinsics=k * 1.5,
    )
    if not spec.env_pose_per_frame:
        out["env_camera_poses"] = poses
    if not spec.global_pose_per_frame:
        out["global_camera_pose"] = np.diag([1.0, 1, 1, 1]) + np.eye(4, k=3) * 5
    return out


def write_run(url, spec: RunSpec, block_sizes=(8, 8, 5), clips=None, **kw):
    """Write blocks of deterministic data; returns the writer (closed)."""
    w = create_run(url, spec, **statics(spec), **kw)
    t0 = 0
    for i, t in enumerate(block_sizes):
        w.append(fill_block(spec, t0, t, clip=0 if clips is None else clips[i]))
        t0 += t
    w.close()
    return w


SUBSET_ENVS = [3, 40, 41, 7]


def counted_subset_read(url, spec: RunSpec, envs=SUBSET_ENVS):
    """Write two blocks of ``spec`` (64 envs) at ``url``, read ``envs`` through a counting store;
    return (frames read, expected frames, [(key, bytes)] of the ``env/frames`` reads)."""
    n, (h, w) = spec.num_envs, spec.env_frame_shape
    b = spec.block_frames
    write_run(url, spec, block_sizes=(b, b))
    counting = CountingStore(LocalStore(url, read_only=True))
    run = open_run(counting)
    counting.reads.clear()
    got = run.env_frames(envs, 0, 2 * b)
    want = frames_for(0, 2 * b, n, h, w)[:, envs]
    return got, want, [(k, c) for k, c in counting.reads if k.startswith("env/frames/c/")]


def mark_inner_chunks_empty(shard, entries):
    """Rewrite a shard's index (crc32c recomputed) so that it marks inner chunks ``entries``
    never written: a well-formed shard that a buggy tool or a partial copy could leave."""
    import google_crc32c

    data = bytearray(shard.read_bytes())
    per = (len(data) - 4) // 16  # an upper bound; the index is the last 16 * per + 4 bytes
    for n_entries in range(1, per + 1):
        raw = bytes(data[-(16 * n_entries + 4) : -4])
        if google_crc32c.value(raw) == int.from_bytes(data[-4:], "little"):
            break
    index = np.frombuffer(raw, "<u8").reshape(n_entries, 2).copy()
    index[list(entries)] = 2**64 - 1
    raw = index.tobytes()
    data[-(16 * n_entries + 4) :] = raw + google_crc32c.value(raw).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
