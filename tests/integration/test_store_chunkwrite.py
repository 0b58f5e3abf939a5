"""The writer's own chunk encoding (schemas/_chunkwrite.py) stores what zarr would."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import numcodecs
import numpy as np
import pytest
import zarr
from store_helpers import fill_block, small_spec, statics, write_run

from envreel.schemas import _chunkwrite, create_run, open_run, validate
from envreel.schemas import writer as writer_mod


def _objects(root) -> dict[str, str]:
    """Digest of every chunk and shard object under ``root`` (metadata documents left out)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f != "zarr.json":
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _write_both(tmp_path, monkeypatch, spec, sizes):
    fast, slow = tmp_path / "fast.zarr", tmp_path / "slow.zarr"
    write_run(fast, spec, block_sizes=sizes)
    with monkeypatch.context() as m:
        m.setattr(writer_mod, "plan_for", lambda arr: None)  # every chunk through zarr
        write_run(slow, spec, block_sizes=sizes)
    return fast, slow


@pytest.mark.parametrize(
    "kw, sizes",
    [
        ({}, (8, 8, 5)),  # a last block that ends early is padded like zarr pads it
        ({"num_envs": 5, "envs_per_shard": 2}, (8, 3)),  # a last shard past the envs' edge
        ({"codec_level": 9, "envs_per_shard": 1}, (8, 8)),
        ({"env_pose_per_frame": True, "global_pose_per_frame": True}, (8,)),
        ({"global_frame_shape": None, "scalar_names": ()}, (8, 8, 8, 1)),
    ],
)
def test_objects_are_the_ones_zarr_writes(tmp_path, monkeypatch, kw, sizes):
    """The same objects under the same keys, each decoding (zstd, crc32c checked, shard index
    checked) to what zarr stored; the compressed bytes may differ by zstd version only."""
    spec = small_spec(**kw)
    fast, slow = _write_both(tmp_path, monkeypatch, spec, sizes)
    assert _objects(fast).keys() == _objects(slow).keys()
    arrays = _arrays(zarr.open_group(str(slow), mode="r"))
    assert arrays
    for name, want in arrays.items():
        np.testing.assert_array_equal(zarr.open_array(str(fast), path=name, mode="r")[...], want)
    assert validate(str(fast)) == []


def _arrays(group, prefix="") -> dict[str, np.ndarray]:
    out = {}
    for name, member in group.members():
        if isinstance(member, zarr.Group):
            out.update(_arrays(member, f"{prefix}{name}/"))
        else:
            out[prefix + name] = member[...]
    return out


def test_plain_zarr_reads_every_array_written_by_the_pool(tmp_path):
    spec = small_spec(num_envs=6, envs_per_shard=4)
    url = tmp_path / "run.zarr"
    write_run(url, spec, block_sizes=(8, 8, 2))
    blocks = [fill_block(spec, 0, 8), fill_block(spec, 8, 8), fill_block(spec, 16, 2)]
    root = zarr.open_group(str(url), mode="r")
    np.testing.assert_array_equal(
        root["env/frames"][:], np.concatenate([b.env_frames for b in blocks])
    )
    np.testing.assert_array_equal(
        root["global/frames"][:], np.concatenate([b.global_frames for b in blocks])
    )
    np.testing.assert_array_equal(root["env/reward"][:], np.concatenate([b.reward for b in blocks]))
    np.testing.assert_array_equal(
        open_run(url).env_frames([5, 1]),
        np.concatenate([b.env_frames for b in blocks])[:, [5, 1]],
    )


@pytest.mark.parametrize("codec", ["gzip", "blosc-lz4", "none"])
def test_other_codecs_go_through_zarr(tmp_path, codec):
    spec = small_spec(codec=codec, codec_level=1 if codec != "none" else 3)
    w = create_run(tmp_path / "run.zarr", spec, **statics(spec))
    assert all(_chunkwrite.plan_for(a) is None for a in w._arrays.values())
    w.append(fill_block(spec, 0, 8))
    w.close()
    np.testing.assert_array_equal(
        open_run(tmp_path / "run.zarr").env_frames(), fill_block(spec, 0, 8).env_frames
    )


def test_the_stores_own_chains_are_recognised(tmp_path):
    spec = small_spec()
    w = create_run(tmp_path / "run.zarr", spec, **statics(spec))
    plans = {p: _chunkwrite.plan_for(a) for p, a in w._arrays.items()}
    assert all(p is not None and p.level == 3 for p in plans.values())
    assert plans["env/frames"].fmt.chunk == (8, spec.envs_per_shard, 12, 16, 3)
    assert plans["env/frames"].fmt.inner == (8, 1, 12, 16, 3)
    assert plans["frame/step"].fmt.inner is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c[1]["configuration"].__setitem__("checksum", True),  # zstd with its checksum
        lambda c: c.pop(),  # no crc32c
        lambda c: c[0].__setitem__("configuration", {"endian": "big"}),
    ],
)
def test_an_edited_chain_goes_through_zarr(tmp_path, edit):
    spec = small_spec()
    url = tmp_path / "run.zarr"
    create_run(url, spec, **statics(spec)).close()
    meta = url / "env" / "reward" / "zarr.json"
    doc = json.loads(meta.read_text())
    edit(doc["codecs"])
    meta.write_text(json.dumps(doc))
    assert _chunkwrite.plan_for(zarr.open_array(str(url / "env" / "reward"), mode="r")) is None


def test_a_block_that_starts_mid_chunk_goes_through_zarr(tmp_path):
    spec = small_spec()
    url = tmp_path / "run.zarr"
    write_run(url, spec, block_sizes=(5, 8, 8))  # blocks at frames 5 and 13 start mid-chunk
    want = np.concatenate(
        [fill_block(spec, 0, 5).env_frames, fill_block(spec, 5, 8).env_frames]
        + [fill_block(spec, 13, 8).env_frames]
    )
    np.testing.assert_array_equal(open_run(url).env_frames(), want)
    assert validate(str(url)) == []


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_bad_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("ENVREEL_WRITER_THREADS", value)
    with pytest.raises(
        ValueError, match=f"ENVREEL_WRITER_THREADS must be a positive integer, got '{value}'"
    ):
        _chunkwrite.encode_threads()


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENVREEL_WRITER_THREADS", "3")
    assert _chunkwrite.encode_threads() == 3
    monkeypatch.delenv("ENVREEL_WRITER_THREADS")
    assert 1 <= _chunkwrite.encode_threads() <= 16


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork")
def test_a_forked_child_writes_with_its_own_pool(tmp_path):
    spec = small_spec()
    write_run(tmp_path / "parent.zarr", spec, block_sizes=(8,))  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: the inherited pool has no threads
        code = 1
        signal.alarm(60)  # a write waiting on them forever ends the child (and fails the test)
        try:
            write_run(tmp_path / "child.zarr", spec, block_sizes=(8, 8))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    np.testing.assert_array_equal(
        open_run(tmp_path / "child.zarr").env_frames(),
        np.concatenate([fill_block(spec, 0, 8).env_frames, fill_block(spec, 8, 8).env_frames]),
    )


@pytest.mark.parametrize("frames", [8, 5])  # a whole time chunk, and a block that ends early
def test_rgba_blocks_gather_as_words_like_channel_copies(monkeypatch, frames):
    """A ring block of RGBA frames (its RGB view) is gathered with 4-byte words; the chunks are
    the same as with channel-by-channel copies, fill after a short block included."""
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (frames, 5, 6, 7, 4), dtype=np.uint8)
    inner = (8, 1, 6, 7, 3)
    words = _chunkwrite._encode_envs(3, rgba[..., :3], 0, 5, inner)
    monkeypatch.setattr(_chunkwrite, "overlap_copy_works", lambda: False)
    plain = _chunkwrite._encode_envs(3, rgba[..., :3], 0, 5, inner)
    assert words == plain
    want = np.zeros((5, 8, 6, 7, 3), np.uint8)
    want[:, :frames] = rgba[..., :3].swapaxes(0, 1)
    codec = numcodecs.Zstd()
    got = [np.frombuffer(codec.decode(c[:-4]), np.uint8).reshape(8, 6, 7, 3) for c in words]
    np.testing.assert_array_equal(np.stack(got), want)


class _Counting:
    """A zstd compressor that counts its calls; ``many=False``: one without
    ``multi_compress_to_buffer`` (zstandard's cffi backend)."""

    def __init__(self, level: int, many: bool) -> None:
        self.real = _chunkwrite.ZstdCompressor(level=level, write_content_size=True)
        self.calls = {"compress": 0, "many": 0}
        if many:
            self.multi_compress_to_buffer = self._many

    def compress(self, raw):
        self.calls["compress"] += 1
        return self.real.compress(raw)

    def _many(self, data, threads):
        self.calls["many"] += 1
        return self.real.multi_compress_to_buffer(data, threads=threads)


@pytest.mark.parametrize("frames", [8, 5])  # a whole time chunk, and a block that ends early
def test_a_group_of_small_chunks_compressed_in_one_call_is_the_same(monkeypatch, frames):
    """Small chunks are compressed a group at a time in one call (the GIL released once): the
    stored bytes are those of compressing each chunk alone (zstd frame with its content size,
    crc32c), fill after a short block included; without that call, chunk by chunk."""
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 64, (frames, 12, 6, 7, 3), dtype=np.uint8)
    inner = (8, 1, 6, 7, 3)
    got = {}
    for many in (True, False):
        spy = _Counting(3, many)
        monkeypatch.setattr(_chunkwrite, "_compressor", lambda level, spy=spy: spy)
        got[many] = _chunkwrite._encode_envs(3, rgb, 0, 12, inner)
        assert spy.calls == ({"compress": 0, "many": 1} if many else {"compress": 12, "many": 0})
    assert got[True] == got[False]
    want = np.zeros((12, 8, 6, 7, 3), np.uint8)
    want[:, :frames] = rgb.swapaxes(0, 1)
    codec = numcodecs.Zstd()
    for env, stored in enumerate(got[True]):
        data, crc = stored[:-4], stored[-4:]
        assert int.from_bytes(crc, "little") == _chunkwrite._crc32c(data)
        np.testing.assert_array_equal(
            np.frombuffer(codec.decode(data), np.uint8).reshape(inner[0], *inner[2:]), want[env]
        )


def test_groups_smaller_than_the_threshold_compress_chunk_by_chunk(monkeypatch):
    """Groups of fewer than ``_MANY`` chunks (large chunks) are compressed one call a chunk."""
    rgb = np.arange(2 * 3 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 3, 4, 5, 3)
    spy = _Counting(3, True)
    monkeypatch.setattr(_chunkwrite, "_compressor", lambda level: spy)
    monkeypatch.setattr(_chunkwrite, "_GATHER_BYTES", 3 * 2 * 4 * 5 * 3)  # groups of 3 envs
    assert _chunkwrite._MANY > 3
    chunks = _chunkwrite._encode_envs(3, rgb, 0, 3, (2, 1, 4, 5, 3))
    assert spy.calls == {"compress": 3, "many": 0} and len(chunks) == 3


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


@pytest.mark.parametrize("limit", [1 << 20, 700])  # all in one call, and calls of 700 bytes
@pytest.mark.parametrize("takes", [None, 1, 333])  # writes of all given, of 1 byte, of 333
def test_write_all_writes_every_piece_once_in_order(tmp_path, monkeypatch, limit, takes):
    """``_write_all`` puts the pieces (empty ones among them) in the file one after another,
    however few bytes each writev takes: in one call when they fit in one, resumed where a
    short write stopped, a piece larger than a call in parts."""
    rng = np.random.default_rng(5)
    parts = [b"", b"head", rng.bytes(300), b"", rng.bytes(900), rng.bytes(50), rng.bytes(200)]
    real, calls = os.writev, []

    def writev(fd, bufs):
        calls.append(sum(len(b) for b in bufs))
        if takes is None:
            return real(fd, bufs)
        return real(fd, [b"".join(bytes(b) for b in bufs)[:takes]])

    monkeypatch.setattr(_chunkwrite, "_WRITE_BYTES", limit)
    monkeypatch.setattr(_chunkwrite.os, "writev", writev)
    with open(tmp_path / "out", "wb") as f:
        _chunkwrite._write_all(f.fileno(), parts)
    want = b"".join(parts)
    assert (tmp_path / "out").read_bytes() == want
    assert max(calls) <= limit
    if takes is None and limit > len(want):
        assert calls == [len(want)]


def test_local_objects_written_in_short_pieces_are_the_same(tmp_path, monkeypatch):
    """Objects are written group by group in calls of at most ``_WRITE_BYTES``; a writev that
    takes fewer bytes than given is resumed where it stopped: the files are the same."""
    spec = small_spec(num_envs=6, envs_per_shard=4)
    whole = tmp_path / "whole.zarr"
    write_run(whole, spec, block_sizes=(8, 8, 5))
    real = os.writev
    calls = []

    def short(fd, bufs):  # takes at most 300 bytes, mostly ending inside a chunk
        calls.append(sum(len(b) for b in bufs))
        return real(fd, [b"".join(bytes(b) for b in bufs)[:300]])

    monkeypatch.setattr(_chunkwrite, "_WRITE_BYTES", 500)  # smaller than a chunk here
    monkeypatch.setattr(_chunkwrite.os, "writev", short)
    pieces = tmp_path / "pieces.zarr"
    write_run(pieces, spec, block_sizes=(8, 8, 5))
    assert calls and max(calls) == 500  # a chunk larger than a call is written in parts
    assert _objects(pieces) == _objects(whole)
    assert validate(str(pieces)) == []


def test_a_failed_local_write_leaves_no_file_and_commits_nothing(tmp_path, monkeypatch):
    """A disk that fills while a block's shard is written: append raises the OSError, the
    temporary file is gone, no object of the failed block is in place and the committed state is
    the block before; the next block goes in."""
    spec = small_spec()
    url = tmp_path / "run.zarr"
    w = create_run(url, spec, **statics(spec))
    w.append(fill_block(spec, 0, 8))
    before = _files(url)
    real = os.writev

    def full(fd, bufs):
        if sum(len(b) for b in bufs) > 400:  # the frames' shard, not the small arrays
            raise OSError(28, "No space left on device")
        return real(fd, bufs)

    with monkeypatch.context() as m:
        m.setattr(_chunkwrite.os, "writev", full)
        with pytest.raises(OSError, match="No space left"):
            w.append(fill_block(spec, 8, 8))
    assert not [f for f in _files(url) if f.endswith(".partial")]
    assert not [f for f in _files(url) - before if "frames" in f]
    assert open_run(url).num_frames == 8
    w.append(fill_block(spec, 8, 8))
    w.close()
    np.testing.assert_array_equal(
        open_run(url).env_frames(),
        np.concatenate([fill_block(spec, 0, 8).env_frames, fill_block(spec, 8, 8).env_frames]),
    )


def test_an_encoding_failure_waits_for_every_task_before_raising(tmp_path, monkeypatch):
    """The block's data may be a ring slot the caller reuses as soon as write_block returns or
    raises: no encoding task may still read it then. The first group of envs fails at once; the
    others are slow: every env outside it is encoded by the time the error comes."""
    spec = small_spec(num_envs=8, envs_per_shard=8)
    real = _chunkwrite._encode_envs
    encoded, failed = [], []

    def slow_or_failing(level, data, e0, e1, inner):
        if e0 == 0:
            failed.append(e1)
            raise RuntimeError("encoding failed")
        time.sleep(0.2)
        out = real(level, data, e0, e1, inner)
        encoded.extend(range(e0, e1))
        return out

    w = create_run(tmp_path / "run.zarr", spec, **statics(spec))
    plan = w._plan("env/frames", w._arrays["env/frames"])
    monkeypatch.setattr(_chunkwrite, "_encode_envs", slow_or_failing)
    with pytest.raises(RuntimeError, match="encoding failed"):
        _chunkwrite.write_block([(plan, 0, fill_block(spec, 0, 8).env_frames)])
    assert failed and sorted(encoded) == list(range(failed[0], 8))
