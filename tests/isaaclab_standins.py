"""Stand-ins for Isaac Lab, for tests on machines without it.

They mirror the attribute paths, shapes, dtypes and behaviour of the real Isaac Lab 3.0.0
(measured kit-less on the CPU, see ``shared/isaaclab/README.md``) and of Isaac Lab 2.x, so the
adapter code runs unchanged against them and against the real package.

Three parts:

* **Config modules** (no torch needed): :func:`install_fake_isaaclab` puts fake ``isaaclab``,
  ``isaaclab.sensors``, ``.sim``, ``.scene``, ``.terrains``, ``.assets`` and ``.utils`` modules
  into ``sys.modules`` (through pytest's ``monkeypatch``, so they vanish after the test), and on
  3.x the renderer modules ``isaaclab_newton.renderers`` (``NewtonWarpRendererCfg``),
  ``isaaclab_physx.renderers`` (``IsaacRtxRendererCfg``) and ``isaaclab_ov.renderers``
  (``OVRTXRendererCfg``), each with its ``renderer_type``. The config classes are keyword-only
  dataclasses with Isaac Lab's field names and defaults: the version decides the identity
  default of ``CameraCfg.OffsetCfg.rot`` ((0, 0, 0, 1) xyzw in 3.x, (1, 0, 0, 0) wxyz in 2.x);
  the 3.x ``CameraCfg`` has ``renderer_cfg``, which, left alone, becomes an
  ``IsaacRtxRendererCfg`` as in the real ``CameraCfg.__post_init__`` (2.x has no such field).
  ``isaaclab.utils.configclass`` turns a class into a keyword-only dataclass whose mutable
  defaults are copied per instance; ``isaaclab.assets.AssetBaseCfg`` (with ``InitialStateCfg``)
  is the camera-less entry envreel's 3.x global view rides on. Build a typical task scene config
  with :func:`make_scene_cfg`.

* **A running env** (needs torch): :func:`make_fake_env` returns a wrapper chain around a
  :class:`FakeIsaacLabEnv` that behaves like a manager-based RL env with cameras, built either
  from keyword arguments or, like ``gym.make(task, cfg=env_cfg)``, from a fake scene config
  (``scene_cfg=``) that envreel's ``add_env_camera`` / ``add_global_camera`` edited:

  - ``env.unwrapped`` through any wrapper depth; wrappers do not forward other attributes;
  - ``num_envs``, ``device == "cpu"``, ``step_dt``, ``common_step_counter``,
    ``episode_length_buf`` (N,) int64, ``max_episode_length``, ``reset_terminated`` /
    ``reset_time_outs`` (N,) bool, ``cfg.num_rerenders_on_reset``;
  - ``scene.cfg`` (the scene config, where envreel finds its 3.x global view entry);
    ``scene.sensors`` name -> sensor: a per-env camera (N instances), on 2.x optionally a global
    camera (1 instance, outside the env namespace), and a non-camera sensor;
    ``scene.env_origins`` (N, 3) float32 (a ProxyArray in 3.0 unless ``origins_as_proxy=False``);
  - **3.x refuses a camera outside the env namespace** as ``gym.make`` does
    (``RuntimeError: Number of camera prims in the view (1) does not match the number of
    environments (N).``); envreel renders the 3.x global view itself (:class:`FakeNewtonViews`);
  - camera ``data.output["rgb"]``: (N, H, W, 3) uint8, a strided view ``rgba[..., :3]`` of one
    reused ``rgba`` buffer that every render overwrites in place; in 3.0 wrapped in a
    :class:`ProxyArray` (``.torch`` gives the tensor), in 2.x a plain tensor;
  - ``data.intrinsic_matrices`` (N, 3, 3) float32, ``data.image_shape`` (H, W), ``data.pos_w``
    (N, 3) float32, ``data.quat_w_opengl`` / ``quat_w_ros`` / ``quat_w_world`` (N, 4) float32,
    xyzw in 3.0 and wxyz in 2.x; with ``update_latest_camera_pose`` the per-env camera rises by
    :data:`CAMERA_RISE_PER_STEP` metres per step and the pose tensors follow, otherwise they keep
    the pose at initialisation;
  - ``step(action)`` returns ``(obs, reward, terminated, truncated, extras)``; terminated and
    truncated are the env's own ``reset_terminated`` / ``reset_time_outs`` tensors, overwritten
    in place by the next step (copy them). Envs end on a staggered schedule and are reset
    **inside** ``step()``.

  When the per-env camera renders depends on its renderer (``camera.renderer_type``):

  - ``"newton_warp"`` / ``"ovrtx"`` (the 3.x default: what kit-less Isaac Lab 3.0 uses): every
    step and every reset mark the camera outdated, and it renders when ``camera.data`` is read
    (``lazy_sensor_update=True``), i.e. after ``step()`` returned: a reset env's frame shows the
    new episode's step 0, never stale. Nothing renders while nobody reads the camera;
  - ``"isaac_rtx"`` (2.x always; 3.x with Isaac Sim): renders inside ``step()``, before the
    resets, whether read or not, so a reset env's frame shows the last state of the finished
    episode (stale) unless ``num_rerenders_on_reset > 0``, in which case it is re-rendered
    after the reset. It also renders in ``reset()`` (real Isaac Lab does only with re-renders,
    so the adapter marks that frame stale without them).

  ``FakeCamera.renders`` counts renders and ``FakeCamera.data_reads`` reads of ``.data``.

* **envreel's Newton views** (:class:`FakeNewtonViews`, made for one env by
  :func:`fake_newton_views`): the interface of ``envreel.capture.isaaclab._views.NewtonViews``
  (``env_view``, ``global_view``, ``render``), rendering :func:`expected_rgb` frames of the
  chosen envs and :func:`expected_global_rgb` frames (with ``episode_steps``) from the env's
  state at the time of ``render()``; it counts renders and keeps the arguments it was given.
  Tests monkeypatch ``envreel.capture.isaaclab._wrapper.NewtonViews`` with it.

Frames are deterministic: :func:`expected_rgb` gives env ``i``'s frame at step ``k`` from
``(env_id, step, episode_step)``; ``episode_step`` is the state rendered (the terminal length for
a stale frame, 0 after a reset that the frame already shows). ``FakeIsaacLabEnv.truth`` (not an
Isaac Lab attribute; for assertions only) logs per step what a perfect recorder would store; it
is bookkeeping and renders nothing.

Import from a test module with ``pytest.importorskip("torch")`` first if you use the env part;
the config part works without torch.
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import types
import warnings
from dataclasses import MISSING, dataclass, field
from typing import Any

import numpy as np
import pytest

__all__ = [
    "CAMERA_RISE_PER_STEP",
    "RENDERS_ON_READ",
    "FakeCamera",
    "FakeIsaacLabEnv",
    "FakeNewtonViews",
    "FakeWrapper",
    "IsaacRtxRendererCfg",
    "NewtonWarpRendererCfg",
    "OVRTXRendererCfg",
    "ProxyArray",
    "RendererCfg",
    "StepTruth",
    "configclass",
    "expected_global_rgb",
    "expected_rgb",
    "fake_newton_views",
    "install_fake_isaaclab",
    "make_fake_env",
    "make_isaaclab_modules",
    "make_scene_cfg",
    "reference_look_at",
    "reference_quat",
    "reference_rotation",
    "scene_cfg_fields",
]

CAMERA_RISE_PER_STEP = 0.01
"""Metres the per-env camera rises per step when ``update_latest_camera_pose`` is on."""

RENDERS_ON_READ = ("newton_warp", "ovrtx")
"""Renderers whose cameras render when their data is read (after ``step()`` returned)."""

ENV_NS = "{ENV_REGEX_NS}"


def _torch() -> Any:
    """torch, or a pytest skip where it is not installed."""
    return pytest.importorskip("torch")


def _major(version: str) -> int:
    return int(str(version).split(".")[0])


# =============================================================================================
# config modules
# =============================================================================================


def configclass(cls: type | None = None, /, **kwargs: Any) -> Any:
    """Mirror of ``isaaclab.utils.configclass``: a keyword-only dataclass whose mutable defaults
    (lists, dicts, sets, config instances) are deep-copied for every instance, as Isaac Lab's
    ``configclass`` does (a plain dataclass refuses a dict default)."""
    if cls is None:
        return lambda c: configclass(c, **kwargs)
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, MISSING)
        mutable = isinstance(value, list | dict | set) or (
            hasattr(value, "__dataclass_fields__") and not isinstance(value, type)
        )
        if mutable:
            setattr(cls, name, field(default_factory=functools.partial(copy.deepcopy, value)))
    kwargs.setdefault("kw_only", True)
    cls = dataclass(cls, **kwargs)
    cls.copy = lambda self: copy.deepcopy(self)  # type: ignore[attr-defined]
    return cls


@dataclass(kw_only=True)
class RendererCfg:
    """Mirror of ``isaaclab.renderers.RendererCfg``: ``renderer_type`` "default" until chosen."""

    class_type: Any = None
    renderer_type: str = "default"


@dataclass(kw_only=True)
class NewtonWarpRendererCfg(RendererCfg):
    """Mirror of ``isaaclab_newton.renderers.NewtonWarpRendererCfg`` (kit-less ray tracer)."""

    class_type: Any = "{DIR}.newton_warp_renderer:NewtonWarpRenderer"
    renderer_type: str = "newton_warp"
    use_cuda_graph: bool = True
    enable_textures: bool = True
    enable_shadows: bool = False
    enable_ambient_lighting: bool = True
    enable_backface_culling: bool = False
    max_distance: float = 1000.0
    create_default_light: bool = True
    render_order: str = "tiled"
    tile_rendering_width: int = 8
    tile_rendering_height: int = 8
    kernel_block_dim: int = 64


@dataclass(kw_only=True)
class IsaacRtxRendererCfg(RendererCfg):
    """Mirror of ``isaaclab_physx.renderers.IsaacRtxRendererCfg`` (RTX, needs Isaac Sim)."""

    class_type: Any = "{DIR}.isaac_rtx_renderer:IsaacRtxRenderer"
    renderer_type: str = "isaac_rtx"
    depth_clipping_behavior: str = "none"


@dataclass(kw_only=True)
class OVRTXRendererCfg(RendererCfg):
    """Mirror of ``isaaclab_ov.renderers.OVRTXRendererCfg`` (RTX without Kit)."""

    class_type: Any = "{DIR}.ovrtx_renderer:OVRTXRenderer"
    renderer_type: str = "ovrtx"
    async_rendering: bool = False


_RENDERER_CFG_OF = {
    "newton_warp": NewtonWarpRendererCfg,
    "isaac_rtx": IsaacRtxRendererCfg,
    "ovrtx": OVRTXRendererCfg,
}


def make_isaaclab_modules(version: str = "3.0.0") -> dict[str, types.ModuleType]:
    """Builds fake Isaac Lab modules for Isaac Lab ``version`` (3.x or 2.x).

    Args:
        version: Isaac Lab version; its major number picks the quaternion order, whether
            ``TiledCameraCfg`` is a deprecated alias (3.x) or the batched camera (2.x), and
            whether cameras have a ``renderer_cfg`` and the renderer modules exist (3.x).

    Returns:
        Module name -> module: ``isaaclab`` and its ``sensors``, ``sim``, ``scene``,
        ``terrains``, ``assets`` and ``utils``; on 3.x also ``isaaclab_newton``,
        ``isaaclab_physx``, ``isaaclab_ov`` and their ``.renderers``.
    """
    major = _major(version)
    identity = (0.0, 0.0, 0.0, 1.0) if major >= 3 else (1.0, 0.0, 0.0, 0.0)

    @dataclass(kw_only=True)
    class PinholeCameraCfg:
        """Mirror of ``isaaclab.sim.PinholeCameraCfg`` (fields and defaults)."""

        projection_type: str = "pinhole"
        clipping_range: tuple[float, float] = (0.01, 1e6)
        focal_length: float = 24.0
        focus_distance: float = 400.0
        f_stop: float = 0.0
        horizontal_aperture: float = 20.955
        vertical_aperture: float | None = None
        horizontal_aperture_offset: float = 0.0
        vertical_aperture_offset: float = 0.0
        lock_camera: bool = True

    @dataclass(kw_only=True)
    class OffsetCfg:
        """Mirror of ``CameraCfg.OffsetCfg``: rot is xyzw in 3.x, wxyz in 2.x."""

        pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
        rot: tuple[float, float, float, float] = identity
        convention: str = "ros"

        def __post_init__(self) -> None:
            if self.convention not in ("opengl", "ros", "world"):
                raise ValueError(f"unknown convention {self.convention!r}")
            if len(self.rot) != 4 or len(self.pos) != 3:
                raise ValueError("OffsetCfg.pos must have 3 and rot 4 components")

    @dataclass(kw_only=True)
    class CameraCfg:
        """Mirror of ``isaaclab.sensors.CameraCfg`` (the fields envreel touches, and some)."""

        prim_path: str = MISSING  # type: ignore[assignment]
        update_period: float = 0.0
        history_length: int = 0
        debug_vis: bool = False
        offset: OffsetCfg = field(default_factory=OffsetCfg)
        spawn: PinholeCameraCfg | None = MISSING  # type: ignore[assignment]
        depth_clipping_behavior: str = "none"
        data_types: list[str] = field(default_factory=lambda: ["rgb"])
        width: int = MISSING  # type: ignore[assignment]
        height: int = MISSING  # type: ignore[assignment]
        update_latest_camera_pose: bool = False
        semantic_filter: str | list[str] = "*:*"

    CameraCfg.OffsetCfg = OffsetCfg  # type: ignore[attr-defined]

    if major >= 3:

        @dataclass(kw_only=True)
        class CameraCfg3(CameraCfg):
            renderer_cfg: Any = field(default_factory=RendererCfg)

            def __post_init__(self) -> None:
                # As the real one: no renderer chosen means Isaac RTX (which needs Isaac Sim).
                if getattr(self.renderer_cfg, "renderer_type", None) == "default":
                    self.renderer_cfg = IsaacRtxRendererCfg()

        CameraCfg3.__name__ = CameraCfg3.__qualname__ = "CameraCfg"
        CameraCfg3.OffsetCfg = OffsetCfg  # type: ignore[attr-defined]

        @dataclass(kw_only=True)
        class TiledCameraCfg(CameraCfg3):
            """3.0: deprecated alias of CameraCfg."""

            def __post_init__(self) -> None:
                warnings.warn(
                    "TiledCameraCfg is deprecated; use CameraCfg", DeprecationWarning, stacklevel=2
                )
                super().__post_init__()

        camera_cfg: type = CameraCfg3
    else:

        @dataclass(kw_only=True)
        class TiledCameraCfg(CameraCfg):
            """2.x: the batched (tiled) camera."""

        camera_cfg = CameraCfg
    TiledCameraCfg.OffsetCfg = OffsetCfg  # type: ignore[attr-defined]

    @dataclass(kw_only=True)
    class InteractiveSceneCfg:
        """Mirror of ``isaaclab.scene.InteractiveSceneCfg``."""

        num_envs: int = MISSING  # type: ignore[assignment]
        env_spacing: float | None = MISSING  # type: ignore[assignment]
        lazy_sensor_update: bool = True
        replicate_physics: bool = True
        filter_collisions: bool = True
        clone_in_fabric: bool = False

    @dataclass(kw_only=True)
    class TerrainImporterCfg:
        """Mirror of the two fields of ``isaaclab.terrains.TerrainImporterCfg`` envreel reads."""

        prim_path: str = "/World/ground"
        terrain_type: str = "generator"
        env_spacing: float | None = None

    @configclass
    class AssetBaseCfg:
        """Mirror of ``isaaclab.assets.AssetBaseCfg``: an entry without a runtime view when its
        ``class_type`` is the authoring-only ``Asset`` (3.x)."""

        @configclass
        class InitialStateCfg:
            pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
            rot: tuple[float, float, float, float] = identity

        class_type: Any = "{DIR}.asset:Asset"
        prim_path: str = MISSING  # type: ignore[assignment]
        spawn: Any = None
        init_state: InitialStateCfg = InitialStateCfg()
        collision_group: int = 0
        debug_vis: bool = False

    root = types.ModuleType("isaaclab")
    root.__version__ = version  # type: ignore[attr-defined]
    root.__path__ = []  # type: ignore[attr-defined]  # a package, so submodules resolve
    sensors = types.ModuleType("isaaclab.sensors")
    sensors.CameraCfg = camera_cfg  # type: ignore[attr-defined]
    sensors.TiledCameraCfg = TiledCameraCfg  # type: ignore[attr-defined]
    sim = types.ModuleType("isaaclab.sim")
    sim.PinholeCameraCfg = PinholeCameraCfg  # type: ignore[attr-defined]
    scene = types.ModuleType("isaaclab.scene")
    scene.InteractiveSceneCfg = InteractiveSceneCfg  # type: ignore[attr-defined]
    terrains = types.ModuleType("isaaclab.terrains")
    terrains.TerrainImporterCfg = TerrainImporterCfg  # type: ignore[attr-defined]
    assets = types.ModuleType("isaaclab.assets")
    assets.AssetBaseCfg = AssetBaseCfg  # type: ignore[attr-defined]
    utils = types.ModuleType("isaaclab.utils")
    utils.configclass = configclass  # type: ignore[attr-defined]
    modules = {
        "isaaclab": root,
        "isaaclab.sensors": sensors,
        "isaaclab.sim": sim,
        "isaaclab.scene": scene,
        "isaaclab.terrains": terrains,
        "isaaclab.assets": assets,
        "isaaclab.utils": utils,
    }
    for name, module in modules.items():
        if name != "isaaclab":
            setattr(root, name.split(".")[1], module)
    if major >= 3:
        for package, cls in (
            ("isaaclab_newton", NewtonWarpRendererCfg),
            ("isaaclab_physx", IsaacRtxRendererCfg),
            ("isaaclab_ov", OVRTXRendererCfg),
        ):
            pkg = types.ModuleType(package)
            pkg.__path__ = []  # type: ignore[attr-defined]
            renderers = types.ModuleType(f"{package}.renderers")
            setattr(renderers, cls.__name__, cls)
            pkg.renderers = renderers  # type: ignore[attr-defined]
            modules[package] = pkg
            modules[f"{package}.renderers"] = renderers
    return modules


_FAKE_ROOTS = ("isaaclab", "isaaclab_newton", "isaaclab_physx", "isaaclab_ov")


def install_fake_isaaclab(
    monkeypatch: pytest.MonkeyPatch, version: str = "3.0.0", *, kit: bool | None = False
) -> Any:
    """Puts fake Isaac Lab modules into ``sys.modules`` for the duration of one test.

    Args:
        monkeypatch: pytest's fixture; the modules are removed again after the test.
        version: Isaac Lab version to mimic, e.g. "3.0.0" or "2.2.0".
        kit: Whether envreel sees Isaac Sim (Kit), which makes ``renderer="auto"`` pick RTX:
            False (kit-less, like ``pip install isaaclab``) or True patch envreel's
            ``kit_available``; None leaves its real detection alone. Defaults to False.

    Returns:
        A namespace with the modules as ``isaaclab``, ``sensors``, ``sim``, ``scene``,
        ``terrains``, ``assets``, ``utils``, the module dict as ``modules`` and the ``version``.
    """
    from envreel.capture.isaaclab import _scene

    modules = make_isaaclab_modules(version)
    for name in list(sys.modules):
        if name.split(".")[0] in _FAKE_ROOTS:
            monkeypatch.delitem(sys.modules, name)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    # envreel makes its global view entry type once per process, from the AssetBaseCfg it finds
    # first; every test brings its own fake AssetBaseCfg.
    monkeypatch.setattr(_scene, "_GLOBAL_VIEW_CFG_TYPE", [])
    if kit is not None:
        monkeypatch.setattr(_scene, "kit_available", lambda: kit)
    return types.SimpleNamespace(
        isaaclab=modules["isaaclab"],
        sensors=modules["isaaclab.sensors"],
        sim=modules["isaaclab.sim"],
        scene=modules["isaaclab.scene"],
        terrains=modules["isaaclab.terrains"],
        assets=modules["isaaclab.assets"],
        utils=modules["isaaclab.utils"],
        modules=modules,
        version=version,
    )


@dataclass
class _AssetCfg:
    """A stand-in for an asset config entry (ArticulationCfg, AssetBaseCfg...)."""

    prim_path: str


def make_scene_cfg(
    lab: Any, *, num_envs: int = 9, env_spacing: float | None = 4.0, terrain: str | None = None
) -> Any:
    """A typical task scene config: a subclass of the fake InteractiveSceneCfg with assets.

    Args:
        lab: The namespace returned by :func:`install_fake_isaaclab`.
        num_envs: Number of envs. Defaults to 9.
        env_spacing: Spacing of the env grid, metres. Defaults to 4.0.
        terrain: None for a ground plane asset, or a ``terrain_type`` ("plane", "generator")
            for a ``terrain`` entry.

    Returns:
        The scene config instance, with ``robot``, ``ground`` (or ``terrain``) and
        ``dome_light`` entries.
    """

    @dataclass(kw_only=True)
    class CartpoleSceneCfg(lab.scene.InteractiveSceneCfg):
        robot: _AssetCfg = field(default_factory=lambda: _AssetCfg("{ENV_REGEX_NS}/Robot"))
        dome_light: _AssetCfg = field(default_factory=lambda: _AssetCfg("/World/DomeLight"))

    scene = CartpoleSceneCfg(num_envs=num_envs, env_spacing=env_spacing)
    if terrain is None:
        scene.ground = _AssetCfg("/World/defaultGroundPlane")
    else:
        scene.terrain = lab.terrains.TerrainImporterCfg(terrain_type=terrain)
    return scene


# =============================================================================================
# independent reference maths (deliberately not envreel's code)
# =============================================================================================


def reference_look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world rotation, OpenGL convention (x right, y up, z back), world Z up."""
    back = np.asarray(eye, float) - np.asarray(target, float)
    back /= np.linalg.norm(back)
    right = np.array([-back[1], back[0], 0.0])  # (0, 0, 1) x back
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return np.column_stack([right, up, back])


def reference_quat(rotation: np.ndarray, order: str) -> np.ndarray:
    """Quaternion of a rotation matrix by the eigenvector method (Bar-Itzhack), w >= 0."""
    m = np.asarray(rotation, float)
    k = (
        np.array(
            [
                [
                    m[0, 0] - m[1, 1] - m[2, 2],
                    m[1, 0] + m[0, 1],
                    m[2, 0] + m[0, 2],
                    m[2, 1] - m[1, 2],
                ],
                [
                    m[1, 0] + m[0, 1],
                    m[1, 1] - m[0, 0] - m[2, 2],
                    m[2, 1] + m[1, 2],
                    m[0, 2] - m[2, 0],
                ],
                [
                    m[2, 0] + m[0, 2],
                    m[2, 1] + m[1, 2],
                    m[2, 2] - m[0, 0] - m[1, 1],
                    m[1, 0] - m[0, 1],
                ],
                [
                    m[2, 1] - m[1, 2],
                    m[0, 2] - m[2, 0],
                    m[1, 0] - m[0, 1],
                    m[0, 0] + m[1, 1] + m[2, 2],
                ],
            ]
        )
        / 3.0
    )
    _, vectors = np.linalg.eigh(k)
    xyzw = vectors[:, -1]
    if xyzw[3] < 0:
        xyzw = -xyzw
    return xyzw if order == "xyzw" else xyzw[[3, 0, 1, 2]]


def reference_rotation(quat: Any, order: str) -> np.ndarray:
    """Rotation matrix of a (not necessarily unit) quaternion in ``order`` ("xyzw"/"wxyz")."""
    q = np.asarray(quat, float)
    x, y, z, w = q if order == "xyzw" else q[[1, 2, 3, 0]]
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
    )


_OPENGL_TO = {
    "opengl": np.eye(3),
    "ros": np.diag([1.0, -1.0, -1.0]),
    "world": np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]),
}


# =============================================================================================
# frames
# =============================================================================================


def expected_rgb(
    env_id: int, step: int, episode_step: int, *, height: int, width: int
) -> np.ndarray:
    """The frame the fake per-env camera (and the fake Newton env view) renders.

    Args:
        env_id: Env index i.
        step: ``common_step_counter`` when rendered (0 after ``reset()``).
        episode_step: The env's ``episode_length_buf`` value in the state rendered.
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        (H, W, 3) uint8: red varies with the pixel and the step, green is the env id, blue the
        episode step.
    """
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (x + 3 * y + 7 * step + 11 * env_id) % 256
    frame[..., 1] = env_id % 256
    frame[..., 2] = episode_step % 256
    return frame


def expected_global_rgb(
    step: int, *, height: int, width: int, episode_steps: Any = None
) -> np.ndarray:
    """The frame of a global view at ``step``: (H, W, 3) uint8.

    Args:
        step: ``common_step_counter`` when rendered.
        height: Image height in pixels.
        width: Image width in pixels.
        episode_steps: The envs' ``episode_length_buf`` in the state rendered, for envreel's
            Newton global view (blue: their sum mod 256, so a frame tells whether it shows the
            state before or after the resets); None for the 2.x scene camera (blue 200).
            Defaults to None.
    """
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (2 * x + y + step) % 256
    frame[..., 1] = (x + 5 * step) % 256
    frame[..., 2] = 200 if episode_steps is None else int(np.sum(episode_steps)) % 256
    return frame


# =============================================================================================
# the running env
# =============================================================================================


class ProxyArray:
    """Isaac Lab 3.0's array proxy: not a tensor; ``.torch`` is a zero-copy torch view."""

    def __init__(self, tensor: Any) -> None:
        self._tensor = tensor

    @property
    def torch(self) -> Any:
        """The torch tensor (zero-copy: the same storage the sensor overwrites)."""
        return self._tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._tensor.shape)

    @property
    def device(self) -> str:
        return str(self._tensor.device)

    def __repr__(self) -> str:
        return f"ProxyArray(shape={self.shape}, device={self.device!r})"


class _CameraData:
    """``camera.data``: output buffers, intrinsics and poses."""

    def __init__(self) -> None:
        self.output: dict[str, Any] = {}
        self.intrinsic_matrices: Any = None
        self.image_shape: tuple[int, int] = (0, 0)
        self.pos_w: Any = None
        self.quat_w_opengl: Any = None
        self.quat_w_ros: Any = None
        self.quat_w_world: Any = None
        self.info: list[dict[str, Any]] = []


@dataclass
class _Spawn:
    focal_length: float
    horizontal_aperture: float
    clipping_range: tuple[float, float] = (0.01, 100.0)


@dataclass
class _CameraSpec:
    """A camera sensor's ``cfg`` when the env is built from keyword arguments."""

    prim_path: str
    width: int
    height: int
    spawn: _Spawn
    update_latest_camera_pose: bool = False
    data_types: list[str] = field(default_factory=lambda: ["rgb"])
    update_period: float = 0.0
    renderer_cfg: Any = None  # 3.x only (2.x cameras have none)


class FakeCamera:
    """A camera sensor with ``count`` instances and a reused rgba buffer.

    Args:
        cfg: The sensor's config (a ``CameraCfg`` from a scene config, or a spec).
        positions: (K, 3) camera positions, world, metres.
        rotations: (K, 3, 3) camera-to-world rotations, OpenGL convention.
        major: Isaac Lab major version (quaternion order, ProxyArray outputs).
        proxy: Outputs are ProxyArrays (3.0).
        renderer_type: "newton_warp"/"ovrtx" (renders when ``data`` is read while outdated) or
            "isaac_rtx" (renders when the env says so, in its physics loop).
        frames: ``frames(rows)`` -> (len(rows), H, W, 3) uint8 for rows None (all) or an index
            array, from the env's state at the time of the call.
    """

    def __init__(
        self,
        cfg: Any,
        *,
        positions: np.ndarray,
        rotations: np.ndarray,
        major: int,
        proxy: bool,
        renderer_type: str,
        frames: Any,
    ) -> None:
        torch = _torch()
        self.cfg = cfg
        self.num_instances = count = positions.shape[0]
        self.renderer_type = renderer_type
        self.renders = 0
        """Renders so far (each full render or re-render of some rows counts one)."""
        self.data_reads = 0
        """Reads of ``.data`` so far."""
        self._lazy = renderer_type in RENDERS_ON_READ
        self._outdated = True
        self._frames = frames
        self._major = major
        self._base_positions = np.asarray(positions, np.float64)
        self._rotations = np.asarray(rotations, np.float64)
        h, w = int(cfg.height), int(cfg.width)
        self._rgba = torch.zeros((count, h, w, 4), dtype=torch.uint8)
        rgb = self._rgba[..., :3]  # strided, non-contiguous view, as Isaac Lab's
        data = self._data = _CameraData()
        data.output["rgba"] = ProxyArray(self._rgba) if proxy else self._rgba
        data.output["rgb"] = ProxyArray(rgb) if proxy else rgb
        data.image_shape = (h, w)
        spawn = cfg.spawn
        fx = spawn.focal_length / spawn.horizontal_aperture * w
        k = np.array([[fx, 0.0, w / 2.0], [0.0, fx, h / 2.0], [0.0, 0.0, 1.0]])
        data.intrinsic_matrices = torch.as_tensor(np.repeat(k[None], count, 0), dtype=torch.float32)
        data.pos_w = torch.zeros((count, 3), dtype=torch.float32)
        data.quat_w_opengl = torch.zeros((count, 4), dtype=torch.float32)
        data.quat_w_ros = torch.zeros((count, 4), dtype=torch.float32)
        data.quat_w_world = torch.zeros((count, 4), dtype=torch.float32)
        data.info = [{} for _ in range(count)]
        self._write_pose(step=0)

    @property
    def data(self) -> _CameraData:
        """The sensor's data; reading it renders a Newton Warp / OVRTX camera that is outdated
        (Isaac Lab's ``SensorBase.data`` with ``lazy_sensor_update=True``)."""
        self.data_reads += 1
        if self._lazy and self._outdated:
            self.render()
        return self._data

    def mark_outdated(self) -> None:
        """A physics step or a reset happened: the next read of a lazy camera renders."""
        self._outdated = True

    def shown(self) -> np.ndarray:
        """What a read of ``data`` would show now, without rendering (truth bookkeeping)."""
        if self._lazy and self._outdated:
            return np.asarray(self._frames(None))
        return self._rgba[..., :3].numpy().copy()

    def _write_pose(self, step: int) -> None:
        torch = _torch()
        rise = CAMERA_RISE_PER_STEP * step if self.cfg.update_latest_camera_pose else 0.0
        positions = self._base_positions + np.array([0.0, 0.0, rise])
        order = "xyzw" if self._major >= 3 else "wxyz"
        self._data.pos_w.copy_(torch.as_tensor(positions, dtype=torch.float32))
        for name, target in (
            ("opengl", self._data.quat_w_opengl),
            ("ros", self._data.quat_w_ros),
            ("world", self._data.quat_w_world),
        ):
            quats = np.stack([reference_quat(r @ _OPENGL_TO[name], order) for r in self._rotations])
            target.copy_(torch.as_tensor(quats, dtype=torch.float32))

    def render(self, rows: np.ndarray | None = None) -> None:
        """Renders every instance (``rows`` None) or re-renders ``rows``, overwriting the rgba
        buffer in place (rgb from the env's state, alpha 255)."""
        torch = _torch()
        frames = torch.as_tensor(np.asarray(self._frames(rows)))
        index = slice(None) if rows is None else torch.as_tensor(np.asarray(rows))
        self._rgba[index, ..., :3] = frames
        self._rgba[index, ..., 3] = 255
        self.renders += 1
        if rows is None:
            self._outdated = False


class _ContactSensor:
    """A non-camera sensor, so adapters must pick cameras by name or type."""

    def __init__(self, num_envs: int) -> None:
        torch = _torch()
        self.data = types.SimpleNamespace(net_forces_w=torch.zeros((num_envs, 1, 3)))


class _Scene:
    def __init__(self) -> None:
        self.cfg: Any = None
        self.sensors: dict[str, Any] = {}
        self.env_origins: Any = None
        self.num_envs = 0


@dataclass
class StepTruth:
    """What a perfect recorder would store for one step (test-only bookkeeping).

    Attributes:
        step: ``common_step_counter`` after the step (0 for ``reset()``).
        rgb: Per-env frames a read of the camera shows after the step, (N, H, W, 3) uint8.
        global_rgb: The 2.x global scene camera's frame, (1, Hg, Wg, 3) uint8, or None (3.x:
            envreel's Newton global view shows ``expected_global_rgb(step, ...,
            episode_steps=episode_length)``).
        episode_index: Episode each env's frame belongs to, (N,) int64 (stale frames belong to
            the finished episode).
        episode_step: Episode step shown in each frame, (N,) int64.
        stale: Frame shows the finished episode although the env was reset, (N,) bool.
        reset: Env was reset inside this step, (N,) bool.
        reward: (N,) float32. terminated, truncated: (N,) bool.
        camera_pos_w: Per-env camera positions after the step, (N, 3) float32.
        episode_length: ``episode_length_buf`` after the step (after its resets), (N,) int64:
            the state envreel's Newton views render.
    """

    step: int
    rgb: np.ndarray
    global_rgb: np.ndarray | None
    episode_index: np.ndarray
    episode_step: np.ndarray
    stale: np.ndarray
    reset: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    camera_pos_w: np.ndarray
    episode_length: np.ndarray


@dataclass
class _EnvCfg:
    num_rerenders_on_reset: int = 0
    decimation: int = 4
    episode_length_s: float = 0.0
    sim: Any = None
    scene: Any = None


def _is_camera_cfg(entry: Any) -> bool:
    return all(hasattr(entry, a) for a in ("prim_path", "offset", "spawn", "width", "height"))


class FakeIsaacLabEnv:
    """The ``env.unwrapped`` of a manager-based RL env with cameras (see the module doc).

    Args:
        version: Isaac Lab version to mimic. Defaults to "3.0.0".
        scene_cfg: A fake scene config (:func:`make_scene_cfg`) with cameras added by envreel,
            built into the env as ``gym.make(task, cfg=env_cfg)`` would: ``num_envs``,
            ``env_spacing`` and the cameras (one per-env camera; on 2.x at most one camera
            outside the env namespace, the global one) come from it, and the keyword arguments
            about cameras are ignored. Defaults to None: built from the keyword arguments.
        renderer: Renderer of the per-env camera built from keyword arguments: "newton_warp",
            "ovrtx" or "isaac_rtx" (3.x), "isaac_rtx" (2.x). Defaults to None: "newton_warp" on
            3.x, "isaac_rtx" on 2.x.
        global_camera_name: Name of a global scene camera (2.x only: 3.x refuses it as
            ``gym.make`` does). Defaults to None (none).

    Raises:
        RuntimeError: A 3.x env gets a camera outside the env namespace.
    """

    metadata: dict[str, Any] = {"render_modes": [None, "rgb_array"]}
    render_mode = None

    def __init__(
        self,
        *,
        version: str = "3.0.0",
        scene_cfg: Any = None,
        num_envs: int = 4,
        height: int = 6,
        width: int = 8,
        env_spacing: float = 2.0,
        max_episode_length: int = 5,
        terminate_after: list[int] | None = None,
        num_rerenders_on_reset: int = 0,
        physics_dt: float = 1.0 / 120.0,
        decimation: int = 4,
        renderer: str | None = None,
        camera_name: str = "envreel_cam",
        global_camera_name: str | None = None,
        global_shape: tuple[int, int] = (9, 16),
        eye_offset: tuple[float, float, float] = (0.9, 0.0, 1.0),
        lookat_offset: tuple[float, float, float] = (0.0, 0.0, 0.1),
        global_eye: tuple[float, float, float] = (12.0, -12.0, 9.0),
        focal_length: float = 24.0,
        horizontal_aperture: float = 20.955,
        clipping_range: tuple[float, float] = (0.01, 100.0),
        update_latest_camera_pose: bool = False,
        origins_as_proxy: bool | None = None,
        action_dim: int = 2,
    ) -> None:
        torch = _torch()
        self._major = _major(version)
        self.isaaclab_version = version  # not an Isaac Lab attribute; for test parametrisation
        proxy = self._major >= 3
        if origins_as_proxy is None:
            origins_as_proxy = proxy
        if scene_cfg is not None:
            num_envs, env_spacing = int(scene_cfg.num_envs), float(scene_cfg.env_spacing)
        self.num_envs = num_envs
        self.device = "cpu"
        self.physics_dt = physics_dt
        self.step_dt = physics_dt * decimation
        self.max_episode_length = max_episode_length
        self.cfg = _EnvCfg(
            num_rerenders_on_reset=num_rerenders_on_reset,
            decimation=decimation,
            episode_length_s=max_episode_length * self.step_dt,
            sim=types.SimpleNamespace(dt=physics_dt, render_interval=decimation),
            scene=scene_cfg,
        )
        self.common_step_counter = 0
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.int64)
        self.reset_terminated = torch.zeros(num_envs, dtype=torch.bool)
        self.reset_time_outs = torch.zeros(num_envs, dtype=torch.bool)
        self.reset_buf = torch.zeros(num_envs, dtype=torch.bool)
        self.reward_buf = torch.zeros(num_envs, dtype=torch.float32)
        self.obs_buf = {"policy": torch.zeros((num_envs, 3), dtype=torch.float32)}
        self.extras: dict[str, Any] = {"log": {}}
        self.action_dim = action_dim
        if terminate_after is None:
            terminate_after = [3 + (i % 4) for i in range(num_envs)]
        if len(terminate_after) != num_envs or min(terminate_after) < 1:
            raise ValueError("terminate_after needs one length >= 1 per env")
        self.terminate_after = np.asarray(terminate_after, dtype=np.int64)

        origins = _grid(num_envs, env_spacing)
        self.scene = _Scene()
        self.scene.num_envs = num_envs
        origins_t = torch.as_tensor(origins, dtype=torch.float32)
        self.scene.env_origins = ProxyArray(origins_t) if origins_as_proxy else origins_t
        self._origins = origins_t.numpy().astype(np.float64)

        if scene_cfg is not None:
            self.scene.cfg = scene_cfg
            cameras = self._cameras_from(scene_cfg)
        else:
            self.scene.cfg = types.SimpleNamespace(
                num_envs=num_envs, env_spacing=env_spacing, lazy_sensor_update=True
            )
            cameras = self._cameras_from_kwargs(
                renderer=renderer,
                camera_name=camera_name,
                global_camera_name=global_camera_name,
                height=height,
                width=width,
                global_shape=global_shape,
                eye_offset=eye_offset,
                lookat_offset=lookat_offset,
                global_eye=global_eye,
                focal_length=focal_length,
                horizontal_aperture=horizontal_aperture,
                clipping_range=clipping_range,
                update_latest_camera_pose=update_latest_camera_pose,
            )
        (self.camera_name, cfg, positions, rotations), glob = cameras
        self.scene.sensors[self.camera_name] = FakeCamera(
            cfg,
            positions=positions,
            rotations=rotations,
            major=self._major,
            proxy=proxy,
            renderer_type=self._renderer_of(cfg),
            frames=self._env_frames,
        )
        self.global_camera_name = None
        if glob is not None:
            self.global_camera_name, gcfg, gpos, grot = glob
            self.scene.sensors[self.global_camera_name] = FakeCamera(
                gcfg,
                positions=gpos,
                rotations=grot,
                major=self._major,
                proxy=proxy,
                renderer_type="isaac_rtx",
                frames=self._global_frames,
            )
        self.scene.sensors["contact_forces"] = _ContactSensor(num_envs)

        self.episode_index = np.zeros(num_envs, dtype=np.int64)  # test-only truth
        self.truth: list[StepTruth] = []

    # -- building the cameras ------------------------------------------------------------

    def _cameras_from_kwargs(self, *, renderer: str | None, **kw: Any) -> tuple:
        if self._major >= 3:
            renderer = renderer or "newton_warp"
            if renderer not in _RENDERER_CFG_OF:
                raise ValueError(f"unknown renderer {renderer!r}")
            renderer_cfg = _RENDERER_CFG_OF[renderer]()
        else:
            if renderer not in (None, "isaac_rtx"):
                raise ValueError(f"Isaac Lab 2.x cameras render with RTX, not {renderer!r}")
            renderer_cfg = None
        spawn = _Spawn(kw["focal_length"], kw["horizontal_aperture"], tuple(kw["clipping_range"]))
        name = kw["camera_name"]
        cfg = _CameraSpec(
            prim_path=f"{ENV_NS}/{name}",
            width=kw["width"],
            height=kw["height"],
            spawn=spawn,
            update_latest_camera_pose=kw["update_latest_camera_pose"],
            renderer_cfg=renderer_cfg,
        )
        eyes = self._origins + np.asarray(kw["eye_offset"])
        targets = self._origins + np.asarray(kw["lookat_offset"])
        rotations = np.stack([reference_look_at(e, t) for e, t in zip(eyes, targets, strict=True)])
        glob = None
        gname = kw["global_camera_name"]
        if gname is not None:
            self._refuse_outside_namespace()
            gh, gw = kw["global_shape"]
            gcfg = _CameraSpec(
                prim_path=f"/World/{gname}",
                width=gw,
                height=gh,
                spawn=_Spawn(18.147, 20.955, (0.01, 1.0e6)),
            )
            eye = np.asarray([kw["global_eye"]], float)
            target = self._origins.mean(axis=0)
            glob = (gname, gcfg, eye, reference_look_at(eye[0], target)[None])
        return (name, cfg, eyes, rotations), glob

    def _cameras_from(self, scene_cfg: Any) -> tuple:
        per_env, outside = [], []
        for name, entry in scene_cfg_fields(scene_cfg).items():
            if _is_camera_cfg(entry):
                inside = str(entry.prim_path).startswith(ENV_NS + "/")
                (per_env if inside else outside).append((name, copy.deepcopy(entry)))
        if outside:
            self._refuse_outside_namespace()
        if len(per_env) != 1 or len(outside) > 1:
            raise ValueError(
                "the stand-in env models one per-env camera and at most one global camera, got "
                f"{[n for n, _ in per_env]} and {[n for n, _ in outside]}"
            )
        name, cfg = per_env[0]
        rotation = self._offset_rotation(cfg.offset)
        count = self.num_envs
        env = (
            name,
            cfg,
            self._origins + np.asarray(cfg.offset.pos),
            np.repeat(rotation[None], count, 0),
        )
        glob = None
        if outside:
            gname, gcfg = outside[0]
            glob = (
                gname,
                gcfg,
                np.asarray([gcfg.offset.pos], float),
                self._offset_rotation(gcfg.offset)[None],
            )
        return env, glob

    def _offset_rotation(self, offset: Any) -> np.ndarray:
        """Camera-to-world rotation, OpenGL convention, of an ``OffsetCfg`` (env prims are not
        rotated)."""
        order = "xyzw" if self._major >= 3 else "wxyz"
        return reference_rotation(offset.rot, order) @ _OPENGL_TO[offset.convention].T

    def _refuse_outside_namespace(self) -> None:
        if self._major >= 3:
            # Isaac Lab 3's Camera: one prim per env, or gym.make fails (camera.py).
            raise RuntimeError(
                "Number of camera prims in the view (1) does not match the number of "
                f"environments ({self.num_envs})."
            )

    def _renderer_of(self, cfg: Any) -> str:
        if self._major < 3:
            return "isaac_rtx"
        kind = getattr(getattr(cfg, "renderer_cfg", None), "renderer_type", None)
        if kind not in _RENDERER_CFG_OF:
            raise ValueError(f"the stand-in env has no renderer {kind!r}")
        return kind

    # -- Isaac Lab-like API ---------------------------------------------------------------

    @property
    def unwrapped(self) -> FakeIsaacLabEnv:
        return self

    @property
    def camera(self) -> FakeCamera:
        """The per-env camera sensor (not an Isaac Lab attribute)."""
        return self.scene.sensors[self.camera_name]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Resets every env. Returns (obs, extras)."""
        self.common_step_counter = 0
        self.episode_length_buf.zero_()
        self.reset_terminated.zero_()
        self.reset_time_outs.zero_()
        self.episode_index[:] = 0
        self.truth.clear()
        self.camera._write_pose(0)
        self._physics_render()
        self._record(np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))
        return self.obs_buf, self.extras

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict]:
        """One env step; envs that end are reset inside (see the module doc)."""
        torch = _torch()
        if tuple(action.shape) != (self.num_envs, self.action_dim):
            raise ValueError(f"action must have shape {(self.num_envs, self.action_dim)}")
        self.episode_length_buf += 1
        self.common_step_counter += 1
        # Sensors update, and RTX renders, inside the physics loop, before resets.
        self.camera._write_pose(self.common_step_counter)
        self._physics_render()

        length = self.episode_length_buf.numpy()
        terminated = length >= self.terminate_after
        time_out = length >= self.max_episode_length
        self.reset_terminated.copy_(torch.as_tensor(terminated))
        self.reset_time_outs.copy_(torch.as_tensor(time_out))
        self.reset_buf.copy_(self.reset_terminated | self.reset_time_outs)
        ids = np.arange(self.num_envs)
        self.reward_buf.copy_(torch.as_tensor(0.5 * ids + 0.01 * self.common_step_counter))

        reset = terminated | time_out
        stale = reset.copy() if self.camera.renderer_type == "isaac_rtx" else np.zeros_like(reset)
        if reset.any():
            self.episode_length_buf[torch.as_tensor(reset)] = 0
            self.camera.mark_outdated()  # a reset marks the sensor outdated
            if self.camera.renderer_type == "isaac_rtx" and self.cfg.num_rerenders_on_reset > 0:
                self.camera.render(np.flatnonzero(reset))
                stale[:] = False
        self._record(reset, stale)
        self.episode_index[reset] += 1
        self.obs_buf["policy"].copy_(
            torch.stack(
                [self.episode_length_buf.float(), torch.as_tensor(ids).float(), self.reward_buf], 1
            )
        )
        return (
            self.obs_buf,
            self.reward_buf,
            self.reset_terminated,
            self.reset_time_outs,
            self.extras,
        )

    def close(self) -> None:
        """Nothing to release."""

    # -- internals -----------------------------------------------------------------------

    def _env_frames(self, rows: Any) -> np.ndarray:
        """Per-env camera frames of ``rows`` (None: all) from the current state."""
        h, w = self.camera._data.image_shape
        rows = np.arange(self.num_envs) if rows is None else np.asarray(rows)
        lengths = self.episode_length_buf.numpy()
        return np.stack(
            [
                expected_rgb(int(i), self.common_step_counter, int(lengths[i]), height=h, width=w)
                for i in rows
            ]
        )

    def _global_frames(self, rows: Any) -> np.ndarray:
        glob = self.scene.sensors[self.global_camera_name]
        gh, gw = glob._data.image_shape
        return expected_global_rgb(self.common_step_counter, height=gh, width=gw)[None]

    def _physics_render(self) -> None:
        """A physics step's rendering: RTX cameras render now, lazy ones become outdated."""
        for sensor in self.scene.sensors.values():
            if isinstance(sensor, FakeCamera):
                if sensor.renderer_type == "isaac_rtx":
                    sensor.render()
                else:
                    sensor.mark_outdated()

    def _record(self, reset: np.ndarray, stale: np.ndarray) -> None:
        camera = self.camera
        rgb = camera.shown()
        glob = None
        if self.global_camera_name is not None:
            glob = self.scene.sensors[self.global_camera_name].shown()
        episode_index = self.episode_index.copy()
        # A frame that shows the state after the reset shows the new episode already.
        episode_index[reset & ~stale] += 1
        self.truth.append(
            StepTruth(
                step=self.common_step_counter,
                rgb=rgb,
                global_rgb=glob,
                episode_index=episode_index,
                episode_step=rgb[:, 0, 0, 2].astype(np.int64),
                stale=stale.copy(),
                reset=reset.copy(),
                reward=self.reward_buf.numpy().copy(),
                terminated=self.reset_terminated.numpy().copy(),
                truncated=self.reset_time_outs.numpy().copy(),
                camera_pos_w=camera._data.pos_w.numpy().copy(),
                episode_length=self.episode_length_buf.numpy().copy(),
            )
        )


class FakeWrapper:
    """A gymnasium-style wrapper: ``.env``, ``.unwrapped``, step/reset pass through.

    Like gymnasium 1.x, it does not forward other attributes: reach the env by ``.unwrapped``.
    """

    def __init__(self, env: Any) -> None:
        self.env = env

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict]:
        return self.env.step(action)

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        return self.env.reset(**kwargs)

    def close(self) -> None:
        self.env.close()


def make_fake_env(*, wrappers: int = 2, **kwargs: Any) -> FakeWrapper | FakeIsaacLabEnv:
    """A :class:`FakeIsaacLabEnv` inside ``wrappers`` layers of :class:`FakeWrapper`.

    Args:
        wrappers: Wrapper depth, >= 0. Defaults to 2.
        **kwargs: Passed to :class:`FakeIsaacLabEnv` (``version="2.2.0"`` for the 2.x variant,
            ``scene_cfg=`` to build it from a scene config).

    Returns:
        The outermost wrapper (or the env itself for ``wrappers=0``).
    """
    env: Any = FakeIsaacLabEnv(**kwargs)
    for _ in range(wrappers):
        env = FakeWrapper(env)
    return env


def _grid(num_envs: int, spacing: float) -> np.ndarray:
    """Isaac Lab 3.x's env grid (isaaclab.cloner.grid_transforms), written independently."""
    rows = int(math.ceil(num_envs / math.sqrt(num_envs)))
    cols = int(math.ceil(num_envs / rows))
    out = []
    for r in range(rows):
        for c in range(cols):
            out.append((-(r - (rows - 1) / 2) * spacing, (c - (cols - 1) / 2) * spacing, 0.0))
    return np.asarray(out[:num_envs], dtype=np.float32)


def scene_cfg_fields(scene_cfg: Any) -> dict[str, Any]:
    """Entries of a scene config as Isaac Lab's InteractiveScene reads them (``__dict__``)."""
    return {k: v for k, v in vars(scene_cfg).items() if not k.startswith("_")}


# =============================================================================================
# envreel's Newton views
# =============================================================================================


class _FakeView:
    """One Newton view: the arguments it was made with and its reused RGBA output buffer."""

    def __init__(self, kind, env_ids, poses, intrinsics, shape, far) -> None:
        self.kind = kind
        self.env_ids = env_ids
        self.poses = poses
        self.intrinsics = intrinsics
        self.shape = shape
        self.far = far
        self.renders = 0
        self.image = np.zeros((len(poses), *shape, 4), np.uint8)  # overwritten by every render


class FakeNewtonViews:
    """Stand-in for ``envreel.capture.isaaclab._views.NewtonViews`` over one fake env.

    Same interface: ``NewtonViews(renderer_cfg)``, ``env_view(env_ids, poses, intrinsics,
    shape, far)``, ``global_view(pose, intrinsics, shape, far)`` and ``render(views)``, which
    returns one (K, H, W, 4) uint8 RGBA NumPy batch per view (alpha 255), a buffer reused by the
    next render as the real one's. Env views show :func:`expected_rgb` of their envs, the global
    view :func:`expected_global_rgb` with ``episode_steps``, both from the env's state when
    ``render()`` is called. Arguments are checked and kept (``views``) for assertions.

    Make a class bound to an env with :func:`fake_newton_views`; its ``instances`` lists what
    was constructed.
    """

    env: Any = None
    instances: list[FakeNewtonViews] = []

    def __init__(self, renderer_cfg: Any = None) -> None:
        if self.env is None:
            from envreel.errors import SimulatorError

            raise SimulatorError("FakeNewtonViews is not bound to an env: fake_newton_views(env)")
        self.renderer_cfg = renderer_cfg
        self.renders = 0
        """Draws (``render()`` or ``draw()`` calls)."""
        self.snapshots = 0
        """``snapshot()`` calls (one per recorded step)."""
        self.views: list[_FakeView] = []
        type(self).instances.append(self)

    def env_view(
        self,
        env_ids: np.ndarray,
        poses: np.ndarray,
        intrinsics: np.ndarray,
        shape: tuple[int, int],
        far: float,
    ) -> _FakeView:
        """A view of envs ``env_ids`` (K,), camera k at ``poses[k]`` (K, 4, 4)."""
        n = self.env.num_envs
        ids = np.asarray(env_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or len(ids) == 0:
            raise ValueError(f"env_ids must be (K,) ints, got {env_ids!r}")
        if ids.min() < 0 or ids.max() >= n or len(set(ids.tolist())) != len(ids):
            raise ValueError(f"env_ids must be distinct envs in 0..{n - 1}, got {ids.tolist()}")
        view = _FakeView(
            "env", ids.copy(), *self._checked(poses, (len(ids), 4, 4), intrinsics, shape, far)
        )
        self.views.append(view)
        return view

    def global_view(
        self, pose: np.ndarray, intrinsics: np.ndarray, shape: tuple[int, int], far: float
    ) -> _FakeView:
        """One camera at ``pose`` (4, 4) seeing every env."""
        pose = np.asarray(pose, np.float64)
        if pose.shape != (4, 4):
            raise ValueError(f"pose must be (4, 4), got {pose.shape}")
        view = _FakeView(
            "global", None, *self._checked(pose[None], (1, 4, 4), intrinsics, shape, far)
        )
        self.views.append(view)
        return view

    @staticmethod
    def _checked(poses, pose_shape, intrinsics, shape, far) -> tuple:
        poses = np.array(poses, np.float64)
        k = np.array(intrinsics, np.float64)
        if poses.shape != pose_shape or not np.all(np.isfinite(poses)):
            raise ValueError(f"poses must be finite {pose_shape}, got {poses.shape}")
        if k.shape != (3, 3):
            raise ValueError(f"intrinsics must be (3, 3), got {k.shape}")
        h, w = shape
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise ValueError(f"shape must be (height, width) positive ints, got {shape!r}")
        if not far > 0:
            raise ValueError(f"far must be > 0, got {far!r}")
        return poses, k, (h, w), float(far)

    on_cpu = True
    """The fake env runs on the CPU (so subsets render on RecordEnvs' worker thread)."""

    def render(self, views: list[_FakeView]) -> list[np.ndarray]:
        """Renders ``views`` from the env's current state; one (K, H, W, 4) batch per view."""
        return self.draw(views, self.snapshot())

    def snapshot(self) -> tuple[int, np.ndarray]:
        """The env's state now: (common_step_counter, episode lengths copy)."""
        env = self.env
        self.snapshots += 1
        return int(env.common_step_counter), env.episode_length_buf.numpy().copy()

    def draw(self, views: list[_FakeView], snapshot: tuple[int, np.ndarray]) -> list[np.ndarray]:
        """Renders ``views`` from a :meth:`snapshot`; one (K, H, W, 4) batch per view."""
        step, lengths = snapshot
        self.renders += 1
        out = []
        for view in views:
            h, w = view.shape
            if view.kind == "env":
                frames = np.stack(
                    [
                        expected_rgb(int(e), step, int(lengths[e]), height=h, width=w)
                        for e in view.env_ids
                    ]
                )
            else:
                frames = expected_global_rgb(step, height=h, width=w, episode_steps=lengths)[None]
            view.image[..., :3] = frames
            view.image[..., 3] = 255
            view.renders += 1
            out.append(view.image)
        return out


def fake_newton_views(env: Any) -> type[FakeNewtonViews]:
    """A :class:`FakeNewtonViews` class bound to ``env`` (its ``unwrapped``), with its own
    ``instances`` list; monkeypatch ``envreel.capture.isaaclab._wrapper.NewtonViews`` with it."""
    return type("FakeNewtonViews", (FakeNewtonViews,), {"env": env.unwrapped, "instances": []})
