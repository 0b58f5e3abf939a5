"""CUDA inputs: exact round trips, source safety, no host synchronisation (marker ``gpu``)."""

from __future__ import annotations

import numpy as np
import pytest
from recorder_helpers import frames, global_frame

from envreel.capture import Recorder, RecorderError
from envreel.schemas import open_run, validate

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

N, H, W = 6, 24, 32
GH, GW = 20, 36


@pytest.fixture(autouse=True, params=["driver", "torch"])
def copy_mode(request, monkeypatch):
    """Every test runs with the driver's copies and with torch's (the fallback)."""
    if request.param == "torch":
        monkeypatch.setenv("ENVREEL_CUDA_COPY", "torch")
    else:
        monkeypatch.delenv("ENVREEL_CUDA_COPY", raising=False)
    return request.param


def _dev():
    return torch.device("cuda", torch.cuda.current_device())


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_cuda_roundtrip_with_windows_and_values(tmp_path, writer, copy_mode):
    dev = _dev()
    rgba = torch.zeros((N, H, W, 4), dtype=torch.uint8, device=dev)
    glob = torch.zeros((1, GH, GW, 4), dtype=torch.uint8, device=dev)
    reward = torch.zeros(N, device=dev)
    term = torch.zeros(N, dtype=torch.bool, device=dev)
    trunc = torch.zeros(N, dtype=torch.bool, device=dev)
    speed = torch.zeros(N, dtype=torch.float64, device=dev)
    path = tmp_path / "cuda.zarr"
    kept = []
    rng = np.random.default_rng(0)
    dones = rng.random((60, N)) < 0.15
    with Recorder(
        path,
        num_envs=N,
        fps=30,
        block_frames=8,
        scalar_names=("speed",),
        video_length=9,
        video_interval=20,
        frame_stride=2,
        writer=writer,
    ) as rec:
        for t in range(60):
            rgba.copy_(torch.from_numpy(frames(t, N, H, W, channels=4)))
            glob[0, ..., :3].copy_(torch.from_numpy(global_frame(t, GH, GW)))
            reward.fill_(t * 0.5)
            term.copy_(torch.from_numpy(dones[t]))
            speed.copy_(torch.arange(N, dtype=torch.float64) * t)
            if rec.capture(
                rgba[..., :3],
                glob[..., :3],
                reward=reward,
                terminated=term,
                truncated=trunc,
                scalars={"speed": speed},
            ):
                kept.append(t)
            # The simulator overwrites its buffers right away, on the same stream.
            rgba.fill_(255)
            reward.fill_(-1)
            term.fill_(True)
            glob.fill_(0)
    assert rec._ring.memory.pinned
    assert (rec._copier.driver is not None) == (copy_mode == "driver")
    assert kept == [0, 2, 4, 6, 8, 20, 22, 24, 26, 28, 40, 42, 44, 46, 48]
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in kept])
    )
    np.testing.assert_array_equal(
        run.global_frames(), np.stack([global_frame(t, GH, GW) for t in kept])
    )
    np.testing.assert_array_equal(run.scalar("reward")[:, 0], np.array(kept) * 0.5)
    np.testing.assert_array_equal(run.scalar("terminated"), dones[kept])
    np.testing.assert_array_equal(run.scalar("speed"), np.array(kept)[:, None] * np.arange(N))
    # episodes were counted on the device over every step, kept or not
    np.testing.assert_array_equal(run.scalar("episode"), np.cumsum(dones, 0)[kept])
    np.testing.assert_array_equal(run.frame_values("clip"), np.repeat([0, 1, 2], 5))
    assert validate(str(path)) == []


def test_source_overwritten_after_slow_gpu_work_is_safe(tmp_path):
    """The copy waits for the render; the next render waits for the copy (same stream)."""
    dev = _dev()
    a = torch.randn(2048, 2048, device=dev)
    rgba = torch.zeros((N, H, W, 4), dtype=torch.uint8, device=dev)
    src = [torch.from_numpy(frames(t, N, H, W, channels=4)).to(dev) for t in range(20)]
    torch.cuda.synchronize()
    path = tmp_path / "safe.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=8) as rec:
        for t in range(20):
            for _ in range(5):
                a = a @ a  # several ms of GPU work queued before the "render"
                a /= a.norm()
            rgba.copy_(src[t])  # the render, queued behind the matmuls
            rec.capture(rgba[..., :3])
            rgba.fill_(0)  # the next render, queued right after capture() returned
    np.testing.assert_array_equal(
        open_run(path).env_frames(),
        np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(20)]),
    )


def test_temporary_source_freed_after_capture(tmp_path):
    """A float temporary dies after capture(); the allocator must not reuse it too early."""
    dev = _dev()
    path = tmp_path / "tmp.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4, value_range=(0.0, 1.0)) as rec:
        for t in range(12):
            u8 = torch.from_numpy(frames(t, N, H, W)).to(dev)
            rec.capture(u8.float() / 255.0)  # the temporary is freed when capture() returns
            del u8
            junk = torch.full((N, H, W, 3), 0.5, device=dev)  # likely the same memory
            junk += 1
    np.testing.assert_array_equal(
        open_run(path).env_frames(), np.stack([frames(t, N, H, W) for t in range(12)])
    )


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_capture_never_synchronises_the_device(tmp_path, writer):
    dev = _dev()
    rgba = torch.zeros((N, H, W, 4), dtype=torch.uint8, device=dev)
    reward = torch.zeros(N, device=dev)
    done = torch.zeros(N, dtype=torch.bool, device=dev)
    # One block holds every frame: the writer (whose event waits are its own business) does
    # not run while the debug mode is on.
    with Recorder(tmp_path / "s.zarr", num_envs=N, fps=30, block_frames=64, writer=writer) as rec:
        rec.capture(rgba[..., :3], reward=reward, terminated=done)  # allocates the ring
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(1, 30):
                rec.capture(rgba[..., :3], reward=reward, terminated=done, truncated=done)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert open_run(tmp_path / "s.zarr").num_frames == 30


def test_cuda_float_out_of_range_is_reported(tmp_path):
    dev = _dev()
    good = torch.full((N, H, W, 3), 0.5, device=dev)
    bad = good.clone()
    bad[2, 3, 4, 1] = float("nan")
    rec = Recorder(
        tmp_path / "raise.zarr",
        num_envs=N,
        fps=30,
        block_frames=2,
        value_range=(0, 1),
        on_error="raise",
    )
    rec.capture(good)
    rec.capture(bad)  # checked on the writer thread: no host read of the device here
    with pytest.raises(RecorderError, match=r"env_rgb at step 1 .*outside value_range=\(0, 1\)"):
        for _ in range(200):
            rec.capture(good)
            torch.cuda.synchronize()
        rec.close()
    rec.close()
    assert open_run(tmp_path / "raise.zarr").num_frames == 0  # that block was not written

    with pytest.warns(RuntimeWarning, match="outside value_range"):
        with Recorder(
            tmp_path / "warn.zarr", num_envs=N, fps=30, block_frames=2, value_range=(0, 1)
        ) as rec:
            rec.capture(good)
            rec.capture(bad * 3)
    run = open_run(tmp_path / "warn.zarr")
    assert run.num_frames == 2 and run.counters["invalid_frames"] == 1
    assert run.env_frames()[1].max() == 255  # clamped


def test_cuda_episode_step_and_numpy_flags_mixed(tmp_path):
    dev = _dev()
    rgb = torch.zeros((N, H, W, 3), dtype=torch.uint8, device=dev)
    length = torch.zeros(N, dtype=torch.int64, device=dev)
    with Recorder(tmp_path / "m.zarr", num_envs=N, fps=30, block_frames=4) as rec:
        for t in range(10):
            length += 1
            done = np.arange(N) == t % N
            rec.capture(rgb, episode_step=length, terminated=done)
    run = open_run(tmp_path / "m.zarr")
    np.testing.assert_array_equal(
        run.scalar("episode_step"), np.arange(1, 11)[:, None].repeat(N, 1)
    )
    want = np.cumsum(np.arange(N)[None, :] == (np.arange(10) % N)[:, None], 0)
    np.testing.assert_array_equal(run.scalar("episode"), want)


def test_cuda_episode_step_outside_int32_is_reported(tmp_path):
    # A CUDA episode_step is checked after its copy (the caller never waits on the device):
    # int64 values beyond int32 wrap in the int32 ring and show as negative, as negatives do.
    dev = _dev()
    rgb = torch.zeros((N, H, W, 3), dtype=torch.uint8, device=dev)
    good = torch.arange(N, dtype=torch.int64, device=dev)
    bad = good.clone()
    bad[2], bad[4] = 2**31 + 5, -3
    rec = Recorder(tmp_path / "raise.zarr", num_envs=N, fps=30, block_frames=2, on_error="raise")
    rec.capture(rgb, episode_step=good)
    rec.capture(rgb, episode_step=bad)
    with pytest.raises(RecorderError, match=r"episode_step at env 2, step 1 is -2147483643 .*"):
        for _ in range(200):
            rec.capture(rgb, episode_step=good)
            torch.cuda.synchronize()
        rec.close()
    rec.close()
    assert open_run(tmp_path / "raise.zarr").num_frames == 0  # that block was not written

    done = np.zeros(N, bool)
    with pytest.warns(RuntimeWarning, match=r"2 such value\(s\) .*derived from the done flags"):
        with Recorder(tmp_path / "warn.zarr", num_envs=N, fps=30, block_frames=2) as rec:
            rec.capture(rgb, episode_step=good, terminated=done)
            rec.capture(rgb, episode_step=bad, terminated=done)
    steps = open_run(tmp_path / "warn.zarr").scalar("episode_step")
    want = np.arange(N)
    want[2], want[4] = 1, 1  # derived: one step after the run's first frame
    np.testing.assert_array_equal(steps, [np.arange(N), want])


def test_cuda_sparse_value_after_dense_ones_is_refused(tmp_path):
    dev = _dev()
    rgb = torch.zeros((N, H, W, 3), dtype=torch.uint8, device=dev)
    reward = torch.ones(N, device=dev)
    with Recorder(tmp_path / "s.zarr", num_envs=N, fps=30) as rec:
        rec.capture(rgb, reward=reward)  # the dense kinds pass; the next call takes the fast path
        with pytest.raises(TypeError, match="reward is a torch.sparse_coo tensor"):
            rec.capture(rgb, reward=reward.to_sparse())
        with pytest.raises(TypeError, match="env_rgb is a torch.sparse_coo tensor"):
            rec.capture(rgb.to_sparse(), reward=reward)
        rec.capture(rgb, reward=reward)
    assert open_run(tmp_path / "s.zarr").num_frames == 2


def test_driver_errors_are_named(copy_mode):
    from types import SimpleNamespace

    from envreel.capture._cuda import CudaCopier, _driver

    drv = _driver()
    if copy_mode == "torch":
        assert drv is None
        return
    with pytest.raises(RuntimeError, match=r"cuEventRecord failed with CUDA_ERROR_\w+"):
        CudaCopier._record(drv, SimpleNamespace(cuda_event=None), None)


def _layouts(dev):
    """(name, make(t) -> CUDA frames of step t, plan kind): every layout a camera hands out."""
    from envreel.capture import _frames as fr

    def rgba(t):
        return torch.from_numpy(frames(t, N, H, W, channels=4)).to(dev)

    def tight_rgb_view(t):
        # an RGB view of 4-byte pixels whose storage ends right after the last pixel's blue
        flat = torch.zeros(N * H * W * 4 - 1, dtype=torch.uint8, device=dev)
        flat[:] = rgba(t).reshape(-1)[:-1]
        return flat.as_strided((N, H, W, 3), (H * W * 4, W * 4, 4, 1))

    return [
        ("rgb view of rgba", lambda t: rgba(t)[..., :3], fr.CUDA_PIXELS),
        ("rgba", rgba, fr.CUDA_PIXELS),
        ("contiguous rgb", lambda t: rgba(t)[..., :3].contiguous(), fr.CUDA),
        ("rgb view, storage ends at its last byte", tight_rgb_view, fr.CUDA),
        ("rgb view of a wider image", lambda t: torch.cat([rgba(t)] * 2, 2)[:, :, :W, :3], fr.CUDA),
    ]


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_every_cuda_frame_layout_is_stored_exactly(tmp_path, writer):
    """Whole-pixel copies (RGBA and its RGB view) and kernel copies (any other layout) store the
    same RGB bytes, also when the layout changes mid-run (the ring's field stays as the first
    capture made it)."""
    dev = _dev()
    layouts = _layouts(dev)
    for first in (0, 2):  # a run that began with whole pixels, and one that began with RGB
        path = tmp_path / f"{writer}-{first}.zarr"
        with Recorder(path, num_envs=N, fps=30, block_frames=4, writer=writer) as rec:
            for t in range(11):
                name, make, kind = layouts[(first + t) % len(layouts)]
                x = make(t)
                assert rec._inputs.env.check(x)[0] == kind, name
                rec.capture(x, reward=torch.full((N,), float(t), device=dev))
                x.fill_(3)  # the next render overwrites the source at once
        run = open_run(path)
        want = np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(11)])
        np.testing.assert_array_equal(run.env_frames(), want)
        np.testing.assert_array_equal(run.scalar("reward")[:, 0], np.arange(11.0))


def test_cuda_input_after_host_rgba_input(tmp_path):
    """A run that began with host RGBA input has an RGBA ring field that is not page-locked:
    CUDA frames after it are still stored exactly (with a warning that copies are synchronous)."""
    dev = _dev()
    host = frames(0, N, H, W, channels=4)
    path = tmp_path / "mixed.zarr"
    with Recorder(path, num_envs=N, fps=30, block_frames=4) as rec:
        rec.capture(host[..., :3], reward=np.zeros(N, np.float32))
        with pytest.warns(RuntimeWarning, match="not page-locked"):
            rec.capture(
                torch.from_numpy(frames(1, N, H, W, channels=4)).to(dev)[..., :3],
                reward=torch.ones(N, device=dev),
            )
        for t in range(2, 7):
            rgba = torch.from_numpy(frames(t, N, H, W, channels=4)).to(dev)
            rec.capture(rgba[..., :3], reward=torch.full((N,), float(t), device=dev))
            rgba.fill_(7)
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(7)])
    )
    np.testing.assert_array_equal(run.scalar("reward")[:, 0], np.arange(7.0))


@pytest.mark.parametrize("staging_bytes", [None, 1])
def test_grouped_copies_across_streams_blocks_and_close(tmp_path, monkeypatch, staging_bytes):
    """Frames go to the host a group of captures at a time: groups end at block ends (blocks of
    6 with groups of 4), when the caller's current stream changes mid-group, and at close on
    yet another stream; every frame and value is stored exactly. With a staging budget too
    small for two captures a set, each capture is its own group (three sets)."""
    from envreel.capture import _cuda

    if staging_bytes is not None:
        monkeypatch.setattr(_cuda, "STAGING_BYTES", staging_bytes)
    dev = _dev()
    streams = [torch.cuda.current_stream(dev), torch.cuda.Stream(dev), torch.cuda.Stream(dev)]
    rgba = torch.zeros((N, H, W, 4), dtype=torch.uint8, device=dev)
    glob = torch.zeros((GH, GW, 3), dtype=torch.uint8, device=dev)
    reward = torch.zeros(N, device=dev)
    a = torch.randn(1024, 1024, device=dev)
    path = tmp_path / "groups.zarr"
    rec = Recorder(path, num_envs=N, fps=30, block_frames=6, writer="thread")
    for t in range(23):
        s = streams[(t // 3) % 2]  # the stream changes every 3 captures
        s.wait_stream(streams[0])
        streams[0].wait_stream(s)
        with torch.cuda.stream(s):
            for _ in range(3):
                a = a @ a  # GPU work queued before the "render": the copies must wait for it
                a /= a.norm()
            rgba.copy_(torch.from_numpy(frames(t, N, H, W, channels=4)).to(dev))
            glob.copy_(torch.from_numpy(global_frame(t, GH, GW)).to(dev))
            reward.fill_(float(t))
            rec.capture(rgba[..., :3], glob, reward=reward)
            rgba.fill_(9)  # the next render overwrites the sources at once
            glob.fill_(9)
            reward.fill_(-1)
    assert rec._copier.group_size == (4 if staging_bytes is None else 1)
    assert len(rec._copier._sets) == (2 if staging_bytes is None else 3)
    with torch.cuda.stream(streams[2]):
        rec.close()  # 23 = 3 blocks of 6 + 5: the last group is copied at close
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in range(23)])
    )
    np.testing.assert_array_equal(
        run.global_frames(), np.stack([global_frame(t, GH, GW) for t in range(23)])
    )
    np.testing.assert_array_equal(run.scalar("reward")[:, 0], np.arange(23.0))


def test_reused_buffers_windows_and_stale_done(tmp_path):
    """A simulator's reused buffers (one value alternating between two tensors, as
    ``RecordEnvs`` hands its episode steps), steps outside the windows counted on the device,
    and ``stale="done"``: frames, values and episodes stored exactly."""
    dev = _dev()
    rgba = torch.zeros((N, H, W, 4), dtype=torch.uint8, device=dev)
    glob = torch.zeros((GH, GW, 3), dtype=torch.uint8, device=dev)
    rewards = [torch.zeros(N, device=dev), torch.zeros(N, device=dev)]
    term = torch.zeros(N, dtype=torch.bool, device=dev)
    trunc = torch.zeros(N, dtype=torch.bool, device=dev)
    length = torch.zeros(N, dtype=torch.int32, device=dev)
    rng = np.random.default_rng(3)
    dones = rng.random((90, N)) < 0.1
    path = tmp_path / "reused.zarr"
    kept = []
    with Recorder(
        path, num_envs=N, fps=30, block_frames=8, video_length=30, video_interval=40
    ) as rec:
        for t in range(90):
            term.copy_(torch.from_numpy(dones[t]).to(dev))
            if not rec.wants(t):
                rec.capture(None, step=t, terminated=term, truncated=trunc)
                continue
            rgba.copy_(torch.from_numpy(frames(t, N, H, W, channels=4)).to(dev))
            glob.copy_(torch.from_numpy(global_frame(t, GH, GW)).to(dev))
            reward = rewards[t % 2]
            reward.fill_(float(t))
            length.fill_(t)
            rec.capture(
                rgba[..., :3],
                glob,
                step=t,
                reward=reward,
                terminated=term,
                truncated=trunc,
                episode_step=length,
                stale="done",
            )
            kept.append(t)
            for x in (rgba, glob, reward, term, length):
                x.fill_(1)  # the next step overwrites every source at once
    run = open_run(path)
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W, channels=4)[..., :3] for t in kept])
    )
    np.testing.assert_array_equal(
        run.global_frames(), np.stack([global_frame(t, GH, GW) for t in kept])
    )
    np.testing.assert_array_equal(run.scalar("reward")[:, 0], np.array(kept, float))
    np.testing.assert_array_equal(run.scalar("episode_step")[:, 0], kept)
    np.testing.assert_array_equal(run.scalar("terminated"), dones[kept])
    np.testing.assert_array_equal(run.scalar("stale"), dones[kept])
    # a stale done frame keeps the finished episode's index: the count of done flags before it
    np.testing.assert_array_equal(run.scalar("episode"), (np.cumsum(dones, 0) - dones)[kept])


def test_same_kind_of_cuda_input_takes_the_fast_path(monkeypatch):
    # A CUDA tensor of the kind the last call passed skips every check after one comparison:
    # the second call classifies nothing and converts nothing.
    from envreel.capture import _frames as fr

    dev = _dev()
    env = fr.ImageInput("env_rgb", lead=(N,), shape=None, value_range=None)
    reward = fr.ValueInput("reward", kind="float", num_envs=N)
    x = torch.zeros((N, H, W, 3), dtype=torch.uint8, device=dev)
    r = torch.zeros(N, device=dev)
    assert env.check(x) == (fr.CUDA, x) and reward.check(r) == (True, r)

    def refuse(*args, **kwargs):
        raise AssertionError("the slow path ran")

    monkeypatch.setattr(fr.ImageInput, "_classify", refuse)
    monkeypatch.setattr(fr, "plain_tensor", refuse)
    assert env.check(x)[1] is x
    assert reward.check(r)[1] is r


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_refused_first_capture_leaves_the_cuda_device_open(tmp_path):
    d0, d1 = torch.device("cuda", 0), torch.device("cuda", 1)
    good = torch.from_numpy(frames(0, N, H, W))
    with Recorder(tmp_path / "r.zarr", num_envs=N, fps=30) as rec:
        with pytest.raises(ValueError, match="reward must have shape"):
            rec.capture(good.to(d1), reward=torch.ones(N + 1, device=d1))
        rec.capture(good.to(d0), reward=torch.ones(N, device=d0))
        with pytest.raises(ValueError, match="reward is on cuda:1"):
            rec.capture(good.to(d0), reward=torch.ones(N, device=d1))
    np.testing.assert_array_equal(open_run(tmp_path / "r.zarr").env_frames()[0], good.numpy())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_inputs_on_another_cuda_device_are_refused(tmp_path):
    # The copies are ordered on the first CUDA input's device: a value on another one could be
    # read before the work that writes it is done, so every CUDA input must be on one device.
    d0, d1 = torch.device("cuda", 0), torch.device("cuda", 1)
    good = torch.from_numpy(frames(0, N, H, W)).to(d0)
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, scalar_names=("speed",), global_frame_shape=(GH, GW))
    glob = torch.from_numpy(global_frame(0, GH, GW))
    cases = [
        (dict(reward=torch.ones(N, device=d1)), "reward is on cuda:1"),
        (dict(terminated=torch.zeros(N, dtype=torch.bool, device=d1)), "terminated is on cuda:1"),
        (dict(scalars={"speed": torch.ones(N, device=d1)}), "scalars['speed'] is on cuda:1"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(ValueError, match="recorder's CUDA inputs are on cuda:0") as info:
            rec.capture(good, glob.to(d0), **kwargs)
        assert fragment in str(info.value)
    with pytest.raises(ValueError, match="global_rgb is on cuda:1"):
        rec.capture(good, glob.to(d1))
    rec.capture(good, glob.to(d0), reward=torch.ones(N, device=d0))
    with pytest.raises(ValueError, match="done is on cuda:1"):
        rec.count_done([1], torch.zeros((1, N), dtype=torch.bool, device=d1))
    rec.close()
    run = open_run(path)
    assert run.num_frames == 1
    np.testing.assert_array_equal(run.env_frames()[0], frames(0, N, H, W))
    np.testing.assert_array_equal(run.scalar("reward")[0], np.ones(N))
