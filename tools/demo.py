"""``envreel demo``: simulate, record and render, end to end, on a CPU.

Runs ``DemoSim`` (cart-poles in parallel Newton worlds), records every step with the
``Recorder`` (per-env views, the global view, rewards, episode ends, camera poses and
intrinsics), then renders the store three ways: a grid mp4 with the global view beside it, a
small GIF and a contact sheet.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` wrote.

    Attributes:
        store: the run store.
        mp4: grid video of every env with the global view.
        gif: a small GIF of the grid.
        sheet: a contact sheet PNG (envs × times).
        summary: a few lines for people: sizes, timings, episodes.
    """

    store: Path
    mp4: Path
    gif: Path
    sheet: Path
    summary: str

    @property
    def paths(self) -> list[Path]:
        return [self.store, self.mp4, self.gif, self.sheet]


def _progress(total: int, label: str, show: bool):
    import click

    return click.progressbar(
        length=total, label=label, file=None if show else _Null(), show_eta=True, show_pos=True
    )


class _Null:
    """A stream that swallows progress output."""

    def write(self, *_):
        return 0

    def flush(self):
        pass

    def isatty(self):
        return False


def run_demo(
    out_dir: Path,
    *,
    num_envs: int = 16,
    steps: int = 200,
    size: int = 128,
    global_size: tuple[int, int] | None = (360, 640),
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Simulate ``num_envs`` cart-poles for ``steps`` steps, record them, render them.

    Args:
        out_dir: folder for ``run.zarr``, ``grid.mp4``, ``grid.gif`` and ``sheet.png``.
        num_envs: parallel worlds. Defaults to 16.
        steps: env steps to simulate and record. Defaults to 200.
        size: height and width of each env camera, pixels. Defaults to 128.
        global_size: (height, width) of the global camera, or None. Defaults to (360, 640).
        seed: random seed of the simulation. Defaults to 0.
        overwrite: replace the outputs of an earlier demo in ``out_dir``. Defaults to False.
        progress: show progress bars on stderr. Defaults to False.
        log: called with one-line status messages. Defaults to None.

    Raises:
        FileExistsError: one of the outputs exists and ``overwrite`` is False (checked first).
        ImportError: Newton is not installed (the message has the install command).
    """
    from envreel.capture import Recorder
    from envreel.render import Layout, contact_sheet, render
    from envreel.tools.demo_sim import DemoSim

    say = log or (lambda _m: None)
    out_dir = Path(out_dir)
    store = out_dir / "run.zarr"
    outputs = [store, *(out_dir / n for n in ("grid.mp4", "grid.gif", "sheet.png"))]
    found = [str(p) for p in outputs if p.exists()]
    if found and not overwrite:
        raise FileExistsError(
            f"{', '.join(found)} exist{'s' if len(found) == 1 else ''}; pass --overwrite "
            "(overwrite=True) to replace the demo's outputs"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} is a file, expected a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    if store.exists():
        shutil.rmtree(store)

    t0 = time.perf_counter()
    say("building the simulation (the first run compiles Warp kernels: ~1-1.5 min on 2 cores)")
    try:
        import warp

        # no banner or per-module lines: the CLI reports progress itself
        warp.config.quiet = True
        if hasattr(warp, "LOG_WARNING"):
            warp.config.log_level = warp.LOG_WARNING
    except ImportError:
        pass  # DemoSim raises the ImportError with the install command
    gh, gw = global_size if global_size else (0, 0)
    sim = DemoSim(
        num_envs,
        height=size,
        width=size,
        global_height=max(gh, 8),
        global_width=max(gw, 8),
        seed=seed,
    )
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        with (
            Recorder(
                store,
                num_envs=num_envs,
                step_dt=sim.step_dt,
                env_frame_shape=(size, size),
                global_frame_shape=global_size,
                env_origins=sim.env_origins,
                env_camera_poses=sim.env_camera_poses,
                env_intrinsics=sim.env_intrinsics,
                global_camera_pose=sim.global_camera_pose if global_size else None,
                global_intrinsics=sim.global_intrinsics if global_size else None,
                source={
                    "simulator": "newton",
                    "scene": "cart-pole",
                    "renderer": "SensorCamera",
                    "device": "cpu",
                },
                metadata={"demo": {"num_envs": num_envs, "steps": steps, "seed": seed}},
            ) as rec,
            _progress(steps, "simulating", progress) as bar,
        ):
            for _ in range(steps):
                s = sim.step()
                rec.capture(
                    s["env_rgb"],
                    s["global_rgb"] if global_size else None,
                    step=s["step"],
                    sim_time=s["sim_time"],
                    reward=s["reward"],
                    terminated=s["terminated"],
                    truncated=s["truncated"],
                )
                bar.update(1)
    finally:
        sim.close()
    sim_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    say("rendering grid.mp4, grid.gif and sheet.png")
    label = "{env} r={reward:.2f}"
    mp4 = out_dir / "grid.mp4"
    columns = max(1, round(num_envs**0.5))
    render(
        store,
        Layout(
            columns=columns,
            global_view="right" if global_size else "none",
            markers=bool(global_size),
            label=label,
        ),
        mp4,
        progress=progress,
        overwrite=overwrite,
    )
    gif = out_dir / "grid.gif"
    render(
        store,
        Layout(scale=0.5, label="{env}", font_size=9, fps=15, stride=2, max_width=640),
        gif,
        progress=progress,
        overwrite=overwrite,
    )
    sheet = out_dir / "sheet.png"
    contact_sheet(
        store,
        sheet,
        Layout(envs="0-7" if num_envs > 8 else "all", scale=0.75),
        num_times=8,
        overwrite=overwrite,
    )
    render_s = time.perf_counter() - t2

    from envreel.schemas import open_run

    run = open_run(store)
    info = run.info()
    done = run.scalar("terminated") | run.scalar("truncated")
    summary = (
        f"{num_envs} envs × {info['num_frames']} frames of {size}×{size}"
        + (f" + global {gh}×{gw}" if global_size else "")
        + f"; {int(done.sum())} episode ends "
        f"({int(run.scalar('terminated').sum())} terminated, "
        f"{int(run.scalar('truncated').sum())} timed out)\n"
        f"store {info['stored_bytes'] / 1e6:.1f} MB ({info['compression_ratio']}× smaller than raw)"
        f", dropped frames {info['counters']['dropped_frames']}\n"
        f"build {build_s:.1f} s, simulate + record {sim_s:.1f} s, render {render_s:.1f} s"
    )
    return DemoResult(store=store, mp4=mp4, gif=gif, sheet=sheet, summary=summary)
