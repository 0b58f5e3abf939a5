"""Benchmark: rendering a store three ways, with the same codec settings.

1. **limit**: ffmpeg encoding already-composed frames held in RAM (the frames envreel composes,
   piped by the same writer; for GIFs the same ``GifWriter`` with the same ``--threads``), the
   ceiling for any renderer on this machine;
2. **envreel**: ``envreel.render.render`` streaming from the store (read, compose, encode);
3. **moviepy**: ``ImageSequenceClip(frames, fps).write_videofile(...)`` on a list of frames in
   RAM, what gymnasium's RecordVideo and the seed visualizer do (for GIFs, ``write_gif``). The
   frames are composed before the clock starts, so this way times moviepy's encoding only;
   **moviepy_store** times what a moviepy user must do with a store: read and compose every
   frame into a list (with envreel's own reader and composer), then the same ``write_videofile``;
   **moviepy_defaults** is "moviepy" at moviepy's default preset (``medium``).

Workloads: 64 envs of 128×128 as an 8×8 grid (1024×1024); 16 envs beside the global view; a GIF
of 16 envs; the same 16 envs without the global view (envreel only: what the global view costs
is side16's time over grid16's, per frame and per output pixel); and a RAM-scaling row:
envreel's peak RSS on a long 64-env store (5,000 frames by default, 15.7 GB of raw pixels,
written cheaply by repeating a few compressible blocks). Each
way runs in its own subprocess so its peak RSS is its own; ffmpeg's RSS is reported apart.

``--repeat N`` runs N rounds, each running every workload's ways in turn (interleaved, so the
machine's drift falls on all alike); envreel's speed over each other way is one ratio per round,
reported as the median with an order-statistics confidence interval.

Usage:
    python -m envreel.tools.bench_render [--frames 300] [--long-frames 5000] [--repeat 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from envreel.tools._interval import median_summary

WAYS = ("limit", "envreel", "moviepy", "moviepy_store", "moviepy_defaults")
WORKLOADS = {
    "grid64": {
        "what": "64 envs 128² as 8×8 grid, mp4",
        "suffix": ".mp4",
        "layout": {"envs": "0-63", "columns": 8, "gap": 0},
    },
    "side16": {
        "what": "16 envs 4×4 + global view left, mp4",
        "suffix": ".mp4",
        "layout": {"envs": "0-15", "columns": 4, "gap": 0, "global_view": "left"},
    },
    "gif16": {
        "what": "16 envs 4×4, GIF",
        "suffix": ".gif",
        "layout": {"envs": "0-15", "columns": 4, "gap": 0},
    },
    "grid16": {
        "what": "16 envs 4×4, mp4 (side16 without the global view)",
        "suffix": ".mp4",
        "layout": {"envs": "0-15", "columns": 4, "gap": 0},
    },
}
RATIOS = ("limit", "moviepy_defaults", "moviepy_store", "moviepy")
"""envreel's speed is reported against these ways, one ratio per interleaved round."""
NUM_ENVS, TILE, GLOBAL = 64, 128, 512


# ------------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------------
class _Frames:
    """Render-like frames: per-env gradient sky and floor, a static texture of a few grey levels,
    and two moving soft shapes. Compress ~15–25× with zstd, like real renders."""

    def __init__(self, n: int, h: int, w: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.yy, self.xx, self.h, self.w = yy, xx, h, w
        horizon = rng.uniform(0.35, 0.6, n)[:, None, None] * h
        sky = rng.uniform(120, 230, (n, 1, 1, 3))
        floor = rng.uniform(40, 140, (n, 1, 1, 3))
        is_floor = (yy[None] > horizon)[..., None]
        shade = (0.75 + 0.25 * (1 - yy / h))[None, :, :, None]
        tex = rng.integers(0, 4, (n, h, w, 1)).astype(np.float32)
        self.base = (np.where(is_floor, floor, sky) * shade + tex).astype(np.float32)
        self.color = rng.uniform(0, 255, (n, 2, 3)).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, (n, 2)).astype(np.float32)
        self.radius = rng.uniform(0.08, 0.16, (n, 2)).astype(np.float32) * min(h, w)

    def frame(self, t: int) -> np.ndarray:
        img = self.base.copy()
        for k in range(2):
            ph = self.phase[:, k][:, None, None] + 0.05 * t * (k + 1)
            cx = self.w / 2 + self.w / 3 * np.cos(ph)
            cy = self.h / 2 + self.h / 4 * np.sin(1.3 * ph)
            r = np.sqrt((self.xx[None] - cx) ** 2 + (self.yy[None] - cy) ** 2)
            a = np.clip(self.radius[:, k][:, None, None] - r, 0, 1)[..., None]
            img = img * (1 - a) + a * self.color[:, k][:, None, None, :]
        return np.clip(img, 0, 255).astype(np.uint8)


def build_store(path: Path, frames: int, *, distinct_blocks: int | None = None) -> None:
    """A 64-env 128² store with a 512² global view; ``distinct_blocks`` repeats that many
    generated blocks cyclically (for cheap long stores)."""
    from envreel.schemas import Block, RunSpec, create_run

    spec = RunSpec(
        num_envs=NUM_ENVS,
        env_frame_shape=(TILE, TILE),
        fps=30,
        global_frame_shape=(GLOBAL, GLOBAL),
        block_frames=32,
        codec_level=1 if distinct_blocks else 3,
    )
    writer = create_run(str(path), spec, overwrite=True)
    envs, glob = _Frames(NUM_ENVS, TILE, TILE), _Frames(1, GLOBAL, GLOBAL, seed=1)
    cache: dict[int, Block] = {}
    b = spec.block_frames
    for i, b0 in enumerate(range(0, frames, b)):
        t = min(b, frames - b0)
        key = i % distinct_blocks if distinct_blocks else i
        blk = cache.get(key)
        if blk is None or len(blk) != t:
            blk = Block.empty(spec, t)
            for j in range(t):
                blk.env_frames[j] = envs.frame(b0 + j)
                blk.global_frames[j] = glob.frame(b0 + j)[0]
            if distinct_blocks:
                cache[key] = blk
        blk.step[:] = np.arange(b0, b0 + t)
        blk.sim_time[:] = blk.step / 30.0
        blk.reward[:] = np.sin(blk.step[:, None] * 0.01 + np.arange(NUM_ENVS)[None, :])
        writer.append(blk)
    writer.close()


# ------------------------------------------------------------------------------------------------
# one way, in a subprocess
# ------------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the current address space; ru_maxrss would
    carry the parent's RSS over fork and exec (Linux keeps it across execve)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Usage:
    """Peak RSS of this process (getrusage) and of its ffmpeg children (sampled with psutil:
    a forked child's ru_maxrss starts at its parent's RSS), and CPU seconds of both."""

    def __init__(self):
        import threading

        self.child_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.wait(0.05):
            for c in me.children(recursive=True):
                try:
                    if "ffmpeg" in c.name():  # not a forked child that has not exec'd yet
                        self.child_rss = max(self.child_rss, c.memory_info().rss / 2**20)
                except psutil.Error:
                    pass

    def __enter__(self):
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = r.ru_utime + r.ru_stime
        self._thread.start()
        return self

    def __exit__(self, *exc):
        import resource

        self._stop.set()
        self._thread.join()
        r = resource.getrusage(resource.RUSAGE_SELF)
        k = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = r.ru_utime + r.ru_stime - self.cpu0
        self.child_cpu = k.ru_utime + k.ru_stime
        self.rss = _peak_rss_mb()


def _composed(store: str, layout: dict) -> tuple[list[np.ndarray], float]:
    """The frames envreel composes for ``layout``, in RAM (not timed)."""
    from envreel.render import frames

    source = frames(store, layout, prefetch=False)
    return list(source), source.fps


def child(args: argparse.Namespace) -> None:
    """Run one way of one workload and print a JSON line."""
    wl = WORKLOADS.get(args.workload, WORKLOADS["grid64"])
    layout = dict(wl["layout"])
    suffix = wl["suffix"]
    out = args.out
    usage = _Usage()
    # Modules load before the clock for every way (once per process, not per render; the
    # limit's loaded while it composed its frames): Pillow's for colours, labels and GIFs, and
    # moviepy's.
    import PIL.GifImagePlugin  # noqa: F401
    import PIL.Image  # noqa: F401
    import PIL.ImageColor  # noqa: F401
    import PIL.ImageDraw  # noqa: F401
    import PIL.ImageFont  # noqa: F401

    if args.way.startswith("moviepy"):
        from moviepy.editor import ImageSequenceClip
    if args.way == "envreel":
        from envreel.render import render

        t = time.perf_counter()
        with usage:
            res = render(
                args.store,
                layout,
                out,
                crf=args.crf,
                preset=args.preset,
                threads=args.threads,
                progress=False,
                overwrite=True,
            )
        dt = time.perf_counter() - t
        n = res.frames[0]
        width, height = res.width, res.height
    else:
        from_store = args.way == "moviepy_store"
        if from_store:
            import envreel.render._compose  # noqa: F401 - imports before the clock, as for envreel
            import envreel.render._stream  # noqa: F401
        else:
            frames, fps = _composed(args.store, layout)  # not timed: in RAM before the clock
        t = time.perf_counter()
        with usage:
            if from_store:
                # What a moviepy user must do first: read the store and compose every frame
                # (here with envreel's own reader and composer, the fastest at hand), in RAM.
                frames, fps = _composed(args.store, layout)
            n = len(frames)
            if args.way == "limit":
                from envreel.render._encode import GifWriter, Mp4Writer

                h, w = frames[0].shape[:2]
                if suffix == ".gif":
                    writer = GifWriter(out, width=w, height=h, fps=fps, threads=args.threads)
                else:
                    writer = Mp4Writer(
                        out,
                        width=w,
                        height=h,
                        fps=fps,
                        crf=args.crf,
                        preset=args.preset,
                        threads=args.threads,
                    )
                for f in frames:
                    writer.write(f)
                writer.close()
            else:
                clip = ImageSequenceClip(frames, fps=fps)
                if suffix == ".gif":
                    clip.write_gif(out, fps=fps, verbose=False, logger=None)
                elif args.way == "moviepy_defaults":  # RecordVideo as shipped: preset medium
                    clip.write_videofile(
                        out,
                        fps=fps,
                        codec="libx264",
                        audio=False,
                        threads=args.threads,
                        logger=None,
                    )
                else:
                    clip.write_videofile(
                        out,
                        fps=fps,
                        codec="libx264",
                        preset=args.preset,
                        audio=False,
                        threads=args.threads,
                        ffmpeg_params=["-crf", str(args.crf)],
                        logger=None,
                    )
        dt = time.perf_counter() - t
        height, width = frames[0].shape[:2]
    row = {
        "way": args.way,
        "workload": args.workload,
        "frames": n,
        "width": width,
        "height": height,
        "seconds": dt,
        "fps": n / dt,
        "rss_mb": usage.rss,
        "ffmpeg_rss_mb": usage.child_rss,
        "cpu_ms_per_frame": 1000 * usage.cpu / n,
        "ffmpeg_cpu_ms_per_frame": 1000 * usage.child_cpu / n,
        "load": os.getloadavg()[0],
    }
    print(json.dumps(row))


def _run_child(way: str, workload: str, store: Path, out: Path, opts: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "envreel.tools.bench_render",
        "--child",
        way,
        "--workload",
        workload,
        "--store",
        str(store),
        "--out",
        str(out),
        "--preset",
        opts.preset,
        "--crf",
        str(opts.crf),
        "--threads",
        str(opts.threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"way": way, "workload": workload, "error": proc.stderr.strip()[-800:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict]) -> dict:
    """The run with the median frames/s (the lower one of an even count), with the range of
    frames/s over all runs; the first error when a run failed."""
    for r in runs:
        if "error" in r:
            return r
    ranked = sorted(runs, key=lambda r: r["fps"])
    row = dict(ranked[(len(ranked) - 1) // 2])
    row["runs"] = len(runs)
    row["fps_min"], row["fps_max"] = ranked[0]["fps"], ranked[-1]["fps"]
    return row


def _interval(values: list[float]) -> dict[str, float]:
    return {**median_summary(values), "rounds": len(values)}


def _round_ratios(mine: list[dict], runs: dict, wl: str) -> dict[str, dict[str, float]]:
    """envreel's frames/s over each other way's, round by round: median and interval."""
    out = {}
    for way in RATIOS:
        theirs = runs.get((wl, way), [])
        pairs = [
            a["fps"] / b["fps"]
            for a, b in zip(mine, theirs, strict=False)
            if "fps" in a and "fps" in b
        ]
        if pairs:
            out[way] = _interval(pairs)
    return out


def _global_cost(side: list[dict], grid: list[dict]) -> dict[str, dict[str, float]]:
    """What the global view beside the grid costs: side16's render time over grid16's, per
    frame and per output pixel (the canvas is wider), round by round."""
    per_frame, per_pixel = [], []
    for a, b in zip(side, grid, strict=False):
        if "fps" in a and "fps" in b:
            per_frame.append(b["fps"] / a["fps"])
            pixels = (a["width"] * a["height"]) / (b["width"] * b["height"])
            per_pixel.append(b["fps"] / a["fps"] / pixels)
    return {"per_frame": _interval(per_frame), "per_pixel": _interval(per_pixel)}


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------
def _machine() -> str:
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        mem = ""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs{mem}, Python {platform.python_version()}"


def _ci(o: dict | None) -> str:
    if not o:
        return "–"
    return f"{o['median']:.2f} [{o['low']:.2f}, {o['high']:.2f}]"


def _table(rows: list[dict], opts: argparse.Namespace) -> str:
    lines = [
        f"machine: {_machine()}; libx264 preset {opts.preset} (moviepy_defaults: medium), "
        f"crf {opts.crf}, -threads {opts.threads}; load average at start {opts.load:.2f}",
        "",
        "| workload | way | frames | frames/s | range (runs) | envreel ÷ limit | ÷ moviepy "
        "defaults | ÷ moviepy from store | ÷ moviepy (same preset) | CPU ms/frame (python) "
        "| peak RSS (python) | peak RSS (ffmpeg) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['workload']} | {r['way']} | error: {r['error'][-120:]} |||||||||")
            continue
        spread = (
            f"{r['fps_min']:.0f}–{r['fps_max']:.0f} ({r['runs']})" if r.get("runs", 1) > 1 else "–"
        )
        vs = r.get("vs", {})
        lines.append(
            f"| {r['workload']} | {r['way']} | {r['frames']} | {r['fps']:.1f} | {spread} "
            f"| {_ci(vs.get('limit'))} | {_ci(vs.get('moviepy_defaults'))} "
            f"| {_ci(vs.get('moviepy_store'))} | {_ci(vs.get('moviepy'))} "
            f"| {r['cpu_ms_per_frame']:.1f} | {r['rss_mb']:.0f} MB | {r['ffmpeg_rss_mb']:.0f} MB |"
        )
        cost = r.get("global_view_cost")
        if cost:
            notes.append(
                f"global view beside the grid (side16 ÷ grid16, median [CI] of rounds): "
                f"{_ci(cost['per_frame'])} per frame, {_ci(cost['per_pixel'])} per output pixel"
            )
    ratios = [v for r in rows for v in r.get("vs", {}).values()]
    if ratios:
        notes.append(
            f"ratios: envreel's frames/s over the other way's, one per interleaved round; "
            f"order-statistics interval, {100 * ratios[0]['coverage']:.0f}% coverage"
        )
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m envreel.tools.bench_render", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--frames", type=int, default=300, help="frames of the main store")
    p.add_argument(
        "--long-frames", type=int, default=5000, help="frames of the RAM-scaling store (0 to skip)"
    )
    p.add_argument("--preset", default="veryfast", help="x264 preset for all ways")
    p.add_argument("--crf", type=int, default=23, help="x264 crf for all ways")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 2, help="ffmpeg -threads for all ways"
    )
    p.add_argument("--workloads", default="grid64,side16,gif16,grid16", help="comma-separated")
    p.add_argument("--ways", default=",".join(WAYS), help="comma-separated")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="interleaved rounds of the ways of a workload; each way's median run is reported",
    )
    p.add_argument("--workdir", default=None, help="where stores go (default: a temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the stores and outputs")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workload", default="grid64", help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.way = args.child
        child(args)
        return 0

    work = Path(args.workdir or tempfile.mkdtemp(prefix="envreel-bench-render-"))
    work.mkdir(parents=True, exist_ok=True)
    args.load = os.getloadavg()[0]
    rows: list[dict] = []
    try:
        store = work / "bench.zarr"
        t = time.perf_counter()
        build_store(store, args.frames)
        print(
            f"built {store} ({args.frames} frames) in {time.perf_counter() - t:.0f}s",
            file=sys.stderr,
        )
        ways = [w for w in args.ways.split(",") if w]
        workloads = [w for w in args.workloads.split(",") if w]
        runs: dict[tuple[str, str], list[dict]] = {}
        # Rounds interleave the workloads and their ways, so a drift of the machine's speed
        # (this shared machine moves by ±10% over tens of seconds) falls on every way alike.
        for _ in range(args.repeat):
            for wl in workloads:
                for way in ways:
                    if way == "moviepy_defaults" and WORKLOADS[wl]["suffix"] == ".gif":
                        continue  # write_gif has no preset: moviepy_defaults = moviepy
                    if way != "envreel" and wl == "grid16":
                        continue  # only there to price side16's global view
                    out = work / f"{wl}-{way}{WORKLOADS[wl]['suffix']}"
                    r = _run_child(way, wl, store, out, args)
                    print(json.dumps(r), file=sys.stderr)
                    runs.setdefault((wl, way), []).append(r)
        for (wl, way), rs in runs.items():
            row = _median_run(rs)
            if way == "envreel" and "error" not in row:
                row["vs"] = _round_ratios(rs, runs, wl)
                if wl == "side16" and ("grid16", "envreel") in runs:
                    row["global_view_cost"] = _global_cost(rs, runs[("grid16", "envreel")])
            rows.append(row)
        if args.long_frames:
            raw = args.long_frames * NUM_ENVS * TILE * TILE * 3
            need = raw // 8 + (2 << 30)
            free = shutil.disk_usage(work).free
            long_store = work / "long.zarr"
            if free < need:
                rows.append(
                    {
                        "way": "envreel",
                        "workload": f"long{args.long_frames}",
                        "error": f"needs ~{need / 2**30:.1f} GiB free, has {free / 2**30:.1f}",
                    }
                )
            else:
                t = time.perf_counter()
                build_store(long_store, args.long_frames, distinct_blocks=4)
                print(
                    f"built {long_store} ({args.long_frames} frames, {raw / 1e9:.1f} GB raw) in "
                    f"{time.perf_counter() - t:.0f}s",
                    file=sys.stderr,
                )
                r = _run_child("envreel", "grid64", long_store, work / "long-envreel.mp4", args)
                r["workload"] = f"long{args.long_frames}"
                print(json.dumps(r), file=sys.stderr)
                rows.append(r)
                shutil.rmtree(long_store, ignore_errors=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {
                    "machine": _machine(),
                    "preset": args.preset,
                    "crf": args.crf,
                    "threads": args.threads,
                    "load_average": args.load,
                    "rows": rows,
                },
                indent=1,
            )
        )
    else:
        print(_table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
