"""Adding envreel's cameras to an Isaac Lab scene config, and the poses the recorder stores.

Isaac Lab is imported lazily, only by :func:`add_env_camera` and :func:`add_global_camera`; every
other function here is pure NumPy and runs without Isaac Lab.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import importlib.metadata
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from envreel.schemas import geometry
from envreel.schemas.geometry import grid_env_origins

from ._cfg import EnvCameraCfg, GlobalCameraCfg

__all__ = [
    "add_env_camera",
    "add_global_camera",
    "camera_intrinsics",
    "env_camera_poses",
    "global_camera_pose",
    "grid_env_origins",
]

ENV_NAMESPACE = "{ENV_REGEX_NS}"
"""Isaac Lab's placeholder for ``/World/envs/env_.*`` in a scene config's prim paths."""

_INSTALL_HINT = (
    "envreel's Isaac Lab adapter needs Isaac Lab: `pip install isaaclab==3.0.0` (Python 3.12; "
    "runs kit-less on the CPU or a GPU with Newton physics and the Newton Warp renderer), or "
    "with Isaac Sim for RTX rendering, see "
    "https://isaac-sim.github.io/IsaacLab/main/source/setup/installation/index.html"
)

GLOBAL_VIEW_MARKER = "envreel_global_view"
"""Attribute set on the scene entry that :func:`add_global_camera` adds in Isaac Lab 3 (a
camera-less ``AssetBaseCfg`` that carries the :class:`GlobalCameraCfg` for ``RecordEnvs``)."""

EXPECTED_FRAMING = "_envreel_expected_framing"
"""Attribute of the GlobalCameraCfg that :func:`add_global_camera` returns on Isaac Lab 3:
the (eye, lookat) it framed on the expected env origins."""

_RENDERER_CFGS = {
    "newton_warp": ("isaaclab_newton.renderers", "NewtonWarpRendererCfg"),
    "isaac_rtx": ("isaaclab_physx.renderers", "IsaacRtxRendererCfg"),
    "ovrtx": ("isaaclab_ov.renderers", "OVRTXRendererCfg"),
}


# --------------------------------------------------------------------------------------------
# lazy Isaac Lab import
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _IsaacLab:
    """The few Isaac Lab classes the adapter needs, and the conventions of the installed one."""

    camera_cfg: type
    """``CameraCfg`` (3.x) or ``TiledCameraCfg`` (2.x; in 3.x a deprecated alias)."""
    pinhole_cfg: type
    """``isaaclab.sim.PinholeCameraCfg``."""
    major: int
    """Major version of Isaac Lab: 3 or 2 (2 also stands for older releases)."""
    quat_order: str
    """Quaternion order of ``OffsetCfg.rot``: "xyzw" (3.x) or "wxyz" (2.x)."""

    def global_view_cfg(self, prim_path: str, cfg: GlobalCameraCfg) -> Any:
        """A camera-less ``AssetBaseCfg`` scene entry carrying ``cfg`` (Isaac Lab 3)."""
        return _global_view_cfg_type()(
            prim_path=prim_path, spawn=None, **{GLOBAL_VIEW_MARKER: dataclasses.asdict(cfg)}
        )

    def renderer_cfg(self, renderer: str) -> Any:
        """The Isaac Lab renderer config for an ``EnvCameraCfg.renderer`` value (3.x), or None
        where the camera keeps Isaac Lab's default (2.x, which has no ``renderer_cfg``)."""
        if self.major < 3:
            if renderer not in ("auto", "isaac_rtx"):
                raise ValueError(
                    f"renderer={renderer!r} needs Isaac Lab 3; Isaac Lab 2.x cameras render "
                    "with RTX (renderer='auto' or 'isaac_rtx')"
                )
            return None
        if renderer == "auto":
            renderer = "isaac_rtx" if kit_available() else "newton_warp"
        module, name = _RENDERER_CFGS[renderer]
        try:
            return getattr(importlib.import_module(module), name)()
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                f"renderer={renderer!r} needs {module}.{name}, which this Isaac Lab install "
                f"cannot import ({exc}); choose another EnvCameraCfg.renderer"
            ) from exc


_GLOBAL_VIEW_CFG_TYPE: list[type] = []


def _global_view_cfg_type() -> type:
    """``AssetBaseCfg`` with one more field, made once Isaac Lab is importable."""
    if not _GLOBAL_VIEW_CFG_TYPE:
        assets = importlib.import_module("isaaclab.assets")
        configclass = importlib.import_module("isaaclab.utils").configclass

        class EnvreelGlobalViewCfg(assets.AssetBaseCfg):
            """envreel's global view: rendered by RecordEnvs from the Newton model."""

        EnvreelGlobalViewCfg.__annotations__ = {GLOBAL_VIEW_MARKER: dict}
        setattr(EnvreelGlobalViewCfg, GLOBAL_VIEW_MARKER, {})
        _GLOBAL_VIEW_CFG_TYPE.append(configclass(EnvreelGlobalViewCfg))
    return _GLOBAL_VIEW_CFG_TYPE[0]


def global_view_of(entry: Any) -> GlobalCameraCfg | None:
    """The GlobalCameraCfg carried by a scene entry from :func:`add_global_camera`, or None."""
    fields = getattr(entry, GLOBAL_VIEW_MARKER, None)
    if not isinstance(fields, dict) or not fields:
        return None
    known = {f.name for f in dataclasses.fields(GlobalCameraCfg)}
    return GlobalCameraCfg(**{k: v for k, v in fields.items() if k in known})


def kit_available() -> bool:
    """Whether Isaac Sim (Kit) is running or installed: then cameras default to RTX.

    Kit-less installs (``pip install isaaclab``) have no ``isaacsim`` package, or only the
    namespace portion that the standalone asset importers contribute.
    """
    app = importlib.import_module("sys").modules.get("omni.kit.app")
    if app is not None:
        try:
            if app.get_app() is not None:
                return True
        except Exception:  # noqa: BLE001 - a half-started Kit is no Kit
            pass
    spec = importlib.machinery.PathFinder().find_spec("isaacsim")
    return spec is not None and spec.origin is not None


def _installed_isaaclab_version() -> str | None:
    """Version string of the installed Isaac Lab, or None when it cannot be told."""
    try:
        return importlib.metadata.version("isaaclab")
    except importlib.metadata.PackageNotFoundError:
        module = importlib.import_module("isaaclab")
        version = getattr(module, "__version__", None)
        return str(version) if version is not None else None


def _import_isaaclab(quat_order: str | None = None) -> _IsaacLab:
    """Imports Isaac Lab's camera config classes and tells its major version.

    The version is told from behaviour first: the identity default of ``CameraCfg.OffsetCfg.rot``
    is ``(0, 0, 0, 1)`` in 3.x (xyzw) and ``(1, 0, 0, 0)`` in 2.x (wxyz). Package metadata is
    the fallback (source installs report the extension's version, which is why it comes second).
    """
    if quat_order is not None and quat_order not in geometry.QUAT_ORDERS:
        raise ValueError(
            f"quat_order must be one of {geometry.QUAT_ORDERS} or None, got {quat_order!r}"
        )
    try:
        sensors = importlib.import_module("isaaclab.sensors")
        sim = importlib.import_module("isaaclab.sim")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "isaaclab":
            raise ImportError(_INSTALL_HINT) from exc
        raise ImportError(
            f"Isaac Lab is installed but importing it failed ({exc}); with Isaac Sim, launch the "
            "app first (isaaclab.app.AppLauncher) and build configs afterwards. " + _INSTALL_HINT
        ) from exc

    camera_cfg = sensors.CameraCfg
    default_rot = tuple(float(v) for v in camera_cfg.OffsetCfg().rot)
    if default_rot == (0.0, 0.0, 0.0, 1.0):
        major = 3
    elif default_rot == (1.0, 0.0, 0.0, 0.0):
        major = 2
    else:
        version = _installed_isaaclab_version()
        try:
            major = int(str(version).split(".")[0])
        except ValueError:
            raise RuntimeError(
                f"cannot tell the quaternion order of Isaac Lab {version!r} (OffsetCfg.rot "
                f"defaults to {default_rot}); pass quat_order='xyzw' (3.x) or 'wxyz' (2.x)"
            ) from None
        major = 3 if major >= 3 else 2
    if major == 2:
        # 2.x: one render product per Camera is slow for many envs; TiledCamera batches them.
        camera_cfg = getattr(sensors, "TiledCameraCfg", camera_cfg)
    order = quat_order or ("xyzw" if major >= 3 else "wxyz")
    return _IsaacLab(camera_cfg, sim.PinholeCameraCfg, major, order)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _as_numpy(value: object, name: str) -> np.ndarray:
    """NumPy float64 copy of an array-like, a torch tensor (any device) or a ProxyArray."""
    if hasattr(value, "torch") and not hasattr(value, "__array__"):
        value = value.torch  # Isaac Lab 3.0 ProxyArray
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()  # torch, without importing it
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be an array-like of numbers (NumPy, torch or a list), got "
            f"{type(value).__name__}"
        ) from None


def _origins(value: object, name: str = "env_origins") -> np.ndarray:
    origins = _as_numpy(value, name)
    if origins.ndim != 2 or origins.shape[1] != 3 or origins.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, 3) with N >= 1, got shape {origins.shape}")
    if not np.all(np.isfinite(origins)):
        raise ValueError(f"{name} must be finite")
    return origins


def _check_cfg(cfg: object, expected: type, name: str = "cfg") -> None:
    if not isinstance(cfg, expected):
        raise TypeError(f"{name} must be an {expected.__name__} instance, got {type(cfg).__name__}")
    cfg.validate()  # fields may have been edited since construction


def _scene_of(scene_cfg: object) -> Any:
    """The InteractiveSceneCfg itself, or the ``.scene`` of an env cfg."""
    if hasattr(scene_cfg, "unwrapped") or hasattr(getattr(scene_cfg, "scene", None), "sensors"):
        raise TypeError(
            "cameras must be added to the scene config before the env is built (a camera added "
            "after the simulation starts renders white): call this on env_cfg.scene before "
            f"gym.make(...), got a built env ({type(scene_cfg).__name__})"
        )
    if hasattr(scene_cfg, "num_envs") and hasattr(scene_cfg, "env_spacing"):
        return scene_cfg
    scene = getattr(scene_cfg, "scene", None)
    if hasattr(scene, "num_envs") and hasattr(scene, "env_spacing"):
        return scene
    raise TypeError(
        "scene_cfg must be an Isaac Lab InteractiveSceneCfg (with num_envs and env_spacing) or an "
        f"env cfg whose .scene is one, got {type(scene_cfg).__name__}"
    )


def _check_free(scene: Any, name: str, prim_path: str) -> None:
    if hasattr(scene, name):
        raise ValueError(
            f"camera name {name!r} collides with an existing entry of the scene config "
            f"{type(scene).__name__}; choose another name in the camera cfg"
        )
    for entry_name, entry in getattr(scene, "__dict__", {}).items():
        if getattr(entry, "prim_path", None) == prim_path:
            raise ValueError(
                f"camera prim path {prim_path!r} is already used by scene entry {entry_name!r}; "
                "choose another name in the camera cfg"
            )


def _camera_cfg(
    lab: _IsaacLab,
    *,
    prim_path: str,
    position: Sequence[float],
    rotation: np.ndarray,
    cfg: EnvCameraCfg | GlobalCameraCfg,
    update_latest_camera_pose: bool,
    renderer: str = "auto",
) -> Any:
    quat = geometry.rotation_to_quat(rotation, order=lab.quat_order)
    renderer_cfg = lab.renderer_cfg(renderer)
    extra = {} if renderer_cfg is None else {"renderer_cfg": renderer_cfg}
    return lab.camera_cfg(
        prim_path=prim_path,
        update_period=cfg.update_period,
        offset=lab.camera_cfg.OffsetCfg(
            pos=tuple(float(v) for v in position),
            rot=tuple(float(v) for v in quat),
            convention="opengl",
        ),
        spawn=lab.pinhole_cfg(
            focal_length=cfg.focal_length,
            horizontal_aperture=cfg.horizontal_aperture,
            clipping_range=tuple(cfg.clipping_range),
        ),
        data_types=["rgb"],
        width=cfg.width,
        height=cfg.height,
        update_latest_camera_pose=update_latest_camera_pose,
        **extra,
    )


# --------------------------------------------------------------------------------------------
# public: pure helpers
# --------------------------------------------------------------------------------------------


def camera_intrinsics(cfg: EnvCameraCfg | GlobalCameraCfg) -> np.ndarray:
    """The pinhole matrix Isaac Lab reports for a camera made from ``cfg``.

    Same values as ``camera.data.intrinsic_matrices[i]`` (which is float32):
    ``fx = fy = focal_length / horizontal_aperture * width``, ``cx = width / 2``,
    ``cy = height / 2``.

    Args:
        cfg: A per-env or global camera config.

    Returns:
        Intrinsic matrix, shape (3, 3) float64.

    Raises:
        TypeError: If ``cfg`` is neither config type.
    """
    if not isinstance(cfg, EnvCameraCfg | GlobalCameraCfg):
        raise TypeError(f"cfg must be an EnvCameraCfg or GlobalCameraCfg, got {type(cfg).__name__}")
    cfg.validate()
    return geometry.pinhole_intrinsics(
        focal_length=cfg.focal_length,
        horizontal_aperture=cfg.horizontal_aperture,
        width=cfg.width,
        height=cfg.height,
    )


def env_camera_poses(
    env_origins: object,
    cfg: EnvCameraCfg | None = None,
    *,
    convention: Literal["opengl", "ros", "world"] = "opengl",
) -> np.ndarray:
    """Camera-to-world poses of the per-env cameras made from ``cfg``.

    Args:
        env_origins: Env origins, shape (N, 3), metres: a NumPy array, a list, a torch tensor on
            any device or an Isaac Lab 3.0 ProxyArray (e.g. ``env.unwrapped.scene.env_origins``).
        cfg: The per-env camera config. Defaults to None, meaning ``EnvCameraCfg()``.
        convention: Camera convention of the rotation blocks. Defaults to ``"opengl"`` (the
            convention envreel stores).

    Returns:
        Poses, shape (N, 4, 4) float64: translation ``origin + eye_offset``, the same rotation
        for every env.

    Raises:
        ValueError: If ``env_origins`` is not (N, 3) or the convention is unknown.
        TypeError: If ``cfg`` is not an EnvCameraCfg.
    """
    cfg = EnvCameraCfg() if cfg is None else cfg
    _check_cfg(cfg, EnvCameraCfg)
    origins = _origins(env_origins)
    rotation = geometry.look_at_rotation(cfg.eye_offset, cfg.lookat_offset, convention=convention)
    return geometry.pose_matrix(origins + np.asarray(cfg.eye_offset), rotation)


def _resolve_global(cfg: GlobalCameraCfg, env_origins: object | None) -> GlobalCameraCfg:
    """A copy of ``cfg`` with ``eye`` and ``lookat`` filled in from the env origins."""
    if not cfg.auto_framed:
        return dataclasses.replace(cfg)
    if env_origins is None:
        raise ValueError(
            "an auto-framed GlobalCameraCfg (eye=None, lookat=None) needs env_origins, shape "
            "(N, 3); pass env_origins= or set eye and lookat"
        )
    framing = geometry.auto_frame(
        _origins(env_origins) + np.array([0.0, 0.0, cfg.lookat_height]),
        margin=cfg.margin,
        min_span=cfg.min_span,
        distance_scale=cfg.distance_scale,
        azimuth_deg=cfg.azimuth_deg,
        elevation_deg=cfg.elevation_deg,
        intrinsics=camera_intrinsics(cfg) if cfg.fit_to_image else None,
        image_shape=(cfg.height, cfg.width) if cfg.fit_to_image else None,
    )
    return dataclasses.replace(
        cfg,
        eye=tuple(float(v) for v in framing.eye),
        lookat=tuple(float(v) for v in framing.target),
    )


def global_camera_pose(
    cfg: GlobalCameraCfg | None = None,
    *,
    env_origins: object | None = None,
    convention: Literal["opengl", "ros", "world"] = "opengl",
) -> np.ndarray:
    """Camera-to-world pose of the global camera made from ``cfg``.

    Args:
        cfg: The global camera config. Defaults to None, meaning ``GlobalCameraCfg()``.
        env_origins: Env origins, shape (N, 3), metres (NumPy, list, torch or ProxyArray);
            required when ``cfg`` is auto-framed, ignored otherwise. Defaults to None.
        convention: Camera convention of the rotation block. Defaults to ``"opengl"``.

    Returns:
        Pose, shape (4, 4) float64.

    Raises:
        ValueError: If ``cfg`` is auto-framed and ``env_origins`` is missing or not (N, 3).
        TypeError: If ``cfg`` is not a GlobalCameraCfg.
    """
    cfg = GlobalCameraCfg() if cfg is None else cfg
    _check_cfg(cfg, GlobalCameraCfg)
    resolved = _resolve_global(cfg, env_origins)
    return geometry.look_at_pose(resolved.eye, resolved.lookat, convention=convention)


# --------------------------------------------------------------------------------------------
# public: scene config editing (imports Isaac Lab)
# --------------------------------------------------------------------------------------------


def add_env_camera(
    scene_cfg: object,
    cfg: EnvCameraCfg | None = None,
    *,
    quat_order: Literal["xyzw", "wxyz"] | None = None,
) -> EnvCameraCfg:
    """Adds a camera to every env of a scene config, before the env is built.

    The camera is a ``CameraCfg`` (Isaac Lab 3.x; ``TiledCameraCfg`` on 2.x) at
    ``{ENV_REGEX_NS}/<cfg.name>``, so each env gets its own under ``/World/envs/env_i``. Its
    pose is baked into ``offset`` relative to the env prim, in the OpenGL convention, with the
    quaternion in the order of the installed Isaac Lab. On Isaac Lab 3 its ``renderer_cfg``
    follows ``cfg.renderer``: by default the Newton Warp renderer without Isaac Sim (kit-less,
    started by ``isaaclab.app.launch_simulation``) and RTX with it. The camera renders only when
    its data is read, so it costs nothing outside ``RecordEnvs``'s recording windows.

    Args:
        scene_cfg: The ``InteractiveSceneCfg`` (or an env cfg, whose ``.scene`` is used). It is
            modified in place: a new attribute ``<cfg.name>`` is set.
        cfg: The camera. Defaults to None, meaning ``EnvCameraCfg()``.
        quat_order: Quaternion order of ``OffsetCfg.rot``. Defaults to None, meaning that of
            the installed Isaac Lab (xyzw for 3.x, wxyz for 2.x).

    Returns:
        The camera config used (``cfg``), to hand to the recorder.

    Raises:
        ValueError: If ``cfg.name`` (or its prim path) collides with an existing scene entry,
            or ``cfg.renderer`` does not exist in the installed Isaac Lab.
        TypeError: If ``scene_cfg`` is not a scene config (or is an already built env).
        ImportError: If Isaac Lab is not installed (with how to install it).

    Example:
        >>> env_cfg = parse_env_cfg("Isaac-Cartpole", num_envs=64)  # doctest: +SKIP
        >>> cam = add_env_camera(env_cfg.scene, EnvCameraCfg(width=160))  # doctest: +SKIP
        >>> env = gym.make("Isaac-Cartpole", cfg=env_cfg)  # doctest: +SKIP
    """
    cfg = EnvCameraCfg() if cfg is None else cfg
    _check_cfg(cfg, EnvCameraCfg)
    scene = _scene_of(scene_cfg)
    prim_path = f"{ENV_NAMESPACE}/{cfg.name}"
    _check_free(scene, cfg.name, prim_path)
    lab = _import_isaaclab(quat_order)
    rotation = geometry.look_at_rotation(cfg.eye_offset, cfg.lookat_offset, convention="opengl")
    camera = _camera_cfg(
        lab,
        prim_path=prim_path,
        position=cfg.eye_offset,
        rotation=rotation,
        cfg=cfg,
        update_latest_camera_pose=cfg.update_latest_camera_pose,
        renderer=cfg.renderer,
    )
    setattr(scene, cfg.name, camera)
    return cfg


def _global_renderer_is_newton(cfg: GlobalCameraCfg, major: int) -> bool:
    """Whether envreel's Newton view makes the global view (else an RTX scene camera)."""
    if major >= 3 and cfg.renderer == "isaac_rtx":
        raise ValueError(
            "GlobalCameraCfg.renderer='isaac_rtx' needs Isaac Lab 2.x: Isaac Lab 3 cameras must "
            "have one instance per env (a camera outside the env namespace fails in gym.make); "
            "use renderer='newton_warp' (envreel renders the view from the Newton model)"
        )
    if major < 3 and cfg.renderer == "newton_warp":
        raise ValueError(
            "GlobalCameraCfg.renderer='newton_warp' needs Isaac Lab 3 (Newton); on Isaac Lab 2.x "
            "use renderer='isaac_rtx' or 'auto'"
        )
    return major >= 3 and cfg.renderer in ("auto", "newton_warp")


def _expected_origins(scene: Any, newton_view: bool) -> np.ndarray | None:
    """The env origins a scene config will lay out (Isaac Lab's grid), for auto-framing; None
    where only the built env knows them and the Newton view frames on those."""
    terrain = getattr(scene, "terrain", None)
    if getattr(terrain, "terrain_type", None) == "generator" and not newton_view:
        raise ValueError(
            "the scene's terrain generator places the envs, so their origins are not a grid "
            "known before the env is built; pass env_origins= or set GlobalCameraCfg eye and "
            "lookat"
        )
    if scene.env_spacing is None and not newton_view:
        raise ValueError(
            "auto-framing needs env origins but the scene config has env_spacing=None; pass "
            "env_origins= or set GlobalCameraCfg eye and lookat"
        )
    if scene.env_spacing is not None:
        return grid_env_origins(scene.num_envs, scene.env_spacing)
    return None


def add_global_camera(
    scene_cfg: object,
    cfg: GlobalCameraCfg | None = None,
    *,
    env_origins: object | None = None,
    quat_order: Literal["xyzw", "wxyz"] | None = None,
) -> GlobalCameraCfg:
    """Adds one bird's-eye view over all envs to a scene config, before the env is built.

    Isaac Lab 3 (``cfg.renderer`` "auto" or "newton_warp"): Isaac Lab 3 cameras must have one
    instance per env, so the scene gets a camera-less entry ``<cfg.name>`` that carries ``cfg``,
    and :class:`RecordEnvs` renders the view itself from the sim's Newton model after every
    recorded step (needs Newton physics or a Newton Warp env camera). Auto-framing then uses the
    live env origins. Isaac Lab 2.x ("auto" or "isaac_rtx"): a single RTX ``TiledCameraCfg`` at
    ``/World/<cfg.name>``, outside the env namespace; neither needs ``env.render()`` or
    ``ViewerCfg``.

    When ``cfg`` is auto-framed, the returned pose comes from ``env_origins`` if given, else
    from the scene's ``num_envs`` and ``env_spacing`` laid out as :func:`grid_env_origins`
    (Isaac Lab's grid). A 2.x scene whose terrain generator places the envs needs
    ``env_origins`` (or an explicit ``eye``/``lookat``).

    Args:
        scene_cfg: The ``InteractiveSceneCfg`` (or an env cfg, whose ``.scene`` is used),
            modified in place.
        cfg: The camera. Defaults to None, meaning ``GlobalCameraCfg()`` (auto-framed).
        env_origins: Env origins, shape (N, 3), metres, used for auto-framing. Defaults to None.
        quat_order: Quaternion order of ``OffsetCfg.rot``. Defaults to None, meaning that of
            the installed Isaac Lab.

    Returns:
        A copy of ``cfg`` with ``eye`` and ``lookat`` set to the pose for the expected env
        origins (on Isaac Lab 3, RecordEnvs re-frames with the live ones), to hand to the
        recorder.

    Raises:
        ValueError: If the name collides with a scene entry, the renderer does not exist in the
            installed Isaac Lab, or auto-framing has no origins.
        TypeError: If ``scene_cfg`` is not a scene config.
        ImportError: If Isaac Lab is not installed.

    Example:
        >>> top = add_global_camera(env_cfg.scene)  # doctest: +SKIP
        >>> top.eye, top.lookat  # doctest: +SKIP
    """
    cfg = GlobalCameraCfg() if cfg is None else cfg
    _check_cfg(cfg, GlobalCameraCfg)
    scene = _scene_of(scene_cfg)
    prim_path = f"/World/{cfg.name}"
    _check_free(scene, cfg.name, prim_path)
    lab = _import_isaaclab(quat_order)
    newton_view = _global_renderer_is_newton(cfg, lab.major)
    if cfg.auto_framed and env_origins is None:
        env_origins = _expected_origins(scene, newton_view)
    resolved = (
        _resolve_global(cfg, env_origins)
        if env_origins is not None or not cfg.auto_framed
        else dataclasses.replace(cfg)  # a copy, as documented, even when there is nothing to frame
    )
    if newton_view:
        # InteractiveScene builds a plain Asset (no prim, no physics view) from the entry;
        # RecordEnvs finds the GlobalCameraCfg in it.
        setattr(scene, cfg.name, lab.global_view_cfg(prim_path, cfg))
        if cfg.auto_framed and not resolved.auto_framed:
            # Framed on the origins expected now; RecordEnvs frames it on the live ones
            # (a terrain may place the envs elsewhere) unless eye or lookat are changed.
            setattr(resolved, EXPECTED_FRAMING, (resolved.eye, resolved.lookat))
        return resolved
    rotation = geometry.look_at_rotation(resolved.eye, resolved.lookat, convention="opengl")
    camera = _camera_cfg(
        lab,
        prim_path=prim_path,
        position=resolved.eye,
        rotation=rotation,
        cfg=resolved,
        update_latest_camera_pose=False,
    )
    setattr(scene, cfg.name, camera)
    return resolved
