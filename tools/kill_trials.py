"""Kill trials: SIGKILL a recording process at random moments and check what it leaves behind.

Each trial starts a child process that records a deterministic sequence (every frame, value and
scalar is a function of the step index) with the real ``Recorder`` into a local store, as fast
as the writer allows, and logs after every ``capture()`` how many frames it captured and how
many the recorder reported written. The parent kills it with SIGKILL at a random moment, either
while it records (``record`` phase, timed from its first capture) or while the store is being
created (``create`` phase), then checks the store:

* it opens and ``validate()`` finds nothing (or, killed before the store existed, both fail with
  a ``StoreFormatError`` about the root ``zarr.json``);
* every committed frame, scalar and per-frame value equals the generator's;
* nothing the recorder reported written is missing, and at most the in-flight blocks are (the
  ring holds 2 blocks, so at most 2 blocks of captured frames may be lost);
* the commit record is consistent: whole blocks only, ``num_blocks``, clips, zero counters and
  no errors, and every per-frame array holds the committed frames plus at most one block.

Usage:
    python -m envreel.tools.kill_trials [--trials 200] [--seed 0] [--jobs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TrialParams",
    "TrialResult",
    "env_frames_at",
    "global_frame_at",
    "values_at",
    "expected_episodes",
    "run_trial",
    "check_store",
    "run_trials",
    "main",
]

RING_BLOCKS = 2
"""Block buffers the child's recorder gets: at most this many blocks are in flight at a kill."""


@dataclass(frozen=True)
class TrialParams:
    """One trial: the recording and when to kill it.

    Attributes:
        seed: seeds the kill moment.
        phase: "record" (kill after the first capture) or "create" (kill from the start of the
            first capture, while the store is being created).
        delay_s: seconds from the phase's start to the kill.
        num_envs, height, width: per-env frames of the recording.
        global_shape: (height, width) of the global view.
        block_frames: frames per block (the unit of commit).
        kill: "group" kills the recording process and its writer process (if the recorder uses
            one) at once, as a job scheduler or a lost machine does; "main" kills the recording
            process only, as the OOM killer may, and waits for its writer to exit by itself.
        writer: the recorder's ``writer`` argument; "auto" leaves the recorder's default.
        max_seconds: the child stops by itself after this long (an orphan never runs forever).
    """

    seed: int
    phase: str = "record"
    delay_s: float = 0.5
    kill: str = "group"
    writer: str = "auto"
    num_envs: int = 8
    height: int = 24
    width: int = 32
    global_shape: tuple[int, int] = (20, 28)
    block_frames: int = 8
    max_seconds: float = 120.0


@dataclass
class TrialResult:
    """What a trial found. ``failures`` is empty when every check passed."""

    trial: int
    seed: int
    phase: str
    delay_s: float
    kill: str = "group"
    outcome: str = ""  # "killed", "not-created" (killed before the store existed), "finished"
    captured: int = 0  # frames the child logged as captured (it may have captured one more)
    written: int = 0  # frames the child's recorder reported written before the kill
    num_frames: int = 0  # committed frames in the store
    lost_frames: int = 0  # captured - committed
    stage: str = ""  # where the kill landed in the commit protocol (``kill_stage``)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---- the deterministic recording -----------------------------------------------------------------
def env_frames_at(step: int, n: int, h: int, w: int) -> np.ndarray:
    """(n, h, w, 3) uint8 frames of ``step`` (``store_helpers.frames_for(step, 1, ...)[0]``)."""
    e = np.arange(n)[:, None, None, None]
    y = np.arange(h)[None, :, None, None]
    x = np.arange(w)[None, None, :, None]
    c = np.arange(3)[None, None, None, :]
    return ((step * 7 + e * 31 + y * 3 + x * 5 + c * 11) % 251).astype(np.uint8)


def global_frame_at(step: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 global frame of ``step``."""
    y = np.arange(h)[:, None, None]
    x = np.arange(w)[None, :, None]
    c = np.arange(3)[None, None, :]
    return ((step * 13 + y * 2 + x * 7 + c * 17) % 253).astype(np.uint8)


def values_at(steps: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-env values of ``steps`` (t,): reward, terminated, truncated, scalar ``speed``: (t, n)."""
    t = np.asarray(steps, np.int64)[:, None]
    e = np.arange(n)[None, :]
    return {
        "reward": (t * 0.5 - e).astype(np.float32),
        "terminated": (t + e) % 7 == 3,
        "truncated": (t + 2 * e) % 11 == 5,
        "speed": (t % 97 - e * 0.25).astype(np.float32),
    }


def expected_episodes(num_frames: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(episode, episode_step), each (num_frames, n) int32, of steps 0.. with the done flags above.

    The recorder's default ``autoreset="same_step"`` (Isaac Lab): the frame of a done step already
    shows the next episode, at its step 0.
    """
    v = values_at(np.arange(num_frames), n)
    done = v["terminated"] | v["truncated"]
    episode = np.cumsum(done, axis=0, dtype=np.int64)
    steps = np.arange(num_frames)[:, None]
    last_reset = np.maximum.accumulate(np.where(done, steps, 0), axis=0)
    return episode.astype(np.int32), (steps - last_reset).astype(np.int32)


def _child(url: str, log: str, p: TrialParams) -> int:
    """The recording process: capture as fast as the writer allows, log after every capture."""
    from envreel.capture import Recorder
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    n, h, w = p.num_envs, p.height, p.width
    spec = RunSpec(
        num_envs=n,
        env_frame_shape=(h, w),
        global_frame_shape=p.global_shape,
        fps=30,
        block_frames=p.block_frames,
        scalar_names=("speed",),
    )
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    extra = {} if p.writer == "auto" else {"writer": p.writer}
    rec = Recorder(
        url,
        num_envs=n,
        fps=30,
        block_frames=p.block_frames,
        scalar_names=("speed",),
        max_queue_bytes=RING_BLOCKS * block_nbytes(spec, value_range=False),
        on_full="block",
        on_error="raise",
        source={"simulator": "kill_trials"},
        **extra,
    )
    os.write(fd, b"S\n")  # the first capture creates the store
    t_end = time.monotonic() + p.max_seconds
    step = 0
    while time.monotonic() < t_end:
        v = values_at(np.array([step]), n)
        rec.capture(
            env_frames_at(step, n, h, w),
            global_frame_at(step, *p.global_shape),
            step=step,
            reward=v["reward"][0],
            terminated=v["terminated"][0],
            truncated=v["truncated"][0],
            scalars={"speed": v["speed"][0]},
        )
        step += 1
        # One write per step (a kill leaves at most a partial last line, which the parent skips).
        os.write(fd, f"C {step} {rec.stats.frames_written}\n".encode())
    rec.close()
    os.write(fd, f"D {step}\n".encode())
    return 0


# ---- the parent ----------------------------------------------------------------------------------
def _read_log(log: Path) -> tuple[bool, bool, int, int]:
    """(started, finished, captured, written) from the child's log (complete lines only)."""
    try:
        text = log.read_text()
    except FileNotFoundError:
        return False, False, 0, 0
    started = finished = False
    captured = written = 0
    for line in text.split("\n")[:-1]:  # the last element is "" or a partial line
        parts = line.split()
        if parts[:1] == ["S"]:
            started = True
        elif parts[:1] == ["C"] and len(parts) == 3:
            captured, written = int(parts[1]), int(parts[2])
        elif parts[:1] == ["D"]:
            finished = True
    return started, finished, captured, written


def _wait_for(log: Path, proc: subprocess.Popen, want: str, timeout_s: float) -> bool:
    """Wait until the log has a complete line starting with ``want``; False if the child died."""
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        try:
            text = log.read_text()
        except FileNotFoundError:
            text = ""
        if any(line.startswith(want) for line in text.split("\n")[:-1]):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def _stat(path: Path) -> list[str] | None:
    """The fields of a /proc stat file after the command name: state, ppid, pgrp, ..."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _group_alive(pgid: int) -> bool:
    """Whether any thread of any process of process group ``pgid`` still runs.

    A process's own stat shows its main thread only: after SIGKILL the main thread can be a
    zombie while another thread finishes the system call it was in (a store write, which then
    lands after the "kill"), so every thread is looked at; zombie threads do not count.
    """
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            fields = _stat(stat)
            if fields is None or int(fields[2]) != pgid:
                continue
            for task in stat.parent.glob("task/[0-9]*/stat"):
                t = _stat(task)
                if t is not None and t[0] not in ("Z", "X"):
                    return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def start_child(store: Path, log: Path, p: TrialParams) -> subprocess.Popen:
    """Start the recording process (in its own process group, with any writer process)."""
    cmd = [sys.executable, "-m", "envreel.tools.kill_trials", "--child", str(store)]
    cmd += ["--log", str(log), "--params", json.dumps(asdict(p))]
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def kill_child(proc: subprocess.Popen, mode: str, *, timeout_s: float = 30.0) -> str | None:
    """SIGKILL the recording process ("main") or its whole process group ("group"), then wait
    until no process of the group runs; returns a failure message if one outlives ``timeout_s``.
    """
    if mode == "group":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=timeout_s)
    t_end = time.monotonic() + timeout_s
    while _group_alive(proc.pid):
        if time.monotonic() > t_end:
            os.killpg(proc.pid, signal.SIGKILL)
            return f"a process of the recording (its writer?) outlived it by {timeout_s:g} s"
        time.sleep(0.01)
    return None


def _state_doc(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "zarr.json").read_text())["attributes"]["envreel_state"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kill_stage(path: Path, block_frames: int) -> str:
    """Where in the commit protocol of the next block the kill landed, read from the store.

    "no store" (root record missing), "resizing" (the arrays disagree on their length: killed
    while growing them), "between blocks" (none of the next block's objects exists), "writing
    chunks" (some do), "committing" (all do; the root record not yet rewritten), "closed" (the
    child finished). Arrays grow several blocks ahead of the commit record, so their lengths
    alone do not tell a block in flight.
    """
    state = _state_doc(path)
    if state is None:
        return "no store"
    if state.get("closed"):
        return "closed"
    blk = int(state["num_frames"]) // block_frames
    lengths, objects, total = set(), 0, 0
    for meta in path.glob("**/zarr.json"):
        doc = json.loads(meta.read_text())
        if doc.get("node_type") != "array" or doc.get("dimension_names", [None])[0] != "time":
            continue
        total += 1
        lengths.add(doc["shape"][0])
        objects += (meta.parent / "c" / str(blk)).exists()
    if len(lengths) > 1:
        return "resizing"
    if objects == 0:
        return "between blocks"
    return "committing" if objects == total else "writing chunks"


def check_store(path: Path, p: TrialParams, *, captured: int, written: int) -> list[str]:
    """Every check of a killed (or finished) recording's store; returns the failures.

    Args:
        path: the store.
        p: the trial's parameters (shapes, block size).
        captured: frames the child logged as captured (it may have captured one more).
        written: frames the child's recorder reported written (committed) before the kill.
    """
    from envreel.schemas import StoreFormatError, open_run, validate
    from envreel.schemas.writer import GROW_BLOCKS

    fails: list[str] = []
    b, n = p.block_frames, p.num_envs
    try:
        run = open_run(path)
    except StoreFormatError as exc:
        if captured > 0:
            return [f"open_run failed after {captured} captures: {exc}"]
        # Killed while the store was being created: both readers must say so cleanly.
        problems = validate(path)
        if not problems or problems[0].where != "zarr.json":
            fails.append(f"validate of a store killed during creation gave {problems}")
        return fails
    problems = validate(path)
    if problems:
        fails.append(f"validate: {[str(q) for q in problems[:5]]}")
    t = run.num_frames
    if t < written:
        fails.append(
            f"lost committed frames: the recorder reported {written} written, store has {t}"
        )
    if t < captured - RING_BLOCKS * b:
        fails.append(
            f"{captured - t} captured frames missing; at most the {RING_BLOCKS} in-flight blocks "
            f"({RING_BLOCKS * b} frames) may be"
        )
    if t > captured + 1:
        fails.append(f"store has {t} frames but only {captured} (+1) were captured")
    if not run.closed and t % b:
        fails.append(f"{t} committed frames is not a whole number of {b}-frame blocks")
    state = _state_doc(path) or {}
    if state.get("num_blocks") != math.ceil(t / b):
        fails.append(f"num_blocks {state.get('num_blocks')} for {t} frames of blocks of {b}")
    if run.counters != {"dropped_frames": 0, "write_errors": 0}:
        fails.append(f"counters {run.counters}, expected zero drops and errors")
    if run.errors:
        fails.append(f"errors recorded: {run.errors}")
    want_clips = [] if t == 0 else [(0, 0, t, 0, t)]
    got_clips = [(c.id, c.start_frame, c.stop_frame, c.start_step, c.stop_step) for c in run.clips]
    if got_clips != want_clips:
        fails.append(f"clips {got_clips}, expected {want_clips}")
    for arr in path.glob("**/zarr.json"):
        doc = json.loads(arr.read_text())
        rel = arr.parent.relative_to(path).as_posix()
        if doc.get("node_type") != "array" or doc.get("dimension_names", [None])[0] != "time":
            continue
        length = doc["shape"][0]
        # While recording, arrays grow GROW_BLOCKS blocks ahead of the commit record (resized
        # before a block's chunks are written); close trims them to the committed frames.
        most = t if run.closed else -(-t // b) * b + (GROW_BLOCKS + 1) * b
        if not t <= length <= most:
            fails.append(f"{rel} holds {length} frames; expected {t} to {most}")
    ep, ep_step = expected_episodes(t, n)
    gh, gw = p.global_shape
    for t0 in range(0, t, 64):
        t1 = min(t, t0 + 64)
        steps = np.arange(t0, t1)
        v = values_at(steps, n)
        checks = {
            "env frames": (
                run.env_frames(None, t0, t1),
                np.stack([env_frames_at(s, n, p.height, p.width) for s in steps]),
            ),
            "global frames": (
                run.global_frames(t0, t1),
                np.stack([global_frame_at(s, gh, gw) for s in steps]),
            ),
            "step": (run.frame_values("step", t0, t1), steps),
            "sim_time": (run.frame_values("sim_time", t0, t1), steps * run.step_dt),
            "clip": (run.frame_values("clip", t0, t1), np.zeros(t1 - t0)),
            "reward": (run.scalar("reward", t0, t1), v["reward"]),
            "terminated": (run.scalar("terminated", t0, t1), v["terminated"]),
            "truncated": (run.scalar("truncated", t0, t1), v["truncated"]),
            "speed": (run.scalar("speed", t0, t1), v["speed"]),
            "episode": (run.scalar("episode", t0, t1), ep[t0:t1]),
            "episode_step": (run.scalar("episode_step", t0, t1), ep_step[t0:t1]),
            "stale": (run.scalar("stale", t0, t1), np.zeros((t1 - t0, n), bool)),
        }
        for name, (got, want) in checks.items():
            if got.shape != want.shape or not np.array_equal(got, want):
                fails.append(f"{name} of frames [{t0}, {t1}) differ from the generator")
        wall = run.frame_values("wall_time", t0, t1)
        if not (np.all(np.diff(wall) >= 0) and np.all(wall > 1.5e9)):
            fails.append(f"wall_time of frames [{t0}, {t1}) is not a plausible increasing clock")
    return fails


def run_trial(
    index: int, p: TrialParams, workdir: str | os.PathLike, *, keep: bool = False
) -> TrialResult:
    """Run one trial in ``workdir``: start the child, kill it per ``p``, check the store.

    Args:
        index: trial number (names the store folder).
        p: what to record and when to kill.
        workdir: a folder for the store and the child's log.
        keep: leave the store on disk (for a failure to inspect). Defaults to False.
    """
    t_start = time.monotonic()
    res = TrialResult(
        trial=index, seed=p.seed, phase=p.phase, delay_s=round(p.delay_s, 4), kill=p.kill
    )
    root = Path(workdir) / f"trial_{index:04d}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    store, log = root / "run.zarr", root / "log.txt"
    proc = start_child(store, log, p)
    try:
        trigger = "S" if p.phase == "create" else "C"
        if not _wait_for(log, proc, trigger, timeout_s=60):
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.poll() else ""
            res.failures.append(f"the child never reached its {p.phase} phase: {err}")
            return res
        time.sleep(p.delay_s)
        outlived = kill_child(proc, p.kill)
        if outlived:
            res.failures.append(outlived)
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            kill_child(proc, "group")
        proc.stderr.close()
    started, finished, captured, written = _read_log(log)
    res.captured, res.written = captured, written
    res.outcome = "finished" if finished else "killed"
    if proc.returncode not in (0, -signal.SIGKILL) and not finished:
        res.failures.append(f"the child exited with {proc.returncode} before the kill")
    res.failures += check_store(store, p, captured=captured, written=written)
    if not (store / "zarr.json").exists() or _state_doc(store) is None:
        res.outcome = "not-created"
    else:
        res.num_frames = int(_state_doc(store)["num_frames"])
    res.lost_frames = max(0, captured - res.num_frames)
    res.stage = kill_stage(store, p.block_frames)
    res.seconds = round(time.monotonic() - t_start, 3)
    if not keep and not res.failures:
        shutil.rmtree(root, ignore_errors=True)
    return res


def trial_params(
    seed: int, index: int, *, phase: str = "mixed", kill: str = "mixed", **overrides: Any
) -> TrialParams:
    """Trial ``index`` of a seeded series.

    With ``phase="mixed"`` 1 in 8 trials kill during store creation; with ``kill="mixed"`` half
    kill the whole process group and half the recording process only.
    """
    rng = random.Random(seed * 1_000_003 + index)
    if phase == "mixed":
        phase = "create" if rng.random() < 0.125 else "record"
    if kill == "mixed":
        kill = "group" if rng.random() < 0.5 else "main"
    if phase not in ("create", "record"):
        raise ValueError(f"phase must be 'mixed', 'create' or 'record', got {phase!r}")
    if kill not in ("group", "main"):
        raise ValueError(f"kill must be 'mixed', 'group' or 'main', got {kill!r}")
    delay = rng.uniform(0.0, 0.25) if phase == "create" else rng.uniform(0.0, 1.5)
    kw: dict[str, Any] = dict(seed=seed, phase=phase, delay_s=delay, kill=kill)
    kw.update(overrides)
    return TrialParams(**kw)


def run_trials(
    trials: int,
    *,
    seed: int = 0,
    jobs: int = 1,
    phase: str = "mixed",
    kill: str = "mixed",
    writer: str = "auto",
    workdir: str | os.PathLike,
    keep: bool = False,
    on_result: Any = None,
) -> list[TrialResult]:
    """Run a seeded series of trials, ``jobs`` at a time, in ``workdir``.

    Args:
        trials: number of trials.
        seed: seeds the kill moments. Defaults to 0.
        jobs: trials at a time (each is one child process). Defaults to 1.
        phase: "mixed" (1 in 8 during creation), "record" or "create". Defaults to "mixed".
        kill: "mixed" (half each), "group" or "main". Defaults to "mixed".
        writer: the recorder's ``writer`` argument, or "auto". Defaults to "auto".
        workdir: folder for the stores; failed trials' stores are kept there.
        keep: keep every store. Defaults to False.
        on_result: called with each ``TrialResult`` in trial order. Defaults to None.
    """
    params = [trial_params(seed, i, phase=phase, kill=kill, writer=writer) for i in range(trials)]
    results = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_trial, i, p, workdir, keep=keep) for i, p in enumerate(params)]
        for f in futures:
            results.append(f.result())
            if on_result is not None:
                on_result(results[-1])
    return results


def summarize(results: list[TrialResult]) -> dict[str, Any]:
    """Totals of a series: trials, failures, outcomes, committed and lost frames."""
    import zarr

    killed = [r for r in results if r.outcome == "killed"]
    stages = {r.stage for r in results}
    frames = [r.num_frames for r in killed] or [0]
    lost = [r.lost_frames for r in killed] or [0]
    return {
        "trials": len(results),
        "failures": sum(bool(r.failures) for r in results),
        "killed_while_recording": len(killed),
        "killed_before_store_existed": sum(r.outcome == "not-created" for r in results),
        "finished_before_kill": sum(r.outcome == "finished" for r in results),
        "committed_frames_min_median_max": [
            int(np.min(frames)),
            int(np.median(frames)),
            int(np.max(frames)),
        ],
        "lost_frames_max": int(np.max(lost)),
        "kill_modes": {m: sum(r.kill == m for r in results) for m in ("group", "main")},
        "kill_stages": {s: sum(r.stage == s for r in results) for s in sorted(stages)},
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "zarr": zarr.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=200, help="number of kills. Defaults to 200.")
    ap.add_argument("--seed", type=int, default=0, help="seeds the kill moments. Defaults to 0.")
    ap.add_argument("--jobs", type=int, default=1, help="trials at a time. Defaults to 1.")
    ap.add_argument(
        "--phase",
        choices=("mixed", "record", "create"),
        default="mixed",
        help="when to kill: while recording, while creating the store, or mixed (1 in 8 "
        "during creation). Defaults to mixed.",
    )
    ap.add_argument(
        "--kill",
        choices=("mixed", "group", "main"),
        default="mixed",
        help="what to kill: the recording process and its writer process at once (group), the "
        "recording process only (main), or half each (mixed). Defaults to mixed.",
    )
    ap.add_argument(
        "--writer",
        default="auto",
        help="the Recorder's writer argument (thread or process). Defaults to its default.",
    )
    ap.add_argument("--workdir", help="folder for the stores (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep every store (failed ones are kept)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        d = json.loads(a.params)
        d["global_shape"] = tuple(d["global_shape"])
        return _child(a.child, a.log, TrialParams(**d))
    if a.trials < 1 or a.jobs < 1:
        ap.error("--trials and --jobs must be >= 1")
    workdir = a.workdir or tempfile.mkdtemp(prefix="envreel-kill-")

    def show(r: TrialResult) -> None:
        if not a.json:
            status = "FAIL: " + "; ".join(r.failures) if r.failures else "ok"
            print(
                f"trial {r.trial:4d} {r.phase:6s} {r.kill:5s} kill at +{r.delay_s:.3f}s  captured "
                f"{r.captured:5d} written {r.written:5d} committed {r.num_frames:5d} lost "
                f"{r.lost_frames:3d}  {r.outcome:11s} {r.stage:14s} {status}",
                file=sys.stderr,
                flush=True,
            )

    t0 = time.monotonic()
    results = run_trials(
        a.trials,
        seed=a.seed,
        jobs=a.jobs,
        phase=a.phase,
        kill=a.kill,
        writer=a.writer,
        workdir=workdir,
        keep=a.keep,
        on_result=show,
    )
    if any(r.failures for r in results) or a.keep:
        print(f"stores kept in {workdir}", file=sys.stderr)
    elif a.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(results)
    summary["seconds"] = round(time.monotonic() - t0, 1)
    summary["seed"] = a.seed
    if a.json:
        out = {"summary": summary, "trials": [asdict(r) for r in results]}
        print(json.dumps(out, indent=2))
    else:
        print("| " + " | ".join(summary) + " |")
        print("|" + "---|" * len(summary))
        print("| " + " | ".join(str(v) for v in summary.values()) + " |")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
