"""Episode index and step from done flags: the rules of the Recorder's docstring."""

from __future__ import annotations

import numpy as np
import pytest
from envreel.capture._episodes import Episodes, derive


def _frame(eps: Episodes, s, done, stale, as_flag):
    """One capture(): snapshot, then count; return (episode, episode_step) as the writer derives
    them from the snapshot and the frame's own flags."""
    n = eps.num_envs
    flag = None if done is None else as_flag(np.asarray(done, bool))
    d = eps.before(s, flag, None)
    state = eps.state if isinstance(eps.state, np.ndarray) else eps.state.cpu().numpy()
    state = np.array(state)
    eps.update(s, d)
    term = np.zeros(n, bool) if done is None else np.asarray(done, bool)
    st = np.zeros(n, bool) if stale is None else np.asarray(stale, bool)
    episode, step = derive(
        state[None], np.array([s]), term[None], np.zeros((1, n), bool), st[None], eps.autoreset
    )
    return episode[0].tolist(), step[0].tolist()


def run(eps: Episodes, steps, done, stale=None):
    """Feed frames; return (episode, episode_step) per frame as the writer derives them."""
    return [
        _frame(eps, s, done[k], None if stale is None else stale[k], lambda a: (False, a))
        for k, s in enumerate(steps)
    ]


def test_same_step_done_frame_starts_the_new_episode():
    done = [[0, 0], [0, 0], [1, 0], [0, 0], [0, 1], [0, 0]]
    got = run(Episodes(2, autoreset="same_step"), range(6), done)
    assert [e for e, _ in got] == [[0, 0], [0, 0], [1, 0], [1, 0], [1, 1], [1, 1]]
    assert [s for _, s in got] == [[0, 0], [1, 1], [0, 2], [1, 3], [2, 0], [3, 1]]


def test_same_step_stale_done_frame_keeps_the_finished_episode():
    done = [[0], [0], [1], [0], [0]]
    stale = [[0], [0], [1], [0], [0]]
    got = run(Episodes(1, autoreset="same_step"), range(5), done, stale)
    # the stale frame shows the old episode's last step; the reset was at step 2
    assert got == [([0], [0]), ([0], [1]), ([0], [2]), ([1], [1]), ([1], [2])]


def test_next_step_done_frame_is_the_last_of_its_episode():
    done = [[0], [1], [0], [0], [1], [0]]
    got = run(Episodes(1, autoreset="next_step"), range(6), done)
    assert got == [([0], [0]), ([0], [1]), ([1], [0]), ([1], [1]), ([1], [2]), ([2], [0])]


def test_counting_continues_across_frames_with_no_flags():
    got = run(Episodes(1, autoreset="same_step"), [0, 1, 2, 5], [[1], None, None, [0]])
    assert got == [([1], [0]), ([1], [1]), ([1], [2]), ([1], [5])]


def test_torch_state_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    done = rng.random((40, 5)) < 0.2
    stale = done & (rng.random((40, 5)) < 0.5)
    for mode in ("same_step", "next_step"):
        want = run(Episodes(5, autoreset=mode), range(40), done, stale)
        eps = Episodes(5, autoreset=mode)
        eps._to_device(torch.device("cpu"))  # the CUDA code path, on the CPU
        got = [
            _frame(eps, s, done[s], stale[s], lambda a: (True, torch.from_numpy(a)))
            for s in range(40)
        ]
        assert got == want, mode
