"""Tests of envreel.capture.isaaclab configs and scene helpers, against Isaac Lab stand-ins."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys
import types
import warnings

import isaaclab_standins as standins
import numpy as np
import pytest

from envreel.capture import isaaclab as adapter
from envreel.capture.isaaclab import (
    EnvCameraCfg,
    GlobalCameraCfg,
    _scene,
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
        "renderer": "auto",
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
        "lookat_height": 0.0,
        "fit_to_image": True,
        "width": 1280,
        "height": 720,
        "focal_length": 18.147,
        "horizontal_aperture": 20.955,
        "clipping_range": (0.01, 1.0e6),
        "update_period": 0.0,
        "renderer": "auto",
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
        (EnvCameraCfg, {"width": 0}, ValueError, r"EnvCameraCfg.width must be positive \(pixels\)"),
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
        (EnvCameraCfg, {"renderer": "rtx"}, ValueError, "EnvCameraCfg.renderer must be one of"),
        (EnvCameraCfg, {"renderer": None}, ValueError, r"\('auto', 'newton_warp', 'isaac_rtx'"),
        (GlobalCameraCfg, {"renderer": "ovrtx"}, ValueError, "GlobalCameraCfg.renderer must be"),
        (GlobalCameraCfg, {"lookat_height": "2"}, TypeError, "lookat_height must be a number"),
        (GlobalCameraCfg, {"lookat_height": float("nan")}, ValueError, "must be finite"),
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
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got 0"):
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
    # Renderer: kit-less Isaac Lab 3 (the stand-in's default) gets Newton Warp; 2.x has no field.
    if order == "xyzw":
        assert isinstance(camera.renderer_cfg, standins.NewtonWarpRendererCfg)
        assert camera.renderer_cfg.renderer_type == "newton_warp"
    else:
        assert not hasattr(camera, "renderer_cfg")


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
    add_global_camera(scene)
    with pytest.raises(ValueError, match="'envreel_global' collides"):
        add_global_camera(scene)


def test_built_env_and_wrong_objects_are_refused(lab3) -> None:
    with pytest.raises(TypeError, match="before the env is built"):
        add_env_camera(type("Env", (), {"unwrapped": None})())
    with pytest.raises(TypeError, match="scene_cfg must be an Isaac Lab InteractiveSceneCfg"):
        add_env_camera(object())
    with pytest.raises(TypeError, match="cfg must be an EnvCameraCfg instance"):
        add_env_camera(standins.make_scene_cfg(lab3), GlobalCameraCfg())


# ---------------------------------------------------------------------------------------------
# renderers (Isaac Lab 3: CameraCfg.renderer_cfg; 2.x: RTX only)
# ---------------------------------------------------------------------------------------------


def test_stand_in_camera_cfg_defaults_to_rtx_like_the_real_one(lab3) -> None:
    # Why envreel sets renderer_cfg: left alone, Isaac Lab 3's CameraCfg picks RTX (needs Kit).
    camera = lab3.sensors.CameraCfg(prim_path="/World/c", spawn=None, width=4, height=4)
    assert isinstance(camera.renderer_cfg, standins.IsaacRtxRendererCfg)
    assert camera.renderer_cfg.renderer_type == "isaac_rtx"


@pytest.mark.parametrize(
    ("renderer", "kit", "cls"),
    [
        ("auto", False, standins.NewtonWarpRendererCfg),
        ("auto", True, standins.IsaacRtxRendererCfg),
        ("newton_warp", True, standins.NewtonWarpRendererCfg),
        ("isaac_rtx", False, standins.IsaacRtxRendererCfg),
        ("ovrtx", False, standins.OVRTXRendererCfg),
    ],
)
def test_env_camera_renderer_on_isaac_lab_3(monkeypatch, renderer, kit, cls) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0", kit=kit)
    scene = standins.make_scene_cfg(lab)
    add_env_camera(scene, EnvCameraCfg(renderer=renderer))
    renderer_cfg = scene.envreel_cam.renderer_cfg
    assert type(renderer_cfg) is cls  # a fresh instance of the renderer's own config class
    assert (
        renderer_cfg.renderer_type
        == {
            standins.NewtonWarpRendererCfg: "newton_warp",
            standins.IsaacRtxRendererCfg: "isaac_rtx",
            standins.OVRTXRendererCfg: "ovrtx",
        }[cls]
    )
    other = standins.make_scene_cfg(lab)
    add_env_camera(other, EnvCameraCfg(renderer=renderer))
    assert other.envreel_cam.renderer_cfg is not renderer_cfg


def test_auto_renderer_follows_a_running_kit(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0", kit=None)  # real detection
    scene = standins.make_scene_cfg(lab)
    add_env_camera(scene, EnvCameraCfg(name="a"))
    assert scene.a.renderer_cfg.renderer_type == "newton_warp"  # no Isaac Sim here
    app = types.ModuleType("omni.kit.app")
    app.get_app = lambda: object()  # a running Kit app
    monkeypatch.setitem(sys.modules, "omni.kit.app", app)
    add_env_camera(scene, EnvCameraCfg(name="b"))
    assert scene.b.renderer_cfg.renderer_type == "isaac_rtx"


def test_kit_available(monkeypatch, tmp_path) -> None:
    monkeypatch.delitem(sys.modules, "omni.kit.app", raising=False)
    assert not _scene.kit_available()
    app = types.ModuleType("omni.kit.app")
    monkeypatch.setitem(sys.modules, "omni.kit.app", app)
    app.get_app = lambda: None  # imported, never started
    assert not _scene.kit_available()
    app.get_app = lambda: 1 / 0  # half started
    assert not _scene.kit_available()
    app.get_app = lambda: object()
    assert _scene.kit_available()
    monkeypatch.delitem(sys.modules, "omni.kit.app")
    # Kit-less installs may carry an "isaacsim" namespace portion (asset importers): not Kit.
    (tmp_path / "ns" / "isaacsim").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(tmp_path / "ns"))
    assert not _scene.kit_available()
    (tmp_path / "sim" / "isaacsim").mkdir(parents=True)
    (tmp_path / "sim" / "isaacsim" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "sim"))
    assert _scene.kit_available()


def test_missing_renderer_module_is_named(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0")
    monkeypatch.setitem(sys.modules, "isaaclab_ov.renderers", None)  # import fails
    scene = standins.make_scene_cfg(lab)
    before = standins.scene_cfg_fields(scene)
    with pytest.raises(ImportError, match=r"renderer='ovrtx' needs isaaclab_ov\.renderers"):
        add_env_camera(scene, EnvCameraCfg(renderer="ovrtx"))
    assert standins.scene_cfg_fields(scene) == before
    add_env_camera(scene, EnvCameraCfg(renderer="newton_warp"))  # the others still work


@pytest.mark.parametrize("renderer", ["newton_warp", "ovrtx"])
def test_isaac_lab_2_cameras_render_with_rtx_only(monkeypatch, renderer) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "2.2.0")
    scene = standins.make_scene_cfg(lab)
    before = standins.scene_cfg_fields(scene)
    with pytest.raises(ValueError, match=f"renderer='{renderer}' needs Isaac Lab 3"):
        add_env_camera(scene, EnvCameraCfg(renderer=renderer))
    assert standins.scene_cfg_fields(scene) == before
    for name, ok in (("a", "auto"), ("b", "isaac_rtx")):
        add_env_camera(scene, EnvCameraCfg(name=name, renderer=ok))
        assert type(getattr(scene, name)).__name__ == "TiledCameraCfg"  # no renderer_cfg given


def test_global_view_renderers_per_version(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0")
    scene = standins.make_scene_cfg(lab)
    before = standins.scene_cfg_fields(scene)
    with pytest.raises(ValueError, match="renderer='isaac_rtx' needs Isaac Lab 2.x"):
        add_global_camera(scene, GlobalCameraCfg(renderer="isaac_rtx"))
    assert standins.scene_cfg_fields(scene) == before
    add_global_camera(scene, GlobalCameraCfg(renderer="newton_warp"))
    assert _scene.global_view_of(scene.envreel_global).renderer == "newton_warp"

    lab = standins.install_fake_isaaclab(monkeypatch, "2.2.0")
    scene = standins.make_scene_cfg(lab)
    with pytest.raises(ValueError, match="renderer='newton_warp' needs Isaac Lab 3"):
        add_global_camera(scene, GlobalCameraCfg(renderer="newton_warp"))
    add_global_camera(scene, GlobalCameraCfg(renderer="isaac_rtx"))
    assert type(scene.envreel_global).__name__ == "TiledCameraCfg"


# ---------------------------------------------------------------------------------------------
# the global view
# ---------------------------------------------------------------------------------------------


def _framing(num_envs: int, spacing: float, lookat_height: float = 0.0):
    origins = grid_env_origins(num_envs, spacing) + (0.0, 0.0, lookat_height)
    return geo.auto_frame(
        origins, intrinsics=camera_intrinsics(GlobalCameraCfg()), image_shape=(720, 1280)
    )


def test_add_global_camera_on_isaac_lab_2_is_a_scene_camera(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "2.2.0")
    scene = standins.make_scene_cfg(lab, num_envs=9, env_spacing=4.0)
    resolved = add_global_camera(scene)
    camera = scene.envreel_global
    assert type(camera).__name__ == "TiledCameraCfg"
    assert camera.prim_path == "/World/envreel_global"  # outside the env namespace
    assert (camera.width, camera.height) == (1280, 720)
    assert camera.spawn.focal_length == 18.147
    assert camera.spawn.horizontal_aperture == 20.955
    assert camera.offset.convention == "opengl"
    # The returned cfg carries the pose the camera was given.
    assert not resolved.auto_framed
    assert camera.offset.pos == resolved.eye
    assert not hasattr(resolved, _scene.EXPECTED_FRAMING)  # the camera has this pose for good
    framing = _framing(9, 4.0)
    np.testing.assert_allclose(resolved.eye, framing.eye)
    np.testing.assert_allclose(resolved.lookat, framing.target)
    np.testing.assert_allclose(
        geo.quat_to_rotation(camera.offset.rot, order="wxyz"),
        geo.look_at_rotation(resolved.eye, resolved.lookat),
        atol=1e-12,
    )
    # Every env origin of the grid is in the global image.
    pixels, in_front = geo.project_points(
        grid_env_origins(9, 4.0), global_camera_pose(resolved), camera_intrinsics(resolved)
    )
    assert in_front.all()
    assert (pixels >= 0).all() and (pixels[:, 0] <= 1280).all() and (pixels[:, 1] <= 720).all()
    add_env_camera(scene)
    standins.make_fake_env(version="2.2.0", scene_cfg=scene)  # 2.x builds it


def test_add_global_camera_on_isaac_lab_3_adds_a_camera_less_entry(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0")
    scene = standins.make_scene_cfg(lab, num_envs=9, env_spacing=4.0)
    cfg = GlobalCameraCfg(width=320, height=180, lookat_height=2.0)
    resolved = add_global_camera(scene, cfg)
    entry = scene.envreel_global
    assert "envreel_global" in standins.scene_cfg_fields(scene)
    # An AssetBaseCfg made with configclass: no prim to spawn, no camera, no physics view.
    assert isinstance(entry, lab.assets.AssetBaseCfg)
    assert not isinstance(entry, lab.sensors.CameraCfg)
    assert entry.prim_path == "/World/envreel_global" and entry.spawn is None
    assert isinstance(entry.init_state, lab.assets.AssetBaseCfg.InitialStateCfg)
    # It carries the cfg as given (RecordEnvs frames it on the live env origins).
    assert entry.envreel_global_view == dataclasses.asdict(cfg)
    assert _scene.global_view_of(entry) == cfg
    assert _scene.global_view_of(lab.assets.AssetBaseCfg(prim_path="/World/x")) is None
    # The returned pose is framed on the grid, raised by lookat_height.
    cfg_framing = geo.auto_frame(
        grid_env_origins(9, 4.0) + (0.0, 0.0, 2.0),
        intrinsics=camera_intrinsics(cfg),
        image_shape=(180, 320),
    )
    np.testing.assert_allclose(resolved.lookat, cfg_framing.target)
    np.testing.assert_allclose(resolved.eye, cfg_framing.eye)
    assert resolved.lookat[2] == pytest.approx(2.0)
    # ... and remembers it, so that RecordEnvs frames it on the live origins unless edited.
    assert getattr(resolved, _scene.EXPECTED_FRAMING) == (resolved.eye, resolved.lookat)
    # gym.make builds a 3.x env from it (a camera outside the env namespace would fail).
    add_env_camera(scene)
    standins.make_fake_env(scene_cfg=scene)
    scene.top = lab.sensors.CameraCfg(prim_path="/World/top", spawn=None, width=8, height=8)
    with pytest.raises(
        RuntimeError, match=r"camera prims in the view \(1\) does not match .* \(9\)"
    ):
        standins.make_fake_env(scene_cfg=scene)


def test_global_view_entries_do_not_share_their_dict(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0")
    a, b = standins.make_scene_cfg(lab), standins.make_scene_cfg(lab)
    add_global_camera(a, GlobalCameraCfg(width=64, height=48))
    add_global_camera(b)
    assert a.envreel_global.envreel_global_view["width"] == 64
    assert b.envreel_global.envreel_global_view["width"] == 1280
    assert type(a.envreel_global) is type(b.envreel_global)  # one entry type per process


def test_add_global_camera_seed_distance(lab) -> None:
    scene = standins.make_scene_cfg(lab, num_envs=9, env_spacing=4.0)
    resolved = add_global_camera(scene, GlobalCameraCfg(fit_to_image=False))
    assert np.linalg.norm(np.subtract(resolved.eye, resolved.lookat)) == pytest.approx(17.6)


def test_add_global_camera_explicit_and_given_origins(lab) -> None:
    scene = standins.make_scene_cfg(lab)
    cfg = GlobalCameraCfg(name="top", eye=(0.0, 0.0, 30.0), lookat=(0.0, 0.0, 0.0))
    resolved = add_global_camera(scene, cfg)
    assert resolved == cfg and resolved is not cfg
    if lab.version.startswith("2"):
        assert scene.top.offset.pos == (0.0, 0.0, 30.0)
        rotation = geo.quat_to_rotation(scene.top.offset.rot, order="wxyz")
        np.testing.assert_allclose(rotation, np.eye(3), atol=1e-12)
    else:
        assert _scene.global_view_of(scene.top) == cfg

    origins = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    scene = standins.make_scene_cfg(lab, terrain="generator")
    resolved = add_global_camera(scene, env_origins=origins)
    np.testing.assert_allclose(resolved.lookat, (5.0, 0.0, 0.0))


def test_add_global_camera_needs_origins_it_cannot_guess_on_isaac_lab_2(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "2.2.0")
    with pytest.raises(ValueError, match="terrain generator places the envs"):
        add_global_camera(standins.make_scene_cfg(lab, terrain="generator"))
    with pytest.raises(ValueError, match="env_spacing=None"):
        add_global_camera(standins.make_scene_cfg(lab, env_spacing=None))
    # A plane terrain uses the grid.
    scene = standins.make_scene_cfg(lab, num_envs=4, env_spacing=2.0, terrain="plane")
    resolved = add_global_camera(scene)
    np.testing.assert_allclose(resolved.lookat, (0.0, 0.0, 0.0), atol=1e-12)


def test_isaac_lab_3_frames_the_live_origins_so_needs_none(monkeypatch) -> None:
    lab = standins.install_fake_isaaclab(monkeypatch, "3.0.0")
    scene = standins.make_scene_cfg(lab, env_spacing=None)
    resolved = add_global_camera(scene)
    assert resolved.auto_framed  # nothing to frame yet: RecordEnvs frames the live origins
    assert _scene.global_view_of(scene.envreel_global) == GlobalCameraCfg()
    scene = standins.make_scene_cfg(lab, terrain="generator")
    add_global_camera(scene)
    assert _scene.global_view_of(scene.envreel_global) == GlobalCameraCfg()


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
    glob_name = "envreel_global" if version.startswith("2") else None  # 3.x refuses one
    env = standins.make_fake_env(
        version=version, num_envs=4, height=6, width=8, wrappers=3, global_camera_name=glob_name
    )
    u = env.unwrapped
    assert isinstance(u, standins.FakeIsaacLabEnv) and u.unwrapped is u
    assert not hasattr(env, "num_envs")  # wrappers do not forward attributes
    assert u.num_envs == 4 and u.device == "cpu"
    assert u.step_dt == pytest.approx(1 / 30) and round(1 / u.step_dt) == 30
    assert u.episode_length_buf.dtype == torch.int64 and u.episode_length_buf.shape == (4,)
    assert u.reset_terminated.dtype == torch.bool and u.reset_time_outs.shape == (4,)
    assert u.cfg.num_rerenders_on_reset == 0
    assert u.scene.cfg.lazy_sensor_update is True
    camera = u.scene.sensors["envreel_cam"]
    rgb = camera.data.output["rgb"]
    origins = u.scene.env_origins
    if version.startswith("3"):
        assert isinstance(rgb, standins.ProxyArray) and not isinstance(rgb, torch.Tensor)
        rgb = rgb.torch
        assert isinstance(origins, standins.ProxyArray)
        origins = origins.torch
        order = "xyzw"
        assert camera.cfg.renderer_cfg.renderer_type == camera.renderer_type == "newton_warp"
        assert "envreel_global" not in u.scene.sensors
    else:
        assert isinstance(rgb, torch.Tensor)
        order = "wxyz"
        assert camera.renderer_type == "isaac_rtx"
        assert getattr(camera.cfg, "renderer_cfg", None) is None
        assert u.scene.sensors["envreel_global"].data.pos_w.shape == (1, 3)
    assert rgb.shape == (4, 6, 8, 3) and rgb.dtype == torch.uint8
    assert not rgb.is_contiguous() and rgb.stride()[-2] == 4  # a view of rgba[..., :3]
    assert origins.shape == (4, 3) and origins.dtype == torch.float32
    assert camera.data.intrinsic_matrices.shape == (4, 3, 3)
    assert camera.data.intrinsic_matrices.dtype == torch.float32
    assert camera.data.image_shape == (6, 8)

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


def test_fake_isaac_lab_3_refuses_a_global_scene_camera() -> None:
    pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match=r"camera prims in the view \(1\) does not match"):
        standins.make_fake_env(version="3.0.0", global_camera_name="top")
    with pytest.raises(ValueError, match="render with RTX"):
        standins.make_fake_env(version="2.2.0", renderer="newton_warp")


@pytest.mark.parametrize("version", ["3.0.0", "2.2.0"])
def test_fake_env_built_from_the_scene_config(monkeypatch, version: str) -> None:
    torch = pytest.importorskip("torch")
    lab = standins.install_fake_isaaclab(monkeypatch, version)
    scene = standins.make_scene_cfg(lab, num_envs=6, env_spacing=3.0)
    cam = EnvCameraCfg(width=10, height=4, eye_offset=(1.0, 0.5, 2.0), clipping_range=(0.1, 30.0))
    add_env_camera(scene, cam)
    top = add_global_camera(scene, GlobalCameraCfg(width=12, height=8))
    env = standins.make_fake_env(version=version, scene_cfg=scene)
    u = env.unwrapped
    assert u.num_envs == 6 and u.scene.cfg is scene
    camera = u.scene.sensors["envreel_cam"]
    assert camera.cfg == scene.envreel_cam and camera.cfg is not scene.envreel_cam  # a copy
    assert camera.data.image_shape == (4, 10)
    order = VERSIONS[version][0]
    poses = env_camera_poses(u.scene.env_origins, cam)
    np.testing.assert_allclose(camera.data.pos_w.numpy(), poses[:, :3, 3], atol=1e-6)
    np.testing.assert_allclose(
        geo.quat_to_rotation(camera.data.quat_w_opengl.numpy(), order=order),
        poses[:, :3, :3],
        atol=1e-6,
    )
    np.testing.assert_allclose(camera.data.intrinsic_matrices[0].numpy(), camera_intrinsics(cam))
    if version.startswith("2"):
        glob = u.scene.sensors["envreel_global"]
        assert glob.num_instances == 1 and glob.data.image_shape == (8, 12)
        np.testing.assert_allclose(
            geo.pose_matrix(
                glob.data.pos_w.numpy().astype(float),
                geo.quat_to_rotation(glob.data.quat_w_opengl.numpy(), order=order),
            )[0],
            global_camera_pose(top),
            atol=1e-5,
        )
    else:
        assert "envreel_global" not in u.scene.sensors  # envreel renders it (Newton views)
        assert camera.renderer_type == "newton_warp"
    assert torch.is_tensor(u.episode_length_buf)


def test_fake_rtx_camera_renders_in_step_before_resets() -> None:
    torch = pytest.importorskip("torch")
    env = standins.make_fake_env(num_envs=4, max_episode_length=5, renderer="isaac_rtx")
    u = env.unwrapped
    env.reset()
    camera = u.scene.sensors["envreel_cam"]
    rgb = camera.data.output["rgb"].torch
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
        assert rgb.data_ptr() == camera.data.output["rgb"].torch.data_ptr()
        seen.append((terminated.numpy().copy(), truncated.numpy().copy(), rgb.numpy().copy()))
    # Step 3 ends env 0 (terminated), step 4 env 1, step 5 env 2 (both flags) and env 3 (time-out).
    assert seen[2][0].tolist() == [True, False, False, False]
    assert seen[4][0].tolist() == [False, False, True, False]
    assert seen[4][1].tolist() == [False, False, True, True]
    # Stale frame: env 0 at step 3 shows the last state of its first episode (episode step 3).
    np.testing.assert_array_equal(seen[2][2][0], standins.expected_rgb(0, 3, 3, height=h, width=w))
    # The held view was overwritten in place by later steps.
    np.testing.assert_array_equal(rgb[0].numpy(), standins.expected_rgb(0, 6, 3, height=h, width=w))
    assert camera.renders == 7  # reset() and every step, read or not
    truth = u.truth
    assert [t.step for t in truth] == list(range(7))
    assert truth[3].stale.tolist() == [True, False, False, False]
    assert truth[3].episode_index.tolist() == [0, 0, 0, 0]
    assert truth[3].episode_length.tolist() == [0, 3, 3, 3]
    assert truth[4].episode_index.tolist() == [1, 0, 0, 0]
    np.testing.assert_array_equal(truth[3].rgb, seen[2][2])


def test_fake_newton_warp_camera_renders_when_read_after_resets() -> None:
    torch = pytest.importorskip("torch")
    env = standins.make_fake_env(num_envs=4, max_episode_length=5)  # 3.x default: Newton Warp
    u = env.unwrapped
    camera = u.scene.sensors["envreel_cam"]
    assert camera.renderer_type == "newton_warp" and camera.renders == 0
    env.reset()
    for _ in range(3):
        env.step(torch.zeros((4, 2)))
    assert camera.renders == 0 and camera.data_reads == 0  # nobody read it: nothing rendered
    # Step 3 reset env 0 inside step(): the frame read now shows its new episode's step 0.
    rgb = camera.data.output["rgb"].torch
    assert camera.renders == 1
    np.testing.assert_array_equal(rgb[0].numpy(), standins.expected_rgb(0, 3, 0, height=6, width=8))
    np.testing.assert_array_equal(rgb[1].numpy(), standins.expected_rgb(1, 3, 3, height=6, width=8))
    camera.data.output["rgb"]  # noqa: B018 - up to date: no second render
    assert camera.renders == 1 and camera.data_reads == 2
    env.step(torch.zeros((4, 2)))
    camera.data  # noqa: B018
    assert camera.renders == 2
    truth = u.truth
    assert not np.stack([t.stale for t in truth]).any()
    assert truth[3].episode_index.tolist() == [1, 0, 0, 0]
    assert truth[3].episode_step.tolist() == [0, 3, 3, 3]
    np.testing.assert_array_equal(truth[4].rgb, rgb.numpy())  # truth renders nothing itself


def test_fake_env_rerender_on_reset_and_moving_camera() -> None:
    torch = pytest.importorskip("torch")
    env = standins.make_fake_env(
        num_envs=2,
        terminate_after=[2, 9],
        num_rerenders_on_reset=1,
        update_latest_camera_pose=True,
        renderer="isaac_rtx",
    )
    u = env.unwrapped
    env.reset()
    for _ in range(2):
        env.step(torch.zeros((2, 2)))
    camera = u.scene.sensors["envreel_cam"]
    rgb = camera.data.output["rgb"].torch
    np.testing.assert_array_equal(rgb[0].numpy(), standins.expected_rgb(0, 2, 0, height=6, width=8))
    assert camera.renders == 4  # reset, two steps, one re-render
    assert u.truth[2].stale.tolist() == [False, False]
    assert u.truth[2].episode_index.tolist() == [1, 0]
    z0 = float(u.truth[0].camera_pos_w[0, 2])
    z2 = float(camera.data.pos_w[0, 2])
    assert z2 - z0 == pytest.approx(2 * standins.CAMERA_RISE_PER_STEP, abs=1e-6)


def test_fake_newton_views() -> None:
    torch = pytest.importorskip("torch")
    from envreel.errors import SimulatorError

    with pytest.raises(SimulatorError, match="not bound"):
        standins.FakeNewtonViews()
    env = standins.make_fake_env(num_envs=4)
    views_cls = standins.fake_newton_views(env)
    views = views_cls("renderer cfg")
    assert views_cls.instances == [views] and views.renderer_cfg == "renderer cfg"
    k = np.eye(3)
    sub = views.env_view(np.array([3, 1]), np.tile(np.eye(4), (2, 1, 1)), k, (6, 8), 100.0)
    top = views.global_view(np.eye(4), k, (9, 16), 1.0e6)
    env.reset()
    for _ in range(3):
        env.step(torch.zeros((4, 2)))
    frames, glob = views.render([sub, top])
    assert views.renders == 1 and sub.renders == top.renders == 1
    assert frames.shape == (2, 6, 8, 4) and frames.dtype == np.uint8 and glob.shape == (1, 9, 16, 4)
    assert (frames[..., 3] == 255).all()
    lengths = env.unwrapped.episode_length_buf.numpy()  # after the reset of env 0
    assert lengths.tolist() == [0, 3, 3, 3]
    for k_, e in enumerate((3, 1)):
        np.testing.assert_array_equal(
            frames[k_, ..., :3], standins.expected_rgb(e, 3, lengths[e], height=6, width=8)
        )
    np.testing.assert_array_equal(
        glob[0, ..., :3], standins.expected_global_rgb(3, height=9, width=16, episode_steps=lengths)
    )
    again = views.render([sub])[0]
    assert again is frames  # a reused buffer, as the real one's
    for bad in ([4], [1, 1], [-1]):
        with pytest.raises(ValueError, match="env_ids"):
            views.env_view(np.array(bad), np.tile(np.eye(4), (len(bad), 1, 1)), k, (6, 8), 1.0)
    with pytest.raises(ValueError, match="poses"):
        views.env_view(np.array([0]), np.eye(4), k, (6, 8), 1.0)


def test_isaaclab_md_lists_every_recorder_cfg_field() -> None:
    import dataclasses
    import re
    from pathlib import Path

    from envreel.capture.isaaclab import RecorderCfg

    doc = (Path(__file__).resolve().parents[2] / "docs" / "isaaclab.md").read_text()
    listed = set()
    for cell in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", doc, flags=re.M):
        listed |= set(re.findall(r"`(\w+)`", cell))
    missing = {f.name for f in dataclasses.fields(RecorderCfg)} - listed
    assert not missing, f"docs/isaaclab.md's RecorderCfg table lacks {sorted(missing)}"
