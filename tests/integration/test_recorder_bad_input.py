"""Bad input to capture(): a clear error naming the value and the expectation, nothing written.

Each case runs twice: as the first capture (the store must not even be created) and mid-run
(the store must hold exactly the good frames, with no trace of the bad call).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from recorder_helpers import frames

from envreel.capture import Recorder
from envreel.schemas import open_run, validate

N, H, W = 3, 8, 10


def good(t):
    return frames(t, N, H, W)


def _float(value):
    x = good(0).astype(np.float32) / 255.0
    x[1, 2, 3, 1] = value
    return x


# (id, kwargs of the bad capture, error type, message fragments, recorder options)
CASES = [
    ("int32 frames", dict(env_rgb=good(0).astype(np.int32)), TypeError, ["uint8", "int32"], {}),
    ("bool frames", dict(env_rgb=good(0) > 3), TypeError, ["uint8", "bool"], {}),
    (
        "float without value_range",
        dict(env_rgb=good(0).astype(np.float32)),
        TypeError,
        ["value_range", "float32"],
        {},
    ),
    ("rank 3", dict(env_rgb=good(0)[..., 0]), ValueError, ["4 dims", "(3, 8, 10)"], {}),
    ("rank 5", dict(env_rgb=good(0)[None]), ValueError, ["4 dims", "(1, 3, 8, 10, 3)"], {}),
    (
        "channels first",
        dict(env_rgb=np.ascontiguousarray(good(0).transpose(0, 3, 1, 2))),
        ValueError,
        ["channels-first", "(3, 3, 8, 10)", "permute"],
        {},
    ),
    ("2 channels", dict(env_rgb=good(0)[..., :2]), ValueError, ["3 (RGB) or 4 (RGBA)"], {}),
    ("wrong env count", dict(env_rgb=frames(0, N + 1, H, W)), ValueError, ["3 envs", "(4, 8"], {}),
    ("list input", dict(env_rgb=good(0).tolist()), TypeError, ["numpy array or torch"], {}),
    (
        "NaN in float frames",
        dict(env_rgb=_float(np.nan)),
        ValueError,
        ["NaN", "value_range=(0, 1)"],
        dict(value_range=(0.0, 1.0)),
    ),
    (
        "inf in float frames",
        dict(env_rgb=_float(np.inf)),
        ValueError,
        ["inf", "value_range=(0, 1)"],
        dict(value_range=(0.0, 1.0)),
    ),
    (
        "float out of range",
        dict(env_rgb=_float(1.5)),
        ValueError,
        ["[0, 1.5]", "outside value_range=(0, 1)"],
        dict(value_range=(0.0, 1.0)),
    ),
    (
        "float just out of range",
        dict(env_rgb=_float(1.0000001)),
        ValueError,
        ["1.0000001]", "outside value_range=(0, 1)"],
        dict(value_range=(0.0, 1.0)),
    ),
    (
        "reward wrong length",
        dict(reward=np.zeros(N + 2)),
        ValueError,
        ["reward", "shape (3,)", "(5,)"],
        {},
    ),
    ("reward 2-d", dict(reward=np.zeros((N, 1))), ValueError, ["reward", "(3, 1)"], {}),
    ("reward strings", dict(reward=np.array(["a"] * N)), TypeError, ["reward", "real number"], {}),
    (
        "terminated floats",
        dict(terminated=np.zeros(N, np.float32)),
        TypeError,
        ["terminated", "bool", "float32"],
        {},
    ),
    (
        "episode_step floats",
        dict(episode_step=np.zeros(N)),
        TypeError,
        ["episode_step", "integer", "float64"],
        {},
    ),
    (
        "scalar wrong length",
        dict(scalars={"speed": np.zeros(N - 1)}),
        ValueError,
        ["scalars['speed']", "(3,)", "(2,)"],
        dict(scalar_names=("speed",)),
    ),
    (
        "unknown scalar",
        dict(scalars={"sped": np.zeros(N)}),
        ValueError,
        ["'sped'", "scalar_names=['speed']"],
        dict(scalar_names=("speed",)),
    ),
    ("step float", dict(step=1.5), TypeError, ["step must be an int", "1.5"], {}),
    ("step negative", dict(step=-1), ValueError, ["step must be >= 0", "-1"], {}),
    ("sim_time NaN", dict(sim_time=float("nan")), ValueError, ["sim_time", "nan"], {}),
    (
        "poses without per-frame",
        dict(env_camera_poses=np.tile(np.eye(4), (N, 1, 1))),
        ValueError,
        ["env_pose_per_frame=True"],
        {},
    ),
    (
        "pose wrong shape",
        dict(env_camera_poses=np.eye(4)),
        ValueError,
        ["env_camera_poses", "(3, 4, 4)", "(4, 4)"],
        dict(env_pose_per_frame=True),
    ),
]


def _poses(opts):
    return (
        {"env_camera_poses": np.tile(np.eye(4), (N, 1, 1))}
        if opts.get("env_pose_per_frame")
        else {}
    )


def _bad_call(rec, kwargs, opts):
    args = dict(kwargs)
    env = args.pop("env_rgb", None)
    if env is None:
        env = good(99)
    if "env_camera_poses" not in args:
        args.update(_poses(opts))
    rec.capture(env, **args)


@pytest.mark.parametrize("first", [True, False], ids=["first-capture", "mid-run"])
@pytest.mark.parametrize(
    ("bad", "exc", "fragments", "opts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_capture(tmp_path, bad, exc, fragments, opts, first):
    # Input checks do not depend on the writer; the thread writer keeps this matrix fast.
    _check_case(tmp_path, bad, exc, fragments, opts, first, writer="thread")


PROCESS_CASES = [
    c for c in CASES if c[0] in ("channels first", "float out of range", "unknown scalar")
]


@pytest.mark.parametrize("first", [True, False], ids=["first-capture", "mid-run"])
@pytest.mark.parametrize(
    ("bad", "exc", "fragments", "opts"),
    [c[1:] for c in PROCESS_CASES],
    ids=[c[0] for c in PROCESS_CASES],
)
def test_bad_capture_process_writer(tmp_path, bad, exc, fragments, opts, first):
    _check_case(tmp_path, bad, exc, fragments, opts, first, writer="process")


def _check_case(tmp_path, bad, exc, fragments, opts, first, *, writer):
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, block_frames=4, writer=writer, **opts)
    good_steps = [] if first else [0, 1, 2, 3, 4]
    for t in good_steps:
        rec.capture(good(t), step=t, **_poses(opts))
    with pytest.raises(exc) as info:
        _bad_call(rec, bad, opts)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if first:
        assert not path.exists()  # nothing created by a rejected first capture
    assert rec.stats.steps == len(good_steps)
    # The recorder is unharmed: the next good frames continue the run seamlessly.
    for t in (5, 6, 7):
        rec.capture(good(t), step=t, **_poses(opts))
    rec.close()
    run = open_run(path)
    steps = good_steps + [5, 6, 7]
    np.testing.assert_array_equal(run.frame_values("step"), steps)
    np.testing.assert_array_equal(run.env_frames(), np.stack([good(t) for t in steps]))
    assert validate(str(path)) == []


def test_changed_shape_mid_run(tmp_path):
    rec = Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, block_frames=4)
    rec.capture(good(0))
    with pytest.raises(
        ValueError, match=r"frames are 8×12 .*this run's frames are 8×10.*first capture"
    ):
        rec.capture(frames(1, N, H, W + 2))
    rec.capture(good(1))
    rec.close()
    assert open_run(tmp_path / "r.zarr").num_frames == 2


def test_shape_given_to_constructor_is_enforced_at_first_capture(tmp_path):
    rec = Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, env_frame_shape=(H + 1, W))
    with pytest.raises(ValueError, match="9×10"):
        rec.capture(good(0))
    assert not (tmp_path / "r.zarr").exists()
    rec.close()  # the shape is known: close() leaves an empty, valid run
    assert open_run(tmp_path / "r.zarr").num_frames == 0


def test_step_must_increase(tmp_path):
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, block_frames=4) as rec:
        rec.capture(good(0), step=10)
        with pytest.raises(ValueError, match="increase from call to call: got 10 after 10"):
            rec.capture(good(1), step=10)
        rec.capture(good(1))  # defaults to the last step + 1
    np.testing.assert_array_equal(open_run(tmp_path / "r.zarr").frame_values("step"), [10, 11])


def test_global_view_presence_is_fixed(tmp_path):
    rec = Recorder(tmp_path / "a.zarr", num_envs=N, fps=30)
    rec.capture(good(0))
    with pytest.raises(ValueError, match="no global view"):
        rec.capture(good(1), np.zeros((4, 4, 3), np.uint8))
    rec.close()
    rec = Recorder(tmp_path / "b.zarr", num_envs=N, fps=30, global_frame_shape=(4, 6))
    with pytest.raises(ValueError, match=r"global_rgb is required.*\(4, 6\)"):
        rec.capture(good(0))
    with pytest.raises(ValueError, match="global_rgb frames are 5×6"):
        rec.capture(good(0), np.zeros((5, 6, 3), np.uint8))
    rec.capture(good(0), np.zeros((4, 6, 3), np.uint8))
    rec.close()
    assert open_run(tmp_path / "b.zarr").num_frames == 1


@pytest.mark.parametrize(("budget", "block_frames"), [(10_000, 32), (100, None)])
def test_max_queue_bytes_too_small_for_lazy_shape_raises_at_first_capture(
    tmp_path, budget, block_frames
):
    # block_frames=None takes shorter blocks (1 frame at the least) before giving up
    rec = Recorder(
        tmp_path / "r.zarr", num_envs=N, fps=30, max_queue_bytes=budget, block_frames=block_frames
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error alone, no warning about short blocks first
        with pytest.raises(ValueError, match=rf"max_queue_bytes={budget} .*holds 0 block.*least 2"):
            rec.capture(good(0))
    assert not (tmp_path / "r.zarr").exists()


def test_torch_bad_inputs():
    torch = pytest.importorskip("torch")
    rec = Recorder("memory://bad-torch.zarr", num_envs=N, fps=30)
    with pytest.raises(TypeError, match="torch.int64"):
        rec.capture(torch.zeros((N, H, W, 3), dtype=torch.int64))
    with pytest.raises(ValueError, match="channels-first"):
        rec.capture(torch.zeros((N, 3, H, W), dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"reward must have shape \(3,\)"):
        rec.capture(torch.zeros((N, H, W, 3), dtype=torch.uint8), reward=torch.zeros(N + 1))
    with pytest.raises(TypeError, match="episode_step must be an integer"):
        rec.capture(torch.zeros((N, H, W, 3), dtype=torch.uint8), episode_step=torch.zeros(N))
    with pytest.raises(ValueError, match="outside value_range"):
        Recorder("memory://bad-torch2.zarr", num_envs=N, fps=30, value_range=(0, 1)).capture(
            torch.full((N, H, W, 3), 2.0)
        )
    assert rec.stats.steps == 0
    rec.close()
