"""Episode index and step from done flags: the rules of the Recorder's docstring."""

from __future__ import annotations

import numpy as np
import pytest

from envreel.capture._episodes import EpisodeChain, Episodes


def _as_host(a):
    return (False, a)


def simulate(
    mode, steps, done, stale=None, stored=None, *, n=None, block=4, as_flag=_as_host, batch=0
):
    """Feed capture() calls through both halves as the Recorder and its writer do.

    With ``batch``, the flags of calls that store nothing go to ``skipped_steps`` up to
    ``batch`` at a time (``Recorder.count_done``), before the next call of another kind.

    Returns (episode, episode_step) per stored frame, derived by the writer's chain a block at
    a time from what the caller put in the ring.
    """
    n = n or len(next(d for d in done if d is not None))
    eps, chain = Episodes(n, autoreset=mode), EpisodeChain(n, autoreset=mode)
    ring: list[tuple] = []
    pending: list[tuple] = []

    def count_pending():
        if pending:
            eps.first(pending[0][0], as_flag(pending[0][1]), None)
            eps.skipped_steps([p[0] for p in pending], as_flag(np.stack([p[1] for p in pending])))
            pending.clear()

    for k, s in enumerate(steps):
        d = None if done[k] is None else np.asarray(done[k], bool)
        skipped = stored is not None and not stored[k]
        if batch and skipped and d is not None:
            pending.append((s, d))
            if len(pending) == batch:
                count_pending()
            continue
        count_pending()
        flag = None if d is None else as_flag(d)
        eps.first(s, flag, None)
        if skipped:
            eps.skipped(s, flag, None)
            continue
        gaps = eps.snapshot()
        snap = gaps is not None
        g = np.zeros((2, n), np.int64) if gaps is None else np.array(_numpy(gaps))
        ring.append((snap, g, s, np.zeros(n, bool) if d is None else d, stale_of(stale, k, n)))
    count_pending()
    out = []
    for b in range(0, len(ring), block):
        part = ring[b : b + block]
        episode, step = chain.frames(
            np.array([r[0] for r in part]),
            np.stack([r[1] for r in part]),
            np.array([r[2] for r in part]),
            np.stack([r[3] for r in part]),
            np.zeros((len(part), n), bool),
            np.stack([r[4] for r in part]),
        )
        out += list(zip(episode.tolist(), step.tolist(), strict=True))
    return out


def _numpy(x):
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


def stale_of(stale, k, n):
    return np.zeros(n, bool) if stale is None or stale[k] is None else np.asarray(stale[k], bool)


def reference(mode, steps, done, stale=None, stored=None, *, n=None):
    """The documented rule, one env and one call at a time."""
    n = n or len(next(d for d in done if d is not None))
    count = np.zeros(n, np.int64)
    last = np.full(n, steps[0] if mode == "same_step" else steps[0] - 1, np.int64)
    out = []
    for k, s in enumerate(steps):
        d = np.zeros(n, bool) if done[k] is None else np.asarray(done[k], bool)
        if stored is None or stored[k]:
            st = stale_of(stale, k, n)
            if mode == "same_step":
                new = d & ~st
                out.append(((count + new).tolist(), np.where(new, 0, s - last).tolist()))
            else:
                out.append((count.tolist(), (s - last - 1).tolist()))
        count = count + d
        last = np.where(d, s, last)
    return out


def test_same_step_done_frame_starts_the_new_episode():
    done = [[0, 0], [0, 0], [1, 0], [0, 0], [0, 1], [0, 0]]
    got = simulate("same_step", range(6), done)
    assert [e for e, _ in got] == [[0, 0], [0, 0], [1, 0], [1, 0], [1, 1], [1, 1]]
    assert [s for _, s in got] == [[0, 0], [1, 1], [0, 2], [1, 3], [2, 0], [3, 1]]


def test_same_step_stale_done_frame_keeps_the_finished_episode():
    done = [[0], [0], [1], [0], [0]]
    stale = [[0], [0], [1], [0], [0]]
    got = simulate("same_step", range(5), done, stale)
    # the stale frame shows the old episode's last step; the reset was at step 2
    assert got == [([0], [0]), ([0], [1]), ([0], [2]), ([1], [1]), ([1], [2])]


def test_next_step_done_frame_is_the_last_of_its_episode():
    done = [[0], [1], [0], [0], [1], [0]]
    got = simulate("next_step", range(6), done)
    assert got == [([0], [0]), ([0], [1]), ([1], [0]), ([1], [1]), ([1], [2]), ([2], [0])]


def test_counting_continues_across_frames_with_no_flags():
    got = simulate("same_step", [0, 1, 2, 5], [[1], None, None, [0]])
    assert got == [([1], [0]), ([1], [1]), ([1], [2]), ([1], [5])]


def test_first_step_is_the_start_of_episode_zero():
    got = simulate("same_step", [7, 8, 9], [[0], [0], [0]], stored=[False, True, True])
    assert got == [([0], [1]), ([0], [2])]
    got = simulate("next_step", [7, 8, 9], [[0], [0], [0]])
    assert got == [([0], [0]), ([0], [1]), ([0], [2])]


def test_flags_of_calls_that_store_nothing_are_counted():
    # env 0 is done at step 2, not stored; env 1 at step 4, stored; env 0 again at 6, not stored
    done = [[0, 0], [0, 0], [1, 0], [0, 0], [0, 1], [0, 0], [1, 0], [0, 0]]
    stored = [True, True, False, True, True, False, False, True]
    got = simulate("same_step", range(8), done, stored=stored)
    assert got == [
        ([0, 0], [0, 0]),
        ([0, 0], [1, 1]),
        ([1, 0], [1, 3]),
        ([1, 1], [2, 0]),
        ([2, 1], [1, 3]),
    ]
    assert got == reference("same_step", range(8), done, stored=stored)


@pytest.mark.parametrize("mode", ["same_step", "next_step"])
@pytest.mark.parametrize("block", [1, 3, 8])
@pytest.mark.parametrize("batch", [0, 2, 64])  # skipped calls one by one, or count_done's way
def test_random_flags_windows_and_steps_match_the_rule(mode, block, batch):
    rng = np.random.default_rng(block + 10 * batch)
    for trial in range(20):
        t, n = int(rng.integers(1, 80)), int(rng.integers(1, 6))
        gaps = rng.integers(1, 4, t) if trial % 2 else np.ones(t, np.int64)  # or consecutive
        steps = np.cumsum(gaps) + int(rng.integers(0, 5))
        done = rng.random((t, n)) < 0.25
        done_in = [None if rng.random() < 0.1 else d for d in done]
        stale = done & (rng.random((t, n)) < 0.5)
        stored = rng.random(t) < rng.choice([0.1, 0.3, 0.8, 1.0])
        want = reference(mode, steps.tolist(), done_in, stale, stored, n=n)
        got = simulate(mode, steps.tolist(), done_in, stale, stored, n=n, block=block, batch=batch)
        assert got == want, (mode, trial)


def test_torch_state_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    done = rng.random((40, 5)) < 0.2
    stale = done & (rng.random((40, 5)) < 0.5)
    stored = rng.random(40) < 0.6

    def on_device(a):
        return (True, torch.from_numpy(a))

    for mode in ("same_step", "next_step"):
        want = reference(mode, list(range(40)), done, stale, stored)
        # Episodes moves its counters to the flags' device: the CUDA code path, on the CPU
        got = simulate(mode, range(40), done, stale, stored, as_flag=on_device)
        assert got == want, mode


@pytest.mark.parametrize("consecutive", [True, False])
def test_torch_batches_match_numpy(consecutive):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    steps = list(range(0, 120, 1 if consecutive else 3))
    done = rng.random((len(steps), 5)) < 0.2
    stale = done & (rng.random((len(steps), 5)) < 0.5)
    stored = rng.random(len(steps)) < 0.2

    def on_device(a):
        return (True, torch.from_numpy(a))

    for mode in ("same_step", "next_step"):
        want = reference(mode, steps, done, stale, stored)
        # the CUDA code path on the CPU, as above
        got = simulate(mode, steps, done, stale, stored, as_flag=on_device, batch=16)
        assert got == want, mode
