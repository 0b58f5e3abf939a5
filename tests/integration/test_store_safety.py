"""Partial reads, interrupted writes, versions, and one broken store per validate check."""

import json
import shutil

import numpy as np
import pytest
import zarr
from store_helpers import (
    FailingStore,
    counted_subset_read,
    fill_block,
    frames_for,
    mark_inner_chunks_empty,
    small_spec,
    write_run,
)
from zarr.storage import LocalStore

from envreel.schemas import (
    CorruptChunkError,
    RunSpec,
    StoreFormatError,
    create_run,
    open_run,
    pack_run,
    validate,
)


def test_subset_reads_only_those_envs_chunks(tmp_path):
    n, h, w = 64, 32, 32
    spec = RunSpec(num_envs=n, env_frame_shape=(h, w), fps=30, block_frames=16, codec="none")
    got, want, frame_reads = counted_subset_read(tmp_path / "sub.zarr", spec)
    np.testing.assert_array_equal(got, want)
    data_bytes = sum(b for _, b in frame_reads)
    chunk = 16 * h * w * 3
    # 4 envs × 2 blocks of raw chunks (+4 bytes crc32c each), plus each shard's index.
    index_bytes = n * 16 + 4
    assert data_bytes <= 4 * 2 * (chunk + 4) + 2 * 3 * index_bytes, (data_bytes, frame_reads)
    assert data_bytes >= 4 * 2 * chunk
    total = 2 * n * chunk
    assert data_bytes < total / 10
    # and nothing of any other env was decoded: every read hit only those two shard objects
    assert {k for k, _ in frame_reads} == {"env/frames/c/0/0/0/0/0", "env/frames/c/1/0/0/0/0"}


@pytest.mark.parametrize("fail_after", [0, 1, 3, 6, 10])
def test_interrupted_block_leaves_previous_state(tmp_path, fail_after):
    spec = small_spec()
    url = tmp_path / "int.zarr"
    w = create_run(url, spec)
    w.append(fill_block(spec, 0, 8))
    w.append(fill_block(spec, 8, 8))
    # A second writer on the same store whose disk "fills" partway through the next block.
    failing = FailingStore(LocalStore(url), fail_after=fail_after)
    w._root = zarr.open_group(failing, mode="r+")
    w._arrays = {p: w._root[p] for p in w._arrays}
    with pytest.raises(OSError, match="No space left"):
        w.append(fill_block(spec, 16, 8))
    run = open_run(url)
    assert run.num_frames == 16
    np.testing.assert_array_equal(run.env_frames(), frames_for(0, 16, 4, 12, 16))
    assert validate(url) == []


def _edit_root(url, fn):
    path = url / "zarr.json"
    doc = json.loads(path.read_text())
    fn(doc["attributes"])
    path.write_text(json.dumps(doc))


def test_newer_major_version_refused(tmp_path):
    url = tmp_path / "v.zarr"
    write_run(url, small_spec(), block_sizes=(4,))
    _edit_root(url, lambda a: a["envreel"].update(version="2.1"))
    with pytest.raises(
        StoreFormatError,
        match=r"format version 2\.1; this build of envreel reads "
        r"version 1\.x .*upgrade envreel",
    ):
        open_run(url)
    assert "2.1" in str(validate(url)[0])


def test_newer_minor_version_opens(tmp_path):
    url = tmp_path / "v.zarr"
    write_run(url, small_spec(), block_sizes=(4,))
    _edit_root(url, lambda a: a["envreel"].update(version="1.7"))
    assert open_run(url).num_frames == 4


def test_newer_minor_version_validates_and_packs_with_what_it_adds(tmp_path):
    # FORMAT.md: a minor version only adds, and readers of the same major ignore what they do
    # not know; validate (so pack) reported the added array as an unexpected node
    url = tmp_path / "v.zarr"
    write_run(url, small_spec(), block_sizes=(4,))
    root = zarr.open_group(url, mode="r+")
    root.create_array("env/depth", shape=(4, 4), chunks=(4, 4), dtype="float32")[:] = 1.0
    root.create_group("lidar").create_array("points", shape=(3,), dtype="i4")
    _edit_root(url, lambda a: a["envreel"].update(version="1.7", added_in_1_7={"x": 1}))
    assert validate(url) == []
    packed = pack_run(url, tmp_path / "v.zip")
    assert open_run(packed).num_frames == 4
    # what this build knows is still checked
    shutil.rmtree(url / "env/reward")
    assert [(p.where, p.message) for p in validate(url)] == [("env/reward", "missing")]
    # and at this build's version the same nodes are unexpected
    _edit_root(url, lambda a: a["envreel"].update(version="1.1"))
    found = {p.where for p in validate(url) if "unexpected node" in p.message}
    assert found == {"env/depth", "lidar", "lidar/points"}


def _break_array_meta(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


BREAKS = {
    "missing array": (lambda u: shutil.rmtree(u / "env/reward"), "env/reward", "missing"),
    "extra array": (
        lambda u: zarr.open_group(u, mode="r+").create_array("env/extra", shape=(3,), dtype="i4"),
        "env/extra",
        "unexpected node",
    ),
    "shape disagreement": (
        lambda u: _break_array_meta(
            u / "env/frames/zarr.json", lambda d: d.update(shape=[21, 4, 12, 17, 3])
        ),
        "env/frames",
        "disagrees with the spec",
    ),
    "committed beyond data": (
        lambda u: _edit_root(u, lambda a: a["envreel_state"].update(num_frames=40)),
        "env/frames",
        "holds 21 frames but 40 are committed",
    ),
    "clip beyond committed": (
        lambda u: _edit_root(u, lambda a: a["envreel_state"]["clips"][0].update(stop_frame=30)),
        "zarr.json",
        "within the 21 committed frames",
    ),
    "non-standard codec": (
        lambda u: _break_array_meta(
            u / "frame/step/zarr.json",
            lambda d: d["codecs"].append({"name": "numcodecs.pickle", "configuration": {}}),
        ),
        "frame/step",
        "non-standard codec(s) ['numcodecs.pickle']",
    ),
    "wrong dtype": (
        lambda u: _break_array_meta(
            u / "env/reward/zarr.json", lambda d: d.update(data_type="float64")
        ),
        "env/reward",
        "data type 'float64', expected 'float32'",
    ),
    "unknown major version": (
        lambda u: _edit_root(u, lambda a: a["envreel"].update(version="9.0")),
        "zarr.json",
        "version 9.0",
    ),
    "not an envreel store": (
        lambda u: _edit_root(u, lambda a: a.pop("envreel")),
        "zarr.json",
        "not an envreel run",
    ),
    "negative counter": (
        lambda u: _edit_root(u, lambda a: a["envreel_state"]["counters"].update(dropped_frames=-2)),
        "zarr.json",
        "dropped_frames",
    ),
    "corrupt chunk": (
        lambda u: _flip_byte(u / "env/frames/c/1/0/0/0/0"),
        "env/frames",
        "chunk (1, ",
    ),
    "deleted chunk": (
        lambda u: (u / "env/reward/c/1/0").unlink(),
        "env/reward",
        "chunk (1, 0): missing",
    ),
    "deleted shard": (
        lambda u: (u / "env/frames/c/2/0/0/0/0").unlink(),
        "env/frames",
        "chunk (2, 0, 0, 0, 0)",
    ),
    "truncated shard": (
        lambda u: _truncate(u / "env/frames/c/0/0/0/0/0"),
        "env/frames",
        "chunk (0, ",
    ),
    "clip column disagrees": (
        lambda u: _edit_root(u, lambda a: a["envreel_state"]["clips"][0].update(id=3)),
        "frame/clip",
        "clip table",
    ),
}


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_validate_reports_each_break(tmp_path, name):
    url = tmp_path / "b.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8, 5))
    assert validate(url) == []
    breaker, where, text = BREAKS[name]
    breaker(url)
    problems = validate(url)
    assert problems, name
    assert any(p.where == where and (text is None or text in p.message) for p in problems), problems


def test_open_run_names_the_problem(tmp_path):
    url = tmp_path / "o.zarr"
    write_run(url, small_spec(), block_sizes=(8,))
    _break_array_meta(url / "env/frames/zarr.json", lambda d: d.update(shape=[8, 4, 12, 99, 3]))
    with pytest.raises(StoreFormatError, match="env/frames: shape"):
        open_run(url)
    with pytest.raises(StoreFormatError, match="no store at"):
        open_run(tmp_path / "nothing.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreFormatError, match="has no zarr.json"):
        open_run(tmp_path / "plain")


def test_corrupt_chunk_read_names_array_and_chunk(tmp_path):
    from envreel.schemas import CorruptChunkError

    url = tmp_path / "c.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8))
    _flip_byte(url / "env/frames/c/1/0/0/0/0")
    run = open_run(url)
    np.testing.assert_array_equal(
        run.env_frames([0], 0, 8)[:, 0], frames_for(0, 8, 4, 12, 16)[:, 0]
    )
    with pytest.raises(CorruptChunkError) as ei:
        run.env_frames([0, 1, 2, 3], 0, 16)
    assert ei.value.array == "env/frames"
    assert ei.value.chunk is not None and ei.value.chunk[0] == 1
    assert "env/frames chunk (1, " in str(ei.value)


def test_reader_during_writes_sees_committed_prefix(tmp_path):
    spec = small_spec()
    url = tmp_path / "live.zarr"
    w = create_run(url, spec)
    run = open_run(url)
    for k in range(4):
        w.append(fill_block(spec, k * 8, 8))
        assert run.num_frames == 0  # not refreshed yet: the view is stable
    assert run.refresh().num_frames == 32
    np.testing.assert_array_equal(
        run.env_frames([2], 24, 32)[:, 0], frames_for(24, 8, 4, 12, 16)[:, 2]
    )


def test_a_zip_path_is_refused_for_recording_and_an_old_folder_so_named_opens(tmp_path):
    # Recorder("run.zip") used to record into a folder named run.zip that no reader would open
    from envreel.capture import Recorder

    for make in (
        lambda p: Recorder(p, num_envs=2, fps=30),
        lambda p: create_run(p, small_spec()),
    ):
        with pytest.raises(ValueError, match=r"run\.zip: a \.zip store is read-only; record into"):
            make(tmp_path / "run.zip")
        assert not (tmp_path / "run.zip").exists()
    write_run(tmp_path / "run.zarr", small_spec(), block_sizes=(4,))
    shutil.move(tmp_path / "run.zarr", tmp_path / "old.zip")  # recorded before the check
    assert open_run(tmp_path / "old.zip").num_frames == 4


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_recorder_on_a_store_being_recorded_is_refused(tmp_path, overwrite):
    # a requeued job whose first copy still runs: both wrote into one store, both reported
    # success, and the store held frames of both runs
    import os
    import subprocess
    import sys

    from envreel.capture import Recorder

    path = tmp_path / "run.zarr"
    first = Recorder(path, num_envs=2, fps=30, block_frames=4)
    first.capture(np.zeros((2, 8, 8, 3), np.uint8))
    lock = tmp_path / ".run.zarr.envreel-lock"
    assert lock.read_text() == str(os.getpid())
    with pytest.raises(
        FileExistsError, match=rf"being recorded by another recorder \(pid {os.getpid()}"
    ):
        Recorder(path, num_envs=2, fps=30, overwrite=overwrite)
    # from another process too (flock is per open file, so per process and per recorder)
    code = (
        "from envreel.capture import Recorder\n"
        f"Recorder({str(path)!r}, num_envs=2, fps=30, overwrite={overwrite})\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.returncode == 1 and "being recorded by another recorder" in other.stderr
    first.capture(np.full((2, 8, 8, 3), 7, np.uint8))
    first.close()
    assert not lock.exists()
    assert open_run(path).num_frames == 2 and open_run(path).env_frames()[1].min() == 7
    with Recorder(path, num_envs=2, fps=30, overwrite=True) as again:  # closed: free again
        again.capture(np.zeros((2, 8, 8, 3), np.uint8))
    # a recording killed outright leaves its lock file, and never blocks the next one
    code = (
        "import os, numpy as np\n"
        "from envreel.capture import Recorder\n"
        f"r = Recorder({str(path)!r}, num_envs=2, fps=30, overwrite=True, writer='thread')\n"
        "r.capture(np.zeros((2, 8, 8, 3), np.uint8))\n"
        "os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert lock.exists()
    with Recorder(path, num_envs=2, fps=30, overwrite=True) as again:
        again.capture(np.zeros((2, 8, 8, 3), np.uint8))
    assert not lock.exists()


def test_a_creation_stopped_by_a_full_disk_names_the_store_and_the_rerun_replaces_it(tmp_path):
    # the error named neither store nor place, and the debris blocked the rerun as "a store
    # already exists" although it held nothing
    import errno

    from envreel.capture import Recorder

    class FullDisk(LocalStore):
        budget = 600

        async def set(self, key, value):
            if len(value) > self.budget:
                raise OSError(errno.ENOSPC, "No space left on device", key)
            self.budget -= len(value)
            await super().set(key, value)

    path = tmp_path / "run.zarr"
    with pytest.raises(OSError, match=r"No space left on device while creating the store at"):
        create_run(FullDisk(str(path)), small_spec())
    assert (path / "zarr.json").exists()  # the debris
    with Recorder(path, num_envs=small_spec().num_envs, fps=30) as rec:  # no overwrite needed
        rec.capture(np.zeros((small_spec().num_envs, 8, 8, 3), np.uint8))
    assert open_run(path).num_frames == 1
    with pytest.raises(FileExistsError, match="a store already exists"):  # a real one stays
        Recorder(path, num_envs=2, fps=30)


def test_pack_and_info_tell_a_store_being_recorded_from_one_whose_recorder_was_killed(tmp_path):
    # pack refused a killed recording's store for ever ("still recording"), though it validates
    import subprocess
    import sys
    import warnings

    from click.testing import CliRunner

    from envreel.capture import Recorder
    from envreel.schemas import pack_run
    from envreel.tools.cli import main

    path = tmp_path / "run.zarr"
    live = Recorder(path, num_envs=2, fps=30, block_frames=2, writer="thread")
    for _ in range(4):
        live.capture(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(StoreFormatError, match="is being recorded now: pack it after"):
        pack_run(path, tmp_path / "live.zip")
    assert (
        "(not closed: being recorded now)" in CliRunner().invoke(main, ["info", str(path)]).output
    )
    live.close()
    killed = tmp_path / "killed.zarr"
    code = (
        "import os, time, numpy as np\n"
        "from envreel.capture import Recorder\n"
        f"r = Recorder({str(killed)!r}, num_envs=2, fps=30, block_frames=2, writer='thread')\n"
        "for _ in range(4): r.capture(np.zeros((2, 8, 8, 3), np.uint8))\n"
        "time.sleep(1.0)\n"  # the writer thread commits the two blocks
        "os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    out = CliRunner().invoke(main, ["info", str(killed)]).output
    assert "(not closed: its recorder ended without closing it, e.g. killed)" in out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        packed = pack_run(killed, tmp_path / "killed.zip")
    assert any("ended without closing it" in str(w.message) for w in caught)
    assert open_run(packed).num_frames == open_run(killed).num_frames > 0


def test_a_place_that_cannot_hold_a_store_is_named_when_the_recorder_is_made(tmp_path):
    # found only at the first capture before, as a bare OSError naming an internal file
    from envreel.capture import Recorder

    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"run\.zarr': .*afile is a file, not a folder"):
        Recorder(tmp_path / "afile" / "run.zarr", num_envs=2, fps=30)


@pytest.mark.parametrize(
    ("envs_per_shard", "shard", "entries", "named"),
    [(None, "1/0", [2], "env(s) 2 "), (2, "1/1", [0, 1], "env(s) 2, 3 ")],
)
def test_validate_names_envs_whose_chunks_a_shard_index_marks_never_written(
    tmp_path, envs_per_shard, shard, entries, named
):
    # such a shard is well-formed and reads as black frames in zarr: validate passed it, and
    # the reader read it as black frames too (a render showed them)
    url = tmp_path / "e.zarr"
    write_run(url, small_spec(envs_per_shard=envs_per_shard), block_sizes=(8, 8, 5))
    want = zarr.open_array(url / "env/frames", mode="r")[:]
    mark_inner_chunks_empty(url / f"env/frames/c/{shard}/0/0/0", entries)
    run = open_run(url)
    with pytest.raises(CorruptChunkError) as info:
        run.env_frames([0, 1, 2], 0, 21)
    assert info.value.array == "env/frames" and info.value.chunk == (1, 2, 0, 0, 0)
    assert str(info.value).startswith(
        f"env/frames chunk (1, 2, 0, 0, 0): the index of shard (1, {shard[-1]}, 0, 0, 0) marks "
        "this env's chunk never written, although its frames [8, 16) are committed"
    )
    np.testing.assert_array_equal(run.env_frames([0, 1], 0, 21), want[:, :2])  # the others read
    np.testing.assert_array_equal(run.env_frames([2], 16, 21), want[16:, 2:3])
    problems = validate(url)
    assert [(p.where, p.message) for p in problems] == [
        (
            "env/frames",
            f"shard (1, {shard[-1]}, 0, 0, 0): the index marks the chunks of {named}as never "
            "written, although their frames [8, 16) are committed (plain zarr reads them as "
            "black frames)",
        )
    ]
    assert validate(url, check_data=False) == []  # --quick reads no shard


def test_validate_names_never_written_chunks_in_a_layout_zarr_reads(tmp_path):
    # env/frames rewritten by another tool with gzip inside the shards: read through zarr, not
    # envreel's direct reader, so the shard indexes are read on their own
    url = tmp_path / "g.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8, 5))
    old = zarr.open_array(url / "env/frames", mode="r")
    data = old[:]
    zarr.create_array(
        LocalStore(url),
        name="env/frames",
        shape=old.shape,
        dtype=old.dtype,
        chunks=(8, 1, *old.shape[2:]),
        shards=old.shards,
        compressors=zarr.codecs.GzipCodec(),
        overwrite=True,
        config={"write_empty_chunks": True},
    )[:] = data
    assert validate(url) == []
    mark_inner_chunks_empty(url / "env/frames/c/2/0/0/0/0", [0])
    problems = validate(url)
    assert [(p.where, p.message) for p in problems] == [
        (
            "env/frames",
            "shard (2, 0, 0, 0, 0): the index marks the chunks of env(s) 0 as never written, "
            "although their frames [16, 21) are committed (plain zarr reads them as black "
            "frames)",
        )
    ]
    # zarr reads the chunk as black frames; the reader refuses it as it does through its own
    # direct reads (before, both returned the zeros)
    assert zarr.open_array(url / "env/frames", mode="r")[16:21, 0].max() == 0
    run = open_run(url)
    assert run._chunk_reader("env/frames") is None  # read through zarr
    with pytest.raises(CorruptChunkError) as info:
        run.env_frames([1, 0], 14, 18)
    assert info.value.chunk == (2, 0, 0, 0, 0)
    assert str(info.value) == (
        "env/frames chunk (2, 0, 0, 0, 0): the index of shard (2, 0, 0, 0, 0) marks this env's "
        "chunk never written, although its frames [16, 21) are committed (the writer writes "
        "every env's chunk of every block: the index was rewritten or the shard copied in part)"
    )
    np.testing.assert_array_equal(run.env_frames([1, 2], 14, 21), data[14:21, 1:3])
    np.testing.assert_array_equal(run.env_frames([0], 0, 16), data[:16, :1])
