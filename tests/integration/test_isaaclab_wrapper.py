"""RecordEnvs on Isaac Lab 3.0 and 2.x stand-ins, into real stores read back with open_run.

The stand-in env (tests/isaaclab_standins.py) renders deterministic frames into one reused rgba
buffer (rgb is a strided view of it), resets finished envs inside ``step()`` on a staggered
schedule, and logs in ``truth`` what a perfect recorder stores for each step. Its per-env camera
renders as the real renderers do: Newton Warp / OVRTX when the camera is read (after the resets
of the step; Isaac Lab 3's kit-less default), Isaac RTX inside ``step()`` before the resets.
envreel's own Newton views (the 3.x global view, env subsets) are replaced by
``standins.FakeNewtonViews``.
"""

from __future__ import annotations

import dataclasses
import warnings

import isaaclab_standins as standins
import numpy as np
import pytest

from envreel.capture.isaaclab import (
    EnvCameraCfg,
    GlobalCameraCfg,
    RecordEnvs,
    RecorderCfg,
    _wrapper,
    add_env_camera,
    add_global_camera,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
)
from envreel.schemas import geometry as geo
from envreel.schemas import open_run, validate

torch = pytest.importorskip("torch")

VERSIONS = ("3.0.0", "2.2.0")
H, W = 6, 8
GH, GW = 9, 16
# (Isaac Lab version, per-env camera renderer)
RENDERERS = [
    ("3.0.0", "newton_warp"),
    ("3.0.0", "ovrtx"),
    ("3.0.0", "isaac_rtx"),
    ("2.2.0", "isaac_rtx"),
]
FRESH = ("newton_warp", "ovrtx")  # render when read: after the resets done inside step()


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def make(monkeypatch, version="3.0.0", **kwargs):
    """Fake Isaac Lab modules of ``version`` and a stand-in env (from keyword arguments) inside
    two wrappers; envreel's Newton views are the stand-in's (``views(env)``)."""
    standins.install_fake_isaaclab(monkeypatch, version=version)
    kwargs.setdefault("num_envs", 4)
    env = standins.make_fake_env(version=version, height=H, width=W, **kwargs)
    monkeypatch.setattr(_wrapper, "NewtonViews", standins.fake_newton_views(env))
    return env


def views(env):
    """The FakeNewtonViews class RecordEnvs uses for ``env`` (see ``make``/``build``)."""
    cls = _wrapper.NewtonViews
    assert cls.env is env.unwrapped
    return cls


def build(
    monkeypatch,
    version="3.0.0",
    renderer="auto",
    *,
    global_view=True,
    num_envs=4,
    cam=None,
    top=None,
    **kwargs,
):
    """The README's lines on fake Isaac Lab modules: ``add_env_camera`` (and
    ``add_global_camera``) on a scene config, then the env built from it as ``gym.make`` does.

    Returns:
        (env inside two wrappers, the EnvCameraCfg, the GlobalCameraCfg returned or None).
    """
    lab = standins.install_fake_isaaclab(monkeypatch, version=version)
    scene = standins.make_scene_cfg(lab, num_envs=num_envs, env_spacing=2.0)
    cam = add_env_camera(scene, cam or EnvCameraCfg(width=W, height=H, renderer=renderer))
    if global_view:
        top = add_global_camera(scene, top or GlobalCameraCfg(width=GW, height=GH))
    env = standins.make_fake_env(version=version, scene_cfg=scene, **kwargs)
    monkeypatch.setattr(_wrapper, "NewtonViews", standins.fake_newton_views(env))
    return env, cam, top


def run_steps(env, steps: int, *, reset: bool = True) -> None:
    u = env.unwrapped
    if reset:
        env.reset()
    for _ in range(steps):
        env.step(torch.zeros((u.num_envs, u.action_dim)))


def stacked(truth, name):
    return np.stack([getattr(t, name) for t in truth])


def newton_global_frames(truth, height=GH, width=GW):
    """What envreel's Newton global view shows after each step: the state after its resets."""
    return np.stack(
        [
            standins.expected_global_rgb(
                t.step, height=height, width=width, episode_steps=t.episode_length
            )
            for t in truth
        ]
    )


# ---------------------------------------------------------------------------------------------
# frames, episodes, stale flags: per renderer
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "renderer"), RENDERERS)
def test_records_exact_frames_episodes_and_stale_flags(tmp_path, monkeypatch, version, renderer):
    env, cam, top = build(monkeypatch, version, renderer)  # envs end after 3, 4, 5, 5 steps
    camera = env.unwrapped.camera
    assert camera.renderer_type == renderer
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)  # finds the global view by its default name
    run_steps(rec, 13)
    rec.close()

    truth = env.unwrapped.truth
    run = open_run(url)
    assert run.closed and run.num_frames == 14 and not validate(url)
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb"))
    if version.startswith("2"):  # an RTX scene camera, rendered inside step()
        np.testing.assert_array_equal(run.global_frames(), stacked(truth, "global_rgb")[:, 0])
    else:  # envreel's Newton view, rendered after step() returned
        np.testing.assert_array_equal(run.global_frames(), newton_global_frames(truth))
    np.testing.assert_array_equal(run.frame_values("step"), np.arange(14))
    np.testing.assert_allclose(run.frame_values("sim_time"), np.arange(14) / 30.0)
    np.testing.assert_array_equal(run.scalar("episode"), stacked(truth, "episode_index"))
    np.testing.assert_array_equal(run.scalar("episode_step"), stacked(truth, "episode_step"))
    np.testing.assert_array_equal(run.scalar("reward")[1:], stacked(truth, "reward")[1:])
    assert np.isnan(run.scalar("reward")[0]).all()  # no reward before the first step
    np.testing.assert_array_equal(run.scalar("terminated"), stacked(truth, "terminated"))
    np.testing.assert_array_equal(run.scalar("truncated"), stacked(truth, "truncated"))
    stale, episode, episode_step = (
        run.scalar("stale"),
        run.scalar("episode"),
        run.scalar("episode_step"),
    )
    if renderer in FRESH:
        # Rendered when read, after the resets: a reset env's frame is its new episode's step 0,
        # and so is every env's frame of reset().
        assert not stale.any()
        assert episode[3, 0] == 1 and episode_step[3, 0] == 0
        assert episode[4, 0] == 1 and episode_step[4, 0] == 1
        assert episode_step[0].tolist() == [0, 0, 0, 0] and episode[0].tolist() == [0, 0, 0, 0]
    else:
        # RTX renders before the resets: the frame of a reset env shows the finished episode's
        # last step. The stand-in renders in reset(); Isaac Lab does so only with
        # num_rerenders_on_reset > 0, so the wrapper marks the reset() frame stale without it.
        assert stale[0].all()
        np.testing.assert_array_equal(stale[1:], stacked(truth, "stale")[1:])
        assert stale[1:].sum(axis=0).tolist() == [4, 3, 2, 2]  # env 0 at steps 3, 6, 9, 12...
        assert episode[3, 0] == 0 and episode_step[3, 0] == 3
        assert episode[4, 0] == 1 and episode_step[4, 0] == 1
    assert run.scalar("episode")[-1].tolist() == [4, 3, 2, 2]
    assert [(c.start_frame, c.stop_frame) for c in run.clips] == [(0, 14)]
    assert run.counters["dropped_frames"] == 0
    assert run.source["env_camera_renderer"] == renderer == run.source["renderer"]
    expected_global = "envreel_newton_views" if version.startswith("3") else "isaac_rtx"
    assert run.source["global_renderer"] == expected_global
    assert run.source["lazy_sensor_update"] is True


@pytest.mark.parametrize("version", VERSIONS)
def test_rtx_rerender_on_reset_frames_are_fresh(tmp_path, monkeypatch, version) -> None:
    env = make(monkeypatch, version, renderer="isaac_rtx", num_rerenders_on_reset=1)
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


@pytest.mark.parametrize(
    ("renderer", "rerenders", "stale"),
    [
        ("newton_warp", 0, False),
        ("ovrtx", 0, False),
        ("isaac_rtx", 0, True),
        ("isaac_rtx", 2, False),
    ],
)
def test_reset_frame_labels_follow_the_renderer(tmp_path, monkeypatch, renderer, rerenders, stale):
    env = make(monkeypatch, renderer=renderer, num_rerenders_on_reset=rerenders)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    rec.reset()
    rec.close()
    run = open_run(url)
    assert run.scalar("stale")[0].tolist() == [stale] * 4
    assert run.scalar("episode")[0].tolist() == [0] * 4
    assert run.scalar("episode_step")[0].tolist() == [0] * 4
    for i in range(4):
        np.testing.assert_array_equal(
            run.env_frames()[0, i], standins.expected_rgb(i, 0, 0, height=H, width=W)
        )


@pytest.mark.parametrize(("renderer", "last"), [("newton_warp", 0), ("isaac_rtx", 9)])
def test_episode_steps_follow_the_env_when_its_lengths_are_randomised(
    tmp_path, monkeypatch, renderer, last
):
    # RSL-RL's runner starts training with episode_length_buf randomised (init_at_random_ep_len).
    env = make(
        monkeypatch, renderer=renderer, max_episode_length=9, terminate_after=[20, 20, 20, 20]
    )
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
    # Env 3 times out at step 1: RTX shows its last step (stale), Newton Warp its new episode.
    assert run.scalar("episode_step")[1].tolist() == [1, 4, 7, last]


@pytest.mark.parametrize("how", ["in_place", "new_tensor"])
def test_rtx_episode_steps_follow_a_counter_changed_between_steps(tmp_path, monkeypatch, how):
    # On RTX a frame shows the episode step before the step + 1; training code may write the
    # env's counter between steps (or assign a new tensor), and the stored steps follow it.
    env = make(
        monkeypatch, renderer="isaac_rtx", max_episode_length=9, terminate_after=[20, 20, 20, 20]
    )
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(block_frames=4))
    u = env.unwrapped
    run_steps(rec, 5)
    if how == "in_place":
        u.episode_length_buf[:] = torch.tensor([7, 0, 2, 8])
    else:
        u.episode_length_buf = torch.tensor([7, 0, 2, 8])
    run_steps(rec, 6, reset=False)
    rec.close()
    truth = u.truth
    run = open_run(url)
    assert run.num_frames == 12
    np.testing.assert_array_equal(run.scalar("episode_step"), stacked(truth, "episode_step"))
    np.testing.assert_array_equal(run.scalar("episode"), stacked(truth, "episode_index"))
    np.testing.assert_array_equal(run.scalar("stale")[1:], stacked(truth, "stale")[1:])
    # Set to [7, 0, 2, 8] before step 6: env 3 times out at step 6 and env 0 at step 7, each
    # stale frame showing the finished episode's step 9 (max_episode_length).
    assert run.scalar("episode_step")[6].tolist() == [8, 1, 3, 9]
    assert run.scalar("episode_step")[7].tolist() == [9, 2, 4, 1]


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
    v2 = version.startswith("2")
    env = make(monkeypatch, version, global_camera_name="envreel_global" if v2 else None)
    u = env.unwrapped
    origins = u.scene.env_origins
    origins = origins.torch if hasattr(origins, "torch") else origins
    cam = EnvCameraCfg(width=W, height=H)
    top = GlobalCameraCfg(
        eye=(12.0, -12.0, 9.0), lookat=tuple(origins.double().mean(0).tolist()), width=GW, height=GH
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
    assert cams.source_quat_order == ("wxyz" if v2 else "xyzw")
    assert run.fps == 30.0 and run.step_dt == pytest.approx(u.step_dt)
    assert run.env_frame_shape == (H, W) and run.global_frame_shape == (GH, GW)
    assert (run.rank, run.world_size, run.env_id_offset) == (0, 1, 0)
    renderer = "isaac_rtx" if v2 else "newton_warp"
    assert run.source == {
        "simulator": "isaaclab",
        "isaaclab": version,
        "renderer": renderer,
        "task": None,
        "env_class": "FakeIsaacLabEnv",
        "env_camera": "envreel_cam",
        "env_camera_renderer": renderer,
        "global_camera": "envreel_global",
        "global_renderer": "isaac_rtx" if v2 else "envreel_newton_views",
        "num_rerenders_on_reset": 0,
        "lazy_sensor_update": True,
        "device": "cpu",
        "local_rank": 0,
        "adapter": "envreel.capture.isaaclab.RecordEnvs",
    }
    if not v2:  # the Newton view was made with exactly what the store says
        (made,) = views(env).instances
        (view,) = made.views
        assert view.kind == "global" and made.renders == 3
        np.testing.assert_array_equal(view.poses[0], cams.global_pose)
        np.testing.assert_array_equal(view.intrinsics, cams.global_intrinsics)
        assert view.shape == (GH, GW) and view.far == 1.0e6
        assert made.renderer_cfg is u.camera.cfg.renderer_cfg  # the camera's render settings
    else:
        assert views(env).instances == []  # 2.x never renders envreel's own views


@pytest.mark.parametrize("version", VERSIONS)
def test_static_poses_from_the_sensors_when_cameras_are_named(tmp_path, monkeypatch, version):
    v2 = version.startswith("2")
    env = make(monkeypatch, version, global_camera_name="envreel_global" if v2 else None)
    u = env.unwrapped
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)  # camera names only: poses from pos_w / quat_w_opengl
    run_steps(rec, 1)
    rec.close()
    run = open_run(url)
    cams = run.cameras
    origins = u.scene.env_origins
    np.testing.assert_allclose(cams.env_pose, env_camera_poses(origins), atol=1e-6)
    if v2:
        eye, target = np.array([12.0, -12.0, 9.0]), u._origins.mean(0)
        np.testing.assert_allclose(cams.global_pose, geo.look_at_pose(eye, target), atol=1e-6)
    else:
        assert not run.has_global  # no scene camera, no envreel global view entry
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


@pytest.mark.parametrize(("version", "renderer"), [("3.0.0", "newton_warp"), ("2.2.0", None)])
def test_moving_cameras_are_recorded_per_frame(tmp_path, monkeypatch, version, renderer) -> None:
    env = make(monkeypatch, version, renderer=renderer, update_latest_camera_pose=True)
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
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb"))


def test_no_global_view_without_a_global_camera(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 2)
    rec.close()
    run = open_run(url)
    assert not run.has_global and run.cameras.global_pose is None
    assert run.source["global_camera"] is None and run.source["global_renderer"] is None
    assert views(env).instances == []  # nothing of envreel's own rendering either


def test_cameras_found_by_name(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch, "2.2.0", camera_name="wrist", global_camera_name="top")
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
    assert open_run(tmp_path / "c.zarr").global_frame_shape == (GH, GW)
    with pytest.raises(ValueError, match="has 1 instances, but the env has 4 envs"):
        RecordEnvs(env, tmp_path / "d.zarr", RecorderCfg(env_camera="top", global_camera="wrist"))
    with pytest.raises(ValueError, match="no camera 'contact_forces'"):
        RecordEnvs(env, tmp_path / "e.zarr", RecorderCfg(env_camera="contact_forces"))
    # Isaac Lab 3 has no global scene camera to name: only envreel's entries and configs.
    env = make(monkeypatch, "3.0.0", camera_name="wrist")
    with pytest.raises(ValueError, match=r"no camera 'top' for the global view"):
        RecordEnvs(env, tmp_path / "f.zarr", RecorderCfg(env_camera="wrist", global_camera="top"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zarr", "c.zarr"]


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
# the global view on Isaac Lab 3 (envreel's Newton view, from add_global_camera's entry)
# ---------------------------------------------------------------------------------------------


def test_global_view_entry_is_found_and_framed_on_the_live_origins(tmp_path, monkeypatch) -> None:
    top = GlobalCameraCfg(width=32, height=18, lookat_height=2.0, clipping_range=(0.1, 500.0))
    env, cam, returned = build(monkeypatch, num_envs=6, top=top)
    u = env.unwrapped
    assert "envreel_global" not in u.scene.sensors  # no scene camera: Isaac Lab 3 refuses one
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)  # RecorderCfg() default: the entry named "envreel_global"
    run_steps(rec, 4)
    rec.close()
    run = open_run(url)
    assert run.has_global and run.global_frame_shape == (18, 32)
    np.testing.assert_array_equal(run.global_frames(), newton_global_frames(u.truth, 18, 32))
    origins = u.scene.env_origins
    live = global_camera_pose(top, env_origins=origins)
    np.testing.assert_allclose(run.cameras.global_pose, live, atol=1e-9)
    np.testing.assert_allclose(run.cameras.global_pose, global_camera_pose(returned), atol=1e-6)
    flat = global_camera_pose(dataclasses.replace(top, lookat_height=0.0), env_origins=origins)
    assert not np.allclose(run.cameras.global_pose, flat)  # framed on the raised origins
    np.testing.assert_allclose(run.cameras.global_intrinsics, camera_intrinsics(top))
    (made,) = views(env).instances
    (view,) = made.views
    assert view.far == 500.0 and view.shape == (18, 32)
    assert made.renders == 5  # one per recorded frame
    assert u.camera.renders == 6  # the env camera: read once at setup and once per frame


def test_the_cfg_add_global_camera_returned_is_framed_on_the_live_origins(tmp_path, monkeypatch):
    # The README's lines pass add_global_camera's return value to RecorderCfg. It was framed on
    # the grid the scene config promised; envs placed otherwise (a terrain generator; here a
    # spacing changed after the fact) are framed as they are.
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0")
    scene = standins.make_scene_cfg(lab, num_envs=4, env_spacing=2.0)
    cam = add_env_camera(scene, EnvCameraCfg(width=W, height=H))
    returned = add_global_camera(scene, GlobalCameraCfg(width=GW, height=GH))
    scene.env_spacing = 6.0
    env = standins.make_fake_env(scene_cfg=scene)
    monkeypatch.setattr(_wrapper, "NewtonViews", standins.fake_newton_views(env))
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(env_camera=cam, global_camera=returned))
    run_steps(rec, 1)
    rec.close()
    origins = env.unwrapped.scene.env_origins
    live = global_camera_pose(GlobalCameraCfg(width=GW, height=GH), env_origins=origins)
    np.testing.assert_allclose(open_run(url).cameras.global_pose, live, atol=1e-9)
    assert not np.allclose(live, global_camera_pose(returned))
    # A cfg the user changed is used as given.
    mine = dataclasses.replace(returned, eye=(0.0, -30.0, 20.0))
    rec = RecordEnvs(env, tmp_path / "b.zarr", RecorderCfg(env_camera=cam, global_camera=mine))
    run_steps(rec, 1)
    rec.close()
    np.testing.assert_allclose(
        open_run(tmp_path / "b.zarr").cameras.global_pose, global_camera_pose(mine), atol=1e-12
    )
    returned.lookat = (1.0, 2.0, 0.0)  # edited in place, configclass style
    rec = RecordEnvs(env, tmp_path / "c.zarr", RecorderCfg(env_camera=cam, global_camera=returned))
    run_steps(rec, 1)
    rec.close()
    np.testing.assert_allclose(
        open_run(tmp_path / "c.zarr").cameras.global_pose, global_camera_pose(returned), atol=1e-12
    )


@pytest.mark.parametrize("how", ["name", "cfg", "cfg_without_entry"])
def test_global_view_chosen_by_name_or_cfg(tmp_path, monkeypatch, how) -> None:
    top = GlobalCameraCfg(name="bird", width=GW, height=GH)
    env, _, _ = build(monkeypatch, global_view=how != "cfg_without_entry", top=top)
    url = tmp_path / "run.zarr"
    wanted = "bird" if how == "name" else top
    rec = RecordEnvs(env, url, RecorderCfg(global_camera=wanted))
    run_steps(rec, 2)
    rec.close()
    run = open_run(url)
    assert run.source["global_camera"] == "bird"
    np.testing.assert_array_equal(run.global_frames(), newton_global_frames(env.unwrapped.truth))
    if how != "cfg_without_entry":
        return
    # Without an entry: RecordEnvs() alone records no global view.
    rec = RecordEnvs(env, tmp_path / "b.zarr")
    run_steps(rec, 1)
    rec.close()
    assert not open_run(tmp_path / "b.zarr").has_global


def test_isaac_lab_3_refuses_an_rtx_global_view(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    cfg = RecorderCfg(global_camera=GlobalCameraCfg(renderer="isaac_rtx"))
    with pytest.raises(ValueError, match="renderer='isaac_rtx' needs Isaac Lab 2.x"):
        RecordEnvs(env, tmp_path / "run.zarr", cfg)
    assert list(tmp_path.iterdir()) == []


def test_global_view_with_an_rtx_env_camera_shows_the_state_after_resets(tmp_path, monkeypatch):
    # Isaac Sim with Newton physics: RTX env frames are stale at resets, envreel's global view
    # (rendered when recorded, after step() returned) is not.
    env, _, _ = build(monkeypatch, renderer="isaac_rtx")
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    run_steps(rec, 6)
    rec.close()
    run = open_run(url)
    truth = env.unwrapped.truth
    assert run.scalar("stale")[3].tolist() == [True, False, False, False]
    np.testing.assert_array_equal(run.global_frames(), newton_global_frames(truth))
    assert run.global_frames()[3, 0, 0, 2] == sum(truth[3].episode_length) % 256 == 9


# ---------------------------------------------------------------------------------------------
# windows, clips, close: nothing read or rendered outside the windows
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
    assert rec.stats.steps == 25 and rec.stats.frames_captured == 6


@pytest.mark.parametrize(("version", "renderer"), RENDERERS)
def test_nothing_is_read_or_rendered_outside_the_windows(tmp_path, monkeypatch, version, renderer):
    env, _, _ = build(monkeypatch, version, renderer)
    u = env.unwrapped
    camera = u.camera
    glob = u.scene.sensors.get("envreel_global")  # 2.x: an RTX scene camera
    url = tmp_path / "run.zarr"
    cfg = RecorderCfg(video_length=3, video_interval=7, step_offset=1, frame_stride=1)
    rec = RecordEnvs(env, url, cfg)
    made = views(env).instances

    def counts():
        newton = made[0].renders if made else 0
        return camera.data_reads, camera.renders, newton, glob.data_reads if glob else 0

    before = counts()
    rec.reset()  # step 0 is before step_offset: not recorded, nothing read
    per_step = [tuple(b - a for a, b in zip(before, counts(), strict=True))]
    for _ in range(17):
        before = counts()
        rec.step(torch.zeros((4, 2)))
        per_step.append(tuple(b - a for a, b in zip(before, counts(), strict=True)))
    rec.close()
    kept = [1, 2, 3, 8, 9, 10, 15, 16, 17]
    assert open_run(url).frame_values("step").tolist() == kept
    reads = [s for s, c in enumerate(per_step) if c[0]]
    assert reads == kept  # the env camera is read on recorded steps only
    if renderer in FRESH:  # ... so it renders on those only
        assert [c[1] for c in per_step] == [int(s in kept) for s in range(18)]
    else:  # RTX renders in the physics loop whatever envreel does
        assert [c[1] for c in per_step] == [1] * 18
    if version.startswith("3"):  # envreel's global view renders on recorded steps only
        assert [c[2] for c in per_step] == [int(s in kept) for s in range(18)]
    else:
        assert [s for s, c in enumerate(per_step) if c[3]] == kept
    truth = u.truth
    run = open_run(url)
    np.testing.assert_array_equal(run.env_frames(), np.stack([truth[k].rgb for k in kept]))
    np.testing.assert_array_equal(
        run.scalar("episode"), np.stack([truth[k].episode_index for k in kept])
    )
    np.testing.assert_array_equal(
        run.scalar("episode_step"), np.stack([truth[k].episode_step for k in kept])
    )


@pytest.mark.parametrize("renderer", ["newton_warp", "isaac_rtx"])
def test_done_flags_outside_the_windows_are_counted_in_batches(tmp_path, monkeypatch, renderer):
    from envreel.capture import Recorder
    from envreel.capture.isaaclab._sources import IDLE_STEPS

    env, cam, _ = build(monkeypatch, "3.0.0", renderer, num_envs=6)
    batches: list[list[int]] = []
    count_done = Recorder.count_done

    def spy(self, steps, done):
        batches.append(list(steps))
        return count_done(self, steps, done)

    monkeypatch.setattr(Recorder, "count_done", spy)
    url = tmp_path / "run.zarr"
    interval = IDLE_STEPS + 37  # idle stretches longer than a batch
    cfg = RecorderCfg(env_camera=cam, envs=IDS, video_length=2, video_interval=interval)
    rec = RecordEnvs(env, url, cfg)
    run_steps(rec, 2 * interval + 30)
    # the steps not counted yet are counted first; the reset's frame is a step too
    assert rec.stats.steps == 2 * interval + 31
    run_steps(rec, 20, reset=False)
    rec.close()
    kept = [0, 1, interval, interval + 1, 2 * interval, 2 * interval + 1]  # 0: the reset
    run = open_run(url)
    assert run.frame_values("step").tolist() == kept
    # Every idle step after the first (step 2: capture() checks the first flags of a kind) went
    # through count_done: whole batches, then the rest before a window, before ``stats`` and
    # before closing; none twice.
    idle = [s for b in batches for s in b]
    assert idle == [s for s in range(3, 2 * interval + 51) if s not in kept]
    assert [len(b) for b in batches][:2] == [IDLE_STEPS, interval - 3 - IDLE_STEPS]
    truth = env.unwrapped.truth
    for name, key in (("episode", "episode_index"), ("episode_step", "episode_step")):
        np.testing.assert_array_equal(
            run.scalar(name), np.stack([getattr(truth[k], key)[IDS] for k in kept]), name
        )
    assert run.scalar("episode").max() >= 10  # many episodes ended outside the windows


def test_manual_clips(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch)
    camera = env.unwrapped.camera
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url)
    rec.reset()
    run_steps(rec, 2, reset=False)
    rec.stop_clip()
    renders = camera.renders
    run_steps(rec, 3, reset=False)
    assert camera.renders == renders  # a stopped clip renders nothing
    rec.start_clip()
    run_steps(rec, 2, reset=False)
    rec.close()
    run = open_run(url)
    assert run.frame_values("step").tolist() == [0, 1, 2, 6, 7]
    assert [(c.start_step, c.stop_step) for c in run.clips] == [(0, 3), (6, 8)]
    truth = env.unwrapped.truth
    np.testing.assert_array_equal(
        run.scalar("episode"), np.stack([truth[k].episode_index for k in (0, 1, 2, 6, 7)])
    )


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
    env, _, _ = build(monkeypatch)  # 4 × 6×8×3 + 9×16×3 = 1008 bytes a step
    url = tmp_path / "run.zarr"
    with pytest.warns(RuntimeWarning, match="fits blocks of only 4 frame"):
        rec = RecordEnvs(env, url, RecorderCfg(max_queue_bytes=16_000))
    run_steps(rec, 9)
    rec.close()
    run = open_run(url)
    assert run.block_frames == 4 and run.num_frames == 10
    np.testing.assert_array_equal(run.env_frames(), stacked(env.unwrapped.truth, "rgb"))


# ---------------------------------------------------------------------------------------------
# a subset of the envs (RecorderCfg.envs)
# ---------------------------------------------------------------------------------------------

IDS = [5, 1, 2]  # of 6 envs, in store order


def _check_subset(run, env, ids, cam) -> None:
    """Frames, values, origins, poses and intrinsics of exactly envs ``ids``."""
    u = env.unwrapped
    truth = u.truth
    assert run.num_envs == len(ids)
    assert list(run.env_ids) == list(ids)
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb")[:, ids])
    for name, key in (
        ("episode", "episode_index"),
        ("episode_step", "episode_step"),
        ("terminated", "terminated"),
        ("truncated", "truncated"),
    ):
        np.testing.assert_array_equal(run.scalar(name), stacked(truth, key)[:, ids], name)
    np.testing.assert_array_equal(run.scalar("reward")[1:], stacked(truth, "reward")[1:, ids])
    origins = u._origins  # float64 of the float32 origins
    np.testing.assert_array_equal(run.env_origins, origins[ids])
    np.testing.assert_array_equal(run.cameras.env_pose, env_camera_poses(origins, cam)[ids])
    sensor_k = u.camera._data.intrinsic_matrices.numpy()
    np.testing.assert_allclose(run.cameras.env_intrinsics, sensor_k[ids])


def test_subset_with_newton_warp_renders_only_those_envs(tmp_path, monkeypatch) -> None:
    env, cam, _ = build(monkeypatch, num_envs=6)
    u = env.unwrapped
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(env_camera=cam, envs=IDS))
    reads, renders = u.camera.data_reads, u.camera.renders
    run_steps(rec, 9)
    rec.close()
    assert (u.camera.data_reads, u.camera.renders) == (reads, renders)  # never read again
    run = open_run(url)
    _check_subset(run, env, IDS, cam)
    assert not run.scalar("stale").any()  # rendered after the resets, as the camera would
    assert run.source["renderer"] == "envreel_newton_views"
    assert run.source["env_camera_renderer"] == "newton_warp"
    (made,) = views(env).instances
    env_view, global_view = made.views
    assert env_view.env_ids.tolist() == IDS and global_view.kind == "global"
    np.testing.assert_array_equal(env_view.poses, run.cameras.env_pose)
    np.testing.assert_allclose(env_view.intrinsics, camera_intrinsics(cam), rtol=1e-6)
    assert env_view.shape == (H, W) and env_view.far == cam.clipping_range[1]
    assert made.renders == 10  # both views in one render per recorded frame
    np.testing.assert_array_equal(run.global_frames(), newton_global_frames(u.truth))


@pytest.mark.parametrize("version", VERSIONS)
def test_subset_with_rtx_keeps_those_envs_of_the_camera(tmp_path, monkeypatch, version) -> None:
    env, cam, _ = build(monkeypatch, version, "isaac_rtx", num_envs=6)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(env_camera=cam, envs=IDS))
    run_steps(rec, 9)
    rec.close()
    run = open_run(url)
    _check_subset(run, env, IDS, cam)
    truth = env.unwrapped.truth
    np.testing.assert_array_equal(run.scalar("stale")[1:], stacked(truth, "stale")[1:, IDS])
    assert run.scalar("stale")[1:].any()
    assert run.source["renderer"] == "isaac_rtx"
    made = views(env).instances
    assert [v.kind for m in made for v in m.views] == (["global"] if version[0] == "3" else [])


def test_subset_of_moving_cameras_reads_the_camera(tmp_path, monkeypatch) -> None:
    env = make(monkeypatch, num_envs=6, update_latest_camera_pose=True)
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(envs=[4, 0]))
    run_steps(rec, 3)
    rec.close()
    run = open_run(url)
    truth = env.unwrapped.truth
    np.testing.assert_array_equal(run.env_frames(), stacked(truth, "rgb")[:, [4, 0]])
    poses = run.env_camera_poses()
    assert poses.shape == (4, 2, 4, 4)
    np.testing.assert_allclose(
        poses[:, :, :3, 3], stacked(truth, "camera_pos_w")[:, [4, 0]], atol=1e-6
    )
    assert views(env).instances == []


@pytest.mark.parametrize(("renderer", "ids"), [("newton_warp", [2]), ("isaac_rtx", [0, 2])])
def test_subset_with_intrinsics_from_the_cfg(tmp_path, monkeypatch, renderer, ids) -> None:
    # A camera whose intrinsics are not filled in yet: the cfg's (3, 3) matrix, one for all.
    env, cam, _ = build(monkeypatch, renderer=renderer, num_envs=3, global_view=False)
    env.unwrapped.camera._data.intrinsic_matrices.zero_()
    url = tmp_path / "run.zarr"
    rec = RecordEnvs(env, url, RecorderCfg(env_camera=cam, envs=ids))
    run_steps(rec, 2)
    rec.close()
    run = open_run(url)
    k = np.asarray(run.cameras.env_intrinsics).reshape(-1, 3, 3)  # (3, 3) or one per env
    np.testing.assert_allclose(k, np.broadcast_to(camera_intrinsics(cam), k.shape))
    np.testing.assert_array_equal(run.env_frames(), stacked(env.unwrapped.truth, "rgb")[:, ids])


def test_subset_under_torchrun_records_global_env_ids(tmp_path, monkeypatch) -> None:
    env, cam, _ = build(monkeypatch, num_envs=6, global_view=False)
    for name, value in (("RANK", "2"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    rec = RecordEnvs(
        env, tmp_path / "run.zarr", RecorderCfg(env_camera=cam, envs=IDS, all_ranks=True)
    )
    run_steps(rec, 2)
    rec.close()
    run = open_run(tmp_path / "run_rank2.zarr")
    assert run.env_id_offset == 12 and run.spec.env_ids == tuple(IDS)
    assert list(run.env_ids) == [12 + i for i in IDS]  # rank × num_envs + the env's index
    np.testing.assert_array_equal(run.env_frames(), stacked(env.unwrapped.truth, "rgb")[:, IDS])


@pytest.mark.parametrize(
    ("envs", "error", "match"),
    [
        ([0, 6], ValueError, r"lists env 6, but the env has 6 envs \(indices 0..5\)"),
        ([1, 1], ValueError, r"lists env\(s\) \[1\] more than once"),
        ([True], TypeError, "must hold ints, got True"),
        ([], ValueError, "RecorderCfg.envs is empty"),
        ([-2], ValueError, "env indices >= 0"),
    ],
)
def test_bad_envs_are_refused_before_anything_is_written(
    tmp_path, monkeypatch, envs, error, match
) -> None:
    env, cam, _ = build(monkeypatch, num_envs=6)
    cfg = RecorderCfg(env_camera=cam)
    cfg.envs = envs  # edited after construction: checked again by RecordEnvs
    with pytest.raises(error, match=match):
        RecordEnvs(env, tmp_path / "run.zarr", cfg)
    assert list(tmp_path.iterdir()) == []
    assert views(env).instances == []
    assert env.unwrapped.camera.data_reads == 0


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

    from envreel.capture.isaaclab import _sensors

    rng = np.random.default_rng(1)
    quat, pos = 3.0 * rng.normal(size=(20, 4)), 10.0 * rng.normal(size=(20, 3))
    data = types.SimpleNamespace(pos_w=torch.tensor(pos), quat_w_opengl=torch.tensor(quat))
    got = _sensors.live_poses(types.SimpleNamespace(data=data), order)
    assert got.dtype == torch.float64 and tuple(got.shape) == (20, 4, 4)
    want = geo.pose_matrix(pos, geo.quat_to_rotation(quat, order=order))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
