"""Bad input to capture(): a clear error naming the value and the expectation, nothing written.

Each case runs twice: as the first capture (the store must not even be created) and mid-run
(the store must hold exactly the good frames, with no trace of the bad call).
"""

from __future__ import annotations

import warnings
from decimal import Decimal

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
    (
        "reward (N, 1)",
        dict(reward=np.zeros((N, 1))),
        ValueError,
        ["reward", "got (3, 1): 3 values", "reward.reshape(-1)"],
        {},
    ),
    ("reward 2-d", dict(reward=np.zeros((N, 2))), ValueError, ["reward", "got (3, 2)"], {}),
    (
        "reward scalar",
        dict(reward=1.0),
        ValueError,
        ["reward must have shape (3,)", "got (): a single value"],
        {},
    ),
    (
        "reward generator",
        dict(reward=(r for r in (1.0, 2.0, 3.0))),
        TypeError,
        ["reward must be an array of shape (3,) (one value per env), got generator"],
        {},
    ),
    (
        "reward str",
        dict(reward="1 2 3"),
        TypeError,
        ["reward must be an array of shape (3,) (one value per env), got str '1 2 3'"],
        {},
    ),
    (
        "terminated 0-d",
        dict(terminated=np.array(True)),
        ValueError,
        ["terminated must have shape (3,)", "a single value"],
        {},
    ),
    ("reward strings", dict(reward=np.array(["a"] * N)), TypeError, ["reward", "real number"], {}),
    (
        "reward int beyond 64 bits",
        dict(reward=[10**20, 1, 2]),
        TypeError,
        ["reward must be a real number, got object values 100000000000000000000"],
        {},
    ),
    (
        "terminated with None",
        dict(terminated=[True, None, False]),
        TypeError,
        ["terminated must be bool", "got object values None"],
        {},
    ),
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
        "sim_time beyond float64",
        dict(sim_time=10**400),
        ValueError,
        ["sim_time must be a finite number of seconds, got 1000"],
        {},
    ),
    (
        "sim_time Decimal",
        dict(sim_time=Decimal("0.5")),
        TypeError,
        ["sim_time must be a number of seconds (an int or float), got Decimal('0.5')"],
        {},
    ),
    (
        "sim_time 1-d",
        dict(sim_time=np.array([0.5])),
        TypeError,
        ["sim_time must be a number of seconds", "array([0.5])"],
        {},
    ),
    ("step 0-d float", dict(step=np.array(5.0)), TypeError, ["step must be an int"], {}),
    (
        "masked frames",
        dict(env_rgb=np.ma.masked_array(good(0), mask=good(0) > 200)),
        TypeError,
        ["env_rgb is a numpy masked array", "env_rgb.filled(value)"],
        {},
    ),
    (
        "masked frames, nothing masked",
        dict(env_rgb=np.ma.masked_array(good(0))),
        TypeError,
        ["env_rgb is a numpy masked array (0 masked of 720)"],
        {},
    ),
    (
        "masked reward",
        dict(reward=np.ma.masked_array(np.ones(N), mask=[0, 1, 0])),
        TypeError,
        ["reward is a numpy masked array (1 masked of 3)", "reward.filled(value)"],
        {},
    ),
    (
        "masked terminated",
        dict(terminated=np.ma.masked_array(np.ones(N, bool), mask=[0, 1, 0])),
        TypeError,
        ["terminated is a numpy masked array"],
        {},
    ),
    (
        "masked scalar",
        dict(scalars={"speed": np.ma.masked_array(np.ones(N), mask=[1, 0, 0])}),
        TypeError,
        ["scalars['speed'] is a numpy masked array"],
        dict(scalar_names=("speed",)),
    ),
    (
        "masked pose",
        dict(env_camera_poses=np.ma.masked_array(np.tile(np.eye(4), (N, 1, 1)))),
        TypeError,
        ["env_camera_poses is a numpy masked array"],
        dict(env_pose_per_frame=True),
    ),
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


def _wrapper_subclass(torch, inner):
    """A tensor subclass that keeps its values in another tensor (as DTensor does)."""

    class Wrapped(torch.Tensor):
        @staticmethod
        def __new__(cls, inner):
            return torch.Tensor._make_wrapper_subclass(
                cls, inner.shape, dtype=inner.dtype, device=inner.device
            )

        def __init__(self, inner):
            self.inner = inner

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            raise NotImplementedError(func)

    return Wrapped(inner)


# (id, torch -> kwargs of the bad capture, error type, message fragments, recorder options)
TORCH_CASES = [
    (
        "meta frames",
        lambda torch: dict(env_rgb=torch.empty((N, H, W, 3), dtype=torch.uint8, device="meta")),
        ValueError,
        ["env_rgb is on the meta device", "CPU or a CUDA device"],
        {},
    ),
    (
        "sparse frames",
        lambda torch: dict(env_rgb=torch.from_numpy(good(0)).to_sparse()),
        TypeError,
        ["env_rgb is a torch.sparse_coo tensor", "env_rgb.to_dense()"],
        {},
    ),
    (
        "wrapper subclass frames",
        lambda torch: dict(env_rgb=_wrapper_subclass(torch, torch.from_numpy(good(0)))),
        TypeError,
        ["env_rgb is a Wrapped, a tensor subclass", "plain torch.Tensor"],
        {},
    ),
    (
        "meta reward",
        lambda torch: dict(reward=torch.empty(N, device="meta")),
        ValueError,
        ["reward is on the meta device"],
        {},
    ),
    (
        "sparse terminated",
        lambda torch: dict(terminated=torch.ones(N, dtype=torch.bool).to_sparse()),
        TypeError,
        ["terminated is a torch.sparse_coo tensor"],
        {},
    ),
    (
        "meta scalar",
        lambda torch: dict(scalars={"speed": torch.empty(N, device="meta")}),
        ValueError,
        ["scalars['speed'] is on the meta device"],
        dict(scalar_names=("speed",)),
    ),
    (
        "meta pose",
        lambda torch: dict(env_camera_poses=torch.empty((N, 4, 4), device="meta")),
        ValueError,
        ["env_camera_poses is on the meta device"],
        dict(env_pose_per_frame=True),
    ),
]


@pytest.mark.parametrize("first", [True, False], ids=["first-capture", "mid-run"])
@pytest.mark.parametrize(
    ("make", "exc", "fragments", "opts"),
    [c[1:] for c in TORCH_CASES],
    ids=[c[0] for c in TORCH_CASES],
)
def test_bad_torch_capture(tmp_path, make, exc, fragments, opts, first):
    torch = pytest.importorskip("torch")
    _check_case(tmp_path, make(torch), exc, fragments, opts, first, writer="thread")


def test_torch_subclasses_and_grad_tensors_are_recorded_as_their_values(tmp_path):
    torch = pytest.importorskip("torch")

    class Tagged(torch.Tensor):  # a plain subclass, as libraries tag tensors
        pass

    path = tmp_path / "r.zarr"
    rec = Recorder(
        path, num_envs=N, fps=30, writer="thread", value_range=(0.0, 1.0), scalar_names=("v",)
    )
    rec.capture(
        torch.from_numpy(good(0)).as_subclass(Tagged),
        reward=torch.tensor([1.0, 2.0, 3.0]).as_subclass(Tagged),
        terminated=torch.tensor([True, False, True]).as_subclass(Tagged),
    )
    weights = torch.nn.Parameter(torch.from_numpy(good(1)).float() / 255)
    rec.capture(
        weights,
        reward=torch.tensor([4.0, 5.0, 6.0], requires_grad=True) * 1,
        scalars={"v": torch.tensor([7.0, 8.0, 9.0], requires_grad=True)},
    )
    rec.close()
    run = open_run(path)
    np.testing.assert_array_equal(run.env_frames(), np.stack([good(0), good(1)]))
    np.testing.assert_array_equal(run.scalar("reward"), [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(run.scalar("terminated")[0], [True, False, True])
    np.testing.assert_array_equal(run.scalar("v")[1], [7, 8, 9])
    assert weights.grad is None


def test_count_done_refuses_meta_and_sparse_flags(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "r.zarr"
    opts = dict(num_envs=N, fps=30, writer="thread", video_length=1, video_interval=3)
    with Recorder(path, **opts) as rec:
        rec.capture(good(0))
        with pytest.raises(ValueError, match="done is on the meta device"):
            rec.count_done([1, 2], torch.empty((2, N), dtype=torch.bool, device="meta"))
        with pytest.raises(TypeError, match=r"done is a torch.sparse_coo tensor.*to_dense"):
            rec.count_done([1, 2], torch.ones((2, N), dtype=torch.bool).to_sparse())
        rec.count_done([1, 2], torch.tensor([[False, True, False], [False, False, False]]))
        rec.capture(good(3))
    np.testing.assert_array_equal(open_run(path).scalar("episode")[1], [0, 1, 0])


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


def test_masked_array_after_a_plain_one_of_the_same_shape_is_refused(tmp_path):
    # The checks are cached per input kind: a masked array of the plain one's shape and dtype
    # is another kind, not a cache hit whose mask is dropped.
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, writer="thread") as rec:
        rec.capture(good(0), reward=np.ones(N))
        with pytest.raises(TypeError, match="env_rgb is a numpy masked array"):
            rec.capture(np.ma.masked_array(good(1), mask=good(1) > 200), reward=np.ones(N))
        with pytest.raises(TypeError, match="reward is a numpy masked array"):
            rec.capture(good(1), reward=np.ma.masked_array(np.full(N, 2.0), mask=[0, 1, 0]))
        rec.capture(good(1), reward=np.full(N, 3.0))
    run = open_run(tmp_path / "r.zarr")
    np.testing.assert_array_equal(run.scalar("reward"), [[1.0] * N, [3.0] * N])


def test_numpy_and_torch_scalars_for_step_and_sim_time_are_stored_as_given(tmp_path):
    torch = pytest.importorskip("torch")
    calls = [
        dict(step=np.int64(3), sim_time=np.float32(0.25)),
        dict(step=np.array(5, np.uint32), sim_time=np.array(0.5)),
        dict(step=torch.tensor(7), sim_time=torch.tensor(0.75, dtype=torch.float64)),
        dict(step=np.uint64(9), sim_time=4),
    ]
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, writer="thread") as rec:
        for t, kwargs in enumerate(calls):
            rec.capture(good(t), **kwargs)
    run = open_run(tmp_path / "r.zarr")
    np.testing.assert_array_equal(run.frame_values("step"), [3, 5, 7, 9])
    np.testing.assert_array_equal(run.frame_values("sim_time"), [0.25, 0.5, 0.75, 4.0])


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


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_values_beyond_float32_are_counted_and_warned_once(tmp_path, writer):
    # Rewards and scalars are stored as float32: 1e39 becomes inf. The writer counts every such
    # value and the recorder warns once, naming the first; numpy's own cast warning is not shown.
    torch = pytest.importorskip("torch")
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, block_frames=4, writer=writer, scalar_names=("speed",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in range(10):
            reward = np.arange(N, dtype=np.float64)
            speed = torch.zeros(N, dtype=torch.float64)
            if t == 5:
                reward[1] = 1e39
            if t == 6:
                reward[2] = -1e39
                speed[0] = 3e300
            rec.capture(good(t), reward=reward, scalars={"speed": speed})
        rec.close()
    ours = [w for w in caught if "envreel" in str(w.message)]  # numpy warns of its cast too
    messages = [str(w.message) for w in ours]
    assert len(messages) == 1, messages
    assert ours[0].filename == __file__  # the loop's capture() or close(), not envreel
    for fragment in ("reward at env 1, step 5", "stored as inf", "3 such value(s) in this block"):
        assert fragment in messages[0], messages[0]
    assert rec.stats.inf_values == 3
    run = open_run(path)
    assert run.counters["inf_values"] == 3
    reward = run.scalar("reward")
    assert reward[5, 1] == np.inf and reward[6, 2] == -np.inf
    assert np.isfinite(np.delete(reward.ravel(), [5 * N + 1, 6 * N + 2])).all()
    np.testing.assert_array_equal(run.scalar("speed")[6], [np.inf, 0, 0])
    assert validate(str(path)) == []


def test_finite_values_count_no_inf(tmp_path):
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, writer="thread") as rec:
        rec.capture(good(0), reward=np.full(N, 3e38))
    assert rec.stats.inf_values == 0
    assert "inf_values" not in open_run(tmp_path / "r.zarr").counters


def _readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


# (id, frame t -> the same frame as another kind of input): every one is stored as frame t
FRAME_KINDS = [
    ("negative strides", lambda f: np.ascontiguousarray(f[:, ::-1, ::-1])[:, ::-1, ::-1]),
    ("reversed envs", lambda f: np.ascontiguousarray(f[::-1])[::-1]),
    ("bgr view of rgb", lambda f: np.ascontiguousarray(f[..., ::-1])[..., ::-1]),
    ("transposed view", lambda f: np.ascontiguousarray(f.transpose(0, 2, 1, 3)).swapaxes(1, 2)),
    ("read-only", _readonly),
    ("read-only rgba view", lambda f: _readonly(np.concatenate([f, f[..., :1]], -1))[..., :3]),
    ("broadcast env", lambda f: np.broadcast_to(f[:1], f.shape)),
    ("memmap", "memmap"),  # made in the test: a file under tmp_path
]


@pytest.mark.parametrize("make", [k[1] for k in FRAME_KINDS], ids=[k[0] for k in FRAME_KINDS])
def test_every_accepted_numpy_frame_kind_is_stored_as_given(tmp_path, make):
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, writer="thread") as rec:
        want = []
        for t in range(3):
            if make == "memmap":
                x = np.lib.format.open_memmap(tmp_path / f"{t}.npy", "w+", np.uint8, good(t).shape)
                x[:] = good(t)
            else:
                x = make(good(t))
            want.append(np.array(x))
            rec.capture(x)
    np.testing.assert_array_equal(open_run(tmp_path / "r.zarr").env_frames(), np.stack(want))


def test_every_accepted_torch_and_value_kind_is_stored_as_given(tmp_path):
    torch = pytest.importorskip("torch")
    t0, t1 = torch.from_numpy(good(0)), torch.from_numpy(good(1))
    f0 = t0.float() / 255
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, writer="thread", value_range=(0.0, 1.0))
    calls = [  # (frames, values, the frames stored)
        (f0.half(), dict(reward=[1, 2, 3], terminated=(0, 1, 0)), (f0.half().float() * 255)),
        (f0.bfloat16(), dict(reward=np.array([1, 0, 1], bool)), f0.bfloat16().float() * 255),
        (t1.flip(1).flip(1), dict(reward=torch.tensor([4, 5, 6], dtype=torch.uint16)), t1),
        (t0.expand(N, H, W, 3), dict(stale=torch.tensor([1, 0, 1], dtype=torch.uint8)), t0),
        (t1.to(torch.float64) / 255, dict(episode_step=[7, 8, 9]), t1.double()),
    ]
    for frames_in, values, _ in calls:
        rec.capture(frames_in, **values)
    rec.close()
    run = open_run(path)
    want = np.stack([np.rint(np.asarray(w, np.float64)).astype(np.uint8) for *_, w in calls])
    np.testing.assert_array_equal(run.env_frames(), want)
    np.testing.assert_array_equal(run.scalar("reward")[:3], [[1, 2, 3], [1, 0, 1], [4, 5, 6]])
    np.testing.assert_array_equal(run.scalar("terminated")[0], [False, True, False])
    np.testing.assert_array_equal(run.scalar("stale")[3], [True, False, True])
    np.testing.assert_array_equal(run.scalar("episode_step")[4], [7, 8, 9])
