"""Benchmark: what ``RecordEnvs`` (the Isaac Lab wrapper) costs a training step, on a stand-in.

Usage::

    python -m envreel.tools.bench_wrapper --device cuda            # the table
    python -m envreel.tools.bench_wrapper --device cpu --steps 400 --json

The stand-in is an Isaac Lab-shaped env (``env.unwrapped`` with ``num_envs``, ``step_dt``,
``common_step_counter``, ``episode_length_buf``, a camera sensor whose ``data.output["rgb"]`` is a
strided view of a reused ``rgba`` buffer, resets inside ``step()``), whose step is a fixed
workload of ``--step-ms`` (CUDA: matrix products, then a synchronize, as a real step ends) and
whose camera "renders" by copying a frame into its buffer. The real Isaac Lab benchmark is
``bench_isaaclab`` (it needs Isaac Lab; this one runs anywhere torch does).

Blocks of ``--block`` steps alternate: the bare env, then the env wrapped in ``RecordEnvs``
(recording every env, every step), round after round in one process. Reported: the overhead
(ratio of mean step times per round; median and an order-statistics interval over the rounds)
and the wrapper's own time per step (its ``step()`` less the env's, measured inside each step:
median and p99). The mean step's overhead is also split in two, which add up to it: the
wrapper's own time, and the env's own step running slower inside the wrapper than bare (the
env's step is timed inside both ways' steps; a capture's work can leave the next step's Python
and kernel launches slower). The env's step is split further (``EnvStep``): its work's CPU time
(on CUDA, launching its kernels), the synchronize's wait for them, the rest of its step, and (on
CUDA) its kernels' time on the GPU, from CUDA events around them.

``--floor`` adds two ways to each round, each after a bare block of its own: ``Recorder.capture``
called by hand with what the wrapper hands it (the wrapper's glue left out), and the copies
alone: the same device work with no envreel code around it (the frames' bytes into one of four
staging slots, the four values to the host, every fourth step the staged frames to the host on a
side stream; CUDA driver calls as envreel's copier makes them, torch copies on the CPU). What
lies between the two is envreel's Python and its writer; the copies are what any recorder of
these frames pays. Each way's own time is its step less the env's, as for the wrapper.

``--writer-threads 4,2,1`` adds the wrapper again for each count, recording the same env into a
store of its own, its writer process compressing on that many encode threads
(``ENVREEL_WRITER_THREADS``) instead of the default one per core but one: does the writer's
burst of compression after each hand-off slow the training process's next steps?

The ways take each place in the round in turn (the first way of one round is the second of the
next), and each way reports, besides its overhead and own time, how much slower the env's step
ran inside it than in its bare block, and its overhead less the wrapper's in the same round
(median and interval over the rounds): a difference measured side by side. For the wrapper (and
each writer-thread way) that slowdown is also split by the ring block's fill before the step:
the first steps after a block goes to the writer process run while it compresses that block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from envreel.schemas._chunkwrite import THREADS_ENV, encode_threads
from envreel.tools._interval import median_summary
from envreel.tools.bench_capture import CpuWork, GpuWork, make_pool


class _Proxy:
    """Isaac Lab 3's ProxyArray: ``.torch`` is the tensor."""

    def __init__(self, tensor: Any) -> None:
        self.torch = tensor


class StandinEnv:
    """An Isaac Lab-shaped env of ``n`` envs whose camera renders (n, h, w) RGB frames."""

    def __init__(self, n: int, h: int, w: int, *, device: str, step_ms: float, renderer: str):
        import torch

        self.torch = torch
        self.num_envs, self.device, self.step_dt = n, device, 1.0 / 60
        dev = torch.device(device)
        self.work = (
            GpuWork(step_ms, dev, gpu_events=True) if dev.type == "cuda" else CpuWork(step_ms)
        )
        self.pool = torch.from_numpy(make_pool(n, h, w)).to(dev)
        self.rgba = torch.full((n, h, w, 4), 255, dtype=torch.uint8, device=dev)
        self.common_step_counter = 0
        self.episode_length_buf = torch.zeros(n, dtype=torch.int64, device=dev)
        self.reset_terminated = torch.zeros(n, dtype=torch.bool, device=dev)
        self.reset_time_outs = torch.zeros(n, dtype=torch.bool, device=dev)
        self.reward_buf = torch.zeros(n, device=dev)
        self.lengths = 100 + torch.arange(n, device=dev) % 50
        fx = 24.0 / 20.955 * w
        k = torch.tensor([[fx, 0, w / 2], [0, fx, h / 2], [0, 0, 1]], device=dev)
        data = types.SimpleNamespace(
            output={"rgba": _Proxy(self.rgba), "rgb": _Proxy(self.rgba[..., :3])},
            intrinsic_matrices=_Proxy(k.expand(n, 3, 3).contiguous()),
            pos_w=_Proxy(torch.zeros(n, 3, device=dev)),
            quat_w_opengl=_Proxy(torch.tensor([0.0, 0.0, 0.0, 1.0], device=dev).repeat(n, 1)),
            image_shape=(h, w),
        )
        cfg = types.SimpleNamespace(
            renderer_cfg=types.SimpleNamespace(renderer_type=renderer),
            update_latest_camera_pose=False,
            width=w,
            height=h,
        )
        camera = types.SimpleNamespace(data=data, cfg=cfg)
        self.scene = types.SimpleNamespace(
            sensors={"envreel_cam": camera},
            env_origins=torch.zeros(n, 3, device=dev),
            cfg=types.SimpleNamespace(lazy_sensor_update=True),
        )
        self.cfg = types.SimpleNamespace(num_rerenders_on_reset=0)

    @property
    def unwrapped(self) -> StandinEnv:
        return self

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        self.episode_length_buf.zero_()
        self.rgba[..., :3].copy_(self.pool[0])
        return {}, {}

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict]:
        self.work()  # the training step (synchronised, as a real step ends)
        t = self.common_step_counter = self.common_step_counter + 1
        self.episode_length_buf += 1
        self.rgba[..., :3].copy_(self.pool[t % len(self.pool)])  # the camera renders
        done = self.episode_length_buf >= self.lengths
        self.reset_terminated.copy_(done & (self.lengths % 2 == 0))
        self.reset_time_outs.copy_(done & (self.lengths % 2 == 1))
        self.reward_buf.fill_(0.01 * t)
        self.episode_length_buf.masked_fill_(done, 0)
        return {}, self.reward_buf, self.reset_terminated, self.reset_time_outs, {}

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class EnvStep:
    """The env's own step inside one timed step, in parts, seconds.

    ``whole``; ``work``, the CPU's side of its training work (launching its kernels on CUDA, all
    of the work on the CPU); ``wait``, the synchronize's wait for those kernels (0 on the CPU);
    ``rest``, the rest of its step (the camera's render, the resets); ``gpu``, its kernels' time
    on the GPU (CUDA events around them; None on the CPU). ``work + wait + rest == whole``.
    """

    whole: float
    work: float
    wait: float
    rest: float
    gpu: float | None

    @classmethod
    def of(cls, whole: float, work: Any) -> EnvStep:
        """The step just timed (``whole``), split by the parts ``work`` kept of its last call."""
        launch, wait = work.launch_s, work.wait_s
        return cls(whole, launch, wait, whole - launch - wait, work.gpu_s())

    @staticmethod
    def mean_ms(steps: list[EnvStep]) -> dict[str, float | None]:
        """Each part's mean over ``steps``, ms (None for a part not measured)."""
        means: dict[str, float | None] = {}
        for f in fields(EnvStep):
            values = [getattr(e, f.name) for e in steps]
            means[f.name] = None if None in values else 1e3 * statistics.fmean(values)
        return means


class ByHand:
    """One recorded step of ``env`` without the wrapper (``--floor``): ``capture`` calls
    ``Recorder.capture`` with what ``RecordEnvs`` hands it; ``copies`` makes only its copies.

    Args:
        env: the stand-in.
        recorder: the recorder ``capture`` records into.
        rtx: frames render before the resets (the episode step is computed before the step,
            and the done envs' frames are stale), as ``RecordEnvs`` does for RTX.
    """

    GROUP = 4  # captures staged before one copy to the host, as envreel's copier groups them

    def __init__(self, env: StandinEnv, recorder: Any, *, rtx: bool) -> None:
        import torch

        from envreel.capture._cuda import _driver

        self.env, self.recorder, self.rtx, self.torch = env, recorder, rtx, torch
        self.rgb = env.scene.sensors["envreel_cam"].data.output["rgb"].torch
        self.steps = 0
        n, dev = env.num_envs, env.rgba.device
        self.episode = [torch.zeros(n, dtype=torch.int32, device=dev) for _ in range(2)]
        self.stage = torch.empty((self.GROUP, *env.rgba.shape), dtype=torch.uint8, device=dev)
        pin = dev.type == "cuda"
        self.host_frames = torch.empty(self.stage.shape, dtype=torch.uint8, pin_memory=pin)
        self.host_values = [
            torch.empty(n, dtype=dtype, pin_memory=pin)
            for dtype in (torch.float32, torch.bool, torch.bool, torch.int32)
        ]
        self.drv = _driver() if pin else None
        if self.drv is not None:  # the side stream and events only the driver calls use
            self.side = torch.cuda.Stream(device=dev)
            self.mark, self.done = torch.cuda.Event(), torch.cuda.Event()
            self.mark.record(self.side)
            self.done.record(self.side)

    def _episode_step(self) -> Any:
        """``_sources.episode_steps`` written out: one kernel into one of two int32 buffers,
        without the wrapper's checks around it (the glue this benchmark leaves out)."""
        buf = self.episode[self.steps % 2]
        return self.torch.add(self.env.episode_length_buf, 1 if self.rtx else 0, out=buf)

    def _step(self, action: Any) -> tuple[Any, Any, Any, Any]:
        """Steps the env: (reward, terminated, truncated, episode step), the episode step taken
        before the step on RTX and after it otherwise, as ``RecordEnvs`` takes it."""
        self.steps += 1
        episode_step = self._episode_step() if self.rtx else None
        _, reward, terminated, truncated, _ = self.env.step(action)
        if episode_step is None:
            episode_step = self._episode_step()
        return reward, terminated, truncated, episode_step

    def capture(self, action: Any) -> None:
        reward, terminated, truncated, episode_step = self._step(action)
        self.recorder.capture(
            self.rgb,
            step=self.steps,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            stale="done" if self.rtx else None,
            episode_step=episode_step,
        )

    def copies(self, action: Any) -> None:
        values = self._step(action)
        j = self.steps % self.GROUP
        drv = self.drv
        if drv is None:  # the CPU (or CUDA without driver calls): torch copies
            self.stage[j].copy_(self.env.rgba)
            for dst, src in zip(self.host_values, values, strict=True):
                dst.copy_(src)
            if j == self.GROUP - 1:
                self.host_frames.copy_(self.stage)
            return
        cur = self.torch._C._cuda_getCurrentRawStream(self.env.rgba.device.index or 0)
        drv.dtod(self.stage[j].data_ptr(), self.env.rgba.data_ptr(), self.env.rgba.nbytes, cur)
        for dst, src in zip(self.host_values, values, strict=True):
            drv.dtoh(dst.data_ptr(), src.data_ptr(), src.nbytes, cur)
        if j == self.GROUP - 1:
            side = self.side.cuda_stream
            drv.record(self.mark.cuda_event, cur)
            drv.wait(side, self.mark.cuda_event, 0)
            drv.dtoh(self.host_frames.data_ptr(), self.stage.data_ptr(), self.stage.nbytes, side)
            drv.record(self.done.cuda_event, side)  # as the copier marks a set copied


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from envreel.capture import Recorder
    from envreel.capture.isaaclab import RecordEnvs, RecorderCfg

    n, h, w = args.num_envs, args.size, args.size
    env = StandinEnv(n, h, w, device=args.device, step_ms=args.step_ms, renderer=args.renderer)
    work = Path(args.dir or tempfile.mkdtemp(prefix="envreel-bench-wrapper-"))
    inner = [0.0]
    env_step = env.step

    def timed(a: Any) -> Any:
        t = time.perf_counter()
        out = env_step(a)
        inner[0] = time.perf_counter() - t
        return out

    env.step = timed  # type: ignore[method-assign]
    wrapped = RecordEnvs(
        env, work / "run.zarr", RecorderCfg(quat_order="xyzw", on_full="drop", overwrite=True)
    )
    action = torch.zeros((n, 1), device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    wrapped.reset()

    def block(step_fn: Any, steps: int, env_times: list[EnvStep] | None = None) -> list[float]:
        """Times ``steps`` steps; ``env_times`` gets the env's own step inside each, in parts."""
        times = []
        for _ in range(steps):
            sync()
            t = time.perf_counter()
            step_fn(action)
            times.append(time.perf_counter() - t)
            if env_times is not None:
                env_times.append(EnvStep.of(inner[0], env.work))
        return times

    def own_times(times: list[float], env_times: list[EnvStep]) -> list[float]:
        """Each step less the env's own step inside it."""
        return [t - e.whole for t, e in zip(times, env_times, strict=True)]

    block(wrapped.step, 20)  # warm-up: the store, the ring, the writer
    ways: dict[str, Any] = {}
    by_hand = None
    if args.floor:
        spec = wrapped.recorder.spec  # the wrapper's blocks and queue, for the same writer work
        recorder = Recorder(
            work / "by_hand.zarr",
            num_envs=n,
            fps=60,
            block_frames=spec.block_frames,
            max_queue_bytes=wrapped.recorder_cfg.max_queue_bytes,
            on_full="drop",
            overwrite=True,
        )
        by_hand = ByHand(env, recorder, rtx=args.renderer == "isaac_rtx")
        ways = {"capture": by_hand.capture, "copies": by_hand.copies}
    threaded = {}  # the same wrapper, its writer process on another count of encode threads
    for count in args.writer_threads:
        # set while the constructor starts the writer process, which reads it
        with mock.patch.dict(os.environ, {THREADS_ENV: str(count)}):
            threaded[count] = RecordEnvs(env, work / f"threads{count}.zarr", wrapped.recorder_cfg)
        ways[f"threads{count}"] = threaded[count].step
    block(env.step, 20)
    for step_fn in ways.values():
        block(step_fn, 20)
    rounds = max(1, args.steps // (2 * args.block))
    step_fns = {"RecordEnvs": wrapped.step, **ways}
    ratios: dict[str, list[float]] = {name: [] for name in step_fns}
    own: dict[str, list[float]] = {name: [] for name in step_fns}
    env_bare: dict[str, list[EnvStep]] = {name: [] for name in step_fns}  # the env's step in
    env_rec: dict[str, list[EnvStep]] = {name: [] for name in step_fns}  # each way's steps
    bare, rec = [], []
    recorders = {"RecordEnvs": wrapped.recorder}
    recorders.update({f"threads{count}": w.recorder for count, w in threaded.items()})
    fills: dict[str, list[int]] = {name: [] for name in recorders}  # ring fill before each step
    block_frames = wrapped.recorder.spec.block_frames
    order = list(step_fns)
    for r in range(rounds):
        k = r % len(order)  # each way in each place of the round in turn
        for name in order[k:] + order[:k]:
            a = block(env.step, args.block, env_bare[name])  # a bare block of its own
            if name in recorders:  # every step is captured, so the fill follows the count
                start = recorders[name].stats.frames_captured
                fills[name] += [(start + i) % block_frames for i in range(args.block)]
            b = block(step_fns[name], args.block, env_rec[name])
            own[name] += own_times(b, env_rec[name][-len(b) :])
            ratios[name].append(statistics.fmean(b) / statistics.fmean(a))
            if name == "RecordEnvs":
                bare += a
                rec += b
    for recorded in (wrapped, *threaded.values()):
        recorded.close()
    if by_hand is not None:
        by_hand.recorder.close()
    stats = wrapped.stats
    own_ms = np.asarray(own["RecordEnvs"]) * 1e3
    mean_bare = statistics.fmean(bare)
    parts_ms = {
        "bare": EnvStep.mean_ms(env_bare["RecordEnvs"]),
        "inside": EnvStep.mean_ms(env_rec["RecordEnvs"]),
    }
    slower_pct = {  # how much slower each part is inside, % of the mean bare step
        part: _slower_pct(parts_ms["bare"][part], ms, mean_bare)
        for part, ms in parts_ms["inside"].items()
    }
    env_pct = slower_pct.pop("whole")
    assert env_pct is not None  # the whole step is always timed
    whole_pct = 100 * (statistics.fmean(rec) / mean_bare - 1)

    def way(name: str) -> dict[str, Any]:
        """A way's overhead, its own time's median, how much slower the env's step ran in it
        than in its bare blocks (ms), and its overhead less the wrapper's, round by round."""
        slower = statistics.fmean(e.whole for e in env_rec[name]) - statistics.fmean(
            e.whole for e in env_bare[name]
        )
        out = {
            **_overhead(ratios[name]),
            "own_ms": float(np.median(own[name])) * 1e3,
            "env_step_slower_ms": 1e3 * slower,
            "vs_recordenvs_pct": _paired(ratios[name], ratios["RecordEnvs"]),
        }
        if name in fills:
            out["env_step_slower_by_fill_us"] = _by_fill(
                env_rec[name], fills[name], env_bare[name], block_frames
            )
        return out

    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        },
        "config": vars(args),
        "rounds": rounds,
        "step_ms_bare": 1e3 * statistics.fmean(bare),
        "step_ms_recorded": 1e3 * statistics.fmean(rec),
        "overhead_pct": _overhead(ratios["RecordEnvs"]),
        "floor": {name: way(name) for name in ("capture", "copies") if name in ways},
        "writer_threads": {
            "default": encode_threads(),
            "ways": {
                count: {
                    **way(f"threads{count}"),
                    "frames_dropped": threaded[count].stats.frames_dropped,
                }
                for count in threaded
            },
        },
        "own_ms": {
            "median": float(np.median(own_ms)),
            "p99": float(np.percentile(own_ms, 99)),
        },
        "split_pct": {  # of the mean step's overhead, in % of the mean bare step
            "whole": whole_pct,
            "own": whole_pct - env_pct,
            "env_step": env_pct,
        },
        "env_step_ms": {side: means["whole"] for side, means in parts_ms.items()},
        "env_step_parts_ms": parts_ms,
        "env_step_parts_pct": slower_pct,
        "block_frames": block_frames,
        "env_step_slower_by_fill_us": _by_fill(
            env_rec["RecordEnvs"], fills["RecordEnvs"], env_bare["RecordEnvs"], block_frames
        ),
        "frames_captured": stats.frames_captured,
        "frames_dropped": stats.frames_dropped,
    }


def _by_fill(
    inside: list[EnvStep], fills: list[int], bare: list[EnvStep], block_frames: int
) -> dict[str, float]:
    """How much slower the env's step ran than bare (mean, µs), by the ring block's fill before
    the step: 0 is the first step after a block was handed to the writer process."""
    base = statistics.fmean(e.whole for e in bare)
    out = {}
    for lo, hi in ((0, 1), (1, 2), (2, 8), (8, block_frames)):
        hi = min(hi, block_frames)
        steps = [e.whole for e, f in zip(inside, fills, strict=True) if lo <= f < hi]
        if steps:
            label = str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}"
            out[label] = 1e6 * (statistics.fmean(steps) - base)
    return out


def _slower_pct(bare_ms: float | None, inside_ms: float | None, step_s: float) -> float | None:
    """How much longer a part took inside the wrapper than bare, in % of a ``step_s`` step."""
    if bare_ms is None or inside_ms is None:
        return None
    return 100 * (inside_ms - bare_ms) / (1e3 * step_s)


def _paired(ratios: list[float], against: list[float]) -> dict[str, float]:
    """Median and interval, in points, of one way's overhead less another's, round by round."""
    return median_summary([100 * (a - b) for a, b in zip(ratios, against, strict=True)])


def _overhead(ratios: list[float]) -> dict[str, float]:
    """Median and order-statistics interval, in %, of per-round step-time ratios."""
    return median_summary([100 * (r - 1) for r in ratios])


_FLOOR_ROWS = {
    "capture": "`Recorder.capture` by hand, with what RecordEnvs hands it",
    "copies": "the copies alone (no envreel code)",
}


def table(r: dict[str, Any]) -> str:
    c, o, sp = r["config"], r["overhead_pct"], r["split_pct"]
    rows = [(_FLOOR_ROWS[name], f) for name, f in r["floor"].items()]
    for count, t in r["writer_threads"]["ways"].items():
        drops = f" ({t['frames_dropped']} frames dropped)" if t["frames_dropped"] else ""
        rows.append((f"RecordEnvs, its writer on {_threads(count)}{drops}", t))
    floor = []
    if rows:
        env_slower = r["env_step_ms"]["inside"] - r["env_step_ms"]["bare"]
        floor = [
            "",
            "| way (each against a bare block of its own) | overhead, median [CI] | less "
            "RecordEnvs's, paired [CI] | own time median | env's step slower |",
            "|---|---|---|---|---|",
            f"| RecordEnvs (its writer on {_threads(r['writer_threads']['default'])}) "
            f"| {_ci(o)} | – | {r['own_ms']['median']:.3f} ms | {1e3 * env_slower:.1f} µs |",
            *(
                f"| {label} | {_ci(f)} | {_ci(f['vs_recordenvs_pct'], ' pts')} "
                f"| {f['own_ms']:.3f} ms | {1e3 * f['env_step_slower_ms']:.1f} µs |"
                for label, f in rows
            ),
        ]
    return "\n".join(
        [
            f"RecordEnvs on a stand-in env: {c['num_envs']} envs × {c['size']}², "
            f"{c['device']} ({r['machine']['gpu'] or platform.processor()}), "
            f"{c['step_ms']} ms step, renderer {c['renderer']}; {r['rounds']} rounds of "
            f"{c['block']} steps",
            "",
            "| step bare | step recorded | overhead, median [CI] | wrapper's own time median / "
            "p99 | drops |",
            "|---|---|---|---|---|",
            f"| {r['step_ms_bare']:.3f} ms | {r['step_ms_recorded']:.3f} ms "
            f"| {o['median']:+.2f}% [{o['low']:+.2f}, {o['high']:+.2f}] "
            f"| {r['own_ms']['median']:.3f} / {r['own_ms']['p99']:.3f} ms "
            f"| {r['frames_dropped']} of {r['frames_captured'] + r['frames_dropped']} |",
            "",
            f"Of the mean step's {sp['whole']:+.2f}%: the wrapper's own time {sp['own']:+.2f}%, "
            f"the env's own step running slower inside it {sp['env_step']:+.2f}% "
            f"({r['env_step_ms']['bare']:.3f} ms bare, {r['env_step_ms']['inside']:.3f} ms inside)",
            _parts_line(r["env_step_parts_pct"]),
            "",
            f"The env's step slower than bare, µs, by the fill of the {r['block_frames']}-frame "
            "ring block before it (0: right after a block went to the writer process):",
            f"- RecordEnvs: {_fill_line(r['env_step_slower_by_fill_us'])}",
            *(
                f"- its writer on {_threads(count)}: {_fill_line(t['env_step_slower_by_fill_us'])}"
                for count, t in r["writer_threads"]["ways"].items()
            ),
            *floor,
            "",
            f"(interval: order statistics over rounds, {100 * o['coverage']:.0f}% coverage)",
        ]
    )


def _fill_line(by_fill: dict[str, float]) -> str:
    return " · ".join(f"{fill}: {us:+.1f}" for fill, us in by_fill.items())


def _ci(o: dict[str, float], unit: str = "%") -> str:
    """A median and its interval."""
    return f"{o['median']:+.2f}{unit} [{o['low']:+.2f}, {o['high']:+.2f}]"


def _threads(count: int | str) -> str:
    return f"{count} encode thread{'' if int(count) == 1 else 's'}"


def _parts_line(pct: dict[str, float | None]) -> str:
    """The env's step running slower inside the wrapper, part by part (see ``EnvStep``)."""
    line = (
        f"Of the env's step: its work's CPU time (kernel launches on CUDA) {pct['work']:+.2f}%, "
        f"the wait for its kernels {pct['wait']:+.2f}%, the rest of its step {pct['rest']:+.2f}%"
    )
    gpu = pct["gpu"]
    return line if gpu is None else f"{line}; its kernels' time on the GPU {gpu:+.2f}%"


def _thread_counts(text: str) -> tuple[int, ...]:
    """``--writer-threads``: positive integers, comma-separated."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1 or len(set(counts)) < len(counts):
        raise argparse.ArgumentTypeError(
            f"expected distinct positive integers separated by commas (e.g. 4,2,1), got {text!r}"
        )
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m envreel.tools.bench_wrapper",
        description=__doc__.split("\n\n")[0],
        epilog="Example: python -m envreel.tools.bench_wrapper --device cuda --steps 2000",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--num-envs", type=int, default=64, help="envs (default 64)")
    p.add_argument("--size", type=int, default=128, help="camera height and width (default 128)")
    p.add_argument("--steps", type=int, default=2000, help="steps, both ways (default 2000)")
    p.add_argument("--step-ms", type=float, default=5.0, help="the env's step (default 5 ms)")
    p.add_argument("--block", type=int, default=50, help="steps per block (default 50)")
    p.add_argument(
        "--renderer",
        default="isaac_rtx",
        choices=("isaac_rtx", "newton_warp"),
        help="the camera's renderer type (RTX: frames of reset envs are stale; default)",
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="also time Recorder.capture by hand and the copies alone (see the module doc)",
    )
    p.add_argument(
        "--writer-threads",
        type=_thread_counts,
        default=(),
        metavar="N[,N...]",
        help="also time the wrapper with its writer process on each of these counts of encode "
        "threads (see the module doc)",
    )
    p.add_argument("--dir", help="where the stores go (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("error: bench_wrapper needs torch", file=sys.stderr)
        return 1
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {args.device}: no CUDA device here", file=sys.stderr)
        return 1
    if args.floor and args.device.startswith("cuda"):
        from envreel.capture._cuda import COPY_MODE_ENV, _driver

        if _driver() is None:
            print(
                f"--floor on CUDA times the copies as driver calls, which are not available "
                f"here (libcuda cannot be loaded, or {COPY_MODE_ENV}=torch is set)",
                file=sys.stderr,
            )
            return 1
    result = run(args)
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
