"""The direct read path (``schemas/_chunks.py``) against zarr's own reads of the same stores.

The reader decodes the writer's own layout itself (sharded zstd + crc32c frames, zstd + crc32c
per-frame arrays) and leaves any other layout to zarr; either way the values, the errors and what
is read must be the ones zarr gives.
"""

import numpy as np
import pytest
import zarr
from reliability_helpers import edit_json, flip_byte, read_doc, traced_peak, truncate
from store_helpers import SUBSET_ENVS, counted_subset_read, frames_for, small_spec, write_run

from envreel.schemas import CorruptChunkError, open_run
from envreel.schemas._chunks import chunk_format

PER_FRAME = [
    "env/reward",
    "env/terminated",
    "env/truncated",
    "env/episode",
    "env/episode_step",
    "env/stale",
    "env/scalars/speed",
    "frame/step",
    "frame/sim_time",
    "frame/wall_time",
    "frame/clip",
    "global/frames",
]


def _zarr_env_frames(url, ids, start, stop, stride):
    """zarr's own read: one basic selection per env (orthogonal indexing over shards is too
    slow on zarr 3.1)."""
    arr = zarr.open_group(str(url), mode="r")["env/frames"]
    return np.stack([arr[start:stop:stride, e] for e in ids], axis=1)


def fill_reward(t0, t, n):
    """``store_helpers.fill_block``'s rewards of frames [t0, t0 + t)."""
    frames = np.arange(t0, t0 + t)
    return (frames[:, None] * 0.5 + np.arange(n)[None, :]).astype(np.float32)


def _read_path(run, path, start, stop, stride):
    if path.startswith("frame/"):
        return run.frame_values(path.split("/")[1], start, stop, stride=stride)
    if path == "global/frames":
        return run.global_frames(start, stop, stride=stride)
    return run.scalar(path.split("/")[-1], start, stop, stride=stride)


@pytest.mark.parametrize("envs_per_shard", [None, 3])
def test_equal_to_zarr_for_every_array_range_and_env_subset(tmp_path, envs_per_shard):
    spec = small_spec(num_envs=8, envs_per_shard=envs_per_shard)
    url = tmp_path / "d.zarr"
    write_run(url, spec, block_sizes=(8, 8, 5))  # 21 frames, the last block partly written
    run = open_run(url)
    assert run._chunk_reader("env/frames") is not None  # the writer's layout takes the fast path
    rng = np.random.default_rng(0)
    subsets = [list(range(8)), [0], [7], [2, 3, 4], [5, 1], [3, 3, 6], [6, 7, 0, 1]]
    subsets += [rng.choice(8, size=rng.integers(1, 9), replace=False).tolist() for _ in range(6)]
    ranges = [(0, 21, 1), (0, 8, 1), (3, 19, 1), (1, 21, 3), (8, 16, 1), (20, 21, 1), (5, 6, 7)]
    for ids in subsets:
        for start, stop, stride in ranges:
            got = run.env_frames(ids, start, stop, stride=stride)
            want = _zarr_env_frames(url, ids, start, stop, stride)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=f"{ids} {start}:{stop}:{stride}")
    np.testing.assert_array_equal(run.env_frames(), frames_for(0, 21, 8, 12, 16))
    group = zarr.open_group(str(url), mode="r")
    for path in PER_FRAME:
        assert run._chunk_reader(path) is not None, path
        for start, stop, stride in ranges:
            got = _read_path(run, path, start, stop, stride)
            want = group[path][start:stop:stride]
            assert got.dtype == want.dtype, path
            np.testing.assert_array_equal(got, want, err_msg=f"{path} {start}:{stop}:{stride}")


def test_into_a_strided_out_and_an_env_major_buffer(tmp_path):
    spec = small_spec(num_envs=6, envs_per_shard=4)
    write_run(tmp_path / "o.zarr", spec, block_sizes=(8, 8, 5))
    run = open_run(tmp_path / "o.zarr")
    want = frames_for(0, 21, 6, 12, 16)
    for ids, (start, stop) in [([0, 1, 2, 3, 4, 5], (0, 16)), ([4, 5, 0], (8, 21)), ([2], (3, 9))]:
        t = stop - start
        env_major = np.full((len(ids), t, 12, 16, 3), 9, np.uint8)
        out = env_major.transpose(1, 0, 2, 3, 4)  # (t, envs, ...) over env-major memory
        assert run.env_frames(ids, start, stop, out=out) is out
        np.testing.assert_array_equal(out, want[start:stop][:, ids])
        big = np.full((t + 3, len(ids) + 2, 12, 16, 3), 9, np.uint8)
        run.env_frames(ids, start, stop, out=big[:t, 1 : 1 + len(ids)])
        np.testing.assert_array_equal(big[:t, 1 : 1 + len(ids)], want[start:stop][:, ids])
        assert (
            (big[t:] == 9).all() and (big[:, 0] == 9).all() and (big[:, 1 + len(ids) :] == 9).all()
        )


def test_global_frames_into_out(tmp_path):
    write_run(tmp_path / "g.zarr", small_spec(), block_sizes=(8, 8, 5))
    run = open_run(tmp_path / "g.zarr")
    want = run.global_frames()
    buf = np.full((12, 10, 20, 3), 5, np.uint8)
    assert run.global_frames(3, 21, stride=2, out=buf[:9]) is not None
    np.testing.assert_array_equal(buf[:9], want[3:21:2])
    assert (buf[9:] == 5).all()
    with pytest.raises(ValueError, match=r"out must be a uint8 numpy array of shape \(2, 10, 20"):
        run.global_frames(0, 2, out=buf[:3])


def _rewrite_index(shard, n, fn):
    """Apply ``fn`` to a shard's (n, 2) index (offsets, lengths) and rewrite it, checksummed."""
    from numcodecs.checksum32 import CRC32C

    raw = shard.read_bytes()
    index = np.frombuffer(raw[-(n * 16 + 4) : -4], "<u8").reshape(n, 2).copy()
    fn(index)
    shard.write_bytes(raw[: -(n * 16 + 4)] + bytes(CRC32C().encode(index.astype("<u8").tobytes())))


def test_an_inner_chunk_never_written_is_a_corrupt_chunk_not_zeros(tmp_path):
    """An empty shard index entry reads as zeros in zarr; the writer writes every env's chunk,
    so the reader names it as damage (it returned the zeros, a render showed black frames)."""
    url = tmp_path / "z.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8))
    _rewrite_index(url / "env/frames/c/0/0/0/0/0", 4, lambda ix: ix.__setitem__(2, 2**64 - 1))
    assert (_zarr_env_frames(url, [2], 0, 8, 1) == 0).all()
    run = open_run(url)
    with pytest.raises(CorruptChunkError, match=r"never written, although its frames \[0, 8\)"):
        run.env_frames(None, 0, 16)
    with pytest.raises(CorruptChunkError) as info:
        run.env_frames([2], 3, 5)
    assert info.value.chunk == (0, 2, 0, 0, 0)
    want = _zarr_env_frames(url, range(4), 0, 16, 1)
    np.testing.assert_array_equal(run.env_frames([0, 1, 3], 0, 16), want[:, [0, 1, 3]])
    np.testing.assert_array_equal(run.env_frames([2], 8, 16), want[8:, [2]])


def test_subset_reads_only_those_envs_chunks_with_zstd(tmp_path):
    n, h, w = 64, 32, 32
    spec = small_spec(num_envs=n, env_frame_shape=(h, w), block_frames=16, global_frame_shape=None)
    url = tmp_path / "sub.zarr"
    got, want, frame_reads = counted_subset_read(url, spec)
    np.testing.assert_array_equal(got, want)
    sizes = {}
    for blk in (0, 1):
        raw = (url / f"env/frames/c/{blk}/0/0/0/0").read_bytes()
        index = np.frombuffer(raw[-(n * 16 + 4) : -4], "<u8").reshape(n, 2)
        sizes[blk] = int(index[SUBSET_ENVS, 1].sum())
    # the four envs' compressed chunks and each shard's index, nothing else
    assert sum(b for _, b in frame_reads) == sum(sizes.values()) + 2 * (n * 16 + 4)
    assert {k for k, _ in frame_reads} == {"env/frames/c/0/0/0/0/0", "env/frames/c/1/0/0/0/0"}


def _chunk_middle(shard, env, n=4):
    """Offset of the middle byte of ``env``'s chunk in a shard of ``n`` envs."""
    raw = shard.read_bytes()
    index = np.frombuffer(raw[-(n * 16 + 4) : -4], "<u8").reshape(n, 2)
    return int(index[env, 0] + index[env, 1] // 2)


@pytest.mark.parametrize(
    "damage, text",
    [
        (lambda p: flip_byte(p, _chunk_middle(p, 0)), "crc32c"),
        (lambda p: flip_byte(p, -1), "shard index"),
        (lambda p: truncate(p), "cannot read or decode"),
        (lambda p: truncate(p, 0), r"empty \(0 bytes\)"),
        (lambda p: p.unlink(), "missing from the store"),
    ],
)
def test_damaged_shard_is_a_named_corrupt_chunk(tmp_path, damage, text):
    url = tmp_path / "c.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8, 5))
    damage(url / "env/frames/c/1/0/0/0/0")
    run = open_run(url)
    np.testing.assert_array_equal(run.env_frames(None, 0, 8), frames_for(0, 8, 4, 12, 16))
    with pytest.raises(CorruptChunkError, match=text) as info:
        run.env_frames([0, 1], 4, 12)
    assert info.value.array == "env/frames" and info.value.chunk[:2] == (1, 0)
    assert "env/frames chunk (1, 0, 0, 0, 0)" in str(info.value)


def test_damaged_per_frame_chunk_is_a_named_corrupt_chunk(tmp_path):
    url = tmp_path / "c.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8, 5))
    flip_byte(url / "env/reward/c/2/0")
    flip_byte(url / "global/frames/c/1/0/0/0", 40)
    run = open_run(url)
    with pytest.raises(CorruptChunkError, match=r"env/reward chunk \(2, 0\).*crc32c") as info:
        run.scalar("reward", 0, 21)
    assert info.value.array == "env/reward" and info.value.chunk == (2, 0)
    with pytest.raises(CorruptChunkError, match=r"global/frames chunk \(1, 0, 0, 0\)"):
        run.global_frames(5, 10)
    np.testing.assert_array_equal(run.scalar("reward", 0, 16), fill_reward(0, 16, 4))


def test_a_shard_index_claiming_huge_chunks_is_refused_without_allocating(tmp_path):
    url = tmp_path / "h.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8))
    _rewrite_index(url / "env/frames/c/0/0/0/0/0", 4, lambda ix: ix.__setitem__((1, 1), 10**12))
    run = open_run(url)
    peak, exc = traced_peak(lambda: run.env_frames([1], 0, 8))
    assert isinstance(exc, CorruptChunkError) and exc.chunk[:2] == (0, 1), exc
    assert peak < 4 << 20
    want = frames_for(0, 8, 4, 12, 16)[:, 0]
    np.testing.assert_array_equal(run.env_frames([0], 0, 8)[:, 0], want)


@pytest.mark.parametrize("codec", ["gzip", "blosc-lz4"])
def test_other_codecs_fall_back_to_zarr(tmp_path, codec):
    url = tmp_path / f"{codec}.zarr"
    write_run(url, small_spec(codec=codec), block_sizes=(8, 8, 5))
    run = open_run(url)
    assert run._chunk_reader("env/frames") is None
    assert run._chunk_reader("env/reward") is None
    for ids in ([0, 1, 2, 3], [3, 1]):
        np.testing.assert_array_equal(
            run.env_frames(ids, 2, 21, stride=2), _zarr_env_frames(url, ids, 2, 21, 2)
        )
    np.testing.assert_array_equal(run.scalar("reward", 0, 21), fill_reward(0, 21, 4))
    flip_byte(url / "env/frames/c/1/0/0/0/0")
    with pytest.raises(CorruptChunkError, match=r"env/frames chunk \(1, "):
        open_run(url).env_frames(None, 0, 16)


def _sharded_doc(url):
    return read_doc(url / "env/frames/zarr.json")


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["codecs"][0]["configuration"]["codecs"].insert(
            0, {"name": "transpose", "configuration": {"order": [0, 1, 2, 3, 4]}}
        ),
        lambda d: d["codecs"][0]["configuration"].update(index_location="start"),
        lambda d: d["codecs"][0]["configuration"]["index_codecs"].pop(),
        lambda d: d["codecs"][0]["configuration"]["codecs"].append({"name": "gzip"}),
        lambda d: d["codecs"][0]["configuration"].update(chunk_shape=[8, 2, 12, 16, 3]),
        lambda d: d.update(fill_value=7),
        lambda d: d.update(chunk_key_encoding={"name": "v2"}),
        lambda d: d["codecs"].append({"name": "crc32c"}),
    ],
)
def test_any_other_layout_is_left_to_zarr(tmp_path, edit):
    url = tmp_path / "l.zarr"
    write_run(url, small_spec(), block_sizes=(8,))
    doc = _sharded_doc(url)
    shape = (8, 4, 12, 16, 3)
    assert chunk_format(doc, shape) is not None
    edit(doc)
    assert chunk_format(doc, shape) is None


def test_a_refused_layout_in_a_store_reads_through_zarr(tmp_path):
    """A layout the direct reader does not take (here: a second crc32c codec) still reads,
    through zarr, with the same values."""
    url = tmp_path / "t.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8, 5))
    edit_json(url / "env/reward/zarr.json", lambda d: d["codecs"].append({"name": "crc32c"}))
    from numcodecs.checksum32 import CRC32C

    for blk in range(3):
        p = url / f"env/reward/c/{blk}/0"
        p.write_bytes(bytes(CRC32C().encode(p.read_bytes())))
    run = open_run(url)
    assert run._chunk_reader("env/reward") is None
    np.testing.assert_array_equal(run.scalar("reward", 0, 21), fill_reward(0, 21, 4))


def test_validate_reads_through_the_direct_reader(tmp_path, monkeypatch):
    """validate decodes every chunk the way open_run's reads do: through zarr it cost ~0.4 ms a
    chunk, 45 s for a 4,096-env store of 48 blocks (11 s this way)."""
    from envreel.schemas import validate

    url = tmp_path / "v.zarr"
    write_run(url, small_spec(num_envs=64, env_frame_shape=(4, 4)), block_sizes=(8, 8, 5))
    through_zarr = []
    real = zarr.Array.get_basic_selection
    monkeypatch.setattr(
        zarr.Array,
        "get_basic_selection",
        lambda self, *a, **kw: through_zarr.append(self.path) or real(self, *a, **kw),
    )
    assert validate(url) == []
    assert set(through_zarr) & {"env/frames", "global/frames", *PER_FRAME} == set()
    shard = url / "env/frames/c/2/0/0/0/0"
    flip_byte(shard, _chunk_middle(shard, 5, n=64))
    problems = validate(url)
    assert [(p.where, "crc32c" in p.message) for p in problems] == [("env/frames", True)]
    assert "chunk (2, 5, 0, 0, 0)" in problems[0].message
