"""Memory stays flat over a long run: the ring is allocated once and recycled."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest

from envreel.capture import Recorder
from envreel.schemas import open_run

psutil = pytest.importorskip("psutil")


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["process", "thread"])
def test_rss_flat_over_20000_small_frames(tmp_path, writer):
    n, h, w, steps = 4, 16, 16, 20_000
    proc = psutil.Process()
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    reward = np.zeros(n, np.float32)
    done = np.zeros(n, bool)
    rec = Recorder(
        tmp_path / "r.zarr",
        num_envs=n,
        fps=30,
        block_frames=256,
        max_queue_bytes=8 << 20,  # a few blocks: the ring wraps dozens of times
        writer=writer,
    )
    rss = []
    for t in range(steps):
        src[:, 0, 0, 0] = t % 256
        done[:] = t % 50 == 0
        reward[:] = t
        rec.capture(src, reward=reward, terminated=done)
        if t % 2000 == 1999:
            gc.collect()
            rss.append(proc.memory_info().rss)
    rec.close()
    growth = rss[-1] - rss[0]  # after the first 2,000 frames (ring, zarr and codec warm-up)
    raw = rec.stats.bytes_in
    # Keeping the frames (the seed visualizer's list) would grow by ~61 MB here.
    assert growth < 8e6, (
        f"RSS grew {growth / 1e6:.1f} MB over {steps} frames ({raw / 1e6:.0f} MB in)"
    )
    assert rec.stats.frames_written == steps and rec.stats.frames_dropped == 0
    run = open_run(tmp_path / "r.zarr")
    assert run.num_frames == steps
    np.testing.assert_array_equal(
        run.env_frames(None, steps - 1, steps)[0, :, 0, 0, 0], (steps - 1) % 256
    )
    np.testing.assert_array_equal(run.scalar("episode")[-1], (steps - 1) // 50 + 1)


def test_ring_files_of_killed_recordings_are_removed_by_the_next_one(tmp_path, monkeypatch):
    # A recording SIGKILLed while its writer process starts leaves its ring file in /dev/shm
    # (memory held until reboot); the next recording removes the files of processes gone.
    import os
    import subprocess
    import sys

    from envreel.capture import _cuda

    monkeypatch.setattr(_cuda, "_shared_dir", lambda: str(tmp_path))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    orphan = tmp_path / f"envreel-ring-{dead_pid}-abcd1234"
    alive = tmp_path / f"envreel-ring-{os.getppid()}-abcd1234"  # a live process's ring
    mine = tmp_path / f"envreel-ring-{os.getpid()}-abcd1234"
    other = tmp_path / "envreel-ring-notapid"  # not named by the scheme: left alone
    for f in (orphan, alive, mine, other):
        f.write_bytes(b"x" * 64)
    memory = _cuda.HostMemory(4096, pinned=False, shared=True)
    try:
        assert memory.path is not None
        assert os.path.basename(memory.path).startswith(f"envreel-ring-{os.getpid()}-")
        assert not orphan.exists() and alive.exists() and mine.exists() and other.exists()
    finally:
        memory.unlink()


def test_a_ring_whose_creator_holds_its_lock_is_kept(tmp_path, monkeypatch):
    # A recorder in another PID namespace sharing /dev/shm (docker --ipc=host, one pod) has a
    # pid this process cannot see; its ring's lock says it is alive, and is dropped with it.
    import fcntl
    import os

    from envreel.capture import _cuda

    monkeypatch.setattr(_cuda, "_shared_dir", lambda: str(tmp_path))
    unseen_pid = 4_194_304 + 17  # above Linux's pid_max: no process here has it
    ring = tmp_path / f"envreel-ring-{unseen_pid}-abcd1234"
    ring.write_bytes(b"x" * 64)
    fd = os.open(ring, os.O_RDONLY)  # its creator's open file, locked as HostMemory locks it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        _cuda.HostMemory(4096, pinned=False, shared=True).unlink()
        assert ring.exists()
    finally:
        os.close(fd)  # the creator is gone
    memory = _cuda.HostMemory(4096, pinned=False, shared=True)
    try:
        assert not ring.exists()
        # and its own ring is locked while it has a name
        probe = os.open(memory.path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
    finally:
        memory.unlink()


def test_no_ring_file_is_left_when_making_the_ring_is_interrupted(tmp_path, monkeypatch):
    # Ctrl-C while the ring is reserved or its pages are touched (~0.3 s for 500 MB)
    from envreel.capture import _cuda

    monkeypatch.setattr(_cuda, "_shared_dir", lambda: str(tmp_path))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(_cuda, "_reserve", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _cuda.HostMemory(4096, pinned=False, shared=True)
    assert list(tmp_path.iterdir()) == []

    class Untouchable(np.ndarray):
        def fill(self, value):
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(_cuda.np, "frombuffer", lambda buf, dtype: np.zeros(8, dtype).view(Untouchable))
        with pytest.raises(KeyboardInterrupt):
            _cuda.HostMemory(4096, pinned=False, shared=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", ["auto", "process"])
def test_a_full_dev_shm_is_an_error_or_a_thread_writer_not_sigbus(tmp_path, monkeypatch, writer):
    # Docker gives containers a 64 MiB /dev/shm; touching a larger ring's pages was SIGBUS
    import errno
    import os

    from envreel.capture import _cuda

    monkeypatch.setattr(_cuda, "_shared_dir", lambda: str(tmp_path / "shm"))
    (tmp_path / "shm").mkdir()

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_cuda.os, "posix_fallocate", full)
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    rec = Recorder(tmp_path / "r.zarr", num_envs=4, fps=30, block_frames=4, writer=writer)
    if writer == "process":  # asked for: refused before anything is written
        with pytest.raises(_cuda.SharedMemoryFullError, match=r"shm has \d+ MiB free .* needs"):
            rec.capture(frames)
        assert not (tmp_path / "r.zarr").exists()
    else:
        with pytest.warns(RuntimeWarning, match="writing from a thread of this process instead"):
            rec.capture(frames)
        for _ in range(5):
            rec.capture(frames)
        rec.close()
        assert rec.stats.frames_written == 6 and open_run(tmp_path / "r.zarr").num_frames == 6
    assert list((tmp_path / "shm").iterdir()) == []


def _budget_for(n: int, h: int, w: int, block_frames: int) -> int:
    """Bytes of 2 blocks of ``block_frames`` frames (the least a ring holds), plus a little."""
    from envreel.capture._writer import block_nbytes
    from envreel.schemas import RunSpec

    spec = RunSpec(num_envs=n, env_frame_shape=(h, w), fps=30, block_frames=block_frames)
    return 2 * block_nbytes(spec, value_range=False) + 1000


@pytest.mark.parametrize(("fits", "warns"), [(16, False), (4, True)])
def test_many_envs_get_shorter_blocks_where_the_budget_holds_no_two_of_32(tmp_path, fits, warns):
    """4,096 envs × 32² and a 1080p global view is 19 MB a step: 2 blocks of 32 do not fit the
    default 512 MiB, which raised at the first capture unless block_frames was given."""
    n, h, w, steps = 4096, 4, 4, 40
    frames = np.random.default_rng(0).integers(0, 256, (steps, n, h, w, 3), dtype=np.uint8)
    budget = _budget_for(n, h, w, fits)
    assert budget < _budget_for(n, h, w, 2 * fits)
    rec = Recorder(tmp_path / "r.zarr", num_envs=n, fps=30, max_queue_bytes=budget)
    with (
        pytest.warns(RuntimeWarning, match=rf"holds 2 blocks of only {fits} frame")
        if warns
        else (warnings.catch_warnings())
    ):
        if not warns:
            warnings.simplefilter("error")
        rec.capture(frames[0], reward=np.full(n, 0.5, np.float32))
    for t in range(1, steps):
        rec.capture(frames[t], reward=np.full(n, 0.5, np.float32))
    rec.close()
    assert rec.stats.frames_written == steps and rec.stats.frames_dropped == 0
    run = open_run(tmp_path / "r.zarr")
    assert run.spec.block_frames == fits and run.num_frames == steps
    np.testing.assert_array_equal(run.env_frames([0, 4095], 0, steps), frames[:, [0, 4095]])
    # given, block_frames is kept: the same budget is then an error naming both ways out
    with pytest.raises(ValueError, match=rf"block_frames <= {fits}\b"):
        Recorder(
            tmp_path / "s.zarr",
            num_envs=n,
            fps=30,
            max_queue_bytes=budget,
            block_frames=2 * fits,
            env_frame_shape=(h, w),
        )
