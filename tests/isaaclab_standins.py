"""Stand-ins for Isaac Lab, for tests on machines without it (Isaac Lab needs a GPU and Isaac Sim).

They mirror the attribute paths, shapes, dtypes and quirks documented in
``shared/isaaclab-api.md`` (Isaac Lab 3.0, with the 2.x differences), so the adapter code runs
unchanged against them and against the real package.

Two parts:

* **Config modules** (no torch needed): :func:`install_fake_isaaclab` puts fake ``isaaclab``,
  ``isaaclab.sensors``, ``isaaclab.sim`` and ``isaaclab.scene`` modules into ``sys.modules``
  (through pytest's ``monkeypatch``, so they vanish after the test). Their ``CameraCfg`` /
  ``TiledCameraCfg`` / ``PinholeCameraCfg`` / ``InteractiveSceneCfg`` are keyword-only
  dataclasses with Isaac Lab's field names and defaults; the version decides the identity default
  of ``CameraCfg.OffsetCfg.rot`` ((0, 0, 0, 1) xyzw in 3.x, (1, 0, 0, 0) wxyz in 2.x). Build a
  typical task scene config with :func:`make_scene_cfg`.

* **A running env** (needs torch): :func:`make_fake_env` returns a wrapper chain around a
  :class:`FakeIsaacLabEnv` that behaves like a manager-based RL env with cameras:

  - ``env.unwrapped`` through any wrapper depth; wrappers do not forward other attributes;
  - ``num_envs``, ``device == "cpu"``, ``step_dt``, ``common_step_counter``,
    ``episode_length_buf`` (N,) int64, ``max_episode_length``, ``reset_terminated`` /
    ``reset_time_outs`` (N,) bool, ``cfg.num_rerenders_on_reset``;
  - ``scene.sensors`` name -> sensor: a per-env camera (N instances), optionally a global camera
    (1 instance) and a non-camera sensor; ``scene.env_origins`` (N, 3) float32 (a ProxyArray in
    3.0 unless ``origins_as_proxy=False``);
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
    **inside** ``step()``: the camera renders before the reset, so a reset env's frame shows the
    last state of the finished episode (stale) unless ``num_rerenders_on_reset > 0``, in which
    case it is re-rendered after the reset and shows the new episode's first state.

  Frames are deterministic: :func:`expected_rgb` gives env ``i``'s frame at step ``k`` from
  ``(env_id, step, episode_step)``; ``episode_step`` is the state rendered (the terminal length
  for a stale frame, 0 after a re-render). ``FakeIsaacLabEnv.truth`` (not an Isaac Lab attribute;
  for assertions only) logs per step what a perfect recorder would store.

Import from a test module with ``pytest.importorskip("torch")`` first if you use the env part;
the config part works without torch.
"""

from __future__ import annotations

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
    "FakeIsaacLabEnv",
    "FakeWrapper",
    "ProxyArray",
    "StepTruth",
    "expected_global_rgb",
    "expected_rgb",
    "install_fake_isaaclab",
    "make_fake_env",
    "make_isaaclab_modules",
    "make_scene_cfg",
    "reference_look_at",
    "reference_quat",
    "scene_cfg_fields",
]

CAMERA_RISE_PER_STEP = 0.01
"""Metres the per-env camera rises per step when ``update_latest_camera_pose`` is on."""


def _torch() -> Any:
    """torch, or a pytest skip where it is not installed."""
    return pytest.importorskip("torch")


def _major(version: str) -> int:
    return int(str(version).split(".")[0])


# =============================================================================================
# config modules
# =============================================================================================


def make_isaaclab_modules(version: str = "3.0.0") -> dict[str, types.ModuleType]:
    """Builds fake ``isaaclab`` modules for Isaac Lab ``version`` (3.x or 2.x).

    Args:
        version: Isaac Lab version; its major number picks the quaternion order and whether
            ``TiledCameraCfg`` is a deprecated alias (3.x) or the batched camera (2.x).

    Returns:
        Module name -> module, for ``isaaclab``, ``isaaclab.sensors``, ``isaaclab.sim`` and
        ``isaaclab.scene``.
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
            renderer_cfg: Any = None

        CameraCfg3.__name__ = CameraCfg3.__qualname__ = "CameraCfg"
        CameraCfg3.OffsetCfg = OffsetCfg  # type: ignore[attr-defined]

        @dataclass(kw_only=True)
        class TiledCameraCfg(CameraCfg3):
            """3.0: deprecated alias of CameraCfg."""

            def __post_init__(self) -> None:
                warnings.warn(
                    "TiledCameraCfg is deprecated; use CameraCfg", DeprecationWarning, stacklevel=2
                )

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
    root.sensors, root.sim, root.scene, root.terrains = sensors, sim, scene, terrains  # type: ignore[attr-defined]
    return {
        "isaaclab": root,
        "isaaclab.sensors": sensors,
        "isaaclab.sim": sim,
        "isaaclab.scene": scene,
        "isaaclab.terrains": terrains,
    }


def install_fake_isaaclab(monkeypatch: pytest.MonkeyPatch, version: str = "3.0.0") -> Any:
    """Puts fake Isaac Lab modules into ``sys.modules`` for the duration of one test.

    Args:
        monkeypatch: pytest's fixture; the modules are removed again after the test.
        version: Isaac Lab version to mimic, e.g. "3.0.0" or "2.2.0".

    Returns:
        A namespace with the modules as ``isaaclab``, ``sensors``, ``sim``, ``scene``,
        ``terrains`` and the ``version`` string.
    """
    modules = make_isaaclab_modules(version)
    for name in list(sys.modules):
        if name == "isaaclab" or name.startswith("isaaclab."):
            monkeypatch.delitem(sys.modules, name)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(
        isaaclab=modules["isaaclab"],
        sensors=modules["isaaclab.sensors"],
        sim=modules["isaaclab.sim"],
        scene=modules["isaaclab.scene"],
        terrains=modules["isaaclab.terrains"],
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
    """The frame the fake per-env camera renders.

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


def expected_global_rgb(step: int, *, height: int, width: int) -> np.ndarray:
    """The frame the fake global camera renders at ``step``: (H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (2 * x + y + step) % 256
    frame[..., 1] = (x + 5 * step) % 256
    frame[..., 2] = 200
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
class _CameraSpec:
    width: int
    height: int
    focal_length: float
    horizontal_aperture: float
    update_latest_camera_pose: bool
    prim_path: str
    data_types: list[str] = field(default_factory=lambda: ["rgb"])


class FakeCamera:
    """A camera sensor with ``count`` instances and a reused rgba buffer."""

    def __init__(
        self,
        spec: _CameraSpec,
        *,
        positions: np.ndarray,
        targets: np.ndarray,
        major: int,
        proxy: bool,
    ) -> None:
        torch = _torch()
        self.cfg = spec
        self.num_instances = count = positions.shape[0]
        self._major = major
        self._proxy = proxy
        self._base_positions = positions.astype(np.float64)
        self._rotations = np.stack(
            [reference_look_at(e, t) for e, t in zip(positions, targets, strict=True)]
        )
        h, w = spec.height, spec.width
        self._rgba = torch.zeros((count, h, w, 4), dtype=torch.uint8)
        rgb = self._rgba[..., :3]  # strided, non-contiguous view, as Isaac Lab's
        self.data = _CameraData()
        self.data.output["rgba"] = ProxyArray(self._rgba) if proxy else self._rgba
        self.data.output["rgb"] = ProxyArray(rgb) if proxy else rgb
        self.data.image_shape = (h, w)
        fx = spec.focal_length / spec.horizontal_aperture * w
        k = np.array([[fx, 0.0, w / 2.0], [0.0, fx, h / 2.0], [0.0, 0.0, 1.0]])
        self.data.intrinsic_matrices = torch.as_tensor(
            np.repeat(k[None], count, 0), dtype=torch.float32
        )
        self.data.pos_w = torch.zeros((count, 3), dtype=torch.float32)
        self.data.quat_w_opengl = torch.zeros((count, 4), dtype=torch.float32)
        self.data.quat_w_ros = torch.zeros((count, 4), dtype=torch.float32)
        self.data.quat_w_world = torch.zeros((count, 4), dtype=torch.float32)
        self.data.info = [{} for _ in range(count)]
        self._write_pose(step=0)

    def _write_pose(self, step: int) -> None:
        torch = _torch()
        rise = CAMERA_RISE_PER_STEP * step if self.cfg.update_latest_camera_pose else 0.0
        positions = self._base_positions + np.array([0.0, 0.0, rise])
        order = "xyzw" if self._major >= 3 else "wxyz"
        self.data.pos_w.copy_(torch.as_tensor(positions, dtype=torch.float32))
        for name, target in (
            ("opengl", self.data.quat_w_opengl),
            ("ros", self.data.quat_w_ros),
            ("world", self.data.quat_w_world),
        ):
            quats = np.stack([reference_quat(r @ _OPENGL_TO[name], order) for r in self._rotations])
            target.copy_(torch.as_tensor(quats, dtype=torch.float32))

    def render(self, rows: Any, frames: np.ndarray) -> None:
        """Overwrites the rgba buffer rows in place (rgb from ``frames``, alpha 255)."""
        torch = _torch()
        self._rgba[rows, ..., :3] = torch.as_tensor(frames)
        self._rgba[rows, ..., 3] = 255


class _ContactSensor:
    """A non-camera sensor, so adapters must pick cameras by name or type."""

    def __init__(self, num_envs: int) -> None:
        torch = _torch()
        self.data = types.SimpleNamespace(net_forces_w=torch.zeros((num_envs, 1, 3)))


class _Scene:
    def __init__(self) -> None:
        self.sensors: dict[str, Any] = {}
        self.env_origins: Any = None
        self.num_envs = 0


@dataclass
class StepTruth:
    """What a perfect recorder would store for one step (test-only bookkeeping).

    Attributes:
        step: ``common_step_counter`` after the step (0 for ``reset()``).
        rgb: Per-env frames as returned, (N, H, W, 3) uint8 copy.
        global_rgb: Global frame, (1, Hg, Wg, 3) uint8 copy, or None.
        episode_index: Episode each env's frame belongs to, (N,) int64 (stale frames belong to
            the finished episode).
        episode_step: Episode step shown in each frame, (N,) int64.
        stale: Frame shows the finished episode although the env was reset, (N,) bool.
        reset: Env was reset inside this step, (N,) bool.
        reward: (N,) float32. terminated, truncated: (N,) bool.
        camera_pos_w: Per-env camera positions after the step, (N, 3) float32.
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


@dataclass
class _EnvCfg:
    num_rerenders_on_reset: int = 0
    decimation: int = 4
    episode_length_s: float = 0.0
    sim: Any = None
    scene: Any = None


class FakeIsaacLabEnv:
    """The ``env.unwrapped`` of a manager-based RL env with envreel's cameras (see module doc)."""

    metadata: dict[str, Any] = {"render_modes": [None, "rgb_array"]}
    render_mode = None

    def __init__(
        self,
        *,
        version: str = "3.0.0",
        num_envs: int = 4,
        height: int = 6,
        width: int = 8,
        env_spacing: float = 2.0,
        max_episode_length: int = 5,
        terminate_after: list[int] | None = None,
        num_rerenders_on_reset: int = 0,
        physics_dt: float = 1.0 / 120.0,
        decimation: int = 4,
        camera_name: str = "envreel_cam",
        global_camera_name: str | None = "envreel_global",
        global_shape: tuple[int, int] = (9, 16),
        eye_offset: tuple[float, float, float] = (0.9, 0.0, 1.0),
        lookat_offset: tuple[float, float, float] = (0.0, 0.0, 0.1),
        global_eye: tuple[float, float, float] = (12.0, -12.0, 9.0),
        focal_length: float = 24.0,
        horizontal_aperture: float = 20.955,
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
        self.camera_name = camera_name
        spec = _CameraSpec(
            width=width,
            height=height,
            focal_length=focal_length,
            horizontal_aperture=horizontal_aperture,
            update_latest_camera_pose=update_latest_camera_pose,
            prim_path="/World/envs/env_.*/" + camera_name,
        )
        self.scene.sensors[camera_name] = FakeCamera(
            spec,
            positions=self._origins + np.asarray(eye_offset),
            targets=self._origins + np.asarray(lookat_offset),
            major=self._major,
            proxy=proxy,
        )
        self.global_camera_name = global_camera_name
        if global_camera_name is not None:
            gh, gw = global_shape
            gspec = _CameraSpec(
                width=gw,
                height=gh,
                focal_length=18.147,
                horizontal_aperture=20.955,
                update_latest_camera_pose=False,
                prim_path="/World/" + global_camera_name,
            )
            self.scene.sensors[global_camera_name] = FakeCamera(
                gspec,
                positions=np.asarray([global_eye], float),
                targets=self._origins.mean(axis=0, keepdims=True),
                major=self._major,
                proxy=proxy,
            )
        self.scene.sensors["contact_forces"] = _ContactSensor(num_envs)

        self.episode_index = np.zeros(num_envs, dtype=np.int64)  # test-only truth
        self.truth: list[StepTruth] = []

    # -- Isaac Lab-like API ---------------------------------------------------------------

    @property
    def unwrapped(self) -> FakeIsaacLabEnv:
        return self

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Resets every env; renders the first frame (step 0). Returns (obs, extras)."""
        self.common_step_counter = 0
        self.episode_length_buf.zero_()
        self.reset_terminated.zero_()
        self.reset_time_outs.zero_()
        self.episode_index[:] = 0
        self.truth.clear()
        self.scene.sensors[self.camera_name]._write_pose(0)
        self._render(None)
        self._record(np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))
        return self.obs_buf, self.extras

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict]:
        """One env step; envs that end are reset inside (see module doc)."""
        torch = _torch()
        if tuple(action.shape) != (self.num_envs, self.action_dim):
            raise ValueError(f"action must have shape {(self.num_envs, self.action_dim)}")
        self.episode_length_buf += 1
        self.common_step_counter += 1
        # Sensors update and the scene renders inside the physics loop, before resets.
        self.scene.sensors[self.camera_name]._write_pose(self.common_step_counter)
        self._render(None)

        length = self.episode_length_buf.numpy()
        terminated = length >= self.terminate_after
        time_out = length >= self.max_episode_length
        self.reset_terminated.copy_(torch.as_tensor(terminated))
        self.reset_time_outs.copy_(torch.as_tensor(time_out))
        self.reset_buf.copy_(self.reset_terminated | self.reset_time_outs)
        ids = np.arange(self.num_envs)
        self.reward_buf.copy_(torch.as_tensor(0.5 * ids + 0.01 * self.common_step_counter))

        reset = terminated | time_out
        stale = reset.copy()
        if reset.any():
            self.episode_length_buf[torch.as_tensor(reset)] = 0
            if self.cfg.num_rerenders_on_reset > 0:
                self._render(np.flatnonzero(reset))
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

    def _render(self, rows: np.ndarray | None) -> None:
        """Renders every camera (``rows`` None) or re-renders the per-env camera's ``rows``."""
        camera = self.scene.sensors[self.camera_name]
        h, w = camera.data.image_shape
        everything = rows is None
        rows = np.arange(self.num_envs) if rows is None else rows
        lengths = self.episode_length_buf.numpy()
        frames = np.stack(
            [
                expected_rgb(i, self.common_step_counter, int(lengths[i]), height=h, width=w)
                for i in rows
            ]
        )
        camera.render(_torch().as_tensor(rows), frames)
        if self.global_camera_name is not None and everything:
            glob = self.scene.sensors[self.global_camera_name]
            gh, gw = glob.data.image_shape
            glob.render(
                _torch().as_tensor([0]),
                expected_global_rgb(self.common_step_counter, height=gh, width=gw)[None],
            )

    def _record(self, reset: np.ndarray, stale: np.ndarray) -> None:
        camera = self.scene.sensors[self.camera_name]
        rgb = camera._rgba[..., :3].numpy().copy()
        glob = None
        if self.global_camera_name is not None:
            glob = self.scene.sensors[self.global_camera_name]._rgba[..., :3].numpy().copy()
        episode_index = self.episode_index.copy()
        # A re-rendered frame after a reset shows the new episode already.
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
                camera_pos_w=camera.data.pos_w.numpy().copy(),
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
        **kwargs: Passed to :class:`FakeIsaacLabEnv` (``version="2.2.0"`` for the 2.x variant).

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
