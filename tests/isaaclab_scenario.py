"""Records a real Isaac Lab 3 run, kit-less on the CPU, for tests/integration/test_isaaclab_real.py.

Run as a script (the test starts it in a subprocess: Isaac Lab keeps one simulation per process):

    python tests/isaaclab_scenario.py OUT_DIR

Isaac-Cartpole, 4 envs, Newton MJWarp physics, the Newton Warp camera renderer, no network:
the cart-pole USD is rebuilt from the golden stage the wheel ships and the ground plane (a
remote asset) is left out. Episodes are cut at 20 steps and every reset puts each cart-pole in
the same pose (cart +0.4 m, pole 0.3 rad, at rest), so the first frame of every episode is known:
it equals the frame of ``reset()``.

Phase 1 (steps 1-40) stacks two recorders on one env: ``all.zarr`` through the README's lines
(``add_env_camera``, ``add_global_camera``, ``RecordEnvs(env, url)``) and ``subset.zarr``
(``RecorderCfg(envs=[3, 1])``, rendered by envreel's Newton views). Phase 2 (steps 41-70) records
``windows.zarr`` with ``video_length=5, video_interval=10`` and counts every render per step.
``results.json`` holds the counts, the sensor's own poses and intrinsics, and timings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

NUM_ENVS = 4
EPISODE_STEPS = 20
PHASE1_STEPS = 40
PHASE2_STEPS = 30
ENV_SHAPE = (48, 64)  # (height, width)
GLOBAL_SHAPE = (180, 320)
RAIL_HEIGHT = 2.0  # Isaac Lab's cart-pole rail is 2 m above the env origin


class RenderCounter:
    """Counts calls of a bound method (renders), per recorded phase step."""

    def __init__(self, owner: object, name: str) -> None:
        self.calls = 0
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        setattr(owner, name, counted)


def main(out: Path) -> int:
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    import gymnasium as gym
    import isaaclab_tasks  # noqa: F401  (registers the tasks)
    import torch
    from isaaclab.app import launch_simulation

    from envreel.capture.isaaclab import (
        EnvCameraCfg,
        GlobalCameraCfg,
        RecordEnvs,
        RecorderCfg,
        _views,
        add_env_camera,
        add_global_camera,
    )
    from envreel.tools._offline_cartpole import offline_cartpole_cfg

    task = "Isaac-Cartpole"
    env_cfg = offline_cartpole_cfg(out, num_envs=NUM_ENVS)
    env_cfg.episode_length_s = EPISODE_STEPS * env_cfg.sim.dt * env_cfg.decimation - 1e-6
    for name, value in (("reset_cart_position", 0.4), ("reset_pole_position", 0.3)):
        params = getattr(env_cfg.events, name).params
        params["position_range"] = (value, value)
        params["velocity_range"] = (0.0, 0.0)

    # The README's lines, with a camera that looks at the cart-pole (its rail is 2 m up).
    h, w = ENV_SHAPE
    add_env_camera(
        env_cfg.scene,
        EnvCameraCfg(width=w, height=h, eye_offset=(-6.0, 0.0, 2.5), lookat_offset=(0.0, 0.0, 2.0)),
    )
    gh, gw = GLOBAL_SHAPE
    add_global_camera(
        env_cfg.scene, GlobalCameraCfg(width=gw, height=gh, lookat_height=RAIL_HEIGHT)
    )

    view_renders: dict[int, int] = {}
    original_render = _views._View.render

    def counted_view_render(self, state):
        view_renders[id(self)] = view_renders.get(id(self), 0) + 1
        return original_render(self, state)

    _views._View.render = counted_view_render

    results: dict = {"isaaclab": None, "timings_s": {}}
    with launch_simulation(env_cfg, {"headless": True, "device": "cpu"}):
        t0 = time.perf_counter()
        env = gym.make(task, cfg=env_cfg)
        results["timings_s"]["gym_make"] = time.perf_counter() - t0
        unwrapped = env.unwrapped
        camera = unwrapped.scene.sensors["envreel_cam"]
        sensor_renders = RenderCounter(camera._renderer, "render_batch")

        # phase 1: everything, and a subset stacked on it
        full = RecordEnvs(env, out / "all.zarr")
        subset = RecordEnvs(full, out / "subset.zarr", RecorderCfg(envs=[3, 1]))
        torch.manual_seed(0)
        t0 = time.perf_counter()
        subset.reset(seed=0)
        for _ in range(PHASE1_STEPS):
            subset.step(2 * torch.rand(subset.action_space.shape) - 1)
        results["timings_s"]["phase1_steps"] = time.perf_counter() - t0
        data = camera.data
        results["sensor"] = {
            "pos_w": data.pos_w.torch.tolist(),
            "quat_w_opengl": data.quat_w_opengl.torch.tolist(),
            "intrinsic_matrices": data.intrinsic_matrices.torch.tolist(),
        }
        results["env_origins"] = unwrapped.scene.env_origins.tolist()
        subset.stop_recording()
        full.stop_recording()

        # phase 2: recording windows; count renders per step
        windows = RecordEnvs(
            env, out / "windows.zarr", RecorderCfg(video_length=5, video_interval=10)
        )
        per_step = []
        for _ in range(PHASE2_STEPS):
            sensor_before, views_before = sensor_renders.calls, sum(view_renders.values())
            windows.step(2 * torch.rand(windows.action_space.shape) - 1)
            per_step.append(
                {
                    "step": int(unwrapped.common_step_counter),
                    "sensor": sensor_renders.calls - sensor_before,
                    "views": sum(view_renders.values()) - views_before,
                }
            )
        results["phase2"] = per_step
        windows.close()  # closes the env too
        import importlib.metadata

        results["isaaclab"] = importlib.metadata.version("isaaclab")
    results["timings_s"]["total"] = time.perf_counter() - t_start
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(Path(sys.argv[1])))
