"""RecordEnvs on Isaac Lab 3.0 and 2.x stand-ins, into real stores read back with open_run.

The stand-in env (tests/isaaclab_standins.py) renders deterministic frames into one reused rgba
buffer (rgb is a strided view of it), resets finished envs inside ``step()`` on a staggered
schedule, and logs in ``truth`` what a perfect recorder stores for each step.
"""

from __future__ import annotations

import warnings

import isaaclab_standins as standins
import numpy as np
import pytest
from envreel.capture.isaaclab import (
    EnvCameraCfg,
    GlobalCameraCfg,
    RecordEnvs,
    RecorderCfg,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
)
from envreel.schemas import geometry as geo
from envreel.schemas import open_run, validate

torch = pytest.importorskip("torch")

VERSIONS = ("3.0.0", "2.2.0")
H, W = 6, 8


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def make(monkeypatch, version="3.0.0", **kwargs):
    """Fake Isaac Lab modules of ``version`` and a stand-in env inside two wrappers."""
    standins.install_fake_isaaclab(monkeypatch, version=version)
    kwargs.setdefault("num_envs", 4)
    return standins.make_fake_env(version=version, height=H, width=W, **kwargs)


def run_steps(env, steps: int, *, reset: bool = True) -> None:
    u = env.unwrapped
    if reset:
        env.reset()
    for _ in range(steps):
        env.step(torch.zeros((u.num_envs, u.action_dim)))


def stacked(truth, name):
    return np.stack([getattr(t, name) for t in truth])


# ---------------------------------------------------------------------------------------------
# frames, episodes, stale flags
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_records_exact_frames_episodes_and_stale_flags(tmp_path, monkeypatch, version) -> None:
    env = make(monkeypatch, version)  # envs end after 3, 4, 5, 5 steps, again and again
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 13)
    rec.close()

    truth = env.unwrapped.truth
    run = open_run(url)
    assert run.closed and run.num_frames == 14 and not validate(url)
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb"))
    np.testing.assert_array_equal(run.global_frames(), stacked(truth, "global_rgb")[:, 0])
    np.testing.assert_array_equal(run.frame_values("step"), np.arange(14))
    np.testing.assert_allclose(run.frame_values("sim_time"), np.arange(14) / 30.0)
    np.testing.assert_array_equal(run.scalar("episode"), stacked(truth, "episode_index"))
    np.testing.assert_array_equal(run.scalar("episode_step"), stacked(truth, "episode_step"))
    # Stale: the frames of envs reset in a step (rendered before the reset). The stand-in renders
    # in reset(); Isaac Lab 3.0 does so only with num_rerenders_on_reset > 0, so the wrapper marks
    # the reset() frame stale whenever it does not re-render.
    stale = run.scalar("stale")
    assert stale[0].all()
    np.testing.assert_array_equal(stale[1:], stacked(truth, "stale")[1:])
    assert stale[1:].sum(axis=0).tolist() == [4, 3, 2, 2]  # env 0 at steps 3, 6, 9, 12; ...
    np.testing.assert_array_equal(run.scalar("reward")[1:], stacked(truth, "reward")[1:])
    assert np.isnan(run.scalar("reward")[0]).all()  # no reward before the first step
    np.testing.assert_array_equal(run.scalar("terminated"), stacked(truth, "terminated"))
    np.testing.assert_array_equal(run.scalar("truncated"), stacked(truth, "truncated"))
    # A stale frame shows the finished episode's last step; the next frame the new episode.
    assert run.scalar("episode_step")[3, 0] == 3 and run.scalar("episode")[3, 0] == 0
    assert run.scalar("episode_step")[4, 0] == 1 and run.scalar("episode")[4, 0] == 1
    assert [(c.start_frame, c.stop_frame) for c in run.clips] == [(0, 14)]
    assert run.counters["dropped_frames"] == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_rerender_on_reset_frames_are_fresh(tmp_path, monkeypatch, version) -> None:
    env = make(monkeypatch, version, num_rerenders_on_reset=1)
    url = tmp_path / "run.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = RecordEnvs(env, url)
        run_steps(rec, 11)
        rec.close()
    truth = env.unwrapped.truth
    run = open_run(url)
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb"))
    assert not run.scalar("stale").any()
    np.testing.assert_array_equal(run.scalar("episode"), stacked(truth, "episode_index"))
    np.testing.assert_array_equal(run.scalar("episode_step"), stacked(truth, "episode_step"))
    assert run.scalar("episode")[3, 0] == 1 and run.scalar("episode_step")[3, 0] == 0
    assert run.source["num_rerenders_on_reset"] == 1


def test_episode_steps_follow_the_env_when_its_lengths_are_randomised(tmp_path, monkeypatch):
    # RSL-RL's runner starts training with episode_length_buf randomised (init_at_random_ep_len).
    env = make(monkeypatch, max_episode_length=9, terminate_after=[20, 20, 20, 20])
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    rec.reset()
    u = env.unwrapped
    u.episode_length_buf = torch.tensor([0, 3, 6, 8])  # a new tensor, as RSL-RL assigns one
    run_steps(rec, 6, reset=False)
    rec.close()
    truth = u.truth
    run = open_run(url)
    np.testing.assert_array_equal(run.scalar("episode_step"), stacked(truth, "episode_step"))
    np.testing.assert_array_equal(run.scalar("episode"), stacked(truth, "episode_index"))
    assert run.scalar("episode_step")[1].tolist() == [1, 4, 7, 9]  # env 3 times out, stale


@pytest.mark.parametrize("wrappers", [0, 3])
def test_without_the_reset_frame(tmp_path, monkeypatch, wrappers) -> None:
    env = make(monkeypatch, wrappers=wrappers)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(record_reset=False))
    run_steps(rec, 7)
    rec.close()
    truth = env.unwrapped.truth[1:]
    run = open_run(url)
    np.testing.assert_array_equal(run.frame_values("step"), np.arange(1, 8))
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb"))
    np.testing.assert_array_equal(run.scalar("episode_step"), stacked(truth, "episode_step"))
    np.testing.assert_array_equal(run.scalar("episode"), stacked(truth, "episode_index"))
    np.testing.assert_array_equal(run.scalar("stale"), stacked(truth, "stale"))


def test_a_second_reset_is_passed_through(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    rec.reset()
    obs, extras = rec.reset()  # the step counter did not advance: nothing to record
    assert obs is env.unwrapped.obs_buf and extras is env.unwrapped.extras
    run_steps(rec, 2, reset=False)
    rec.close()
    assert open_run(url).frame_values("step").tolist() == [0, 1, 2]


def test_step_and_reset_return_what_the_env_returns(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    u = env.unwrapped
    rec = RecordEnvs(env, tmp_path / "run.zarr")
    assert rec.unwrapped is u and rec.env is env
    obs, extras = rec.reset(seed=3)
    assert obs is u.obs_buf and extras is u.extras
    out = rec.step(torch.zeros((4, 2)))
    assert out[1] is u.reward_buf and out[2] is u.reset_terminated and out[3] is u.reset_time_outs
    rec.close()


# ---------------------------------------------------------------------------------------------
# static data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_static_data_from_the_camera_configs(tmp_path, monkeypatch, version) -> None:
    env = make(monkeypatch, version, global_eye=(12.0, -12.0, 9.0))
    u = env.unwrapped
    origins = u.scene.env_origins
    origins = origins.torch if hasattr(origins, "torch") else origins
    cam = EnvCameraCfg(width=W, height=H)
    top = GlobalCameraCfg(
        eye=(12.0, -12.0, 9.0), lookat=tuple(origins.double().mean(0).tolist()), width=16, height=9
    )
    url = tmp_path / "run.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the config poses agree with the sensors'
        rec = RecordEnvs(env, url, RecorderCfg(env_camera=cam, global_camera=top))
    run_steps(rec, 2)
    rec.close()

    run = open_run(url)
    np.testing.assert_array_equal(run.env_origins, origins.numpy().astype(np.float64))
    cams = run.cameras
    np.testing.assert_array_equal(cams.env_pose, env_camera_poses(origins, cam))  # exact float64
    np.testing.assert_array_equal(cams.global_pose, global_camera_pose(top))
    np.testing.assert_allclose(cams.env_intrinsics, np.repeat(camera_intrinsics(cam)[None], 4, 0))
    np.testing.assert_allclose(cams.global_intrinsics, camera_intrinsics(top), rtol=1e-6)
    assert not cams.env_pose_per_frame and not cams.global_pose_per_frame
    order = "xyzw" if version.startswith("3") else "wxyz"
    assert cams.source_quat_order == order
    assert run.fps == 30.0 and run.step_dt == pytest.approx(u.step_dt)
    assert run.env_frame_shape == (H, W) and run.global_frame_shape == (9, 16)
    assert (run.rank, run.world_size, run.env_id_offset) == (0, 1, 0)
    assert run.source == {
        "simulator": "isaaclab",
        "isaaclab": version,
        "renderer": "default" if version.startswith("3") else "isaac_rtx",
        "task": None,
        "env_class": "FakeIsaacLabEnv",
        "env_camera": "envreel_cam",
        "global_camera": "envreel_global",
        "num_rerenders_on_reset": 0,
        "device": "cpu",
        "local_rank": 0,
        "adapter": "envreel.capture.isaaclab.RecordEnvs",
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_static_poses_from_the_sensors_when_cameras_are_named(tmp_path, monkeypatch, version):
    env = make(monkeypatch, version)
    u = env.unwrapped
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)  # camera names only: poses from pos_w / quat_w_opengl
    run_steps(rec, 1)
    rec.close()
    cams = open_run(url).cameras
    origins = u.scene.env_origins
    np.testing.assert_allclose(cams.env_pose, env_camera_poses(origins), atol=1e-6)
    eye, target = np.array([12.0, -12.0, 9.0]), u._origins.mean(0)
    np.testing.assert_allclose(cams.global_pose, geo.look_at_pose(eye, target), atol=1e-6)
    # The look-at point of env 2's camera projects to the image centre with the stored intrinsics.
    target = u._origins[2] + np.array(EnvCameraCfg().lookat_offset)
    pixel, in_front = geo.project_points(target[None], cams.env_pose[2], cams.env_intrinsics[2])
    np.testing.assert_allclose(pixel[0], (W / 2, H / 2), atol=1e-4)
    assert in_front[0]


def test_config_poses_that_disagree_with_the_sensor_are_replaced(tmp_path, monkeypatch) -> None:
    # A config whose offsets differ from the scene's camera (e.g. terrain-placed env origins).
    env = make(monkeypatch)
    url = tmp_path / "run.zarr"
    wrong = EnvCameraCfg(eye_offset=(2.0, 0.0, 1.0), width=W, height=H)
    with pytest.warns(RuntimeWarning, match="camera 'envreel_cam' is not where its config puts"):
        rec = RecordEnvs(env, url, RecorderCfg(env_camera=wrong))
    run_steps(rec, 1)
    rec.close()
    right = env_camera_poses(env.unwrapped.scene.env_origins)
    np.testing.assert_allclose(open_run(url).cameras.env_pose, right, atol=1e-6)


@pytest.mark.parametrize("version", VERSIONS)
def test_moving_cameras_are_recorded_per_frame(tmp_path, monkeypatch, version) -> None:
    env = make(monkeypatch, version, update_latest_camera_pose=True)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 5)
    rec.close()
    run = open_run(url)
    truth = env.unwrapped.truth
    assert run.cameras.env_pose_per_frame and run.cameras.env_pose is None
    poses = run.env_camera_poses()
    assert poses.shape == (6, 4, 4, 4)
    np.testing.assert_allclose(poses[:, :, :3, 3], stacked(truth, "camera_pos_w"), atol=1e-6)
    rise = poses[:, 0, 2, 3] - poses[0, 0, 2, 3]
    np.testing.assert_allclose(rise, standins.CAMERA_RISE_PER_STEP * np.arange(6), atol=1e-6)
    static = env_camera_poses(env.unwrapped.scene.env_origins)
    np.testing.assert_allclose(
        poses[:, :, :3, :3], np.broadcast_to(static[:, :3, :3], (6, 4, 3, 3)), atol=1e-6
    )


def test_no_global_view_without_a_global_camera(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch, global_camera_name=None)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 2)
    rec.close()
    run = open_run(url)
    assert not run.has_global and run.cameras.global_pose is None
    assert run.source["global_camera"] is None


def test_cameras_found_by_name(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch, camera_name="wrist", global_camera_name="top")
    with pytest.raises(ValueError, match=r"no camera 'envreel_cam' .*cameras: \['top', 'wrist'\]"):
        RecordEnvs(env, tmp_path / "a.zarr")
    rec = RecordEnvs(env, tmp_path / "b.zarr", RecorderCfg(env_camera="wrist"))
    assert rec.recorder.spec is None  # the store is created at the first frame
    run_steps(rec, 1)
    rec.close()
    assert not open_run(tmp_path / "b.zarr").has_global  # "top" is not the default name
    rec = RecordEnvs(env, tmp_path / "c.zarr", RecorderCfg(env_camera="wrist", global_camera="top"))
    run_steps(rec, 1)
    rec.close()
    assert open_run(tmp_path / "c.zarr").global_frame_shape == (9, 16)
    with pytest.raises(ValueError, match="has 1 instances, but the env has 4 envs"):
        RecordEnvs(env, tmp_path / "d.zarr", RecorderCfg(env_camera="top", global_camera="wrist"))
    with pytest.raises(ValueError, match="no camera 'contact_forces'"):
        RecordEnvs(env, tmp_path / "e.zarr", RecorderCfg(env_camera="contact_forces"))


def test_quaternion_order_without_isaac_lab(tmp_path, monkeypatch) -> None:
    env = standins.make_fake_env(version="2.2.0", height=H, width=W, num_envs=4)
    monkeypatch.setitem(__import__("sys").modules, "isaaclab", None)
    with pytest.raises(ImportError, match="RecorderCfg\\(quat_order='xyzw'\\)"):
        RecordEnvs(env, tmp_path / "a.zarr")
    rec = RecordEnvs(env, tmp_path / "b.zarr", RecorderCfg(quat_order="wxyz"))
    run_steps(rec, 1)
    rec.close()
    run = open_run(tmp_path / "b.zarr")
    assert run.source["isaaclab"] is None and run.cameras.source_quat_order == "wxyz"
    np.testing.assert_allclose(
        run.cameras.env_pose, env_camera_poses(env.unwrapped.scene.env_origins), atol=1e-6
    )


# ---------------------------------------------------------------------------------------------
# windows, clips, close
# ---------------------------------------------------------------------------------------------


def test_recording_windows_use_isaac_lab_vocabulary(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    url = tmp_path / "run.zarr"
    cfg = RecorderCfg(video_length=4, video_interval=10, step_offset=2, frame_stride=2)
    rec = RecordEnvs(env, url, cfg)
    run_steps(rec, 25)
    rec.close()
    run = open_run(url)
    kept = [2, 4, 12, 14, 22, 24]
    assert run.frame_values("step").tolist() == kept
    assert [(c.id, c.start_frame, c.stop_frame) for c in run.clips] == [
        (0, 0, 2),
        (1, 2, 4),
        (2, 4, 6),
    ]
    truth = env.unwrapped.truth
    np.testing.assert_array_equal(run.env_frames(), np.stack([truth[k].rgb for k in kept]))
    # Episodes are counted on every step, recorded or not.
    np.testing.assert_array_equal(
        run.scalar("episode"), np.stack([truth[k].episode_index for k in kept])
    )
    np.testing.assert_array_equal(
        run.scalar("episode_step"), np.stack([truth[k].episode_step for k in kept])
    )


def test_manual_clips(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    rec.reset()
    run_steps(rec, 2, reset=False)
    rec.stop_clip()
    run_steps(rec, 3, reset=False)
    rec.start_clip()
    run_steps(rec, 2, reset=False)
    rec.close()
    run = open_run(url)
    assert run.frame_values("step").tolist() == [0, 1, 2, 6, 7]
    assert [(c.start_step, c.stop_step) for c in run.clips] == [(0, 3), (6, 8)]


def test_env_close_closes_the_store_once(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    closed = []
    env.unwrapped.close = lambda: closed.append(True)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    outer = standins.FakeWrapper(rec)  # e.g. the RL library's wrapper on top
    outer.reset()
    outer.step(torch.zeros((4, 2)))
    assert rec.is_recording and rec.stats.frames_captured == 2
    outer.close()
    assert closed == [True] and not rec.is_recording
    assert open_run(url).closed and open_run(url).num_frames == 2
    rec.close()  # idempotent for the store
    assert rec.stats.frames_written == 2


def test_existing_store_is_kept_unless_overwrite(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 1)
    rec.close()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        RecordEnvs(env, url)
    rec = RecordEnvs(env, url, RecorderCfg(overwrite=True, metadata={"exp": "b"}))
    run_steps(rec, 3)
    rec.close()
    run = open_run(url)
    assert run.num_frames == 4 and run.metadata == {"exp": "b"}


def test_large_frames_get_smaller_blocks(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch, num_envs=4)  # 4 × 6×8×3 + 9×16×3 = 1008 bytes a step
    url = tmp_path / "run.zarr"
    with pytest.warns(RuntimeWarning, match="fits blocks of only 4 frame"):
        rec = RecordEnvs(env, url, RecorderCfg(max_queue_bytes=16_000))
    run_steps(rec, 9)
    rec.close()
    run = open_run(url)
    assert run.block_frames == 4 and run.num_frames == 10
    np.testing.assert_array_equal(run.env_frames(), stacked(env.unwrapped.truth, "rgb"))


# ---------------------------------------------------------------------------------------------
# torchrun
# ---------------------------------------------------------------------------------------------


def test_rank_zero_records_by_default(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 1)
    rec.close()
    run = open_run(url)
    assert (run.rank, run.world_size, run.env_id_offset) == (0, 2, 0)


def test_other_ranks_pass_through(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    assert rec.recorder is None and rec.url is None and not rec.is_recording
    assert rec.stats is None
    rec.start_clip()
    rec.stop_clip()
    run_steps(rec, 3)
    rec.close()
    assert list(tmp_path.iterdir()) == []


def test_every_rank_records_into_its_own_store(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    rec = RecordEnvs(env, tmp_path / "run.zarr", RecorderCfg(all_ranks=True))
    assert rec.url == tmp_path / "run_rank3.zarr"
    run_steps(rec, 2)
    rec.close()
    run = open_run(tmp_path / "run_rank3.zarr")
    assert (run.rank, run.world_size, run.env_id_offset) == (3, 4, 12)  # global ids 12..15
    assert run.source["local_rank"] == 1
    assert not (tmp_path / "run.zarr").exists()


def test_malformed_torchrun_variables_are_refused(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' must be an integer"):
        RecordEnvs(env, tmp_path / "run.zarr")


# ---------------------------------------------------------------------------------------------
# gymnasium (installed with Isaac Lab; optional here)
# ---------------------------------------------------------------------------------------------


def test_is_a_gymnasium_wrapper(tmp_path, monkeypatch) -> None:
    gym = pytest.importorskip("gymnasium")
    standins.install_fake_isaaclab(monkeypatch, version="3.0.0")

    class GymFakeEnv(standins.FakeIsaacLabEnv, gym.Env):
        """The stand-in as a gymnasium.Env, like ManagerBasedRLEnv."""

    env = GymFakeEnv(num_envs=4, height=H, width=W)
    rec = RecordEnvs(env, tmp_path / "run.zarr")
    assert isinstance(rec, gym.Wrapper) and rec.unwrapped is env
    outer = gym.Wrapper(rec)  # other gymnasium wrappers stack on top
    outer.reset()
    outer.step(torch.zeros((4, 2)))
    outer.close()
    assert open_run(tmp_path / "run.zarr").num_frames == 2


# ---------------------------------------------------------------------------------------------
# CUDA (run on the GPU machine): the stand-in above is CPU-only, so a minimal Isaac Lab-like env
# whose buffers live on the device
# ---------------------------------------------------------------------------------------------


class _CudaEnv:
    """Isaac Lab's buffers on CUDA: a strided rgb view of one reused rgba buffer, done flags
    overwritten in place, resets inside ``step()`` without re-render, a rising camera."""

    def __init__(self, num_envs: int = 8, height: int = 16, width: int = 24) -> None:
        import types

        dev = torch.device("cuda")
        n = self.num_envs = num_envs
        self.device, self.step_dt, self.common_step_counter = dev, 1 / 30, 0
        self.cfg = types.SimpleNamespace(num_rerenders_on_reset=0)
        self.episode_length_buf = torch.zeros(n, dtype=torch.int64, device=dev)
        self.reset_terminated = torch.zeros(n, dtype=torch.bool, device=dev)
        self.reset_time_outs = torch.zeros(n, dtype=torch.bool, device=dev)
        self.reward_buf = torch.zeros(n, device=dev)
        self._ends = torch.tensor([3 + i % 4 for i in range(n)], device=dev)
        self._ids = torch.arange(n, device=dev)
        self._ramp = torch.arange(height * width, device=dev).view(height, width)
        self.rgba = torch.zeros((n, height, width, 4), dtype=torch.uint8, device=dev)
        quat = torch.tensor([0.0, 0.0, 0.0, 1.0], device=dev).repeat(n, 1)  # identity, xyzw
        data = types.SimpleNamespace(
            output={"rgb": standins.ProxyArray(self.rgba[..., :3])},
            intrinsic_matrices=torch.eye(3, device=dev).repeat(n, 1, 1),
            pos_w=torch.zeros((n, 3), device=dev),
            quat_w_opengl=quat,
        )
        camera = types.SimpleNamespace(
            cfg=types.SimpleNamespace(update_latest_camera_pose=True), data=data
        )
        origins = torch.zeros((n, 3), device=dev)
        self.scene = types.SimpleNamespace(sensors={"envreel_cam": camera}, env_origins=origins)

    @property
    def unwrapped(self):
        return self

    def _render(self) -> None:
        step = self.common_step_counter
        self.rgba[..., 0] = (self._ramp + 7 * step + 11 * self._ids[:, None, None]) % 256
        self.rgba[..., 2] = self.episode_length_buf[:, None, None].to(torch.uint8)

    def reset(self, seed=None, options=None):
        self._render()
        return {}, {}

    def step(self, action):
        self.episode_length_buf += 1
        self.common_step_counter += 1
        self.scene.sensors["envreel_cam"].data.pos_w[:, 2] += 0.5
        self._render()  # before the resets: frames of envs reset now are stale
        done = self.episode_length_buf >= self._ends
        self.reset_terminated.copy_(done)
        self.reward_buf.copy_(self._ids * 0.5 + self.common_step_counter)
        self.episode_length_buf.masked_fill_(done, 0)
        return {}, self.reward_buf, self.reset_terminated, self.reset_time_outs, {}

    def close(self) -> None:
        pass


@pytest.mark.gpu
def test_cuda_env_is_recorded_exactly_without_synchronising(tmp_path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    env = _CudaEnv()
    url = tmp_path / "run.zarr"
    # One block holds every frame: the writer stays idle (its event waits would trip the sync
    # check, which is global) until close().
    rec = RecordEnvs(env, url, RecorderCfg(quat_order="xyzw", block_frames=32))
    action = torch.zeros((8, 1), device="cuda")
    seen = [None]
    rec.reset()
    seen[0] = env.rgba[..., :3].cpu()
    for k in range(1, 15):
        if k == 3:  # after the first (allocating) captures: no host-device sync per step
            torch.cuda.set_sync_debug_mode("error")
        try:
            rec.step(action)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        seen.append(env.rgba[..., :3].cpu())
    rec.close()
    run = open_run(url)
    assert run.counters == {"dropped_frames": 0, "write_errors": 0} and not run.errors
    np.testing.assert_array_equal(run.env_frames(), torch.stack(seen).numpy())
    # Episode step shown in each frame is in its blue channel (stale frames included).
    np.testing.assert_array_equal(run.scalar("episode_step"), run.env_frames()[:, :, 0, 0, 2])
    assert run.scalar("stale")[1:].sum(0).tolist() == [4, 3, 2, 2, 4, 3, 2, 2]
    assert run.scalar("episode")[-1].tolist() == [4, 3, 2, 2, 4, 3, 2, 2]
    np.testing.assert_allclose(run.env_camera_poses()[:, 0, 2, 3], 0.5 * np.arange(15))


@pytest.mark.parametrize("order", ["xyzw", "wxyz"])
def test_live_poses_match_the_pose_maths(order) -> None:
    import types

    from envreel.capture.isaaclab import _wrapper

    rng = np.random.default_rng(1)
    quat, pos = 3.0 * rng.normal(size=(20, 4)), 10.0 * rng.normal(size=(20, 3))
    data = types.SimpleNamespace(pos_w=torch.tensor(pos), quat_w_opengl=torch.tensor(quat))
    got = _wrapper._live_poses(types.SimpleNamespace(data=data), order)
    assert got.dtype == torch.float64 and tuple(got.shape) == (20, 4, 4)
    want = geo.pose_matrix(pos, geo.quat_to_rotation(quat, order=order))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
