"""Reading an Isaac Lab env's cameras: which sensor, its image shape, poses, intrinsics, renderer.

Everything here reads ``env.unwrapped.scene`` (or a stand-in with the same attributes) and
imports no Isaac Lab: poses come from the configs (exact float64) or from the sensors' own
``pos_w`` / ``quat_w_opengl`` (through ``envreel.schemas.geometry``). ``GlobalPlan`` decides how
the global view is made.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from envreel.schemas import geometry

from ._cfg import EnvCameraCfg, GlobalCameraCfg, camera_name
from ._scene import (
    EXPECTED_FRAMING,
    _as_numpy,
    _installed_isaaclab_version,
    _resolve_global,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
    global_view_of,
)
from ._sources import sensor_rgb, tensor

__all__ = [
    "DEFAULT_GLOBAL_CAMERA",
    "EnvCamera",
    "GlobalPlan",
    "far_clip",
    "live_pose",
    "live_poses",
    "num_rerenders",
    "read_env_camera",
    "version_or_none",
]

DEFAULT_GLOBAL_CAMERA = GlobalCameraCfg.name
"""Name of the scene camera recorded as the global view when ``RecorderCfg.global_camera`` is
None (the default name of :func:`envreel.capture.isaaclab.add_global_camera`)."""

_POSE_ATOL_M = 1e-3  # float32 sim positions of envs kilometres apart differ by < 1e-4 m
_ROTATION_ATOL = 1e-3


def _cameras_in(scene: Any) -> dict[str, Any]:
    sensors = getattr(scene, "sensors", None) or {}
    return {
        name: sensor
        for name, sensor in sensors.items()
        if hasattr(getattr(getattr(sensor, "data", None), "output", None), "keys")
    }


def _find_camera(scene: Any, name: str, what: str) -> Any:
    cameras = _cameras_in(scene)
    if name not in cameras:
        raise ValueError(
            f"the scene has no camera {name!r} for the {what} (cameras: {sorted(cameras)}); add "
            "it to the scene config before gym.make (add_env_camera / add_global_camera); with "
            "Isaac Sim (Kit), also run with --enable_cameras"
        )
    camera = cameras[name]
    if "rgb" not in camera.data.output:
        raise ValueError(
            f"camera {name!r} has no 'rgb' output (outputs: {sorted(camera.data.output)}); add "
            "'rgb' to its data_types"
        )
    return camera


def _image_shape(camera: Any, name: str, count: int | None) -> tuple[int, int]:
    rgb = sensor_rgb(camera)
    shape = tuple(int(d) for d in rgb.shape)
    if len(shape) != 4 or shape[-1] not in (3, 4):
        raise ValueError(
            f"camera {name!r} rgb output must be (num_instances, height, width, 3), got {shape}"
        )
    if count is not None and shape[0] != count:
        raise ValueError(
            f"camera {name!r} has {shape[0]} instances, but the env has {count} envs: the "
            "per-env camera must live under {ENV_REGEX_NS}/ (one per env)"
        )
    if count is None and shape[0] != 1:
        raise ValueError(
            f"camera {name!r} has {shape[0]} instances; the global camera must be a single "
            "camera outside the env namespace (e.g. /World/envreel_global)"
        )
    return shape[1], shape[2]


def live_pose(camera: Any) -> bool:
    return bool(getattr(getattr(camera, "cfg", None), "update_latest_camera_pose", False))


def _sensor_poses(camera: Any, order: str) -> np.ndarray | None:
    """(K, 4, 4) float64 camera-to-world from ``pos_w`` and ``quat_w_opengl``, or None."""
    data = camera.data
    pos, quat = getattr(data, "pos_w", None), getattr(data, "quat_w_opengl", None)
    if pos is None or quat is None:
        return None
    pos = _as_numpy(tensor(pos), "pos_w")
    quat = _as_numpy(tensor(quat), "quat_w_opengl")
    if pos.ndim != 2 or pos.shape[1] != 3 or quat.shape != (pos.shape[0], 4):
        return None
    if not np.all(np.linalg.norm(quat, axis=-1) > 1e-6):
        return None  # not initialised yet
    return geometry.pose_matrix(pos, geometry.quat_to_rotation(quat, order=order))


_POSE_MAPS: dict[tuple[str, str], Any] = {}


def live_poses(camera: Any, order: str) -> Any:
    """(K, 4, 4) camera-to-world float64 on the sensor's device, from ``pos_w`` and
    ``quat_w_opengl``: eight small kernels (one matrix product with
    ``geometry.quat_pose_map``), no host sync (no index tensors, which would be copied from the
    host)."""
    pos = tensor(camera.data.pos_w)
    quat = tensor(camera.data.quat_w_opengl)
    if isinstance(pos, np.ndarray):
        return geometry.pose_matrix(pos, geometry.quat_to_rotation(quat, order=order))
    import torch

    key = (order, str(pos.device))
    pose_map = _POSE_MAPS.get(key)
    if pose_map is None:
        pose_map = _POSE_MAPS[key] = torch.as_tensor(
            geometry.quat_pose_map(order), dtype=torch.float64, device=pos.device
        )
    q = quat.double()
    q = q / q.norm(dim=1, keepdim=True)
    qq = (q[:, :, None] * q[:, None, :]).flatten(1)
    features = torch.cat([qq, pos.double(), torch.ones_like(q[:, :1])], dim=1)
    return (features @ pose_map).view(-1, 4, 4)


def _intrinsics(camera: Any, cfg: EnvCameraCfg | GlobalCameraCfg | None) -> np.ndarray | None:
    k = getattr(camera.data, "intrinsic_matrices", None)
    if k is not None:
        k = _as_numpy(tensor(k), "intrinsic_matrices")
        if k.ndim == 3 and k.shape[1:] == (3, 3) and np.all(np.isfinite(k)) and k[:, 0, 0].all():
            return k
    return None if cfg is None else camera_intrinsics(cfg)


def _poses_agree(a: np.ndarray, b: np.ndarray) -> tuple[bool, float, float]:
    dt = float(np.max(np.abs(a[..., :3, 3] - b[..., :3, 3])))
    dr = float(np.max(np.abs(a[..., :3, :3] - b[..., :3, :3])))
    scale = float(np.max(np.abs(b[..., :3, 3]), initial=1.0))
    return dt <= _POSE_ATOL_M * max(1.0, scale / 1000.0) and dr <= _ROTATION_ATOL, dt, dr


def _checked_poses(from_cfg: np.ndarray, camera: Any, order: str, name: str) -> np.ndarray:
    """Config poses, unless the sensor reports the camera elsewhere (then the sensor's)."""
    sensed = _sensor_poses(camera, order)
    if sensed is None or sensed.shape != from_cfg.shape:
        return from_cfg
    ok, dt, dr = _poses_agree(from_cfg, sensed)
    if ok:
        return from_cfg
    warnings.warn(
        f"envreel: camera {name!r} is not where its config puts it (up to {dt:.3g} m and "
        f"{dr:.3g} in rotation apart, e.g. env origins placed by a terrain generator); "
        "recording the sensor's own pos_w / quat_w_opengl poses instead",
        RuntimeWarning,
        stacklevel=5,
    )
    return sensed


def _renderer(camera: Any, major: int) -> str | None:
    cfg = getattr(camera, "cfg", None)
    renderer_cfg = getattr(cfg, "renderer_cfg", None)
    if renderer_cfg is not None:
        kind = getattr(renderer_cfg, "renderer_type", None)
        return str(kind) if kind else type(renderer_cfg).__name__
    kind = getattr(cfg, "renderer_type", None)
    if kind:
        return str(kind)
    return "isaac_rtx" if major < 3 else "default"


def num_rerenders(unwrapped: Any) -> int:
    cfg = getattr(unwrapped, "cfg", None)
    n = getattr(cfg, "num_rerenders_on_reset", None)
    if n is None:  # Isaac Lab < 2.1: a bool
        n = 1 if getattr(cfg, "rerender_on_reset", False) else 0
    return int(n)


def far_clip(camera: Any) -> float:
    """Far clipping distance of a camera sensor's spawn config, metres (Newton's ray length)."""
    clipping = getattr(getattr(getattr(camera, "cfg", None), "spawn", None), "clipping_range", None)
    return float(clipping[1]) if clipping is not None else 1.0e6


def version_or_none() -> str | None:
    try:
        return _installed_isaaclab_version()
    except ImportError:
        return None


def _global_views_in(scene: Any) -> dict[str, GlobalCameraCfg]:
    """Global views added by ``add_global_camera`` on Isaac Lab 3: name -> config."""
    entries = getattr(getattr(scene, "cfg", None), "__dict__", {})
    views = {}
    for name, entry in entries.items():
        view = global_view_of(entry)
        if view is not None:
            views[name] = view
    return views


@dataclass(frozen=True)
class GlobalPlan:
    """How the global view is made: not at all, by a scene camera (Isaac Lab 2.x) or by
    envreel's Newton global view (Isaac Lab 3)."""

    name: str | None = None
    camera: Any = None
    newton: bool = False
    pose: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    shape: tuple[int, int] | None = None
    far: float = 1.0e6

    @classmethod
    def make(
        cls,
        wanted: GlobalCameraCfg | str | None,
        scene: Any,
        origins: np.ndarray,
        major: int,
        order: str,
    ) -> GlobalPlan:
        carried = _global_views_in(scene)
        sensors = _cameras_in(scene)
        if wanted is None:
            if DEFAULT_GLOBAL_CAMERA in carried:
                wanted = carried[DEFAULT_GLOBAL_CAMERA]
            elif DEFAULT_GLOBAL_CAMERA in sensors:
                wanted = DEFAULT_GLOBAL_CAMERA
            else:
                return cls()
        if isinstance(wanted, str) and wanted in carried:
            wanted = carried[wanted]
        if isinstance(wanted, GlobalCameraCfg) and major >= 3:
            if wanted.renderer == "isaac_rtx":
                raise ValueError(
                    "GlobalCameraCfg.renderer='isaac_rtx' needs Isaac Lab 2.x: Isaac Lab 3 has no "
                    "single camera outside the env namespace; use renderer='newton_warp'"
                )
            if getattr(wanted, EXPECTED_FRAMING, None) == (wanted.eye, wanted.lookat):
                # add_global_camera's return value, framed on the origins expected then
                wanted = dataclasses.replace(wanted, eye=None, lookat=None)
            resolved = _resolve_global(wanted, origins)  # framed on the live env origins
            return cls(
                name=wanted.name,
                newton=True,
                pose=geometry.look_at_pose(resolved.eye, resolved.lookat, convention="opengl"),
                intrinsics=camera_intrinsics(resolved),
                shape=(resolved.height, resolved.width),
                far=float(resolved.clipping_range[1]),
            )
        name = camera_name(wanted)
        cfg = wanted if isinstance(wanted, GlobalCameraCfg) else None
        camera = _find_camera(scene, name, "global view")
        shape = _image_shape(camera, name, None)
        pose = None
        if not live_pose(camera):
            if cfg is not None:
                pose = global_camera_pose(cfg, env_origins=origins)[None]
                pose = _checked_poses(pose, camera, order, name)[0]
            else:
                sensed = _sensor_poses(camera, order)
                pose = None if sensed is None else sensed[0]
        k = _intrinsics(camera, cfg)
        return cls(
            name=name,
            camera=camera,
            pose=pose,
            intrinsics=None if k is None else k.reshape(-1, 3, 3)[0],
            shape=shape,
        )


@dataclass(frozen=True)
class EnvCamera:
    """The per-env camera as read from the env once: sensor, image shape, static poses and
    intrinsics (None where unknown or live), renderer, and the env origins they hang on."""

    name: str
    camera: Any
    shape: tuple[int, int]
    origins: np.ndarray
    renderer: str | None
    live: bool
    poses: np.ndarray | None
    intrinsics: np.ndarray | None


def read_env_camera(
    wanted: EnvCameraCfg | str, scene: Any, num_envs: int, order: str, major: int
) -> EnvCamera:
    """Find the per-env camera of ``scene`` and read its static facts.

    Poses come from ``wanted``'s config (exact float64, checked against the sensor's own) or,
    for a bare name, from the sensor; none when the camera moves (``update_latest_camera_pose``).
    """
    env_cfg = wanted if isinstance(wanted, EnvCameraCfg) else None
    name = camera_name(wanted)
    camera = _find_camera(scene, name, "per-env view")
    shape = _image_shape(camera, name, num_envs)
    origins = _as_numpy(tensor(scene.env_origins), "env.unwrapped.scene.env_origins")
    if origins.shape != (num_envs, 3):
        raise ValueError(
            f"env.unwrapped.scene.env_origins must have shape ({num_envs}, 3), got {origins.shape}"
        )
    live = live_pose(camera) or bool(env_cfg and env_cfg.update_latest_camera_pose)
    poses = None
    if not live:
        if env_cfg is not None:
            poses = _checked_poses(env_camera_poses(origins, env_cfg), camera, order, name)
        else:
            poses = _sensor_poses(camera, order)
    return EnvCamera(
        name=name,
        camera=camera,
        shape=shape,
        origins=origins,
        renderer=_renderer(camera, major),
        live=live,
        poses=poses,
        intrinsics=_intrinsics(camera, env_cfg),
    )
