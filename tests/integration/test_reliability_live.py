"""A live recording: failing disks under the real Recorder, and readers while it appends.

Write failures here complement ``test_recorder_failures.py`` (chunk writes failing, a disk that
fills once, a dead writer thread): these fail the *metadata* writes of the commit protocol (array
resizes, the commit record), fill the disk and free it again, and inject seeded random faults
into every kind of write, checking each time that the loop never hangs, the store holds exactly
the blocks that committed (equal to the generator), and its counters add up.
"""

from __future__ import annotations

import random
import threading
import time
import warnings

import numpy as np
import pytest
from reliability_helpers import DiskFullStore, FlakyStore, wait_until, within
from store_helpers import frames_for
from zarr.storage import LocalStore

from envreel.capture import Recorder
from envreel.schemas import RecorderError, StoreFormatError, open_run, validate
from envreel.tools import kill_trials as kt

N, H, W = 2, 8, 8


def frames(step: int) -> np.ndarray:
    return frames_for(step, 1, N, H, W)[0]


def _record(rec: Recorder, steps, *, reward=True) -> None:
    for t in steps:
        rec.capture(frames(t), step=t, reward=np.full(N, t, np.float32) if reward else None)


def _check_committed(path, *, captured: int, exact_counters: bool = True) -> open_run:
    """The store is valid, each committed frame equals the generator for its step, and the
    counters add up: committed + dropped_frames == captured."""
    assert validate(path) == [], validate(path)
    run = open_run(path)
    steps = run.frame_values("step")
    assert np.all(np.diff(steps) > 0)
    np.testing.assert_array_equal(run.env_frames(), np.stack([frames(int(t)) for t in steps]))
    np.testing.assert_array_equal(run.scalar("reward"), np.repeat(steps[:, None], N, 1))
    if exact_counters:
        assert run.num_frames + run.counters["dropped_frames"] == captured, (
            run.num_frames,
            run.counters,
            captured,
        )
    return run


# ---- the commit protocol's metadata writes fail --------------------------------------------------
def _fail_keys(match, indexes):
    """A should_fail that fails the given occurrences (0-based) of writes to keys ``match``."""
    seen = {"n": 0}

    def should_fail(_i, key):
        if not match(key):
            return False
        seen["n"] += 1
        return seen["n"] - 1 in indexes

    return should_fail


@pytest.mark.parametrize(
    "what, match, nth, kept",
    [
        # the 2nd commit record from now is block 1's
        (
            "the commit record (root zarr.json)",
            lambda k: k == "zarr.json",
            1,
            [*range(4), *range(8, 20)],
        ),
        # arrays grow 16 blocks ahead, so the 1st resize from now is block 0's
        (
            "an array resize (env/reward/zarr.json)",
            lambda k: k == "env/reward/zarr.json",
            0,
            [*range(4, 20)],
        ),
    ],
)
def test_warn_failed_metadata_write_loses_one_block_and_counts_it(tmp_path, what, match, nth, kept):
    path = tmp_path / "r.zarr"
    store = FlakyStore(LocalStore(str(path)), lambda i, k: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recorder(store, num_envs=N, fps=30, block_frames=4, on_error="warn")
        _record(rec, [0])  # creates the store
        store.should_fail = _fail_keys(match, {nth})
        within(30, lambda: (_record(rec, range(1, 20)), rec.close()))
    ours = [str(w.message) for w in caught if "envreel recorder" in str(w.message)]
    assert len(ours) == 1 and "Input/output error" in ours[0], ours
    s = rec.stats
    assert (s.write_errors, s.frames_dropped, s.frames_written) == (1, 4, 16), (what, s)
    run = _check_committed(path, captured=20)
    # The failed block is gone from the store (not committed later behind the counters' back).
    np.testing.assert_array_equal(run.frame_values("step"), kept)
    assert run.counters == {"dropped_frames": 4, "write_errors": 1}
    assert any("Input/output error" in e for e in run.errors) and run.closed


def test_raise_failed_commit_record_raises_on_next_capture(tmp_path):
    path = tmp_path / "r.zarr"
    store = FlakyStore(LocalStore(str(path)), lambda i, k: False)
    rec = Recorder(store, num_envs=N, fps=30, block_frames=4, on_error="raise")
    _record(rec, [0])
    store.should_fail = _fail_keys(lambda k: k == "zarr.json", {1})

    def loop():
        for t in range(1, 400):
            rec.capture(frames(t), step=t, reward=np.full(N, t, np.float32))

    with pytest.raises(RecorderError, match=r"Input/output error.*zarr\.json") as info:
        within(30, loop)
    assert "every block committed before it (4 frames)" in str(info.value)
    within(30, rec.close)  # reported once; close is quiet and does not hang
    run = open_run(path)
    assert run.num_frames == 4 and run.counters["write_errors"] == 1
    _check_committed(path, captured=0, exact_counters=False)


def test_full_disk_for_everything_is_reported_at_close_and_leaves_the_last_commit(tmp_path):
    path = tmp_path / "r.zarr"
    store = DiskFullStore(LocalStore(str(path)))
    rec = Recorder(store, num_envs=N, fps=30, block_frames=4, on_error="warn")
    _record(rec, range(8))
    wait_until(lambda: rec.stats.frames_written == 8)
    store.budget = store.written  # not one more byte: chunks, resizes, counters, close all fail
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        within(30, lambda: (_record(rec, range(8, 30)), rec.close()))
    messages = [str(w.message) for w in caught]
    assert any("No space left on device" in m for m in messages), messages
    s = rec.stats
    assert s.frames_written == 8 and s.frames_dropped == 22 and s.write_errors >= 5
    run = _check_committed(path, captured=30, exact_counters=False)
    # Nothing more could be written, so the store shows the last commit: 8 frames, not closed.
    assert run.num_frames == 8 and not run.closed and run.counters["dropped_frames"] == 0


def test_disk_full_then_freed_resumes_and_counts_the_gap(tmp_path):
    path = tmp_path / "r.zarr"
    store = DiskFullStore(LocalStore(str(path)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recorder(store, num_envs=N, fps=30, block_frames=4, on_error="warn")
        _record(rec, range(8))
        wait_until(lambda: rec.stats.frames_written == 8)
        store.budget = store.written  # full
        _record(rec, range(8, 16))
        wait_until(lambda: rec.stats.frames_dropped == 8)
        store.budget = None  # space freed
        within(30, lambda: (_record(rec, range(16, 26)), rec.close()))
    assert sum("envreel recorder" in str(w.message) for w in caught) == 1
    run = _check_committed(path, captured=26)
    np.testing.assert_array_equal(run.frame_values("step"), [*range(8), *range(16, 26)])
    assert run.counters == {"dropped_frames": 8, "write_errors": 2} and run.closed
    assert all("No space left on device" in e for e in run.errors)
    # One clip, with a hole in its steps where the disk was full.
    (clip,) = run.clips
    assert (clip.start_frame, clip.stop_frame, clip.start_step, clip.stop_step) == (0, 18, 0, 26)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_random_write_faults_never_hang_or_lie(tmp_path, seed, on_error):
    """Seeded random EIO on any write (chunks, shards, resizes, commit records) while recording."""
    rng = random.Random(seed)
    rate = rng.choice([0.02, 0.05, 0.15])
    path = tmp_path / "r.zarr"
    store = FlakyStore(LocalStore(str(path)), lambda i, k: False)
    rec = Recorder(store, num_envs=N, fps=30, block_frames=4, on_error=on_error)
    _record(rec, [0])
    fault = random.Random(seed + 1000)
    store.should_fail = lambda i, k: fault.random() < rate
    captured, raised = 1, None

    def loop():
        nonlocal captured
        for t in range(1, 48):
            rec.capture(frames(t), step=t, reward=np.full(N, t, np.float32))
            captured += 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            within(60, loop)
        except RecorderError as exc:
            raised = exc
        store.should_fail = lambda i, k: False  # let close() write the final record
        try:
            within(60, rec.close)
        except RecorderError as exc:
            raised = raised or exc
    s = rec.stats
    if on_error == "warn":
        assert raised is None and captured == 48
        assert (len([w for w in caught if "envreel recorder" in str(w.message)]) == 1) == (
            s.write_errors > 0
        )
        run = _check_committed(path, captured=48)
        assert run.num_frames == s.frames_written
        assert run.counters["write_errors"] == s.write_errors
    else:
        assert (raised is not None) == (s.write_errors > 0), (raised, s)
        if raised is not None:
            assert "Input/output error" in str(raised) and str(path.name) in str(raised)
        run = _check_committed(path, captured=captured, exact_counters=raised is None)
        assert run.num_frames == s.frames_written
    assert run.closed


def test_store_that_cannot_be_created_fails_the_first_capture_cleanly(tmp_path):
    """Disk full before the store exists: the first capture raises naming the cause (in either
    mode: there is no store to count errors in), nothing hangs, and no half store opens."""
    path = tmp_path / "r.zarr"
    rec = Recorder(
        DiskFullStore(LocalStore(str(path)), budget=0), num_envs=N, fps=30, on_error="warn"
    )
    with pytest.raises((OSError, RecorderError), match="No space left on device"):
        within(30, lambda: rec.capture(frames(0)))
    within(30, rec.close)
    with pytest.raises(StoreFormatError):
        open_run(path)


# ---- readers while the recorder appends ----------------------------------------------------------
def _reader_checks(path, stop: threading.Event, block: int, seen: list, errors: list) -> None:
    """Open, refresh and read the store over and over; record each committed length seen."""
    rng = random.Random(0)
    live = None
    try:
        while not stop.is_set():
            if live is None:
                try:
                    live = open_run(path)
                except StoreFormatError:
                    continue  # not created yet
            for run in (live.refresh(), open_run(path)):
                n = run.num_frames
                assert not seen or n >= seen[-1], f"committed frames went back: {seen[-1]} -> {n}"
                assert run.closed or n % block == 0, n
                seen.append(n)
                if n == 0:
                    continue
                np.testing.assert_array_equal(run.frame_values("step"), np.arange(n))
                last = slice(n - block, n)
                t0 = rng.randrange(0, n - block + 1)
                for sl in (last, slice(t0, t0 + block)):
                    np.testing.assert_array_equal(
                        run.env_frames(None, sl.start, sl.stop),
                        frames_for(sl.start, block, N, H, W),
                    )
                    np.testing.assert_array_equal(
                        run.scalar("reward", sl.start, sl.stop)[:, 0], np.arange(sl.start, sl.stop)
                    )
            if len(seen) % 10 == 0:
                assert validate(path) == []
    except BaseException as exc:  # noqa: BLE001 - reported on the test's thread
        errors.append(exc)


def test_reader_thread_sees_a_consistent_committed_prefix(tmp_path):
    path = tmp_path / "live.zarr"
    stop, seen, errors = threading.Event(), [], []
    reader = threading.Thread(target=_reader_checks, args=(path, stop, 4, seen, errors))
    reader.start()
    try:
        rec = Recorder(path, num_envs=N, fps=30, block_frames=4)
        for t in range(160):
            rec.capture(frames(t), step=t, reward=np.full(N, t, np.float32))
            if t % 8 == 0:
                time.sleep(0.01)  # let the reader interleave with the commits
        rec.close()
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join(60)
    assert not reader.is_alive()
    if errors:
        raise errors[0]
    assert len(set(seen)) >= 5, sorted(set(seen))  # it really watched the store grow
    assert open_run(path).num_frames == 160


@pytest.mark.slow
def test_reader_process_view_of_a_recording_killed_midway(tmp_path):
    """The recorder runs in another process (the kill-trial child, with its writer process if
    it uses one); this process reads while it appends, then the recording is killed and the
    final store is checked in full."""
    p = kt.TrialParams(seed=0, num_envs=3, height=8, width=8, global_shape=(6, 6), block_frames=4)
    store, log = tmp_path / "run.zarr", tmp_path / "log.txt"
    proc = kt.start_child(store, log, p)
    seen = []
    try:
        wait_until(lambda: log.exists() and "C " in log.read_text(), 60)
        live = None
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            try:
                live = live.refresh() if live is not None else open_run(store)
            except StoreFormatError:
                continue
            n = live.num_frames
            assert not seen or n >= seen[-1]
            assert n % p.block_frames == 0
            seen.append(n)
            if n:
                b = slice(n - p.block_frames, n)
                np.testing.assert_array_equal(
                    live.env_frames(None, b.start, b.stop),
                    frames_for(b.start, p.block_frames, 3, 8, 8),
                )
                np.testing.assert_array_equal(live.frame_values("step", 0, n), np.arange(n))
    finally:
        outlived = kt.kill_child(proc, "group")
        proc.stderr.close()
    assert outlived is None
    assert len(set(seen)) >= 3, sorted(set(seen))
    _, _, captured, written = kt._read_log(log)
    assert kt.check_store(store, p, captured=captured, written=written) == []
