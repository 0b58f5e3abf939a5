"""Input normalisation: classification, cached checks, the RGBA word copy, float conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envreel.capture import _frames as fr
from envreel.capture._inputs import Inputs


def test_is_torch_does_not_import_torch():
    import sys

    had = "torch" in sys.modules
    assert not fr.is_torch(np.zeros(3))
    assert ("torch" in sys.modules) == had


def test_importing_capture_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from envreel.capture import Recorder; "
        "r = Recorder('memory://x.zarr', num_envs=1, fps=30); "
        "r.capture(np.zeros((1, 4, 4, 3), np.uint8)); r.close(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_overlap_copy_self_test_passes_here():
    assert fr.overlap_copy_works()


@given(
    n=st.integers(1, 3),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    pad=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_word_copy_equals_plain_copy(n, h, w, pad, seed):
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (n, h, w + pad, 4), dtype=np.uint8)[:, :, :w]
    inp = fr.ImageInput("env_rgb", lead=(n,), shape=None, value_range=None)
    kind, payload = inp.check(rgba[..., :3])
    flat = np.full(n * h * w * 3 + 1, 77, np.uint8)
    dst = flat[:-1].reshape(n, h, w, 3)
    words = np.ndarray((n, h, w), np.uint32, buffer=flat, strides=(h * w * 3, w * 3, 3))
    inp.copy_host(kind, payload, dst, words)
    np.testing.assert_array_equal(dst, rgba[..., :3])


def test_plans():
    n, h, w = 2, 3, 4
    inp = fr.ImageInput("env_rgb", lead=(n,), shape=None, value_range=None)
    rgba = np.zeros((n, h, w, 4), np.uint8)
    assert inp.check(np.zeros((n, h, w, 3), np.uint8))[0] == fr.NP_COPY
    assert inp.check(rgba)[0] == fr.NP_WORDS
    assert inp.check(rgba[..., :3])[0] == fr.NP_WORDS
    # every other pixel: still 4 readable bytes per pixel start
    assert inp.check(np.zeros((n, h, w * 2, 3), np.uint8)[:, :, ::2])[0] == fr.NP_WORDS
    assert inp.check(np.asfortranarray(rgba[..., :3]))[0] == fr.NP_COPY  # channels apart


def test_float_conversion_rounds_to_nearest():
    inp = fr.ImageInput("env_rgb", lead=(1,), shape=None, value_range=(0.0, 2.0))
    x = np.array([0.0, 2.0, 1.0, 0.0039, 0.0040, 1.9999], np.float32).reshape(1, 1, 2, 3)
    kind, payload = inp.check(x)
    dst = np.zeros((1, 1, 2, 3), np.uint8)
    inp.copy_host(kind, payload, dst, None)
    # round((x - lo) / (hi - lo) * 255)
    np.testing.assert_array_equal(dst.ravel(), [0, 255, 128, 0, 1, 255])


def test_value_input_checks_are_cached_but_shape_changes_are_caught():
    v = fr.ValueInput("reward", kind="float", num_envs=3)
    assert v.check(np.zeros(3))[0] is False
    assert v.check([1, 2, 3])[1].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"reward must have shape \(3,\)"):
        v.check(np.zeros(4))


def test_cuda_device_is_fixed_by_the_first_cuda_input_for_every_input():
    torch = pytest.importorskip("torch")
    cuda = fr.CudaDevice()
    cuda.check("env_rgb", torch.device("cuda", 0))
    cuda.check("reward", torch.device("cuda", 0))
    with pytest.raises(ValueError, match=r"reward is on cuda:1, .* inputs are on cuda:0"):
        cuda.check("reward", torch.device("cuda", 1))
    # a recorder's checks share one record
    inputs = Inputs(
        3,
        env_frame_shape=None,
        global_frame_shape=(4, 4),
        value_range=None,
        scalar_names=("speed",),
        env_pose_per_frame=False,
        global_pose_per_frame=False,
        step_dt=0.1,
    )
    records = {inputs.env.cuda, inputs.glob.cuda, inputs.scalars["speed"].cuda}
    records |= {v.cuda for v in inputs.values.values()}
    assert records == {inputs.cuda}


def test_a_rejected_call_does_not_fix_the_cuda_device(monkeypatch):
    # The first capture's env frames are on cuda:1 but its reward is bad: the call is refused
    # and leaves no trace, so the next call may put everything on cuda:0.
    torch = pytest.importorskip("torch")
    inputs = Inputs(
        3,
        env_frame_shape=(2, 2),
        global_frame_shape=None,
        value_range=None,
        scalar_names=(),
        env_pose_per_frame=False,
        global_pose_per_frame=False,
        step_dt=0.1,
    )
    frames = np.zeros((3, 2, 2, 3), np.uint8)

    def env_on(index):
        def check(x):
            inputs.cuda.check("env_rgb", torch.device("cuda", index))
            return fr.NP_COPY, x

        return check

    monkeypatch.setattr(inputs.env, "check", env_on(1))
    inputs.values["terminated"].check(np.zeros(3, bool))  # a record the refusal must drop
    args = dict(global_rgb=None, step=None, sim_time=None, terminated=None, truncated=None)
    args |= dict(stale=None, episode_step=None, scalars=None)
    args |= dict(env_camera_poses=None, global_camera_pose=None)
    with pytest.raises(ValueError, match="reward must have shape"):
        inputs.check(frames, reward=np.zeros(4), **args)
    assert inputs.cuda.device is None
    assert inputs.values["terminated"]._key is None
    monkeypatch.setattr(inputs.env, "check", env_on(0))
    inputs.check(frames, reward=np.zeros(3), **args)
    assert inputs.cuda.device == torch.device("cuda", 0)
    # once a call was accepted, a refused one keeps the device
    monkeypatch.setattr(inputs.env, "check", env_on(0))
    with pytest.raises(ValueError, match="reward must have shape"):
        inputs.check(frames, reward=np.zeros(4), **args)
    assert inputs.cuda.device == torch.device("cuda", 0)


def test_check_step():
    assert fr.check_step(None, None) == 0
    assert fr.check_step(None, 7) == 8
    assert fr.check_step(np.int64(9), 7) == 9
    with pytest.raises(ValueError, match="increase"):
        fr.check_step(7, 7)
    with pytest.raises(TypeError):
        fr.check_step(True, None)


def test_whole_pixel_layouts_are_recognised():
    """CUDA frames are copied 4 bytes a pixel (no kernel) only where all 4 bytes of every pixel
    lie in the tensor's storage; the layout test runs on CPU tensors (same strides, same storage
    rules)."""
    torch = pytest.importorskip("torch")
    rgba = torch.zeros((2, 3, 5, 4), dtype=torch.uint8)
    assert fr._pixel_strides(rgba.shape, rgba.stride())
    assert fr._pixel_strides(rgba[..., :3].shape, rgba[..., :3].stride())
    assert fr._pixel_strides(rgba[0, ..., :3].shape, rgba[0, ..., :3].stride())  # a global view
    rgb = rgba[..., :3].contiguous()
    assert not fr._pixel_strides(rgb.shape, rgb.stride())
    wide = torch.cat([rgba, rgba], 2)[:, :, :5, :3]
    assert not fr._pixel_strides(wide.shape, wide.stride())
    assert fr._pixels_readable(rgba[..., :3])
    flat = torch.zeros(2 * 3 * 5 * 4 - 1, dtype=torch.uint8)
    tight = flat.as_strided((2, 3, 5, 3), (60, 20, 4, 1))
    assert fr._pixel_strides(tight.shape, tight.stride())
    assert not fr._pixels_readable(tight)  # the last pixel's 4th byte is past the storage


def test_whole_pixel_ring_fields_need_enough_blocks_in_the_budget():
    """CUDA frames go to the ring as RGBA only where 3 such blocks fit the queue budget (host
    frames: 2); otherwise the ring keeps RGB and more blocks."""
    from envreel.capture._open import rgba_fields
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    spec = RunSpec(num_envs=4, env_frame_shape=(8, 8), fps=30)
    rgba = block_nbytes(spec, value_range=False, rgba=("env_frames",))
    for kind, blocks in ((fr.CUDA_PIXELS, 3), (fr.NP_WORDS, 2)):
        kinds = {"env_frames": kind, "global_frames": None}
        assert rgba_fields(spec, kinds, blocks * rgba, False) == ("env_frames",)
        assert rgba_fields(spec, kinds, blocks * rgba - 1, False) == ()
    assert rgba_fields(spec, {"env_frames": fr.CUDA, "global_frames": None}, 10 * rgba, False) == ()
