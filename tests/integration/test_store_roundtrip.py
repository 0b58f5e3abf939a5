"""Round trips through real stores on disk and in memory, read by envreel, zarr, tensorstore."""

import subprocess
import sys
import uuid

import numpy as np
import pytest
import zarr
from store_helpers import fill_block, frames_for, small_spec, statics, write_run

from envreel.schemas import Block, create_run, open_run, validate


def _expected(spec, sizes):
    blocks = []
    t0 = 0
    for t in sizes:
        blocks.append(fill_block(spec, t0, t))
        t0 += t
    return blocks


@pytest.mark.parametrize("per_frame", [False, True])
def test_round_trip_exact(tmp_path, per_frame):
    spec = small_spec(env_pose_per_frame=per_frame, global_pose_per_frame=per_frame)
    url = tmp_path / "run.zarr"
    write_run(url, spec, block_sizes=(8, 8, 5))
    blocks = _expected(spec, (8, 8, 5))
    cat = {
        f: np.concatenate([getattr(b, f) for b in blocks])
        for f in (
            "env_frames",
            "step",
            "sim_time",
            "wall_time",
            "clip",
            "reward",
            "terminated",
            "truncated",
            "episode",
            "episode_step",
            "stale",
            "global_frames",
        )
    }
    run = open_run(url)
    assert (run.num_envs, run.num_frames, run.fps) == (4, 21, 30.0)
    assert run.env_frame_shape == (12, 16) and run.global_frame_shape == (10, 20)
    np.testing.assert_array_equal(run.env_frames(), cat["env_frames"])
    np.testing.assert_array_equal(run.env_frames([2, 0], 3, 17), cat["env_frames"][3:17, [2, 0]])
    np.testing.assert_array_equal(
        run.env_frames([1, 2, 3, 1], 0, 21, stride=4), cat["env_frames"][::4][:, [1, 2, 3, 1]]
    )
    np.testing.assert_array_equal(run.global_frames(5, 9), cat["global_frames"][5:9])
    for name in ("reward", "terminated", "truncated", "episode", "episode_step", "stale"):
        np.testing.assert_array_equal(run.scalar(name), cat[name])
    np.testing.assert_array_equal(run.scalar("reward", 2, 4, env_ids=[3]), cat["reward"][2:4, [3]])
    for name in ("step", "sim_time", "wall_time", "clip"):
        np.testing.assert_array_equal(run.frame_values(name), cat[name])
    speed = np.concatenate([b.scalars["speed"] for b in blocks])
    np.testing.assert_array_equal(run.scalar("speed"), speed)
    st = statics(spec)
    np.testing.assert_array_equal(run.env_origins, st["env_origins"])
    cams = run.cameras
    np.testing.assert_array_equal(cams.env_intrinsics, st["env_intrinsics"])
    np.testing.assert_array_equal(cams.global_intrinsics, st["global_intrinsics"])
    if per_frame:
        assert cams.env_pose is None and cams.env_pose_per_frame
        want = np.concatenate([b.env_pose for b in blocks])
        np.testing.assert_array_equal(run.env_camera_poses(), want)
        np.testing.assert_array_equal(
            run.global_camera_poses(1, 3), np.concatenate([b.global_pose for b in blocks])[1:3]
        )
    else:
        np.testing.assert_array_equal(cams.env_pose, st["env_camera_poses"])
        np.testing.assert_array_equal(cams.global_pose, st["global_camera_pose"])
        assert run.env_camera_poses(0, 3).shape == (3, 4, 4, 4)
    assert [c.__dict__ for c in run.clips] == [
        dict(id=0, start_frame=0, stop_frame=21, start_step=0, stop_step=41)
    ]
    assert run.counters == {"dropped_frames": 0, "write_errors": 0}
    assert run.closed
    assert validate(url) == []


def test_clips_and_counters(tmp_path):
    spec = small_spec()
    url = tmp_path / "clips.zarr"
    w = create_run(url, spec)
    b = fill_block(spec, 0, 8)
    b.clip[:] = [0, 0, 0, 2, 2, 2, 2, 2]
    w.append(b, counters={"dropped_frames": 3})
    b = fill_block(spec, 8, 4)
    b.clip[:] = [2, 2, 5, 5]
    w.append(b, counters={"dropped_frames": 4, "write_errors": 1})
    w.close(error="disk hiccup")
    run = open_run(url)
    assert [(c.id, c.start_frame, c.stop_frame, c.start_step, c.stop_step) for c in run.clips] == [
        (0, 0, 3, 0, 5),
        (2, 3, 10, 6, 19),
        (5, 10, 12, 20, 23),
    ]
    assert run.counters == {"dropped_frames": 4, "write_errors": 1}
    assert run.errors == ["disk hiccup"]
    assert validate(url) == []


def test_clip_that_resumes_after_a_gap_is_refused(tmp_path):
    spec = small_spec()
    w = create_run(tmp_path / "c.zarr", spec)
    b = fill_block(spec, 0, 4)
    b.clip[:] = [1, 1, 1, 1]
    w.append(b)
    b.clip[:] = [0, 0, 0, 0]
    with pytest.raises(ValueError, match="before the last clip id 1"):
        w.append(b)
    assert open_run(tmp_path / "c.zarr").num_frames == 4


@pytest.mark.parametrize("prefix", ["file://", "memory://"])
def test_urls(tmp_path, prefix):
    url = (
        f"file://{tmp_path}/u.zarr" if prefix == "file://" else f"memory://{uuid.uuid4().hex}.zarr"
    )
    spec = small_spec()
    write_run(url, spec, block_sizes=(8, 3))
    run = open_run(url)
    assert run.num_frames == 11
    np.testing.assert_array_equal(
        run.env_frames([1], 8, 11)[:, 0], frames_for(8, 3, 4, 12, 16)[:, 1]
    )
    assert validate(url) == []


def test_plain_zarr_reads_every_array_without_registration(tmp_path):
    spec = small_spec()
    url = tmp_path / "z.zarr"
    write_run(url, spec, block_sizes=(8, 8, 5))
    code = f"""
import zarr, numpy as np, json
g = zarr.open_group({str(url)!r}, mode="r")
out = {{}}
def walk(grp, prefix=""):
    for name, node in grp.members():
        path = prefix + name
        if isinstance(node, zarr.Array):
            out[path] = node[...].tolist()
        else:
            walk(node, path + "/")
walk(g)
print(json.dumps({{"attrs": dict(g.attrs), "arrays": out}}))
"""
    # A fresh interpreter that never imported envreel: no codec registration can happen.
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    got = json.loads(res.stdout)
    run = open_run(url)
    assert got["attrs"]["envreel"]["format"] == "envreel.run"
    np.testing.assert_array_equal(
        np.array(got["arrays"]["env/frames"], np.uint8)[:21], run.env_frames()
    )
    assert set(got["arrays"]) >= {
        "env/frames",
        "env/reward",
        "frame/step",
        "global/frames",
        "scene/env_origins",
        "camera/env/pose",
        "env/scalars/speed",
    }


def test_tensorstore_reads_every_array(tmp_path):
    ts = pytest.importorskip("tensorstore")
    spec = small_spec()
    url = tmp_path / "ts.zarr"
    write_run(url, spec, block_sizes=(8, 8, 5))
    g = zarr.open_group(url, mode="r")
    arrays = {}

    def walk(grp, prefix=""):
        for name, node in grp.members():
            if isinstance(node, zarr.Array):
                arrays[prefix + name] = node[...]
            else:
                walk(node, prefix + name + "/")

    walk(g)
    assert len(arrays) >= 17
    for path, want in arrays.items():
        t = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(url / path)}}
        ).result()
        np.testing.assert_array_equal(t.read().result(), want, err_msg=path)


def test_schemas_never_imports_torch():
    code = (
        "import envreel.schemas, sys; assert 'torch' not in sys.modules; "
        "assert 'envreel.capture' not in sys.modules and 'envreel.render' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_arguments_write_nothing(tmp_path):
    spec = small_spec()
    url = tmp_path / "bad.zarr"
    with pytest.raises(ValueError, match=r"env_origins must have shape \(4, 3\), got \(3, 3\)"):
        create_run(url, spec, env_origins=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="must be finite"):
        create_run(url, spec, global_intrinsics=np.full((3, 3), np.nan))
    with pytest.raises(TypeError, match="spec must be a RunSpec"):
        create_run(url, {"num_envs": 4})
    assert not url.exists()
    w = create_run(url, spec)
    good = fill_block(spec, 0, 4)
    cases = [
        (
            "env_frames",
            np.zeros((4, 3, 12, 16, 3), np.uint8),
            ValueError,
            r"env_frames must have shape",
        ),
        ("env_frames", np.zeros((4, 4, 12, 16, 3), np.float32), TypeError, "must be uint8"),
        ("reward", np.zeros((4, 5), np.float32), ValueError, r"reward must have shape \(4, 4\)"),
        ("global_frames", None, ValueError, "global_frames is required"),
        ("env_pose", np.zeros((4, 4, 4, 4)), ValueError, "env_pose was given"),
    ]
    for field, value, exc, match in cases:
        b = fill_block(spec, 0, 4)
        setattr(b, field, value)
        with pytest.raises(exc, match=match):
            w.append(b)
    b = fill_block(spec, 0, 4)
    b.scalars = {"speed": b.scalars["speed"], "unknown": b.scalars["speed"]}
    with pytest.raises(ValueError, match="exactly the names"):
        w.append(b)
    with pytest.raises(ValueError, match="counter 'dropped_frames' must be a non-negative int"):
        w.append(good, counters={"dropped_frames": -1})
    with pytest.raises(ValueError, match="1 to 8 frames"):
        w.append(Block.empty(spec, 9))
    run = open_run(url)
    assert run.num_frames == 0
    # nothing half-written: every array still has zero frames
    assert zarr.open_array(url / "env/frames", mode="r").shape[0] == 0
    assert validate(url) == []


def test_existing_store_is_not_overwritten(tmp_path):
    spec = small_spec()
    write_run(tmp_path / "e.zarr", spec, block_sizes=(3,))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        create_run(tmp_path / "e.zarr", spec)
    assert open_run(tmp_path / "e.zarr").num_frames == 3
    create_run(tmp_path / "e.zarr", spec, overwrite=True)
    assert open_run(tmp_path / "e.zarr").num_frames == 0


def test_reader_ranges_and_ids(tmp_path):
    spec = small_spec()
    write_run(tmp_path / "r.zarr", spec, block_sizes=(8,))
    run = open_run(tmp_path / "r.zarr")
    with pytest.raises(ValueError, match=r"env ids \[4, 9\] are out of range"):
        run.env_frames([0, 4, 9])
    with pytest.raises(ValueError, match="0 <= start <= stop <= 8"):
        run.env_frames([0], 5, 2)
    with pytest.raises(ValueError, match="0 <= start <= stop <= 8"):
        run.env_frames([0], 0, 9)
    with pytest.raises(ValueError, match="unknown scalar 'nope'"):
        run.scalar("nope")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        run.env_frames([0], stride=0)
    assert run.env_frames([], 0, 8).shape == (8, 0, 12, 16, 3)
    assert "4 envs × 8 frames" in repr(run)
    info = run.info()
    assert info["num_frames"] == 8 and info["raw_bytes"] > 0 and info["stored_bytes"] > 0


def test_env_frames_into_out(tmp_path):
    spec = small_spec()
    write_run(tmp_path / "o.zarr", spec, block_sizes=(8, 8, 5))
    run = open_run(tmp_path / "o.zarr")
    want = frames_for(0, 21, 4, 12, 16)
    for ids in ([0, 1, 2, 3], [2, 3, 0], [3, 1], [1, 1]):
        buf = np.full((20, 8, 12, 16, 3), 7, np.uint8)
        out = buf[:17, : len(ids)]  # a strided view, as a reused buffer would be
        got = run.env_frames(ids, 2, 19, out=out)
        assert got is out
        np.testing.assert_array_equal(out, want[2:19][:, ids])
        assert (buf[17:] == 7).all() and (buf[:, len(ids) :] == 7).all()
    with pytest.raises(ValueError, match=r"out must be a uint8 numpy array of shape \(3, 2"):
        run.env_frames([0, 1], 0, 3, out=np.zeros((3, 2, 12, 16, 3), np.float32))


def test_a_scalar_named_like_a_runs_own_array_is_refused_but_old_stores_open(tmp_path, monkeypatch):
    # every reader returns the run's own reward for "reward": the user's values were unreachable
    from envreel.schemas import RunSpec

    spec = small_spec(scalar_names=("speed", "reward"))
    with pytest.raises(ValueError, match="scalar name 'reward' is taken by the run's own"):
        create_run(tmp_path / "new.zarr", spec)
    assert not (tmp_path / "new.zarr").exists()
    # a store written before the check still opens (and reads its own reward, as it did)
    monkeypatch.setattr(RunSpec, "check_new", lambda self: None)
    write_run(tmp_path / "old.zarr", spec, block_sizes=(4,))
    monkeypatch.undo()
    run = open_run(tmp_path / "old.zarr")
    assert run.scalar_names == ("speed", "reward") and run.scalar("reward").shape[0] == 4
