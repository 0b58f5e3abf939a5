"""Isaac Lab adapter: envreel's cameras in an Isaac Lab scene, and a wrapper that records them.

Isaac Lab is imported only when a camera is added to a scene config or an env is wrapped;
importing this package, building the configs and computing poses or intrinsics work without it.
``RecordEnvs`` is loaded on first use (it imports gymnasium). The modules: ``_cfg`` (the
``*Cfg`` classes), ``_scene`` (adding cameras to a scene config), ``_sensors`` (reading the
cameras of a built env), ``_ranks`` (torchrun), ``_sources`` and ``_views`` (a step's frames),
``_wrapper`` (``RecordEnvs``).

Example:
    A training script adds the cameras to the scene config before the env is built, and wraps
    the env right after::

        from envreel.capture.isaaclab import (
            EnvCameraCfg, RecordEnvs, RecorderCfg, add_env_camera, add_global_camera
        )

        env_cfg = parse_env_cfg(task, num_envs=64)
        env_cam = add_env_camera(env_cfg.scene, EnvCameraCfg(width=160, height=120))
        global_cam = add_global_camera(env_cfg.scene)  # auto-framed over the env grid
        env = gym.make(task, cfg=env_cfg)
        env = RecordEnvs(
            env, "runs/task.zarr", RecorderCfg(env_camera=env_cam, global_camera=global_cam)
        )
"""

from typing import TYPE_CHECKING, Any

from ._cfg import EnvCameraCfg, GlobalCameraCfg, RecorderCfg
from ._scene import (
    add_env_camera,
    add_global_camera,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
    grid_env_origins,
)

if TYPE_CHECKING:
    from ._wrapper import RecordEnvs

__all__ = [
    "EnvCameraCfg",
    "GlobalCameraCfg",
    "RecordEnvs",
    "RecorderCfg",
    "add_env_camera",
    "add_global_camera",
    "camera_intrinsics",
    "env_camera_poses",
    "global_camera_pose",
    "grid_env_origins",
]

_LAZY = ("RecordEnvs",)


def __getattr__(name: str) -> Any:
    # The wrapper imports gymnasium (~0.2 s): only when asked for.
    if name in _LAZY:
        from . import _wrapper

        return getattr(_wrapper, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
