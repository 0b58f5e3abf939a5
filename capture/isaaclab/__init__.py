"""Isaac Lab adapter: envreel's cameras in an Isaac Lab scene, and the poses to record.

Isaac Lab is imported only when a camera is added to a scene config; importing this package,
building the configs and computing poses or intrinsics work without it.

Example:
    A training script adds the cameras to the scene config before the env is built::

        from envreel.capture.isaaclab import EnvCameraCfg, add_env_camera, add_global_camera

        env_cfg = parse_env_cfg(task, num_envs=64)
        env_cam = add_env_camera(env_cfg.scene, EnvCameraCfg(width=160, height=120))
        global_cam = add_global_camera(env_cfg.scene)  # auto-framed over the env grid
        env = gym.make(task, cfg=env_cfg)
"""

from ._cfg import EnvCameraCfg, GlobalCameraCfg
from ._scene import (
    add_env_camera,
    add_global_camera,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
    grid_env_origins,
)

__all__ = [
    "EnvCameraCfg",
    "GlobalCameraCfg",
    "add_env_camera",
    "add_global_camera",
    "camera_intrinsics",
    "env_camera_poses",
    "global_camera_pose",
    "grid_env_origins",
]
