"""Tests of envreel.capture.isaaclab configs and scene helpers, against Isaac Lab stand-ins."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys
import warnings

import isaaclab_standins as standins
import numpy as np
import pytest
from envreel.capture import isaaclab as adapter
from envreel.capture.isaaclab import (
    EnvCameraCfg,
    GlobalCameraCfg,
    add_env_camera,
    add_global_camera,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
    grid_env_origins,
)
from envreel.schemas import geometry as geo

VERSIONS = {"3.0.0": ("xyzw", "CameraCfg"), "2.2.0": ("wxyz", "TiledCameraCfg")}


@pytest.fixture(params=sorted(VERSIONS))
def lab(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fake Isaac Lab modules of one version, in sys.modules for this test only."""
    return standins.install_fake_isaaclab(monkeypatch, version=request.param)


@pytest.fixture
def lab3(monkeypatch: pytest.MonkeyPatch):
    return standins.install_fake_isaaclab(monkeypatch, version="3.0.0")


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------


def test_env_camera_cfg_defaults() -> None:
    cfg = EnvCameraCfg()
    assert dataclasses.asdict(cfg) == {
        "name": "envreel_cam",
        "eye_offset": (0.9, 0.0, 1.0),
        "lookat_offset": (0.0, 0.0, 0.1),
        "width": 480,
        "height": 360,
        "focal_length": 24.0,
        "horizontal_aperture": 20.955,
        "clipping_range": (0.01, 100.0),
        "update_period": 0.0,
        "update_latest_camera_pose": False,
    }


def test_global_camera_cfg_defaults() -> None:
    cfg = GlobalCameraCfg()
    assert dataclasses.asdict(cfg) == {
        "name": "envreel_global",
        "eye": None,
        "lookat": None,
        "margin": 1.5,
        "min_span": 1.0,
        "distance_scale": 1.6,
        "azimuth_deg": -45.0,
        "elevation_deg": 35.0,
        "fit_to_image": True,
        "width": 1280,
        "height": 720,
        "focal_length": 18.147,
        "horizontal_aperture": 20.955,
        "clipping_range": (0.01, 1.0e6),
        "update_period": 0.0,
    }
    assert cfg.auto_framed
    assert not GlobalCameraCfg(eye=(1, 2, 3), lookat=(0, 0, 0)).auto_framed


@pytest.mark.parametrize("cls", [EnvCameraCfg, GlobalCameraCfg])
def test_every_field_has_an_isaac_lab_style_docstring(cls: type) -> None:
    """One docstring per field, ending "Defaults to <the default>."."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    documented = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr):
            documented[node.target.id] = " ".join(after.value.value.split())
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    assert set(documented) == set(defaults)
    for name, doc in documented.items():
        assert "Defaults to " in doc and doc.endswith("."), (name, doc)
        shown = doc.rsplit("Defaults to ", 1)[1][:-1]
        assert ast.literal_eval(shown) == defaults[name], (name, doc)


def test_configs_normalise_sequences() -> None:
    cfg = EnvCameraCfg(eye_offset=[1, 2, 3], clipping_range=[0.1, 50])
    assert cfg.eye_offset == (1.0, 2.0, 3.0) and cfg.clipping_range == (0.1, 50.0)
    glob = GlobalCameraCfg(eye=np.array([5.0, 0.0, 5.0]), lookat=[0, 0, 0])
    assert glob.eye == (5.0, 0.0, 5.0) and glob.lookat == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"),
    [
        (EnvCameraCfg, {"width": 0}, ValueError, "EnvCameraCfg.width must be a positive integer"),
        (EnvCameraCfg, {"height": 360.0}, TypeError, "EnvCameraCfg.height"),
        (EnvCameraCfg, {"name": "my cam"}, ValueError, "EnvCameraCfg.name must be"),
        (EnvCameraCfg, {"name": "0cam"}, ValueError, "'0cam'"),
        (EnvCameraCfg, {"eye_offset": (1, 2)}, ValueError, "eye_offset must be a sequence of 3"),
        (EnvCameraCfg, {"lookat_offset": (0.9, 0.0, 1.0)}, ValueError, "must differ"),
        (EnvCameraCfg, {"focal_length": -1.0}, ValueError, "EnvCameraCfg.focal_length"),
        (EnvCameraCfg, {"clipping_range": (1.0, 0.5)}, ValueError, "0 < near < far"),
        (EnvCameraCfg, {"update_period": -0.1}, ValueError, "update_period"),
        (EnvCameraCfg, {"update_latest_camera_pose": 1}, TypeError, "True or False"),
        (GlobalCameraCfg, {"eye": (1, 1, 1)}, ValueError, "eye and lookat must both be given"),
        (GlobalCameraCfg, {"eye": (1, 1, 1), "lookat": (1, 1, 1)}, ValueError, "must differ"),
        (GlobalCameraCfg, {"elevation_deg": 91.0}, ValueError, "elevation_deg must be in"),
        (GlobalCameraCfg, {"margin": -1.0}, ValueError, "GlobalCameraCfg.margin"),
        (GlobalCameraCfg, {"distance_scale": 0}, ValueError, "distance_scale"),
    ],
)
def test_configs_reject_bad_values(cls: type, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_edited_config_is_validated_at_use() -> None:
    cfg = EnvCameraCfg()
    cfg.width = -5  # configclass-style mutation after construction
    with pytest.raises(ValueError, match="EnvCameraCfg.width"):
        camera_intrinsics(cfg)


# ---------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------


def test_grid_env_origins_matches_isaac_lab_layout() -> None:
    np.testing.assert_allclose(
        grid_env_origins(4, 2.0), [[1, -1, 0], [1, 1, 0], [-1, -1, 0], [-1, 1, 0]]
    )
    for n in (1, 2, 3, 5, 9, 10, 17, 64, 100):
        origins = grid_env_origins(n, 2.5)
        assert origins.shape == (n, 3) and origins.dtype == np.float64
        np.testing.assert_allclose(origins, standins._grid(n, 2.5), atol=1e-6)
    nine = grid_env_origins(9, 4.0)
    assert np.ptp(nine[:, 0]) == 8.0 and np.ptp(nine[:, 1]) == 8.0
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        grid_env_origins(0, 1.0)
    with pytest.raises(ValueError, match="env_spacing must be a finite number >= 0"):
        grid_env_origins(4, -1.0)


def test_camera_intrinsics() -> None:
    fx = 24.0 / 20.955 * 480
    np.testing.assert_allclose(
        camera_intrinsics(EnvCameraCfg()), [[fx, 0, 240], [0, fx, 180], [0, 0, 1]]
    )
    K = camera_intrinsics(GlobalCameraCfg())
    assert K[0, 2] == 640 and K[1, 2] == 360 and K[0, 0] == pytest.approx(18.147 / 20.955 * 1280)
    with pytest.raises(TypeError, match="cfg must be an EnvCameraCfg or GlobalCameraCfg"):
        camera_intrinsics({"width": 3})


def test_env_camera_poses() -> None:
    origins = grid_env_origins(6, 3.0)
    cfg = EnvCameraCfg(eye_offset=(1.0, 0.5, 2.0), lookat_offset=(0.0, 0.0, 0.5))
    poses = env_camera_poses(origins, cfg)
    assert poses.shape == (6, 4, 4) and poses.dtype == np.float64
    np.testing.assert_allclose(poses[:, :3, 3], origins + (1.0, 0.5, 2.0))
    K = camera_intrinsics(cfg)
    for i in range(6):
        # Each env's camera looks at its own look-at point: it projects to the image centre.
        pixels, in_front = geo.project_points([origins[i] + (0, 0, 0.5)], poses[i], K)
        assert in_front[0]
        np.testing.assert_allclose(pixels[0], (240, 180), atol=1e-9)
    ros = env_camera_poses(origins, cfg, convention="ros")
    np.testing.assert_allclose(
        ros[:, :3, :3], geo.convert_convention(poses[:, :3, :3], "opengl", "ros"), atol=1e-12
    )
    with pytest.raises(ValueError, match=r"env_origins must have shape \(N, 3\)"):
        env_camera_poses(np.zeros((4, 2)))
    with pytest.raises(TypeError, match="cfg must be an EnvCameraCfg instance"):
        env_camera_poses(origins, GlobalCameraCfg())


def test_global_camera_pose() -> None:
    origins = grid_env_origins(9, 4.0)
    explicit = GlobalCameraCfg(eye=(10.0, -10.0, 8.0), lookat=(0.0, 0.0, 0.0))
    np.testing.assert_allclose(
        global_camera_pose(explicit), geo.look_at_pose((10.0, -10.0, 8.0), (0.0, 0.0, 0.0))
    )
    seed = global_camera_pose(GlobalCameraCfg(fit_to_image=False), env_origins=origins)
    assert np.linalg.norm(seed[:3, 3]) == pytest.approx(17.6)
    fitted = global_camera_pose(env_origins=origins)
    framing = geo.auto_frame(
        origins, intrinsics=camera_intrinsics(GlobalCameraCfg()), image_shape=(720, 1280)
    )
    np.testing.assert_allclose(fitted, geo.look_at_pose(framing.eye, framing.target))
    with pytest.raises(ValueError, match="needs env_origins"):
        global_camera_pose(GlobalCameraCfg())


# ---------------------------------------------------------------------------------------------
# scene config helpers on stand-ins
# ---------------------------------------------------------------------------------------------


def test_add_env_camera(lab) -> None:
    order, class_name = VERSIONS[lab.version]
    scene = standins.make_scene_cfg(lab, num_envs=16)
    cfg = EnvCameraCfg(width=160, height=120, update_period=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated alias on 3.x
        returned = add_env_camera(scene, cfg)
    assert returned is cfg
    camera = scene.envreel_cam
    assert "envreel_cam" in standins.scene_cfg_fields(scene)  # what InteractiveScene iterates
    assert type(camera).__name__ == class_name
    assert isinstance(camera, lab.sensors.CameraCfg)
    assert camera.prim_path == "{ENV_REGEX_NS}/envreel_cam"
    assert camera.data_types == ["rgb"]
    assert (camera.width, camera.height) == (160, 120)
    assert camera.update_period == 0.05
    assert camera.update_latest_camera_pose is False
    # Pose baked into the offset: position, OpenGL convention, quaternion in the installed order.
    assert camera.offset.pos == (0.9, 0.0, 1.0)
    assert camera.offset.convention == "opengl"
    assert all(type(v) is float for v in camera.offset.rot + camera.offset.pos)
    expected = geo.look_at_rotation((0.9, 0.0, 1.0), (0.0, 0.0, 0.1))
    np.testing.assert_allclose(
        geo.quat_to_rotation(camera.offset.rot, order=order), expected, atol=1e-12
    )
    # ... and independently of envreel's own quaternion code.
    reference = standins.reference_quat(standins.reference_look_at((0.9, 0, 1), (0, 0, 0.1)), order)
    np.testing.assert_allclose(camera.offset.rot, reference, atol=1e-12)
    # Spawn parameters.
    spawn = camera.spawn
    assert isinstance(spawn, lab.sim.PinholeCameraCfg)
    assert (spawn.focal_length, spawn.horizontal_aperture) == (24.0, 20.955)
    assert spawn.clipping_range == (0.01, 100.0)
    assert spawn.vertical_aperture is None  # square pixels, derived by Isaac Lab


def test_quat_order_can_be_overridden(lab3) -> None:
    scene = standins.make_scene_cfg(lab3)
    add_env_camera(scene, quat_order="wxyz")
    rot = scene.envreel_cam.offset.rot
    np.testing.assert_allclose(
        geo.quat_to_rotation(rot, order="wxyz"),
        geo.look_at_rotation((0.9, 0.0, 1.0), (0.0, 0.0, 0.1)),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="quat_order must be one of"):
        add_env_camera(standins.make_scene_cfg(lab3), quat_order="zyxw")


def test_add_env_camera_accepts_an_env_cfg(lab3) -> None:
    env_cfg = type("CartpoleEnvCfg", (), {})()
    env_cfg.scene = standins.make_scene_cfg(lab3)
    add_env_camera(env_cfg, EnvCameraCfg(name="wrist"))
    assert env_cfg.scene.wrist.prim_path == "{ENV_REGEX_NS}/wrist"


@pytest.mark.parametrize("name", ["robot", "num_envs", "env_spacing", "dome_light"])
def test_name_collision_is_refused(lab3, name: str) -> None:
    scene = standins.make_scene_cfg(lab3)
    before = standins.scene_cfg_fields(scene)
    with pytest.raises(ValueError, match=f"camera name '{name}' collides"):
        add_env_camera(scene, EnvCameraCfg(name=name))
    with pytest.raises(ValueError, match=f"camera name '{name}' collides"):
        add_global_camera(scene, GlobalCameraCfg(name=name))
    assert standins.scene_cfg_fields(scene) == before  # nothing changed


def test_adding_twice_and_prim_path_collision_are_refused(lab3) -> None:
    scene = standins.make_scene_cfg(lab3)
    add_env_camera(scene)
    with pytest.raises(ValueError, match="'envreel_cam' collides"):
        add_env_camera(scene)
    scene.my_cam = lab3.sensors.CameraCfg(
        prim_path="{ENV_REGEX_NS}/side", spawn=None, width=8, height=8
    )
    with pytest.raises(ValueError, match="prim path '{ENV_REGEX_NS}/side' is already used"):
        add_env_camera(scene, EnvCameraCfg(name="side"))


def test_built_env_and_wrong_objects_are_refused(lab3) -> None:
    with pytest.raises(TypeError, match="before the env is built"):
        add_env_camera(type("Env", (), {"unwrapped": None})())
    with pytest.raises(TypeError, match="scene_cfg must be an Isaac Lab InteractiveSceneCfg"):
        add_env_camera(object())
    with pytest.raises(TypeError, match="cfg must be an EnvCameraCfg instance"):
        add_env_camera(standins.make_scene_cfg(lab3), GlobalCameraCfg())


def test_add_global_camera_auto_framed(lab) -> None:
    order, class_name = VERSIONS[lab.version]
    scene = standins.make_scene_cfg(lab, num_envs=9, env_spacing=4.0)
    resolved = add_global_camera(scene)
    camera = scene.envreel_global
    assert type(camera).__name__ == class_name
    assert camera.prim_path == "/World/envreel_global"
    assert (camera.width, camera.height) == (1280, 720)
    assert camera.spawn.focal_length == 18.147
    assert camera.spawn.horizontal_aperture == 20.955
    assert camera.offset.convention == "opengl"
    # The returned cfg carries the pose the camera was given.
    assert not resolved.auto_framed
    assert camera.offset.pos == resolved.eye
    framing = geo.auto_frame(
        grid_env_origins(9, 4.0),
        intrinsics=camera_intrinsics(GlobalCameraCfg()),
        image_shape=(720, 1280),
    )
    np.testing.assert_allclose(resolved.eye, framing.eye)
    np.testing.assert_allclose(resolved.lookat, framing.target)
    np.testing.assert_allclose(
        geo.quat_to_rotation(camera.offset.rot, order=order),
        geo.look_at_rotation(resolved.eye, resolved.lookat),
        atol=1e-12,
    )
    # Every env origin of the grid is in the global image.
    pixels, in_front = geo.project_points(
        grid_env_origins(9, 4.0), global_camera_pose(resolved), camera_intrinsics(resolved)
    )
    assert in_front.all()
    assert (pixels >= 0).all() and (pixels[:, 0] <= 1280).all() and (pixels[:, 1] <= 720).all()


def test_add_global_camera_seed_distance(lab3) -> None:
    scene = standins.make_scene_cfg(lab3, num_envs=9, env_spacing=4.0)
    resolved = add_global_camera(scene, GlobalCameraCfg(fit_to_image=False))
    assert np.linalg.norm(np.subtract(resolved.eye, resolved.lookat)) == pytest.approx(17.6)


def test_add_global_camera_explicit_and_given_origins(lab3) -> None:
    scene = standins.make_scene_cfg(lab3)
    cfg = GlobalCameraCfg(name="top", eye=(0.0, 0.0, 30.0), lookat=(0.0, 0.0, 0.0))
    resolved = add_global_camera(scene, cfg)
    assert resolved == cfg and resolved is not cfg
    assert scene.top.offset.pos == (0.0, 0.0, 30.0)
    np.testing.assert_allclose(geo.quat_to_rotation(scene.top.offset.rot), np.eye(3), atol=1e-12)

    origins = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    scene = standins.make_scene_cfg(lab3, terrain="generator")
    resolved = add_global_camera(scene, env_origins=origins)
    np.testing.assert_allclose(resolved.lookat, (5.0, 0.0, 0.0))


def test_add_global_camera_needs_origins_it_cannot_guess(lab3) -> None:
    with pytest.raises(ValueError, match="terrain generator places the envs"):
        add_global_camera(standins.make_scene_cfg(lab3, terrain="generator"))
    with pytest.raises(ValueError, match="env_spacing=None"):
        add_global_camera(standins.make_scene_cfg(lab3, env_spacing=None))
    # A plane terrain uses the grid.
    scene = standins.make_scene_cfg(lab3, num_envs=4, env_spacing=2.0, terrain="plane")
    resolved = add_global_camera(scene)
    np.testing.assert_allclose(resolved.lookat, (0.0, 0.0, 0.0), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# lazy import of Isaac Lab
# ---------------------------------------------------------------------------------------------


def test_nothing_imports_isaaclab_until_used() -> None:
    code = (
        "import sys\n"
        "import envreel.capture, envreel.capture.isaaclab as a\n"
        "a.env_camera_poses(a.grid_env_origins(4, 2.0), a.EnvCameraCfg())\n"
        "a.global_camera_pose(a.GlobalCameraCfg(), env_origins=a.grid_env_origins(4, 2.0))\n"
        "a.camera_intrinsics(a.GlobalCameraCfg())\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('isaaclab', 'torch', 'omni')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_isaaclab_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "isaaclab"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "isaaclab", None)  # import isaaclab -> ModuleNotFoundError
    lab = standins.types.SimpleNamespace(
        scene=standins.make_isaaclab_modules()["isaaclab.scene"],
        terrains=standins.make_isaaclab_modules()["isaaclab.terrains"],
    )
    scene = standins.make_scene_cfg(lab)
    with pytest.raises(ImportError, match="needs Isaac Lab.*pip install"):
        add_env_camera(scene)
    with pytest.raises(ImportError, match="needs Isaac Lab"):
        add_global_camera(scene)
    assert not hasattr(scene, "envreel_cam")


def test_public_names() -> None:
    assert sorted(adapter.__all__) == sorted(
        [
            "EnvCameraCfg",
            "GlobalCameraCfg",
            "add_env_camera",
            "add_global_camera",
            "camera_intrinsics",
            "env_camera_poses",
            "global_camera_pose",
            "grid_env_origins",
            "RecordEnvs",
            "RecorderCfg",
        ]
    )
    for name in adapter.__all__:
        assert getattr(adapter, name).__doc__


# ---------------------------------------------------------------------------------------------
# the env stand-ins themselves (for the recorder wrapper's tests)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.0.0", "2.2.0"])
def test_fake_env_mirrors_isaac_lab(version: str) -> None:
    torch = pytest.importorskip("torch")
    env = standins.make_fake_env(version=version, num_envs=4, height=6, width=8, wrappers=3)
    u = env.unwrapped
    assert isinstance(u, standins.FakeIsaacLabEnv) and u.unwrapped is u
    assert not hasattr(env, "num_envs")  # wrappers do not forward attributes
    assert u.num_envs == 4 and u.device == "cpu"
    assert u.step_dt == pytest.approx(1 / 30) and round(1 / u.step_dt) == 30
    assert u.episode_length_buf.dtype == torch.int64 and u.episode_length_buf.shape == (4,)
    assert u.reset_terminated.dtype == torch.bool and u.reset_time_outs.shape == (4,)
    assert u.cfg.num_rerenders_on_reset == 0
    camera = u.scene.sensors["envreel_cam"]
    rgb = camera.data.output["rgb"]
    origins = u.scene.env_origins
    if version.startswith("3"):
        assert isinstance(rgb, standins.ProxyArray) and not isinstance(rgb, torch.Tensor)
        rgb = rgb.torch
        assert isinstance(origins, standins.ProxyArray)
        origins = origins.torch
        order = "xyzw"
    else:
        assert isinstance(rgb, torch.Tensor)
        order = "wxyz"
    assert rgb.shape == (4, 6, 8, 3) and rgb.dtype == torch.uint8
    assert not rgb.is_contiguous() and rgb.stride()[-2] == 4  # a view of rgba[..., :3]
    assert origins.shape == (4, 3) and origins.dtype == torch.float32
    assert camera.data.intrinsic_matrices.shape == (4, 3, 3)
    assert camera.data.intrinsic_matrices.dtype == torch.float32
    assert camera.data.image_shape == (6, 8)
    glob = u.scene.sensors["envreel_global"]
    assert glob.data.pos_w.shape == (1, 3)

    # Poses and intrinsics agree with envreel's helpers (computed independently in the fakes).
    cfg = EnvCameraCfg(width=8, height=6)
    poses = env_camera_poses(u.scene.env_origins, cfg)  # ProxyArray or tensor accepted
    np.testing.assert_allclose(camera.data.pos_w.numpy(), poses[:, :3, 3], atol=1e-6)
    rotations = geo.quat_to_rotation(camera.data.quat_w_opengl.numpy(), order=order)
    np.testing.assert_allclose(rotations, poses[:, :3, :3], atol=1e-6)
    ros = geo.quat_to_rotation(camera.data.quat_w_ros.numpy(), order=order)
    np.testing.assert_allclose(
        ros, env_camera_poses(origins, cfg, convention="ros")[:, :3, :3], atol=1e-6
    )
    np.testing.assert_allclose(
        camera.data.intrinsic_matrices[0].numpy(), camera_intrinsics(cfg), rtol=1e-6
    )


def test_fake_env_buffers_are_reused_and_resets_staggered() -> None:
    torch = pytest.importorskip("torch")
    env = standins.make_fake_env(num_envs=4, max_episode_length=5)  # ends after 3, 4, 5, 5 steps
    u = env.unwrapped
    env.reset()
    rgb = u.scene.sensors["envreel_cam"].data.output["rgb"].torch
    h, w = 6, 8
    for i in range(4):
        np.testing.assert_array_equal(
            rgb[i].numpy(), standins.expected_rgb(i, 0, 0, height=h, width=w)
        )
    action = torch.zeros((4, 2))
    seen = []
    for _ in range(6):
        obs, reward, terminated, truncated, extras = env.step(action)
        assert terminated is u.reset_terminated and truncated is u.reset_time_outs
        assert rgb.data_ptr() == u.scene.sensors["envreel_cam"].data.output["rgb"].torch.data_ptr()
        seen.append((terminated.numpy().copy(), truncated.numpy().copy(), rgb.numpy().copy()))
    # Step 3 ends env 0 (terminated), step 4 env 1, step 5 env 2 (both flags) and env 3 (time-out).
    assert seen[2][0].tolist() == [True, False, False, False]
    assert seen[4][0].tolist() == [False, False, True, False]
    assert seen[4][1].tolist() == [False, False, True, True]
    # Stale frame: env 0 at step 3 shows the last state of its first episode (episode step 3).
    np.testing.assert_array_equal(seen[2][2][0], standins.expected_rgb(0, 3, 3, height=h, width=w))
    # The held view was overwritten in place by later steps.
    np.testing.assert_array_equal(rgb[0].numpy(), standins.expected_rgb(0, 6, 3, height=h, width=w))
    truth = u.truth
    assert [t.step for t in truth] == list(range(7))
    assert truth[3].stale.tolist() == [True, False, False, False]
    assert truth[3].episode_index.tolist() == [0, 0, 0, 0]
    assert truth[4].episode_index.tolist() == [1, 0, 0, 0]
    np.testing.assert_array_equal(truth[3].rgb, seen[2][2])


def test_fake_env_rerender_on_reset_and_moving_camera() -> None:
    torch = pytest.importorskip("torch")
    env = standins.make_fake_env(
        num_envs=2,
        terminate_after=[2, 9],
        num_rerenders_on_reset=1,
        update_latest_camera_pose=True,
        global_camera_name=None,
    )
    u = env.unwrapped
    env.reset()
    for _ in range(2):
        env.step(torch.zeros((2, 2)))
    rgb = u.scene.sensors["envreel_cam"].data.output["rgb"].torch
    np.testing.assert_array_equal(rgb[0].numpy(), standins.expected_rgb(0, 2, 0, height=6, width=8))
    assert u.truth[2].stale.tolist() == [False, False]
    assert u.truth[2].episode_index.tolist() == [1, 0]
    z0 = float(u.truth[0].camera_pos_w[0, 2])
    z2 = float(u.scene.sensors["envreel_cam"].data.pos_w[0, 2])
    assert z2 - z0 == pytest.approx(2 * standins.CAMERA_RISE_PER_STEP, abs=1e-6)
    assert "envreel_global" not in u.scene.sensors
