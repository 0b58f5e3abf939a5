"""Recorder constructor arguments: checked up front, named in the error, nothing created."""

from __future__ import annotations

import numpy as np
import pytest

from envreel.capture import DEFAULT_MAX_QUEUE_BYTES, Recorder

N = 4
BAD = [
    (dict(num_envs=0), ValueError, "num_envs must be between 1"),
    (dict(num_envs=2.5), TypeError, "num_envs must be an int"),
    (dict(fps=None), ValueError, "give fps or step_dt"),
    (dict(fps=-3), ValueError, "fps must be a positive finite number"),
    (dict(codec="lz77"), ValueError, "codec must be one of"),
    (dict(block_frames=0), ValueError, "block_frames must be between 1"),
    (dict(on_full="wait"), ValueError, "on_full must be one of ('block', 'drop'), got 'wait'"),
    (dict(on_error="ignore"), ValueError, "on_error must be one of ('warn', 'raise')"),
    (dict(autoreset="always"), ValueError, "autoreset must be one of"),
    (dict(value_range=(1, 0)), ValueError, "lo < hi"),
    (dict(value_range=(0, float("inf"))), ValueError, "finite"),
    (dict(value_range="0-1"), TypeError, "value_range must be (lo, hi)"),
    (dict(max_queue_bytes=0), ValueError, "max_queue_bytes must be positive"),
    (dict(max_queue_bytes=1.5e9), TypeError, "max_queue_bytes must be an int"),
    (dict(video_length=0), ValueError, "video_length must be positive (steps), got 0"),
    (dict(video_interval=10), ValueError, "needs video_length"),
    (dict(video_length=10, video_interval=5), ValueError, "windows would overlap"),
    (dict(frame_stride=0), ValueError, "frame_stride must be positive, got 0"),
    (dict(step_offset=-1), ValueError, "step_offset must be >= 0"),
    (dict(scalar_names="speed"), TypeError, "scalar_names must be a sequence"),
    (dict(scalar_names=("a", "a")), ValueError, "duplicates"),
    (dict(scalar_names=("bad name",)), ValueError, "scalar name 'bad name'"),
    (dict(scalar_names=("speed", "reward")), ValueError, "scalar name 'reward' is taken"),
    (dict(scalar_names=("stale",)), ValueError, "e.g. 'stale_shaped'"),
    (dict(env_frame_shape=(0, 5)), ValueError, "env_frame_shape[0] (height)"),
    (dict(env_frame_shape=(128,)), ValueError, "(height, width)"),
    (dict(env_origins=np.zeros((N, 2))), ValueError, "env_origins must have shape (4, 3)"),
    (dict(env_origins=np.full((N, 3), np.nan)), ValueError, "env_origins must be finite"),
    (dict(env_intrinsics=np.eye(4)), ValueError, "(4, 3, 3) or (3, 3)"),
    (
        dict(env_origins=np.ma.masked_array(np.zeros((N, 3)), mask=np.eye(N, 3))),
        TypeError,
        "env_origins is a numpy masked array (3 masked of 12)",
    ),
    (
        dict(env_pose_per_frame=True, env_camera_poses=np.tile(np.eye(4), (N, 1, 1))),
        ValueError,
        "pass them to capture()",
    ),
    (dict(env_pose_per_frame=1), TypeError, "env_pose_per_frame must be True or False, got 1"),
    (dict(rank=2, world_size=2), ValueError, "rank 2 must be below world_size 2"),
    (dict(quat_order="xyz"), ValueError, "quat_order"),
    (dict(source={"x": object()}), ValueError, "JSON values"),
    (
        dict(env_frame_shape=(256, 256), num_envs=64, block_frames=32),
        ValueError,
        "max_queue_bytes=536870912 (512 MiB) holds 1 block(s) of block_frames=32 frames × 64 envs",
    ),
]


@pytest.mark.parametrize(("kwargs", "exc", "fragment"), BAD, ids=[str(b[0])[:50] for b in BAD])
def test_bad_constructor_arguments(tmp_path, kwargs, exc, fragment):
    args = dict(num_envs=N, fps=30)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        Recorder(tmp_path / "r.zarr", **args)
    assert fragment in str(info.value)
    assert not (tmp_path / "r.zarr").exists()


def test_bad_url():
    with pytest.raises(TypeError, match="url must be a path, a URL or a zarr Store"):
        Recorder(42, num_envs=N, fps=30)
    with pytest.raises(ValueError, match="url must not be empty"):
        Recorder("", num_envs=N, fps=30)


def test_queue_error_suggests_a_fix():
    with pytest.raises(ValueError) as info:
        Recorder(
            "memory://q.zarr", num_envs=64, fps=30, env_frame_shape=(256, 256), block_frames=32
        )
    msg = str(info.value)
    assert "at least 2" in msg and "max_queue_bytes >=" in msg and "block_frames <= 21" in msg
    # a budget that no block fits twice suggests only a larger budget (block_frames <= 1 did)
    with pytest.raises(ValueError) as info:
        Recorder(
            "memory://q.zarr",
            num_envs=64,
            fps=30,
            env_frame_shape=(256, 256),
            max_queue_bytes=10 << 20,
        )  # without block_frames too: no block fits twice
    msg = str(info.value)
    assert "max_queue_bytes >=" in msg and "block_frames" not in msg.split("needs")[1]


def test_default_queue_holds_five_blocks_of_64_envs_at_128():
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    spec = RunSpec(num_envs=64, env_frame_shape=(128, 128), fps=30)
    assert DEFAULT_MAX_QUEUE_BYTES // block_nbytes(spec, value_range=False) == 5


def test_constructor_without_capture_creates_nothing_when_shape_unknown(tmp_path):
    Recorder(tmp_path / "r.zarr", num_envs=N, fps=30).close()
    assert not (tmp_path / "r.zarr").exists()


def test_torch_statics_that_hold_no_values_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="env_origins is on the meta device"):
        Recorder(
            tmp_path / "r.zarr", num_envs=N, fps=30, env_origins=torch.empty((N, 3), device="meta")
        )
    with pytest.raises(TypeError, match=r"global_camera_pose is a torch.sparse_coo tensor"):
        Recorder(
            tmp_path / "r.zarr", num_envs=N, fps=30, global_camera_pose=torch.eye(4).to_sparse()
        )
    assert not (tmp_path / "r.zarr").exists()


def test_torch_statics_are_accepted():
    torch = pytest.importorskip("torch")
    rec = Recorder(
        "memory://ts.zarr",
        num_envs=N,
        fps=30,
        env_frame_shape=(4, 4),
        env_origins=torch.zeros((N, 3)),
        env_intrinsics=torch.eye(3),
    )
    rec.close()
