"""A writer slower than the loop: "drop" drops and counts, "block" waits and loses nothing."""

from __future__ import annotations

import numpy as np
from recorder_helpers import SlowStore, frames, local, within

from envreel.capture import Recorder
from envreel.capture._writer import block_nbytes
from envreel.schemas import RunSpec, open_run, validate

N, H, W = 2, 8, 8
STEPS = 60


def _queue_bytes(blocks: int) -> int:
    spec = RunSpec(num_envs=N, env_frame_shape=(H, W), fps=30, block_frames=4)
    return blocks * block_nbytes(spec, value_range=False)


def test_drop_counts_drops_in_the_store_and_keeps_frames_exact(tmp_path):
    store = local(tmp_path / "r.zarr", SlowStore, delay_s=0.01)
    kept = []
    rec = Recorder(
        store, num_envs=N, fps=30, block_frames=4, max_queue_bytes=_queue_bytes(2), on_full="drop"
    )

    def loop():
        for t in range(STEPS):
            if rec.capture(frames(t, N, H, W), reward=np.full(N, t, np.float32)):
                kept.append(t)
        rec.close()

    within(60, loop)
    s = rec.stats
    assert s.frames_dropped > 0 and s.frames_dropped + len(kept) == STEPS
    assert s.frames_written == len(kept) and s.blocked_s == 0
    run = open_run(tmp_path / "r.zarr")
    assert run.counters["dropped_frames"] == s.frames_dropped
    np.testing.assert_array_equal(run.frame_values("step"), kept)
    np.testing.assert_array_equal(run.env_frames(), np.stack([frames(t, N, H, W) for t in kept]))
    np.testing.assert_array_equal(run.scalar("reward")[:, 0], kept)
    assert validate(str(tmp_path / "r.zarr")) == []


def test_block_waits_and_drops_nothing(tmp_path):
    store = local(tmp_path / "r.zarr", SlowStore, delay_s=0.01)
    rec = Recorder(
        store, num_envs=N, fps=30, block_frames=4, max_queue_bytes=_queue_bytes(2), on_full="block"
    )

    def loop():
        for t in range(STEPS):
            assert rec.capture(frames(t, N, H, W))
        rec.close()

    within(120, loop)
    s = rec.stats
    assert s.frames_dropped == 0 and s.frames_written == STEPS
    assert s.blocked_s > 0  # the caller was held back
    assert s.queue_high_water_bytes <= s.queue_capacity_bytes == _queue_bytes(2)
    run = open_run(tmp_path / "r.zarr")
    assert run.counters["dropped_frames"] == 0
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames(t, N, H, W) for t in range(STEPS)])
    )
