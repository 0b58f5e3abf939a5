"""Record an Isaac Lab task's cameras into an envreel run store, with random actions.

Requires Isaac Lab 3.0 (Python 3.12, its torch) and an NVIDIA GPU; it is not run in CI. It shows
the two lines a training script adds: ``add_env_camera(env_cfg.scene)`` before ``gym.make`` and
``RecordEnvs(env, url)`` after. Render the result later, on any machine::

    python tools/isaaclab_record.py --task Isaac-Cartpole-v0 --num_envs 64 --steps 500 \\
        --out runs/cartpole.zarr --headless
    envreel render runs/cartpole.zarr cartpole.mp4 --columns 8

Under torchrun (with ``--distributed``, as Isaac Lab's train scripts), rank 0 records into
``--out`` (``--all_ranks``: every rank into ``<out stem>_rank<r>.zarr``); ``--num_envs`` is per
GPU. Every AppLauncher option (``--headless``, ``--device``, ``--livestream``...) is accepted;
cameras are always enabled.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

INSTALL_HINT = (
    "this script needs Isaac Lab 3.0 and an NVIDIA GPU: see "
    "https://isaac-sim.github.io/IsaacLab/main/source/setup/installation/index.html"
)


def build_parser() -> argparse.ArgumentParser:
    """The script's own options (AppLauncher's are added in :func:`main`)."""
    parser = argparse.ArgumentParser(
        description="Record an Isaac Lab task's per-env and global cameras with envreel.",
        epilog="Example: python tools/isaaclab_record.py --task Isaac-Cartpole-v0 "
        "--num_envs 64 --steps 500 --out runs/cartpole.zarr --headless",
    )
    parser.add_argument("--task", required=True, help="Gym id of the task, e.g. Isaac-Ant-v0.")
    parser.add_argument(
        "--num_envs", type=int, default=64, help="Envs per GPU (default: %(default)s)."
    )
    parser.add_argument(
        "--steps", type=int, default=500, help="Env steps to run (default: %(default)s)."
    )
    parser.add_argument("--out", required=True, help="Run store path or URL (e.g. runs/a.zarr).")
    parser.add_argument(
        "--width", type=int, default=160, help="Per-env camera width (default: %(default)s)."
    )
    parser.add_argument(
        "--height", type=int, default=120, help="Per-env camera height (default: %(default)s)."
    )
    parser.add_argument(
        "--no_global", action="store_true", help="Do not add the auto-framed global camera."
    )
    parser.add_argument(
        "--video_length",
        type=int,
        default=None,
        help="Steps per recording window (default: record every step).",
    )
    parser.add_argument(
        "--video_interval", type=int, default=None, help="Steps between window starts."
    )
    parser.add_argument(
        "--all_ranks", action="store_true", help="Under torchrun, record every rank."
    )
    parser.add_argument("--seed", type=int, default=None, help="Seed of env.reset().")
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace an existing store at --out."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, launches Isaac Lab, records, prints a summary; returns 0."""
    parser = build_parser()
    try:
        from isaaclab.app import AppLauncher
    except ImportError:
        parser.parse_known_args(argv)  # --help and missing options still answer
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    AppLauncher.add_app_launcher_args(parser)
    args = parser.parse_args(argv)
    for name in ("num_envs", "steps", "width", "height"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    args.enable_cameras = True  # camera sensors render only with cameras enabled
    app_launcher = AppLauncher(args)
    simulation_app = app_launcher.app

    # Isaac Lab modules are imported after the app starts (Isaac Sim needs it).
    import gymnasium as gym
    import isaaclab_tasks  # noqa: F401  (registers the tasks)
    import torch
    from envreel.capture.isaaclab import (
        EnvCameraCfg,
        RecordEnvs,
        RecorderCfg,
        add_env_camera,
        add_global_camera,
    )
    from isaaclab_tasks.utils import parse_env_cfg

    device = args.device
    if getattr(args, "distributed", False):  # one process per GPU, as Isaac Lab's train.py
        device = f"cuda:{app_launcher.local_rank}"
    env_cfg = parse_env_cfg(args.task, device=device, num_envs=args.num_envs)
    # The two lines a training script adds (here with a smaller camera and a global view):
    env_cam = add_env_camera(env_cfg.scene, EnvCameraCfg(width=args.width, height=args.height))
    global_cam = None if args.no_global else add_global_camera(env_cfg.scene)
    env = gym.make(args.task, cfg=env_cfg)
    env = RecordEnvs(
        env,
        args.out,
        RecorderCfg(
            env_camera=env_cam,
            global_camera=global_cam,
            video_length=args.video_length,
            video_interval=args.video_interval,
            all_ranks=args.all_ranks,
            overwrite=args.overwrite,
            metadata={"task": args.task, "script": "tools/isaaclab_record.py"},
        ),
    )

    env.reset(seed=args.seed)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(args.steps):
            actions = 2 * torch.rand(env.action_space.shape, device=env.unwrapped.device) - 1
            env.step(actions)
    seconds = time.perf_counter() - t0
    env.close()  # flushes the store before the app exits
    stats, url = env.stats, env.url
    if stats is not None:  # None on ranks that do not record
        stored = f"{stats.bytes_stored / 1e6:.1f} MB" if stats.bytes_stored >= 0 else "? MB"
        print(
            f"[envreel] {url}: {stats.frames_written} frames of {args.num_envs} envs in "
            f"{seconds:.1f} s ({args.steps / seconds:.1f} steps/s with recording), "
            f"{stats.frames_dropped} dropped, {stored} stored; "
            f"render with: envreel render {url} out.mp4"
        )
    simulation_app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
