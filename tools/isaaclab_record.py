"""Record an Isaac Lab 3 task's cameras into an envreel run store, with random actions.

Shows the lines a training script adds: ``add_env_camera(env_cfg.scene)`` (and optionally
``add_global_camera``) before ``gym.make``, and ``RecordEnvs(env, url)`` after. Runs kit-less
(``pip install isaaclab==3.0.0``; Newton physics and the Newton Warp renderer, CPU or GPU) or
with Isaac Sim (RTX), started by ``isaaclab.app.launch_simulation``. Render the result later,
on any machine::

    python tools/isaaclab_record.py --task Isaac-Cartpole --num_envs 16 --steps 600 \\
        --device cpu --out runs/cartpole.zarr
    envreel render runs/cartpole.zarr cartpole.mp4 --global-view right --markers --marker-height 2

Offline machines cannot fetch Isaac Lab's assets from its content server; ``--set`` edits the
env config, e.g. ``--set scene.robot.spawn.usd_path=/data/cartpole.usda --set scene.ground=None``.
Under torchrun (``--distributed``), rank 0 records into ``--out`` (``--all_ranks``: every rank
into ``<out stem>_rank<r>.zarr``); ``--num_envs`` is per GPU.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

INSTALL_HINT = "this script needs Isaac Lab 3: pip install isaaclab==3.0.0 (Python 3.12)"


def build_parser() -> argparse.ArgumentParser:
    """The script's own options (Isaac Lab's launcher options are added in :func:`main`)."""
    parser = argparse.ArgumentParser(
        description="Record an Isaac Lab task's per-env and global views with envreel.",
        epilog="Example: python tools/isaaclab_record.py --task Isaac-Cartpole --num_envs 16 "
        "--steps 600 --device cpu --out runs/cartpole.zarr",
    )
    parser.add_argument("--task", required=True, help="Gym id of the task, e.g. Isaac-Cartpole.")
    parser.add_argument("--num_envs", type=int, default=16, help="Envs (per GPU); %(default)s.")
    parser.add_argument("--steps", type=int, default=600, help="Env steps; %(default)s.")
    parser.add_argument("--out", required=True, help="Run store path or URL (e.g. runs/a.zarr).")
    parser.add_argument("--width", type=int, default=160, help="Env camera width; %(default)s.")
    parser.add_argument("--height", type=int, default=120, help="Env camera height; %(default)s.")
    parser.add_argument(
        "--physics",
        default="newton_mjwarp",
        help="Isaac Lab physics preset (physics=... override); %(default)s.",
    )
    parser.add_argument(
        "--camera_eye",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=None,
        help="Env camera position (m) from each env's origin (default: framed for known tasks, "
        "else EnvCameraCfg's).",
    )
    parser.add_argument(
        "--camera_lookat",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=None,
        help="Point (m) from each env's origin the env camera looks at (as --camera_eye).",
    )
    parser.add_argument("--no_global", action="store_true", help="No global (bird's-eye) view.")
    parser.add_argument(
        "--lookat_height",
        type=float,
        default=None,
        help="Height (m) above the env origins the global view frames (default: the task's, "
        "2 for Cartpole, else 0).",
    )
    parser.add_argument(
        "--global_width", type=int, default=640, help="Global view width; %(default)s."
    )
    parser.add_argument(
        "--global_height", type=int, default=360, help="Global view height; %(default)s."
    )
    parser.add_argument(
        "--envs", default=None, help="Envs to record, e.g. '0-15' or '0,4,8' (default: all)."
    )
    parser.add_argument("--video_length", type=int, default=None, help="Steps per window.")
    parser.add_argument("--video_interval", type=int, default=None, help="Steps between windows.")
    parser.add_argument("--all_ranks", action="store_true", help="Under torchrun: every rank.")
    parser.add_argument("--seed", type=int, default=None, help="Seed of env.reset().")
    parser.add_argument("--overwrite", action="store_true", help="Replace a store at --out.")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="Set an env config attribute (repeatable), e.g. scene.ground=None.",
    )
    parser.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)  # old scripts
    return parser


TASK_CAMERAS = {"Isaac-Cartpole": ((-6.0, 0.0, 2.5), (0.0, 0.0, 2.0))}
"""(eye, look-at) offsets of the env camera that frame a task's robot, by task name prefix:
EnvCameraCfg's default (a robot near the ground) sees nothing of Cartpole, whose rail is 2 m up.
The look-at's height is also where the global view frames the robots."""


def _for_task(table: dict, task: str) -> Any:
    return next((v for name, v in table.items() if task.startswith(name)), None)


def global_camera_fields(args: argparse.Namespace) -> dict:
    """``GlobalCameraCfg`` fields from the options: the task's framing height unless given.

    A global view renders on every recorded step: at the script's 640×360 it costs a quarter of
    GlobalCameraCfg's 1280×720 (on the CPU, most of a small run's time and bytes)."""
    height = args.lookat_height
    if height is None:
        known = _for_task(TASK_CAMERAS, args.task)
        height = known[1][2] if known is not None else 0.0
    return {"lookat_height": height, "width": args.global_width, "height": args.global_height}


def render_command(url: str, top: Any) -> str:
    """The ``envreel render`` command that shows what was recorded: the global view beside the
    grid, a marker where each env's robot is framed (``top``: the GlobalCameraCfg, or None)."""
    from envreel.render import Layout

    layout = Layout()
    if top is not None:
        layout = Layout(global_view="right", markers=True, marker_height=top.lookat_height or 0.0)
    return shlex.join(["envreel", "render", url, "out.mp4", *layout.command_args()])


def camera_pose(task: str, eye: Sequence[float] | None, lookat: Sequence[float] | None) -> dict:
    """``EnvCameraCfg`` pose fields: the options given, else the task's framing, else none."""
    known = _for_task(TASK_CAMERAS, task)
    if eye is None and known is not None:
        eye = known[0]
    if lookat is None and known is not None:
        lookat = known[1]
    pose = {"eye_offset": eye, "lookat_offset": lookat}
    return {name: tuple(v) for name, v in pose.items() if v is not None}


def uniform_cameras(url: str) -> int | None:
    """The one value of every stored env pixel when the env cameras saw a uniform image (the
    robot out of view), else None."""
    from envreel.schemas import open_run

    run = open_run(url)
    n = run.num_frames
    if n == 0:
        return None
    frames = run.env_frames(None, 0, n, stride=max(1, n // 8))
    lo, hi = int(frames.min()), int(frames.max())
    return lo if lo == hi else None


def parse_envs(text: str | None) -> list[int] | None:
    """'0-3,8' -> [0, 1, 2, 3, 8]; None stays None."""
    if text is None:
        return None
    ids: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            ids.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"--envs {text!r}: expected ids and ranges like 0-15,20") from None
    return ids


def apply_sets(cfg: Any, assignments: Sequence[str]) -> None:
    """``path=value`` assignments into ``cfg`` (values are Python literals, else strings)."""
    for item in assignments:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set {item!r}: expected PATH=VALUE, e.g. scene.ground=None")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        *parents, leaf = path.split(".")
        target = cfg
        for name in parents:
            if not hasattr(target, name):
                raise ValueError(f"--set {item!r}: the env config has no {name!r} here")
            target = getattr(target, name)
        if not hasattr(target, leaf):
            raise ValueError(f"--set {item!r}: the env config has no {leaf!r} here")
        setattr(target, leaf, value)


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, launches Isaac Lab, records, prints a summary; returns 0."""
    parser = build_parser()
    try:
        from isaaclab.app import add_launcher_args, launch_simulation
    except ImportError:
        parser.parse_known_args(argv)  # --help and missing options still answer
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    add_launcher_args(parser)
    parser.set_defaults(device=None)  # resolved below: the GPU where there is one, else the CPU
    args = parser.parse_args(argv)
    for name in ("num_envs", "steps", "width", "height"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    try:
        envs = parse_envs(args.envs)
    except ValueError as exc:
        parser.error(str(exc))
    if envs is not None and max(envs) >= args.num_envs:
        parser.error(f"--envs {args.envs}: env ids must be below --num_envs {args.num_envs}")

    import gymnasium as gym
    import isaaclab_tasks  # noqa: F401  (registers the tasks)
    import torch
    from isaaclab_tasks.utils import parse_env_cfg

    from envreel.capture.isaaclab import (
        EnvCameraCfg,
        GlobalCameraCfg,
        RecordEnvs,
        RecorderCfg,
        add_env_camera,
        add_global_camera,
    )

    try:  # checked before Isaac Lab builds the env (tens of seconds)
        cfg = RecorderCfg(
            envs=envs,
            video_length=args.video_length,
            video_interval=args.video_interval,
            all_ranks=args.all_ranks,
            overwrite=args.overwrite,
            metadata={"task": args.task, "script": "tools/isaaclab_record.py"},
        )
        camera = EnvCameraCfg(
            width=args.width,
            height=args.height,
            **camera_pose(args.task, args.camera_eye, args.camera_lookat),
        )
        top = None if args.no_global else GlobalCameraCfg(**global_camera_fields(args))
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))

    if args.device is None:
        args.device = "cuda:0" if torch.cuda.is_available() else "cpu"
    env_cfg = parse_env_cfg(
        args.task,
        device=args.device,
        num_envs=args.num_envs,
        overrides=[f"physics={args.physics}"] if args.physics else [],
    )
    try:
        apply_sets(env_cfg, args.set)
    except ValueError as exc:
        parser.error(str(exc))
    # The lines a training script adds (here with a smaller camera and a global view):
    add_env_camera(env_cfg.scene, camera)
    if top is not None:
        add_global_camera(env_cfg.scene, top)
    with launch_simulation(env_cfg, args):
        env = gym.make(args.task, cfg=env_cfg)
        env = RecordEnvs(env, args.out, cfg)
        env.reset(seed=args.seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(args.steps):
                actions = 2 * torch.rand(env.action_space.shape, device=env.unwrapped.device) - 1
                env.step(actions)
        seconds = time.perf_counter() - t0
        env.close()  # flushes the store
    stats, url = env.stats, env.url
    if stats is not None:  # None on ranks that do not record
        stored = f"{stats.bytes_stored / 1e6:.1f} MB" if stats.bytes_stored >= 0 else "? MB"
        print(
            f"[envreel] {url}: {stats.frames_written} frames in {seconds:.1f} s "
            f"({args.steps / seconds:.1f} steps/s with recording), "
            f"{stats.frames_dropped} dropped, {stored} stored; "
            f"render with: {render_command(url, top)}"
        )
        value = uniform_cameras(url) if stats.frames_written else None
        if value is not None:
            print(
                f"[envreel] warning: every env camera pixel is {value}: the cameras saw nothing "
                "of the task; place them with --camera_eye X Y Z --camera_lookat X Y Z (metres "
                "from each env's origin)",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
