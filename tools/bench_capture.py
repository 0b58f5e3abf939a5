"""Benchmark: what ``Recorder.capture()`` costs a training loop, against the seed visualizer.

Usage::

    python -m envreel.tools.bench_capture --device cuda            # the table
    python -m envreel.tools.bench_capture --device cpu --steps 1000 --json

For each configuration (num_envs × height × width; default 16/64/256 envs at 128×128 and 64 at
256×256) it runs a loop of simulated training steps:

* **step**: a fixed workload of ``--step-ms`` (CUDA: matrix products sized by calibration, then
  ``torch.cuda.synchronize()`` as a real env step does; CPU: numpy elementwise work);
* **render**: the step's frames are written into a reused (N, H, W, 4) RGBA buffer, and
  ``capture()`` gets its ``rgba[..., :3]`` view, as Isaac Lab's camera gives it;
* **capture**: timed on the caller's thread (``time.perf_counter`` around the call).

and reports, per configuration:

* caller time per ``capture()`` (median, p99), with ``on_full="drop"`` so the number is never
  inflated by back-pressure and a writer that falls behind shows as drops; and the same split
  by where each call falls in its ring block (those that start or end a block against the
  rest, and the share of the slowest 1 % of calls that start or end one), to tell a slow tail
  that comes with the blocks from one that does not; and the same calls' wall time split into
  the caller thread's CPU time, its wait for a core (Linux's ``schedstat``: the thread was
  runnable, another ran) and the rest (blocked: a lock, the GIL, a page fault's I/O), for all
  calls and for the slowest 1 %, to tell a tail of work from one of preemption or waiting;
* overhead: blocks of ``--block`` steps without capture and with it, alternating (A/B/A/B...)
  in one process, so that the machine's drift falls on both alike: one ratio of mean loop times
  per round, reported as the median over the rounds with an order-statistics confidence
  interval;
  the first capture (store creation, ring allocation, writer start) is reported apart;
* sustained env-frames/s: a second run with no training step and ``on_full="block"``: the rate
  the recorder writes indefinitely (frames × envs / wall time, including the final flush);
* RSS: at the start, peak, and growth between 10% of the run and its end (flat = ~0);
* stored bytes per env-frame and the compression ratio;
* the baseline (the seed visualizer): per-env synchronous ``.cpu().numpy()`` copies (CPU: per-env
  ``.copy()``) kept in a Python list: its caller time per step and RSS growth per 1,000 steps.

Frames are realistic-ish, not random (random bytes do not compress): per env a smooth colour
gradient over a tiled floor, a shaded sphere moving in a circle, and ±1 level of noise on one
pixel value in fifty; 40 distinct frames per env are cycled (more than a 32-frame block, so no
block holds a repeat). They compress about like the real renders of design.md (zstd 3: 11.5×
here, 13× there).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

from envreel.tools._interval import median_interval

DEFAULT_CONFIGS = ((16, 128, 128), (64, 128, 128), (256, 128, 128), (64, 256, 256))
POOL = 40


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def make_pool(n: int, h: int, w: int, count: int = POOL, seed: int = 0) -> np.ndarray:
    """(count, n, h, w, 3) uint8 frames: gradients, a moving disk per env, a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= max(1, h - 1)
    xx /= max(1, w - 1)
    hue = rng.random((n, 1, 1, 3), dtype=np.float32)
    base = np.stack([40 + 150 * xx, 50 + 120 * yy, 70 + 90 * xx * yy], -1)[None]
    base = base * (0.6 + 0.4 * hue)  # (n, h, w, 3)
    phase = rng.random(n) * 2 * np.pi
    color = rng.integers(0, 256, (n, 3)).astype(np.float32)
    floor = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2 * 24)[None, :, :, None]  # a tiled floor
    base = base + floor
    out = np.empty((count, n, h, w, 3), np.uint8)
    for k in range(count):
        a = 2 * np.pi * k / count + phase
        cx = (0.5 + 0.3 * np.cos(a))[:, None, None]
        cy = (0.5 + 0.3 * np.sin(a))[:, None, None]
        d2 = (xx[None] - cx) ** 2 + (yy[None] - cy) ** 2
        shade = np.clip(1.2 - d2 / 0.015, 0.4, 1.0)[..., None]  # a lit sphere, not a flat disk
        frame = np.where((d2 < 0.015)[..., None], color[:, None, None, :] * shade, base)
        # renderer noise: +-1 level on about one pixel value in fifty
        frame += rng.integers(-1, 2, frame.shape) * (rng.random(frame.shape) < 0.02)
        out[k] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


class CpuWork:
    """A simulated CPU training step: numpy elementwise work of about ``ms`` milliseconds.

    Each call keeps its time in ``launch_s`` (all of it is the CPU's; ``wait_s`` is 0), as
    ``GpuWork`` does.
    """

    def __init__(self, ms: float) -> None:
        self.launch_s = self.wait_s = 0.0
        self.x = np.random.default_rng(1).random(250_000).astype(np.float32)
        self.y = np.empty_like(self.x)
        for _ in range(20):
            self._once()
        t0 = time.perf_counter()
        for _ in range(200):
            self._once()
        per = (time.perf_counter() - t0) / 200
        self.reps = max(1, round(ms / 1e3 / per))

    def _once(self) -> None:
        np.sin(self.x, out=self.y)
        np.multiply(self.y, 0.5, out=self.x)
        np.add(self.x, 0.25, out=self.x)

    def __call__(self) -> None:
        t0 = time.perf_counter()
        for _ in range(self.reps):
            self._once()
        self.launch_s = time.perf_counter() - t0

    def gpu_s(self) -> float | None:
        """No GPU work: None (see ``GpuWork.gpu_s``)."""
        return None


class GpuWork:
    """A simulated GPU training step: ``k`` 2048² matmuls (~``ms`` ms on this GPU), then a sync.

    Each call keeps how long it took in two parts: ``launch_s``, launching the kernels (the CPU's
    side of the work), and ``wait_s``, the synchronize's wait for them. With ``gpu_events``, CUDA
    events around the kernels also give their time on the GPU (``gpu_s()``).
    """

    def __init__(self, ms: float, device: Any, *, gpu_events: bool = False) -> None:
        import torch

        self.torch = torch
        self.launch_s = self.wait_s = 0.0
        self.events = (
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            if gpu_events
            else None
        )
        self.a = torch.randn(2048, 2048, device=device)
        self.b = torch.randn(2048, 2048, device=device) / 2048**0.5
        for _ in range(5):
            self.a @ self.b
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(50):
            self.a @ self.b
        torch.cuda.synchronize()
        per = (time.perf_counter() - t0) / 50
        self.k = max(1, round(ms / 1e3 / per))

    def __call__(self) -> None:
        events = self.events
        t0 = time.perf_counter()
        if events is not None:
            events[0].record()
        c = self.a
        for _ in range(self.k):
            c = c @ self.b
        if events is not None:
            events[1].record()
        t1 = time.perf_counter()
        self.torch.cuda.synchronize()
        self.launch_s, self.wait_s = t1 - t0, time.perf_counter() - t1

    def gpu_s(self) -> float | None:
        """The last call's kernels' time on the GPU, seconds (None without ``gpu_events``)."""
        if self.events is None:
            return None
        return self.events[0].elapsed_time(self.events[1]) / 1e3


def _stats_ms(times: list[float]) -> dict[str, float]:
    a = np.asarray(times) * 1e3
    return {
        "median_ms": float(np.median(a)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "max_ms": float(a.max()),
    }


def slowest(times: list[float]) -> list[int]:
    """Indices of the slowest 1 % of ``times`` (at least one), slowest last; ties in order."""
    k = max(1, len(times) // 100)
    return sorted(range(len(times)), key=times.__getitem__)[-k:]


class ThreadTimes:
    """The calling thread's CPU time and run-queue wait so far, in seconds.

    CPU time from ``time.thread_time`` (exact at the call); the wait for a core from
    ``/proc/thread-self/schedstat`` (added as the thread gets a core back, so a wait inside a
    timed call shows in a read after it). Where that file is missing the wait reads None.
    Make it on the thread it measures. Reading the file costs more than the clock (~9 µs of
    CPU right after a capture on the 2-core VM), so ``start`` and ``stop`` keep it outside the
    span of CPU time they bracket.
    """

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def _wait(self) -> float | None:
        if self._fd is None:
            return None
        return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9

    def start(self) -> tuple[float, float | None]:
        """(CPU, wait) before a timed call: the file read first, so the CPU time leaves it out."""
        wait = self._wait()
        return time.thread_time(), wait

    def stop(self) -> tuple[float, float | None]:
        """(CPU, wait) after a timed call: the CPU time first."""
        cpu = time.thread_time()
        return cpu, self._wait()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def time_split(
    cap_t: list[float], cpu_t: list[float], wait_t: list[float | None]
) -> dict[str, Any] | None:
    """Where each capture's wall time went: on the CPU, waiting for a core, or blocked.

    ``cpu_t`` and ``wait_t`` are the caller thread's CPU time and run-queue wait over each
    call (read just outside its timed span, so they hold a few microseconds more than it);
    blocked is the rest of the wall time, at least 0.

    Returns:
        None without waits (no ``schedstat``) or calls; else ``all`` and ``slowest`` (the
        slowest 1 % by wall time, at least one call): each the median wall, CPU, wait and
        blocked ms, and for ``slowest`` also their means and ``n``.
    """
    if not cap_t or any(w is None for w in wait_t):
        return None
    wall = np.asarray(cap_t) * 1e3
    cpu = np.asarray(cpu_t) * 1e3
    wait = np.asarray(wait_t, dtype=float) * 1e3
    blocked = np.maximum(0.0, wall - cpu - wait)
    parts = {"wall": wall, "cpu": cpu, "wait": wait, "blocked": blocked}
    slow = slowest(cap_t)
    return {
        "all": {f"{name}_ms_median": float(np.median(a)) for name, a in parts.items()},
        "slowest": {
            "n": len(slow),
            **{f"{name}_ms_median": float(np.median(a[slow])) for name, a in parts.items()},
            **{f"{name}_ms_mean": float(a[slow].mean()) for name, a in parts.items()},
        },
    }


def block_edges(cap_t: list[float], block_frames: int) -> dict[str, Any]:
    """The caller's time split by where each capture falls in its ring block.

    A capture that starts a block also takes a free block buffer from the ring, and one that
    ends it hands the block to the writer; the rest only fill a slot. ``cap_t`` are the times of the
    captures after the first one (which started block 0), none of them dropped, so capture
    ``k`` (1-based) is frame ``k % block_frames`` of its block.

    Returns:
        ``block_frames``; ``edge`` and ``inside``: each set's times (``_stats_ms`` and ``n``;
        None for an empty set); ``slowest_at_edges``: the share of the slowest 1 % of captures
        (at least one) that start or end a block, against ``edge_share``, the share of all
        captures that do.
    """
    at_edge = [k % block_frames in (0, block_frames - 1) for k in range(1, len(cap_t) + 1)]
    edge = [t for t, e in zip(cap_t, at_edge, strict=True) if e]
    inside = [t for t, e in zip(cap_t, at_edge, strict=True) if not e]
    slow = slowest(cap_t)

    def part(times: list[float]) -> dict[str, float] | None:
        return {**_stats_ms(times), "n": len(times)} if times else None

    return {
        "block_frames": block_frames,
        "edge": part(edge),
        "inside": part(inside),
        "slowest_at_edges": sum(at_edge[i] for i in slow) / len(slow),
        "edge_share": len(edge) / max(1, len(cap_t)),
    }


def run_config(
    n: int,
    h: int,
    w: int,
    *,
    device: str,
    steps: int,
    step_ms: float,
    baseline_steps: int,
    workdir: str,
    writer: str = "auto",
    block_steps: int = 50,
) -> dict[str, Any]:
    from envreel.capture import DEFAULT_MAX_QUEUE_BYTES, Recorder
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    pool_np = make_pool(n, h, w)
    cuda = device == "cuda"
    if cuda:
        import torch

        dev = torch.device("cuda", torch.cuda.current_device())
        pool = torch.from_numpy(pool_np).to(dev)
        rgba = torch.full((n, h, w, 4), 255, dtype=torch.uint8, device=dev)
        work = GpuWork(step_ms, dev)
        reward = torch.zeros(n, device=dev)
        done = torch.zeros(n, dtype=torch.bool, device=dev)

        def render(t: int) -> None:
            rgba[..., :3].copy_(pool[t % POOL])
            reward.fill_(t * 0.01)
            done.copy_((torch.arange(n, device=dev) + t) % 200 == 0)
    else:
        pool = pool_np
        rgba = np.full((n, h, w, 4), 255, np.uint8)
        work = CpuWork(step_ms)
        reward = np.zeros(n, np.float32)
        done = np.zeros(n, bool)
        ids = np.arange(n)

        def render(t: int) -> None:
            rgba[..., :3] = pool[t % POOL]
            reward.fill(t * 0.01)
            np.equal((ids + t) % 200, 0, out=done)

    rgb = rgba[..., :3]  # the strided view Isaac Lab hands out
    spec = RunSpec(num_envs=n, env_frame_shape=(h, w), fps=60)
    max_queue = max(DEFAULT_MAX_QUEUE_BYTES, 3 * block_nbytes(spec, value_range=False))

    clock = ThreadTimes()
    cpu_t: list[float] = []
    wait_t: list[float | None] = []

    def loop(k: int, rec: Any = None) -> tuple[list[float], list[float], list[int]]:
        loop_t, cap_t, rss = [], [], []
        for t in range(k):
            t0 = time.perf_counter()
            work()
            render(t)
            q0 = clock.start()  # read in both loops alike, so that the overhead leaves it out
            if rec is not None:
                c0 = time.perf_counter()
                rec.capture(rgb, reward=reward, terminated=done)
                cap_t.append(time.perf_counter() - c0)
            q1 = clock.stop()
            if rec is not None:
                cpu_t.append(q1[0] - q0[0])
                wait_t.append(None if q0[1] is None or q1[1] is None else q1[1] - q0[1])
            loop_t.append(time.perf_counter() - t0)
            if t % 50 == 0:
                rss.append(_rss())
        return loop_t, cap_t, rss

    loop(20)  # warm-up (no capture: cpu_t and wait_t stay empty)
    gc.collect()
    path = os.path.join(workdir, f"bench-{device}-{n}x{h}x{w}.zarr")
    shutil.rmtree(path, ignore_errors=True)
    rss0 = _rss()
    rec = Recorder(
        path, num_envs=n, fps=60, max_queue_bytes=max_queue, on_full="drop", writer=writer
    )
    # The first capture creates the store and allocates (and page-locks) the ring, waiting for
    # the writer process to start if it has not yet: reported apart, not in the steady state.
    render(0)
    c0 = time.perf_counter()
    rec.capture(rgb, reward=reward, terminated=done)
    first_ms = (time.perf_counter() - c0) * 1e3
    # A/B/A/B...: blocks of ``block`` steps without and with capture, alternating, so that the
    # machine's drift falls on both alike; one overhead ratio per round.
    block = max(10, min(block_steps, steps // 2))
    rounds = max(1, steps // (2 * block))
    plain, with_t, cap_t, rss, ratios = [], [], [], [], []
    for _ in range(rounds):
        a, _, _ = loop(block)
        b, c, r = loop(block, rec)
        plain += a
        with_t += b
        cap_t += c
        rss += r
        ratios.append(statistics.fmean(b) / statistics.fmean(a))
    c0 = time.perf_counter()
    rec.close()
    close_s = time.perf_counter() - c0
    rss.append(_rss())
    clock.close()
    st = rec.stats
    # Where the slow calls fall in the ring blocks (known only while no frame was dropped).
    edges = None
    if rec.spec is not None and cap_t and st.frames_dropped == 0:
        edges = block_edges(cap_t, rec.spec.block_frames)
    shutil.rmtree(path, ignore_errors=True)
    plain_mean = statistics.fmean(plain)
    with_mean = statistics.fmean(with_t)
    over, lo, hi, coverage = median_interval([100 * (r - 1) for r in ratios])

    # Sustained rate: nothing but render + capture, waiting when the writer is behind.
    rate_steps = max(64, min(steps, 1000))
    rec = Recorder(
        path, num_envs=n, fps=60, max_queue_bytes=max_queue, on_full="block", writer=writer
    )
    render(0)
    rec.capture(rgb, reward=reward, terminated=done)  # the first capture, not timed (see above)
    t0 = time.perf_counter()
    for t in range(1, rate_steps + 1):
        render(t)
        rec.capture(rgb, reward=reward, terminated=done)
    rec.close()
    rate_wall = time.perf_counter() - t0
    rate_stats = rec.stats
    shutil.rmtree(path, ignore_errors=True)
    gc.collect()

    # Baseline: the seed visualizer's synchronous per-env copies, kept in a list.
    kept: list = []
    base_t = []
    b_rss0 = _rss()
    for t in range(baseline_steps):
        work()
        render(t)
        c0 = time.perf_counter()
        if cuda:
            kept.append([rgb[i].cpu().numpy() for i in range(n)])
        else:
            kept.append([rgb[i].copy() for i in range(n)])
        base_t.append(time.perf_counter() - c0)
    b_growth = _rss() - b_rss0
    del kept
    gc.collect()

    cap = _stats_ms(cap_t)
    base = _stats_ms(base_t)
    warm = max(1, len(rss) // 10)
    frame_bytes = n * h * w * 3
    return {
        "config": f"{n}x{h}x{w}",
        "num_envs": n,
        "height": h,
        "width": w,
        "steps": steps,
        "step_ms_target": step_ms,
        "max_queue_bytes": max_queue,
        "writer": writer,
        "capture": cap,
        "capture_by_block_position": edges,
        "capture_time_split": time_split(cap_t, cpu_t, wait_t),
        "first_capture_ms": first_ms,
        "loop_ms_without": plain_mean * 1e3,
        "loop_ms_with": with_mean * 1e3,
        "overhead_pct": over,
        "overhead_ci_pct": [lo, hi],
        "overhead_ci_coverage": coverage,
        "rounds": rounds,
        "block_steps": block,
        "frames_captured": st.frames_captured,
        "frames_dropped": st.frames_dropped,
        "close_s": close_s,
        "writer_busy_s": st.writer_busy_s,
        "queue_high_water_bytes": st.queue_high_water_bytes,
        "loop_env_frames_per_s": st.frames_written * n / (sum(with_t) + close_s),
        "sustained_env_frames_per_s": (rate_stats.frames_written - 1) * n / rate_wall,
        "sustained_dropped": rate_stats.frames_dropped,
        "writer_env_frames_per_busy_s": rate_stats.frames_written * n / rate_stats.writer_busy_s
        if rate_stats.writer_busy_s
        else None,
        "rss_start_mb": rss0 / 1e6,
        "rss_peak_mb": max(rss) / 1e6,
        "rss_growth_mb": (rss[-1] - rss[warm]) / 1e6,
        "stored_bytes_per_env_frame": st.bytes_stored / max(1, st.frames_written * n),
        "compression_ratio": frame_bytes * st.frames_written / st.bytes_stored
        if st.bytes_stored > 0
        else None,
        "baseline": {
            "steps": baseline_steps,
            "caller": base,
            "rss_growth_mb_per_1000_steps": b_growth / 1e6 * 1000 / max(1, baseline_steps),
        },
        "speedup_median": base["median_ms"] / cap["median_ms"],
        "speedup_mean": base["mean_ms"] / cap["mean_ms"],
    }


def machine(device: str) -> dict[str, Any]:
    import zarr

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if device == "cuda":
        import torch

        info.update(torch=torch.__version__, gpu=torch.cuda.get_device_name())
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _parse_configs(text: str | None) -> list[tuple[int, int, int]]:
    if not text:
        return list(DEFAULT_CONFIGS)
    out = []
    for item in text.split(","):
        parts = [int(p) for p in item.lower().split("x")]
        if len(parts) == 2:
            parts.append(parts[1])
        if len(parts) != 3:
            raise SystemExit(f"--configs: expected NxHxW items, got {item!r}")
        out.append(tuple(parts))
    return out


def table(results: list[dict[str, Any]], info: dict[str, Any], device: str) -> str:
    where = info.get("gpu") or info["cpu"]
    lines = [
        f"envreel capture benchmark, --device {device}: {where}, {info['cpu_count']} CPU cores, "
        f"Python {info['python']}, zarr {info['zarr']}, writer {results[0]['writer']}"
        + (f", torch {info['torch']}" if "torch" in info else ""),
        "",
        "| envs × H×W | capture() median / p99 ms | loop ms without → with "
        "| overhead, median [CI] of rounds | drops | sustained env-frames/s "
        "| peak RSS MB (growth) | stored B/env-frame (ratio) | seed visualizer ms/step "
        "| less caller time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, b = r["capture"], r["baseline"]["caller"]
        ratio = r["compression_ratio"]
        lines.append(
            f"| {r['num_envs']} × {r['height']}×{r['width']} "
            f"| {c['median_ms']:.3f} / {c['p99_ms']:.3f} "
            f"| {r['loop_ms_without']:.2f} → {r['loop_ms_with']:.2f} "
            f"| {r['overhead_pct']:+.1f}% [{r['overhead_ci_pct'][0]:+.1f}, "
            f"{r['overhead_ci_pct'][1]:+.1f}] "
            f"| {r['frames_dropped']} "
            f"| {r['sustained_env_frames_per_s']:,.0f} "
            f"| {r['rss_peak_mb']:,.0f} ({r['rss_growth_mb']:+.0f}) "
            f"| {r['stored_bytes_per_env_frame']:,.0f} ({ratio:.1f}×) "
            f"| {b['median_ms']:.2f} "
            f"| {r['speedup_median']:.0f}× |"
            if ratio
            else f"| {r['config']} | (no stored bytes) |"
        )
    lines.append("")
    r0 = results[0]
    lines.append(
        f"Overhead: {r0['rounds']} rounds of {r0['block_steps']} steps without, then "
        f"{r0['block_steps']} with capture; CI: order statistics, "
        f"{100 * r0['overhead_ci_coverage']:.0f}% coverage."
    )
    lines.append(
        "Baseline RSS growth (seed visualizer, frames kept in a list): "
        + ", ".join(
            f"{r['config']}: {r['baseline']['rss_growth_mb_per_1000_steps']:,.0f} MB/1000 steps"
            for r in results
        )
    )
    edges = [
        f"{r['config']}: p99 {e['edge']['p99_ms']:.3f} against {e['inside']['p99_ms']:.3f} ms, "
        f"{100 * e['slowest_at_edges']:.0f}% of the slowest 1% ({100 * e['edge_share']:.0f}% "
        "of all)"
        for r in results
        if (e := r.get("capture_by_block_position")) and e["edge"] and e["inside"]
    ]
    if edges:
        lines.append(
            "Captures that start or end a ring block (take a free block, hand it to the "
            "writer), against the rest: " + ", ".join(edges)
        )
    splits = [
        f"{r['config']}: all {_split_text(s['all'])}; slowest 1% {_split_text(s['slowest'])}"
        for r in results
        if (s := r.get("capture_time_split"))
    ]
    if splits:
        lines.append(
            "capture() medians, ms: wall (on the CPU + waiting for a core + blocked): "
            + "; ".join(splits)
        )
    return "\n".join(lines)


def _split_text(part: dict[str, float]) -> str:
    wall, cpu, wait, blocked = (part[f"{k}_ms_median"] for k in ("wall", "cpu", "wait", "blocked"))
    return f"{wall:.3f} ({cpu:.3f} + {wait:.3f} + {blocked:.3f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m envreel.tools.bench_capture",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  python -m envreel.tools.bench_capture --device cuda --steps 2000",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--steps", type=int, default=2000, help="steps per run (default 2000)")
    p.add_argument("--step-ms", type=float, default=5.0, help="simulated step (default 5 ms)")
    p.add_argument(
        "--baseline-steps", type=int, default=300, help="steps of the seed visualizer (RAM!)"
    )
    p.add_argument("--configs", help="comma-separated NxHxW, e.g. 64x128x128,16x128")
    p.add_argument("--dir", help="where the stores go (default: a temporary folder)")
    p.add_argument(
        "--block", type=int, default=50, help="steps per A or B block of a round (default 50)"
    )
    p.add_argument(
        "--writer",
        choices=("auto", "process", "thread"),
        default="auto",
        help="Recorder(writer=...): where blocks are written (default auto: a process)",
    )
    p.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval() for the run, seconds (Python's default is 0.005)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("--device cuda: no CUDA device here", file=sys.stderr)
            return 1
    workdir = args.dir or tempfile.mkdtemp(prefix="envreel-bench-")
    info = machine(args.device)
    info["switch_interval_s"] = sys.getswitchinterval()
    results = []
    for n, h, w in _parse_configs(args.configs):
        r = run_config(
            n,
            h,
            w,
            device=args.device,
            steps=args.steps,
            step_ms=args.step_ms,
            baseline_steps=min(args.baseline_steps, args.steps),
            workdir=workdir,
            block_steps=args.block,
            writer=args.writer,
        )
        results.append(r)
        if not args.json:
            print(f"done {r['config']}", file=sys.stderr, flush=True)
    if args.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps({"device": args.device, "machine": info, "results": results}, indent=1))
    else:
        print(table(results, info, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
