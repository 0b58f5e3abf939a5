"""Write failures: disk full, intermittent errors, a dead writer. Nothing hangs, nothing lies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from recorder_helpers import FlakyStore, FullDiskStore, frames, local, within

from envreel.capture import Recorder, RecorderError
from envreel.capture._writer import WriterThread
from envreel.schemas import open_run, validate

N, H, W = 2, 8, 8


def _tiny_queue(**kw):
    # block_frames=2 and room for exactly 2 blocks: the caller meets a full queue at once.
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    spec = RunSpec(num_envs=N, env_frame_shape=(H, W), fps=30, block_frames=2)
    return dict(block_frames=2, max_queue_bytes=2 * block_nbytes(spec, value_range=False), **kw)


def test_raise_disk_full_raises_on_next_capture_without_hanging(tmp_path):
    store = local(tmp_path / "r.zarr", FullDiskStore)
    rec = Recorder(store, num_envs=N, fps=30, on_error="raise", **_tiny_queue())
    rec.capture(frames(0, N, H, W))  # creates the store
    store.budget = 0  # the disk is full from now on

    def loop():
        for t in range(1, 500):
            rec.capture(frames(t, N, H, W))

    with pytest.raises(RecorderError, match="No space left on device") as info:
        within(30, loop)
    assert "r.zarr" in str(info.value) or "Store" in str(info.value)
    with pytest.raises(RecorderError):
        rec.capture(frames(999, N, H, W))  # the recorder stays failed
    within(30, rec.close)  # already reported: close() does not raise again
    run = open_run(tmp_path / "r.zarr")
    assert run.num_frames == 0  # nothing committed, and the store still opens


def test_raise_failure_in_last_block_raises_at_close(tmp_path):
    store = local(tmp_path / "r.zarr", FullDiskStore)
    rec = Recorder(store, num_envs=N, fps=30, on_error="raise", block_frames=8)
    for t in range(8):
        rec.capture(frames(t, N, H, W))  # one full block, written
    within(30, lambda: _wait_written(rec, 8))
    store.budget = 0
    for t in range(8, 13):
        rec.capture(frames(t, N, H, W))  # a partial block, written by close()
    with pytest.raises(RecorderError, match="No space left on device"):
        within(30, rec.close)
    rec.close()  # idempotent, and quiet now
    run = open_run(tmp_path / "r.zarr")
    assert run.num_frames == 8
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W) for t in range(8)])
    )


def _wait_written(rec, n):
    import time

    while rec.stats.frames_written < n:
        time.sleep(0.01)


def test_warn_disk_full_after_n_bytes_keeps_the_loop_alive(tmp_path):
    store = local(tmp_path / "r.zarr", FullDiskStore)
    rec = Recorder(store, num_envs=N, fps=30, on_error="warn", block_frames=4)
    rec.capture(frames(0, N, H, W))
    store.budget = 30_000  # room for ~2.5 blocks (~11 kB each), then the disk is full

    def loop():
        for t in range(1, 120):
            rec.capture(frames(t, N, H, W))
        rec.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        within(60, loop)
    ours = [w for w in caught if "envreel recorder" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]  # warned once
    assert "No space left on device" in str(ours[0].message)
    assert issubclass(ours[0].category, RuntimeWarning)
    s = rec.stats
    assert s.write_errors > 0 and s.frames_dropped > 0
    assert s.frames_written + s.frames_dropped == 120
    run = open_run(tmp_path / "r.zarr")
    assert 0 < run.num_frames <= s.frames_written  # the last commits may not have fit either
    want = np.stack([frames(t, N, H, W) for t in range(run.num_frames)])
    np.testing.assert_array_equal(run.env_frames(), want)  # every committed block intact
    assert validate(str(tmp_path / "r.zarr")) == []


def test_warn_intermittent_errors_are_counted_in_the_store(tmp_path):
    store = local(tmp_path / "r.zarr", FlakyStore, fail_attempts={1, 3})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Recorder(store, num_envs=N, fps=30, on_error="warn", block_frames=4) as rec:
            for t in range(24):
                rec.capture(frames(t, N, H, W))
    assert sum("envreel recorder" in str(w.message) for w in caught) == 1
    s = rec.stats
    assert (s.write_errors, s.frames_dropped, s.frames_written) == (2, 8, 16)
    run = open_run(tmp_path / "r.zarr")
    kept = [*range(0, 4), *range(8, 12), *range(16, 24)]  # blocks 1 and 3 were lost
    np.testing.assert_array_equal(run.frame_values("step"), kept)
    np.testing.assert_array_equal(run.env_frames(), np.stack([frames(t, N, H, W) for t in kept]))
    assert run.counters["write_errors"] == 2 and run.counters["dropped_frames"] == 8
    assert any("Input/output error" in e for e in run.errors)
    assert validate(str(tmp_path / "r.zarr")) == []


def test_raise_intermittent_error_stops_writing(tmp_path):
    store = local(tmp_path / "r.zarr", FlakyStore, fail_attempts={1})
    rec = Recorder(store, num_envs=N, fps=30, on_error="raise", **_tiny_queue())

    def loop():
        for t in range(200):
            rec.capture(frames(t, N, H, W))

    with pytest.raises(RecorderError, match="Input/output error"):
        within(30, loop)
    rec.close()
    run = open_run(tmp_path / "r.zarr")
    assert run.num_frames == 2  # the block before the failure; nothing after it
    assert run.counters["write_errors"] == 1


def test_dead_writer_thread_never_hangs_the_caller(tmp_path, monkeypatch):
    monkeypatch.setattr(WriterThread, "_run", lambda self: None)  # dies at once
    rec = Recorder(
        tmp_path / "r.zarr", num_envs=N, fps=30, on_full="block", writer="thread", **_tiny_queue()
    )

    def loop():
        for t in range(100):
            rec.capture(frames(t, N, H, W))

    with pytest.raises(RecorderError, match="writer for .* stopped unexpectedly"):
        within(30, loop)
    within(30, rec.close)


def test_warning_surfaces_at_close_when_loop_ended_first(tmp_path):
    store = local(tmp_path / "r.zarr", FullDiskStore)
    rec = Recorder(store, num_envs=N, fps=30, on_error="warn", block_frames=8)
    rec.capture(frames(0, N, H, W))
    store.budget = 0
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        within(30, rec.close)
    assert rec.stats.write_errors == 1 and rec.stats.frames_dropped == 1


# ---- the writer process -------------------------------------------------------------------------


def _block_shard_path(root, block: int) -> None:
    """Make block ``block``'s env/frames shard unwritable: a file where its folder must go."""
    p = root / "env" / "frames" / "c" / str(block)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"not a directory")


def _wait_done(rec, n, timeout_s=30):
    import time

    end = time.monotonic() + timeout_s
    while rec.stats.frames_written + rec.stats.frames_dropped < n:
        assert time.monotonic() < end, rec.stats
        time.sleep(0.01)


def test_process_writer_raise_names_the_cause(tmp_path):
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, on_error="raise", writer="process", **_tiny_queue())
    for t in range(2):
        rec.capture(frames(t, N, H, W))
    within(30, lambda: _wait_written(rec, 2))
    _block_shard_path(path, 1)

    def loop():
        for t in range(2, 300):
            rec.capture(frames(t, N, H, W))

    with pytest.raises(RecorderError, match="Not a directory"):
        within(30, loop)
    within(30, rec.close)
    run = open_run(path)
    assert run.num_frames == 2 and run.counters["write_errors"] == 1
    assert validate(str(path)) == []


def test_process_writer_warn_counts_and_recovers(tmp_path):
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, on_error="warn", writer="process", block_frames=2)
    rec.capture(frames(0, N, H, W))
    rec.capture(frames(1, N, H, W))
    within(30, lambda: _wait_done(rec, 2))
    _block_shard_path(path, 1)
    with pytest.warns(RuntimeWarning, match="Not a directory"):
        for t in range(2, 8):  # three blocks fail (each is retried at the same place)
            rec.capture(frames(t, N, H, W))
        within(30, lambda: _wait_done(rec, 8))
        rec.capture(frames(8, N, H, W))  # the warning surfaces on the caller's thread
    (path / "env" / "frames" / "c" / "1").unlink()  # space again
    for t in range(9, 12):
        rec.capture(frames(t, N, H, W))
    within(30, rec.close)
    s = rec.stats
    assert (s.write_errors, s.frames_dropped, s.frames_written) == (3, 6, 6)
    run = open_run(path)
    kept = [0, 1, 8, 9, 10, 11]
    np.testing.assert_array_equal(run.frame_values("step"), kept)
    np.testing.assert_array_equal(run.env_frames(), np.stack([frames(t, N, H, W) for t in kept]))
    assert run.counters["write_errors"] == 3 and run.counters["dropped_frames"] == 6
    assert validate(str(path)) == []


@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_killed_writer_process_never_hangs_the_caller(tmp_path, on_error):
    import os
    import signal

    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, on_error=on_error, writer="process", **_tiny_queue())
    for t in range(4):
        rec.capture(frames(t, N, H, W))
    within(30, lambda: _wait_written(rec, 4))
    os.kill(rec._writer._proc.pid, signal.SIGKILL)

    kept: list[bool] = []

    def loop():
        for t in range(4, 500):
            kept.append(rec.capture(frames(t, N, H, W)))

    if on_error == "raise":
        with pytest.raises(RecorderError, match="was killed by SIGKILL"):
            within(30, loop)
    else:  # training goes on: one warning, and nothing more is recorded
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            within(30, loop)
        [warning] = [w for w in caught if "stopped" in str(w.message)]
        assert "was killed by SIGKILL" in str(warning.message)
        assert "recording stops here, training goes on" in str(warning.message)
        assert len(kept) == 496 and not any(kept[-100:])
    within(30, rec.close)
    stats = rec.stats  # every step counted; frames lost with the writer are dropped ones
    if on_error == "warn":
        assert stats.steps == 500
    # the frames in its queue are lost with it (dropped, besides any not taken into the queue)
    assert stats.frames_dropped >= stats.frames_captured - stats.frames_written
    assert stats.queue_bytes == 0
    run = open_run(path)  # valid up to the last committed block
    assert run.num_frames == 4
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W) for t in range(4)])
    )


def test_a_writer_process_that_stops_answering_warns_and_ctrl_c_ends_close(tmp_path):
    # a hung mount (here: SIGSTOP) held close() forever, and at exit Ctrl-C had to come twice
    import subprocess
    import sys

    script = f"""
import os, signal, threading, time, warnings
import numpy as np
from envreel.capture import Recorder, _process
_process.STALL_WARN_S = 1.0
rec = Recorder({str(tmp_path / "s.zarr")!r}, num_envs=2, fps=30, block_frames=4, writer="process")
for _ in range(6):
    rec.capture(np.zeros((2, 8, 8, 3), np.uint8))
os.kill(rec._writer._proc.pid, signal.SIGSTOP)
threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        rec.close()
    except KeyboardInterrupt:
        print("interrupted after", round(time.monotonic() - t0, 1))
print("warned:", [str(w.message) for w in caught])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("interrupted after") and float(lines[0].split()[-1]) < 10
    assert "has answered nothing for" in lines[1] and "Ctrl-C stops it" in lines[1]
