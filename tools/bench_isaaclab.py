"""Benchmark: what ``RecordEnvs`` costs a real Isaac Lab 3 training loop (Isaac-Cartpole).

Usage (Python 3.12 with ``pip install isaaclab==3.0.0``; kit-less, no network)::

    python -m envreel.tools.bench_isaaclab                      # 16 envs on the CPU
    python -m envreel.tools.bench_isaaclab --device cuda:0 --num-envs 1024 --json

One env (Newton MJWarp physics, a Newton Warp camera in every env, random actions), stepped by
several *ways* in turn, in blocks of ``--block`` steps, round after round, so that the machine's
drift falls on every way alike:

* **none**: ``env.step`` itself, the camera never read (it renders only when read);
* **all**: ``RecordEnvs`` recording every env every step (the camera renders all envs);
* **subset**: ``RecorderCfg(envs=range(K))``, every step: envreel renders only those K envs;
* **subset_sync**: the same, rendered on the caller's thread (``ENVREEL_RENDER_THREAD=0``);
* **windows**: the subset inside recording windows of ``--window`` steps every ``--interval``;
  its blocks are one whole cycle (``--interval`` steps from a window's start): nothing is
  rendered between windows;
* **idle**: recording configured, but outside any window (they start at step 2**40).

Per way: the median step time over all its steps, and the overhead against ``none``: one ratio
per round (median step time of the way's block / of the adjacent ``none`` block) and the median
of those ratios with a distribution-free confidence interval. The ``windows`` way is also split
into its steps inside and outside the windows. Each way is warmed up first (store creation,
kernel compilation). Use ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from envreel.tools._interval import median_summary


def _overhead(ratios: list[float]) -> dict[str, float]:
    return {**median_summary([r - 1.0 for r in ratios]), "rounds": len(ratios)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Builds the env, runs the interleaved rounds, returns the results."""
    import gymnasium as gym
    import isaaclab_tasks  # noqa: F401  (registers the tasks)
    import torch
    from isaaclab.app import launch_simulation

    from envreel.capture.isaaclab import EnvCameraCfg, RecordEnvs, RecorderCfg, add_env_camera
    from envreel.tools._offline_cartpole import offline_cartpole_cfg

    work = Path(args.dir or tempfile.mkdtemp(prefix="envreel-bench-isaaclab-"))
    env_cfg = offline_cartpole_cfg(work, num_envs=args.num_envs, device=args.device)
    add_env_camera(
        env_cfg.scene,
        EnvCameraCfg(
            width=args.width,
            height=args.height,
            eye_offset=(-6.0, 0.0, 2.5),
            lookat_offset=(0.0, 0.0, 2.0),
        ),
    )
    subset = list(range(args.subset))
    configs = {
        "all": RecorderCfg(),
        "subset": RecorderCfg(envs=subset),
        "windows": RecorderCfg(envs=subset, video_length=args.window, video_interval=args.interval),
        # windows that never come: what a step outside them costs, without the writer and the
        # render thread still busy with the last window
        "idle": RecorderCfg(
            envs=subset, video_length=args.window, video_interval=args.interval, step_offset=2**40
        ),
    }
    with launch_simulation(env_cfg, {"headless": True, "device": args.device}):
        t0 = time.perf_counter()
        env = gym.make("Isaac-Cartpole", cfg=env_cfg)
        build_s = time.perf_counter() - t0
        unwrapped = env.unwrapped
        ways: dict[str, Any] = {"none": env}
        for name, cfg in configs.items():
            cfg.overwrite = True
            ways[name] = RecordEnvs(env, work / f"{name}.zarr", cfg)
        with mock.patch.dict(os.environ, {"ENVREEL_RENDER_THREAD": "0"}):
            ways["subset_sync"] = RecordEnvs(
                env, work / "subset_sync.zarr", RecorderCfg(envs=subset, overwrite=True)
            )
        env.reset(seed=0)
        shape = (args.num_envs, unwrapped.action_space.shape[-1])
        gen = torch.Generator(device="cpu").manual_seed(0)

        def action() -> Any:
            return (2 * torch.rand(shape, generator=gen) - 1).to(args.device)

        def sync() -> None:
            if str(args.device).startswith("cuda"):
                torch.cuda.synchronize()

        inner = [0.0]  # the env's own step time, measured inside each way's step
        env_step = unwrapped.step

        def timed_env_step(a: Any) -> Any:
            t = time.perf_counter()
            out = env_step(a)
            inner[0] = time.perf_counter() - t
            return out

        unwrapped.step = timed_env_step

        def block(way: str, steps: int) -> tuple[list[float], list[bool]]:
            step_fn = ways[way].step
            rec = getattr(ways[way], "recorder", None)
            times, kept = [], []
            with torch.inference_mode():
                for _ in range(steps):
                    a = action()
                    sync()
                    t = time.perf_counter()
                    step_fn(a)
                    sync()
                    times.append(time.perf_counter() - t)
                    own[way].append(times[-1] - inner[0])
                    kept.append(rec is not None and rec.wants(int(unwrapped.common_step_counter)))
            return times, kept

        order = ["none", "all", "subset", "subset_sync", "windows", "idle"]
        own: dict[str, list[float]] = {w: [] for w in order}
        for way in order:  # warm-up: store creation, kernel compilation, first windows
            block(way, args.warmup)
        own = {w: [] for w in order}
        samples: dict[str, list[float]] = {w: [] for w in order}
        ratios: dict[str, list[float]] = {w: [] for w in order[1:]}
        split: dict[str, list[float]] = {"inside": [], "outside": []}
        cycle: list[float] = []
        own_split: dict[str, list[float]] = {"inside": [], "outside": []}
        for _ in range(args.rounds):
            medians, means = {}, {}
            for way in order:
                if way == "windows":  # start the block at a window's first step
                    step = int(unwrapped.common_step_counter)
                    gap = (-(step + 1)) % args.interval
                    if gap:
                        block("none", gap)
                times, kept = block(way, args.interval if way == "windows" else args.block)
                samples[way].extend(times)
                medians[way] = statistics.median(times)
                means[way] = statistics.fmean(times)
                if way == "windows":
                    mine = own["windows"][-len(times) :]
                    for o, k in zip(mine, kept, strict=True):
                        own_split["inside" if k else "outside"].append(o)
                    ins = [t for t, k in zip(times, kept, strict=True) if k]
                    outs = [t for t, k in zip(times, kept, strict=True) if not k]
                    base = medians["none"]
                    if ins:
                        split["inside"].append(statistics.median(ins) / base)
                    if outs:
                        split["outside"].append(statistics.median(outs) / base)
            for way in order[1:]:
                ratios[way].append(medians[way] / medians["none"])
            # a windows block is one whole cycle: its mean step time is the average cost
            cycle.append(means["windows"] / means["none"])
        for way in ways.values():
            if hasattr(way, "stop_recording"):
                way.stop_recording()
        stats = {
            way: {
                "median_ms": 1e3 * statistics.median(samples[way]),
                "p99_ms": 1e3 * sorted(samples[way])[int(0.99 * (len(samples[way]) - 1))],
                "steps": len(samples[way]),
                # the way's own time per step (outside env.step), less that of "none" (the gym
                # wrappers both pass through): the direct cost, free of the sim's noise
                "own_ms": 1e3 * (statistics.median(own[way]) - statistics.median(own["none"])),
            }
            for way in order
        }
        for way in order[1:]:
            stats[way]["overhead"] = _overhead(ratios[way])
        window_share = args.window / args.interval
        stats["windows"]["cycle_mean"] = _overhead(cycle)
        base_own = statistics.median(own["none"])
        for part in ("inside", "outside"):
            if own_split[part]:
                stats["windows"][f"own_{part}_ms"] = 1e3 * (
                    statistics.median(own_split[part]) - base_own
                )
        stats["windows"]["inside"] = _overhead(split["inside"]) if split["inside"] else None
        stats["windows"]["outside"] = _overhead(split["outside"]) if split["outside"] else None
        env.close()
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "isaaclab": _version("isaaclab"),
            "newton": _version("newton"),
            "torch": _version("torch"),
        },
        "config": {
            "device": args.device,
            "num_envs": args.num_envs,
            "subset": args.subset,
            "camera": [args.height, args.width],
            "block": args.block,
            "rounds": args.rounds,
            "window": args.window,
            "interval": args.interval,
            "window_share": window_share,
        },
        "build_s": build_s,
        "ways": stats,
    }


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _pct(o: dict[str, float] | None) -> str:
    if not o:
        return "-"
    return f"{100 * o['median']:+.1f}% [{100 * o['low']:+.1f}, {100 * o['high']:+.1f}]"


def table(result: dict[str, Any]) -> str:
    c, ways = result["config"], result["ways"]
    lines = [
        f"Isaac-Cartpole, {c['num_envs']} envs on {c['device']}, camera "
        f"{c['camera'][0]}x{c['camera'][1]}, subset {c['subset']} envs, windows "
        f"{c['window']} of every {c['interval']} steps; {c['rounds']} rounds of "
        f"{c['block']}-step blocks (env built in {result['build_s']:.1f} s)",
        "",
        "| way | median step | p99 step | overhead vs none (median [CI]) | own time per step |",
        "|---|---|---|---|---|",
    ]
    for way, s in ways.items():
        lines.append(
            f"| {way} | {s['median_ms']:.2f} ms | {s['p99_ms']:.2f} ms | "
            f"{_pct(s.get('overhead')) if way != 'none' else '-'} | "
            f"{s['own_ms']:.3f} ms |"
        )
    w = ways["windows"]
    cov = w["overhead"]["coverage"]
    lines += [
        "",
        f"windows: average over whole cycles (mean step time) {_pct(w['cycle_mean'])}; "
        f"steps inside windows {_pct(w['inside'])}, outside {_pct(w['outside'])} (medians)",
        f"windows' own time per step: inside {w.get('own_inside_ms', float('nan')):.3f} ms, "
        f"outside {w.get('own_outside_ms', float('nan')):.3f} ms",
        f"(intervals: order statistics over rounds, coverage {100 * cov:.0f}%)",
        f"machine: {result['machine']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m envreel.tools.bench_isaaclab",
        description=__doc__.split("\n\n")[0],
        epilog="Example: python -m envreel.tools.bench_isaaclab --num-envs 16 --rounds 6",
    )
    p.add_argument("--device", default="cpu", help="sim device (default cpu)")
    p.add_argument("--num-envs", type=int, default=16, help="envs (default 16)")
    p.add_argument("--subset", type=int, default=4, help="envs of the subset ways (default 4)")
    p.add_argument("--width", type=int, default=96, help="camera width (default 96)")
    p.add_argument("--height", type=int, default=72, help="camera height (default 72)")
    p.add_argument("--block", type=int, default=50, help="steps per block (default 50)")
    p.add_argument("--rounds", type=int, default=20, help="rounds of blocks (default 20)")
    p.add_argument("--warmup", type=int, default=30, help="warm-up steps per way (default 30)")
    p.add_argument("--window", type=int, default=50, help="window length (default 50)")
    p.add_argument("--interval", type=int, default=200, help="window interval (default 200)")
    p.add_argument("--dir", help="where stores go (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    for name in ("num_envs", "subset", "width", "height", "block", "rounds", "window"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.subset > args.num_envs:
        p.error(f"--subset {args.subset} is more than --num-envs {args.num_envs}")
    if args.interval < args.window:
        p.error(f"--interval {args.interval} must be >= --window {args.window}")
    try:
        import isaaclab  # noqa: F401
    except ImportError:
        print(
            "error: needs Isaac Lab 3: pip install isaaclab==3.0.0 (Python 3.12)", file=sys.stderr
        )
        return 1
    if args.json:  # Isaac Lab logs to stdout: keep it for the JSON alone
        with _stdout_to_stderr():
            result = run(args)
        print(json.dumps(result, indent=1))
    else:
        print(table(run(args)))
    return 0


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Sends what is written to standard output (Python's and the C libraries' writes to file
    descriptor 1) to standard error until the block ends."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
