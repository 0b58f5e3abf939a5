"""Memory stays flat over a long run: the ring is allocated once and recycled."""

from __future__ import annotations

import gc

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
