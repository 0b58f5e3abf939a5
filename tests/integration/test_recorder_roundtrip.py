"""Recorder -> real store on disk -> open_run: everything read back equals what was captured."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from recorder_helpers import frames, global_frame

from envreel.capture import Recorder
from envreel.schemas import open_run, validate

N, H, W = 3, 10, 12
GH, GW = 9, 14


def _values(step: int, n: int = N):
    reward = (np.arange(n) * 0.5 + step).astype(np.float32)
    terminated = (np.arange(n) + step) % 7 == 0
    truncated = (np.arange(n) + step) % 11 == 0
    return reward, terminated, truncated


def _check_valid(path):
    problems = validate(str(path))
    assert problems == [], problems


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_numpy_roundtrip_everything(tmp_path, writer):
    path = tmp_path / "run.zarr"
    origins = np.c_[np.arange(N) * 2.0, np.ones(N), np.zeros(N)]
    k = np.array([[20.0, 0, 6], [0, 20.0, 5], [0, 0, 1]])
    poses = np.tile(np.eye(4), (N, 1, 1))
    poses[:, 0, 3] = np.arange(N)
    steps = 70  # 8 full blocks of 8 and a partial one of 6
    with Recorder(
        path,
        num_envs=N,
        step_dt=0.02,
        block_frames=8,
        scalar_names=("speed", "success"),
        env_origins=origins,
        env_intrinsics=k,
        env_camera_poses=poses,
        global_camera_pose=np.eye(4),
        global_intrinsics=k,
        source={"sim": "test"},
        metadata={"task": "roundtrip"},
        writer=writer,
    ) as rec:
        for t in range(steps):
            reward, term, trunc = _values(t)
            kept = rec.capture(
                frames(t, N, H, W),
                global_frame(t, GH, GW),
                reward=reward,
                terminated=term,
                truncated=trunc,
                scalars={"speed": np.arange(N) * t, "success": np.full(N, t % 2)},
            )
            assert kept is True
    run = open_run(path)
    assert run.num_frames == steps
    assert run.env_frame_shape == (H, W) and run.global_frame_shape == (GH, GW)
    want = np.stack([frames(t, N, H, W) for t in range(steps)])
    np.testing.assert_array_equal(run.env_frames(), want)
    np.testing.assert_array_equal(
        run.global_frames(), np.stack([global_frame(t, GH, GW) for t in range(steps)])
    )
    for name, idx in (("reward", 0), ("terminated", 1), ("truncated", 2)):
        np.testing.assert_array_equal(
            run.scalar(name), np.stack([_values(t)[idx] for t in range(steps)])
        )
    np.testing.assert_array_equal(
        run.scalar("speed"), np.stack([np.arange(N) * t for t in range(steps)]).astype(np.float32)
    )
    np.testing.assert_array_equal(
        run.scalar("success"), np.stack([np.full(N, t % 2) for t in range(steps)])
    )
    np.testing.assert_array_equal(run.frame_values("step"), np.arange(steps))
    np.testing.assert_allclose(run.frame_values("sim_time"), np.arange(steps) * 0.02)
    assert np.all(np.diff(run.frame_values("wall_time")) >= 0)
    np.testing.assert_array_equal(run.frame_values("clip"), 0)
    np.testing.assert_array_equal(run.env_origins, origins)
    np.testing.assert_array_equal(run.cameras.env_intrinsics, np.broadcast_to(k, (N, 3, 3)))
    np.testing.assert_array_equal(run.cameras.env_pose, poses)
    assert run.fps == 50 and run.step_dt == 0.02
    assert run.source == {"sim": "test"} and run.metadata == {"task": "roundtrip"}
    assert run.counters["dropped_frames"] == 0 and run.counters["write_errors"] == 0
    assert run.closed
    assert [(c.id, c.start_frame, c.stop_frame) for c in run.clips] == [(0, 0, steps)]
    s = rec.stats
    assert (s.steps, s.frames_captured, s.frames_written, s.frames_dropped) == (70, 70, 70, 0)
    assert s.blocks_written == 9 and s.write_errors == 0
    assert s.bytes_in == steps * (N * H * W * 3 + GH * GW * 3)
    assert s.bytes_stored > 0 and s.queue_bytes == 0
    assert 0 < s.queue_high_water_bytes <= s.queue_capacity_bytes
    _check_valid(path)


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_a_reused_block_buffer_comes_back_at_its_defaults(tmp_path, writer):
    # Two block buffers of 4 frames, used 5 times each: the first blocks are given every
    # value, the later ones none, so a value left over from a buffer's last use would show.
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    spec = RunSpec(
        num_envs=N, env_frame_shape=(H, W), fps=30, block_frames=4, scalar_names=("speed",)
    )
    path = tmp_path / "run.zarr"
    rec = Recorder(
        path,
        num_envs=N,
        fps=30,
        block_frames=4,
        scalar_names=("speed",),
        max_queue_bytes=2 * block_nbytes(spec, value_range=False),
        writer=writer,
    )
    given, steps = 16, 40
    with rec:
        for t in range(steps):
            if t < given:
                rec.capture(
                    frames(t, N, H, W),
                    reward=np.full(N, 1.0),
                    terminated=np.ones(N, bool),
                    truncated=np.ones(N, bool),
                    stale=np.ones(N, bool),
                    episode_step=np.full(N, 3),
                    scalars={"speed": np.full(N, 2.0)},
                )
            else:
                rec.capture(frames(t, N, H, W))
        assert rec._ring.num_blocks == 2  # each buffer held 5 of the 10 blocks
    run = open_run(path)
    assert run.num_frames == steps
    assert (run.scalar("reward")[:given] == 1).all()
    assert np.isnan(run.scalar("reward")[given:]).all()
    assert np.isnan(run.scalar("speed")[given:]).all()
    for name in ("terminated", "truncated", "stale"):
        assert run.scalar(name)[:given].all() and not run.scalar(name)[given:].any(), name
    # not given: counted from the done flags (every env done at step given - 1), not the 3 given
    counted = np.arange(1, steps - given + 1)[:, None]
    assert (run.scalar("episode_step")[:given] == 3).all()
    assert (run.scalar("episode_step")[given:] == counted).all()
    _check_valid(path)


@pytest.mark.parametrize("layout", ["rgba", "rgba-view", "strided-crop", "fortran"])
def test_numpy_layouts(tmp_path, layout):
    """RGBA and strided views take other copy paths; all store the same RGB bytes."""
    path = tmp_path / "run.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4) as rec:
        for t in range(11):
            rgba = frames(t, N, H, W, channels=4)
            if layout == "rgba":
                x = rgba
            elif layout == "rgba-view":
                x = rgba[..., :3]
            elif layout == "strided-crop":
                big = np.zeros((N, H * 2, W + 3, 3), np.uint8)
                big[:, ::2, 1 : W + 1] = rgba[..., :3]
                x = big[:, ::2, 1 : W + 1]
            else:
                x = np.asfortranarray(rgba[..., :3])
            rec.capture(x)
    want = np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(11)])
    np.testing.assert_array_equal(open_run(path).env_frames(), want)


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_rgba_ring_with_layouts_changing_mid_run(tmp_path, writer):
    """A first RGBA view makes the ring keep whole pixels; later inputs of any layout, a global
    view among them, still store exactly their RGB bytes."""
    gh, gw = 7, 9
    path = tmp_path / "run.zarr"
    buf = np.zeros((N, H, W, 4), np.uint8)
    gbuf = np.zeros((gh, gw, 4), np.uint8)
    with Recorder(path, num_envs=N, fps=30, block_frames=4, writer=writer) as rec:
        for t in range(13):
            buf[:] = frames(t, N, H, W, channels=4)
            gbuf[..., :3] = global_frame(t, gh, gw)
            x = buf[..., :3]
            if t in (5, 6):
                x = np.ascontiguousarray(x)
            elif t == 7:
                x = np.asfortranarray(x)
            elif t == 8:
                x = buf  # the RGBA buffer itself
            rec.capture(x, gbuf[..., :3] if t != 9 else np.ascontiguousarray(gbuf[..., :3]))
        assert rec._ring.rgba == ("env_frames", "global_frames")
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(13)])
    )
    np.testing.assert_array_equal(
        run.global_frames(), np.stack([global_frame(t, gh, gw) for t in range(13)])
    )


def test_rgba_ring_falls_back_to_rgb_when_the_budget_is_tight(tmp_path):
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    spec = RunSpec(num_envs=N, env_frame_shape=(H, W), fps=30, block_frames=4)
    budget = 2 * block_nbytes(spec, value_range=False)  # 2 RGB blocks, not 2 RGBA ones
    assert budget < 2 * block_nbytes(spec, value_range=False, rgba=("env_frames",))
    path = tmp_path / "run.zarr"
    buf = np.zeros((N, H, W, 4), np.uint8)
    with Recorder(path, num_envs=N, fps=30, block_frames=4, max_queue_bytes=budget) as rec:
        for t in range(9):
            buf[:] = frames(t, N, H, W, channels=4)
            rec.capture(buf[..., :3])
        assert rec._ring.rgba == () and rec._ring.num_blocks == 2
    np.testing.assert_array_equal(
        open_run(path).env_frames(),
        np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(9)]),
    )


def _set_shape(x: np.ndarray, shape: tuple) -> None:
    """``x.shape = shape``: what older code does, deprecated from NumPy 2.5 (not removed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        x.shape = shape


def test_a_buffer_reshaped_in_place_is_planned_again(tmp_path):
    """The copy plan is reused for the same array object only while its layout is unchanged."""
    path = tmp_path / "run.zarr"
    flat = np.zeros((N * H, W, 3), np.uint8)
    with Recorder(path, num_envs=N, fps=30, block_frames=4) as rec:
        x = flat.reshape(N, H, W, 3)  # a view: its shape can be reassigned in place
        x[:] = frames(0, N, H, W)
        rec.capture(x)
        _set_shape(x, (N, W, H, 3))  # the same object, now the wrong frame shape
        with pytest.raises(ValueError, match="10×12"):
            rec.capture(x)
        _set_shape(x, (N, H, W, 3))
        x[:] = frames(1, N, H, W)
        rec.capture(x)
    np.testing.assert_array_equal(
        open_run(path).env_frames(), np.stack([frames(t, N, H, W) for t in range(2)])
    )


def test_rgba_view_spill_never_reads_past_the_owner(tmp_path):
    """An RGB array whose last pixel ends its buffer is copied plainly (no word read past it)."""
    base = np.arange(N * H * W * 3 + 1, dtype=np.uint64).astype(np.uint8)
    rgb = np.lib.stride_tricks.as_strided(
        base[1:], shape=(N, H, W, 3), strides=(H * W * 3, W * 3, 3, 1)
    )
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, block_frames=2) as rec:
        rec.capture(rgb)
    np.testing.assert_array_equal(open_run(tmp_path / "r.zarr").env_frames()[0], rgb)


def test_float_frames_with_value_range(tmp_path):
    path = tmp_path / "run.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4, value_range=(0.0, 1.0)) as rec:
        for t in range(6):
            rec.capture(frames(t, N, H, W).astype(np.float32) / 255.0)
            rec.capture(frames(100 + t, N, H, W).astype(np.float64) / 255.0)
    want = np.stack([f for t in range(6) for f in (frames(t, N, H, W), frames(100 + t, N, H, W))])
    np.testing.assert_array_equal(open_run(path).env_frames(), want)


def test_source_buffer_overwritten_after_capture(tmp_path):
    """capture() copies: reusing the caller's buffer at once does not change what is stored."""
    path = tmp_path / "run.zarr"
    buf = np.zeros((N, H, W, 4), np.uint8)
    rew = np.zeros(N, np.float32)
    with Recorder(path, num_envs=N, fps=30, block_frames=4) as rec:
        for t in range(9):
            buf[:] = frames(t, N, H, W, channels=4)
            rew[:] = t
            rec.capture(buf[..., :3], reward=rew)
            buf[:] = 255  # the simulator renders the next step into the same buffer
            rew[:] = -1
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(9)])
    )
    np.testing.assert_array_equal(run.scalar("reward"), np.repeat(np.arange(9.0), N).reshape(9, N))


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_windows_and_stride(tmp_path, writer):
    """video_length=5 steps every 12 from step 3, every 2nd step: the clips of gymnasium users."""
    path = tmp_path / "run.zarr"
    kept_steps = []
    with Recorder(
        path,
        num_envs=N,
        fps=30,
        block_frames=4,
        video_length=5,
        video_interval=12,
        step_offset=3,
        frame_stride=2,
        writer=writer,
    ) as rec:
        for t in range(40):
            if rec.capture(frames(t, N, H, W), reward=np.full(N, t, np.float32)):
                kept_steps.append(t)
    assert kept_steps == [3, 5, 7, 15, 17, 19, 27, 29, 31, 39]
    run = open_run(path)
    np.testing.assert_array_equal(run.frame_values("step"), kept_steps)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W) for t in kept_steps])
    )
    np.testing.assert_array_equal(run.scalar("reward")[:, 0], kept_steps)
    np.testing.assert_array_equal(run.frame_values("clip"), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    assert [(c.id, c.start_frame, c.stop_frame, c.start_step, c.stop_step) for c in run.clips] == [
        (0, 0, 3, 3, 8),
        (1, 3, 6, 15, 20),
        (2, 6, 9, 27, 32),
        (3, 9, 10, 39, 40),
    ]
    _check_valid(path)


def test_manual_clips(tmp_path):
    path = tmp_path / "run.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4, frame_stride=2) as rec:
        rec.stop_clip()  # record only between start_clip() and stop_clip()
        kept = []
        for t in range(30):
            if t in (4, 20):
                rec.start_clip()
            if t in (11, 25):
                rec.stop_clip()
            if rec.capture(frames(t, N, H, W)):
                kept.append(t)
    assert kept == [4, 6, 8, 10, 20, 22, 24]
    run = open_run(path)
    np.testing.assert_array_equal(run.frame_values("clip"), [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(run.frame_values("step"), kept)


def test_whole_run_is_clip_zero_and_start_clip_cuts(tmp_path):
    path = tmp_path / "run.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4) as rec:
        for t in range(10):
            if t == 6:
                rec.start_clip()
            rec.capture(frames(t, N, H, W))
    np.testing.assert_array_equal(open_run(path).frame_values("clip"), [0] * 6 + [1] * 4)


def test_lazy_shapes_and_global_from_first_capture(tmp_path):
    path = tmp_path / "run.zarr"
    rec = Recorder(path, num_envs=N, fps=30, block_frames=4)
    assert not path.exists()  # nothing is created before the first capture
    for t in range(5):
        rec.capture(frames(t, N, H, W), global_frame(t, GH, GW)[None])  # (1, Hg, Wg, 3)
    rec.close()
    run = open_run(path)
    assert run.env_frame_shape == (H, W) and run.global_frame_shape == (GH, GW)
    np.testing.assert_array_equal(
        run.global_frames(), np.stack([global_frame(t, GH, GW) for t in range(5)])
    )


def test_per_frame_poses(tmp_path):
    path = tmp_path / "run.zarr"
    with Recorder(
        path,
        num_envs=N,
        fps=30,
        block_frames=4,
        env_pose_per_frame=True,
        global_pose_per_frame=True,
    ) as rec:
        for t in range(6):
            pose = np.tile(np.eye(4), (N, 1, 1))
            pose[:, 2, 3] = t + np.arange(N)
            gpose = np.eye(4)
            gpose[0, 3] = -t
            rec.capture(frames(t, N, H, W), env_camera_poses=pose, global_camera_pose=gpose)
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_camera_poses()[:, :, 2, 3], np.arange(6)[:, None] + np.arange(N)
    )
    np.testing.assert_array_equal(run.global_camera_poses()[:, 0, 3], -np.arange(6))


def test_close_is_idempotent_and_capture_after_close_raises(tmp_path):
    rec = Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, block_frames=4)
    rec.capture(frames(0, N, H, W))
    rec.close()
    rec.close()
    assert rec.closed
    with pytest.raises(RuntimeError, match="closed"):
        rec.capture(frames(1, N, H, W))
    assert open_run(tmp_path / "r.zarr").num_frames == 1


def test_known_shape_without_captures_leaves_an_empty_valid_run(tmp_path):
    path = tmp_path / "r.zarr"
    Recorder(path, num_envs=N, fps=30, env_frame_shape=(H, W)).close()
    run = open_run(path)
    assert run.num_frames == 0 and run.closed
    _check_valid(path)


def test_existing_store_is_not_overwritten(tmp_path):
    path = tmp_path / "r.zarr"
    with Recorder(path, num_envs=N, fps=30) as rec:
        rec.capture(frames(0, N, H, W))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        Recorder(path, num_envs=N, fps=30)
    with Recorder(path, num_envs=N, fps=30, overwrite=True) as rec:
        rec.capture(frames(5, N, H, W))
        rec.capture(frames(6, N, H, W))
    assert open_run(path).num_frames == 2


def test_overwrite_replaces_only_an_envreel_store(tmp_path):
    # zarr's mode "w" deletes everything under the path: a folder of other files is refused,
    # when the recorder is made (before training starts), and left as it was
    exp = tmp_path / "exp1"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "checkpoints" / "model_1000.pt").write_bytes(b"weights")
    with pytest.raises(FileExistsError, match="not an envreel store.*replaces only an envreel"):
        Recorder(exp, num_envs=N, fps=30, overwrite=True)
    with pytest.raises(FileExistsError, match="already holds files and is not an envreel store"):
        Recorder(exp, num_envs=N, fps=30)
    assert (exp / "checkpoints" / "model_1000.pt").read_bytes() == b"weights"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file; a store is a folder"):
        Recorder(tmp_path / "afile", num_envs=N, fps=30, overwrite=True)
    # the same refusal where the store is made (a URL, or a path that appears meanwhile)
    from envreel.schemas import RunSpec, create_run

    spec = RunSpec(num_envs=N, env_frame_shape=(H, W), fps=30)
    with pytest.raises(FileExistsError, match="not an envreel store"):
        create_run(exp, spec, overwrite=True)
    assert (exp / "checkpoints" / "model_1000.pt").exists()
    # a store whose creation died before its attributes is envreel's own: it is replaced
    import zarr

    half = zarr.open_group(tmp_path / "half.zarr", mode="w", zarr_format=3)
    half.require_group("env")
    with Recorder(tmp_path / "half.zarr", num_envs=N, fps=30, overwrite=True) as rec:
        rec.capture(frames(0, N, H, W))
    assert open_run(tmp_path / "half.zarr").num_frames == 1
    (tmp_path / "empty").mkdir()
    with Recorder(tmp_path / "empty", num_envs=N, fps=30) as rec:  # an empty folder is new
        rec.capture(frames(0, N, H, W))
    assert open_run(tmp_path / "empty").num_frames == 1


@pytest.mark.parametrize("codec, level", [("blosc-lz4", 10), ("zstd", 99), ("gzip", -5)])
def test_a_codec_level_out_of_range_is_refused_before_anything_is_written(tmp_path, codec, level):
    with pytest.raises(ValueError, match=f"codec_level {level} is out of range for codec"):
        Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, codec=codec, codec_level=level)
    assert not (tmp_path / "r.zarr").exists()
    with Recorder(tmp_path / "z.zarr", num_envs=N, fps=30, codec="zstd", codec_level=-3) as rec:
        rec.capture(frames(0, N, H, W))  # zstd's fast negative levels are levels too
    np.testing.assert_array_equal(open_run(tmp_path / "z.zarr").env_frames()[0], frames(0, N, H, W))


def _wait_for(predicate, timeout_s=20.0):
    import time

    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_window_is_stored_and_its_hook_runs_when_it_ends(tmp_path, writer):
    # The last frames of a window used to wait in a partial block until the next window
    # filled it: a whole video_interval late, lost on a kill, and the clip's hook late with it.
    path, events = tmp_path / "r.zarr", []
    with Recorder(
        path,
        num_envs=N,
        fps=30,
        video_length=20,
        video_interval=100,
        block_frames=8,
        writer=writer,
        on_clip=lambda e: events.append((e.clip, e.start_step, e.stop_step)),
    ) as rec:
        for step in range(250):
            if rec.wants(step):
                rec.capture(frames(step, N, H, W), step=step)
            elif step % 5 == 4:  # the done flags of 5 steps at once, as RecordEnvs does
                rec.count_done(range(step - 4, step + 1), np.zeros((5, N), bool))
            if step == 30:  # window 0 (steps 0..19) ended 10 steps ago
                _wait_for(lambda: open_run(path).num_frames == 20 and len(events) == 1)
                assert events == [(0, 0, 20)]
            if step == 110:
                # the block after a partial one is 4 frames (steps 100..103), so the store is
                # back on its 8-frame blocks: 24 frames stored, steps 104..110 still filling
                _wait_for(lambda: open_run(path).num_frames == 24)
            if step == 125:  # window 1 ended on a whole block: its hook still runs now
                _wait_for(lambda: len(events) == 2)
        assert rec.wants(200)
    run = open_run(path)
    assert events == [(0, 0, 20), (1, 100, 120), (2, 200, 220)]
    steps = run.frame_values("step")
    assert steps.tolist() == [*range(20), *range(100, 120), *range(200, 220)]
    for i, step in enumerate(steps.tolist()):
        np.testing.assert_array_equal(run.env_frames(None, i, i + 1)[0], frames(step, N, H, W))
    _check_valid(path)


def test_stopping_a_manual_clip_stores_it_and_runs_its_hook(tmp_path):
    path, events = tmp_path / "r.zarr", []
    with Recorder(path, num_envs=N, fps=30, block_frames=8, on_clip=events.append) as rec:
        for step in range(13):
            rec.capture(frames(step, N, H, W), step=step)
        rec.stop_clip()
        _wait_for(lambda: open_run(path).num_frames == 13 and len(events) == 1)
        rec.start_clip()
        for step in range(40, 45):
            rec.capture(frames(step, N, H, W), step=step)
        rec.start_clip()  # closes clip 1, opens clip 2
        _wait_for(lambda: len(events) == 2)
        rec.capture(frames(50, N, H, W), step=50)
    assert [(e.clip, e.start_step, e.stop_step) for e in events] == [
        (0, 0, 13),
        (1, 40, 45),
        (2, 50, 51),
    ]
    assert open_run(path).frame_values("step").tolist() == [*range(13), *range(40, 45), 50]


def test_memory_url_and_store_object(tmp_path):
    from zarr.storage import LocalStore

    with Recorder("memory://recorder-test.zarr", num_envs=N, fps=30, block_frames=4) as rec:
        for t in range(6):
            rec.capture(frames(t, N, H, W))
    assert open_run("memory://recorder-test.zarr").num_frames == 6
    store = LocalStore(str(tmp_path / "obj.zarr"))
    with Recorder(store, num_envs=N, fps=30, block_frames=4) as rec:
        for t in range(5):
            rec.capture(frames(t, N, H, W))
    np.testing.assert_array_equal(
        open_run(tmp_path / "obj.zarr").env_frames(),
        np.stack([frames(t, N, H, W) for t in range(5)]),
    )


def test_explicit_steps_and_sim_time(tmp_path):
    path = tmp_path / "r.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4) as rec:
        for k, t in enumerate((10, 12, 13, 20)):
            rec.capture(frames(t, N, H, W), step=t, sim_time=k * 0.5)
    run = open_run(path)
    np.testing.assert_array_equal(run.frame_values("step"), [10, 12, 13, 20])
    np.testing.assert_array_equal(run.frame_values("sim_time"), [0, 0.5, 1.0, 1.5])


# ---- torch on the CPU ---------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_torch_cpu_roundtrip(tmp_path, writer):
    torch = pytest.importorskip("torch")
    path = tmp_path / "run.zarr"
    rgba = torch.zeros((N, H, W, 4), dtype=torch.uint8)
    rgb = rgba[..., :3]  # Isaac Lab's strided view
    reward = torch.zeros(N)
    term = torch.zeros(N, dtype=torch.bool)
    with Recorder(
        path, num_envs=N, fps=30, block_frames=4, scalar_names=("x",), writer=writer
    ) as rec:
        for t in range(10):
            rgba.copy_(torch.from_numpy(frames(t, N, H, W, channels=4)))
            reward.fill_(t * 0.25)
            term.copy_(torch.from_numpy(_values(t)[1]))
            rec.capture(
                rgb,
                reward=reward,
                terminated=term,
                scalars={"x": torch.arange(N, dtype=torch.float64) * t},
            )
            rgba.fill_(7)  # overwritten right after capture()
            reward.fill_(-1)
            term.fill_(True)
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(10)])
    )
    np.testing.assert_array_equal(run.scalar("reward")[:, 1], np.arange(10) * 0.25)
    np.testing.assert_array_equal(
        run.scalar("terminated"), np.stack([_values(t)[1] for t in range(10)])
    )
    np.testing.assert_array_equal(run.scalar("x"), np.arange(10)[:, None] * np.arange(N))


def test_torch_cpu_float_frames(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "run.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4, value_range=(-1.0, 1.0)) as rec:
        for t in range(5):
            x = torch.from_numpy(frames(t, N, H, W)).float() / 127.5 - 1.0
            rec.capture(x.to(torch.bfloat16) if t == 4 else x)
    got = open_run(path).env_frames()
    np.testing.assert_array_equal(got[:4], np.stack([frames(t, N, H, W) for t in range(4)]))
    assert np.abs(got[4].astype(int) - frames(4, N, H, W)).max() <= 1  # bfloat16 rounding


@pytest.mark.parametrize(
    ("rerenders", "writer", "stale_as"),
    [(0, "process", "array"), (0, "thread", "done"), (1, "thread", "array")],
)
def test_fake_isaaclab_env_matches_truth(tmp_path, rerenders, writer, stale_as):
    """Against the Isaac Lab stand-in: frames, done flags, episode index and step as the truth;
    stale frames flagged by an array, or by ``stale="done"``."""
    pytest.importorskip("torch")
    from isaaclab_standins import make_fake_env

    env = make_fake_env(  # 2.x: an RTX camera (renders before resets) and a global camera
        version="2.2.0",
        global_camera_name="envreel_global",
        num_envs=5,
        max_episode_length=6,
        num_rerenders_on_reset=rerenders,
    )
    u = env.unwrapped
    cam = u.scene.sensors[u.camera_name]
    glob = u.scene.sensors[u.global_camera_name]
    path = tmp_path / "isaac.zarr"
    import torch

    with Recorder(
        path,
        num_envs=u.num_envs,
        step_dt=u.step_dt,
        block_frames=8,
        env_origins=u.scene.env_origins,
        writer=writer,
    ) as rec:
        env.reset()
        rec.capture(cam.data.output["rgb"], glob.data.output["rgb"], step=u.common_step_counter)
        for _ in range(40):
            _, reward, term, trunc, _ = env.step(torch.zeros((u.num_envs, 2)))
            stale = (term | trunc) & (u.cfg.num_rerenders_on_reset == 0)  # the adapter's rule
            if stale_as == "done":
                stale = "done"
            rec.capture(
                cam.data.output["rgb"],
                glob.data.output["rgb"],
                step=u.common_step_counter,
                reward=reward,
                terminated=term,
                truncated=trunc,
                stale=stale,
            )
    truth = u.truth
    run = open_run(path)
    assert run.num_frames == len(truth) == 41
    np.testing.assert_array_equal(run.env_frames(), np.stack([s.rgb for s in truth]))
    np.testing.assert_array_equal(run.global_frames(), np.stack([s.global_rgb[0] for s in truth]))
    np.testing.assert_array_equal(run.frame_values("step"), [s.step for s in truth])
    for name in ("terminated", "truncated", "stale", "episode_index", "episode_step"):
        stored = run.scalar("episode" if name == "episode_index" else name)
        np.testing.assert_array_equal(stored, np.stack([getattr(s, name) for s in truth]), name)
    reward = run.scalar("reward")
    assert np.isnan(reward[0]).all()  # not given at reset(): stored as NaN, not a made-up 0
    np.testing.assert_array_equal(reward[1:], np.stack([s.reward for s in truth[1:]]))
    assert run.scalar("stale").any() == (rerenders == 0)
    np.testing.assert_allclose(run.env_origins, u.scene.env_origins.numpy())


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_relative_path_is_resolved_at_construction(tmp_path, monkeypatch, writer):
    monkeypatch.chdir(tmp_path)
    rec = Recorder("rel.zarr", num_envs=N, fps=30, writer=writer)
    monkeypatch.chdir("/")  # the training script changes directory before the first capture
    rec.capture(frames(0, N, H, W))
    rec.close()
    assert open_run(tmp_path / "rel.zarr").num_frames == 1
    assert rec.stats.bytes_stored > 0
