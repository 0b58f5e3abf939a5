"""``Recorder.wants`` and ``capture(None, ...)``: steps outside the recording windows pass only
their done flags, so the caller renders nothing there, and the stored episodes are the same as
when every frame is passed."""

from __future__ import annotations

import numpy as np
import pytest
from recorder_helpers import frames, global_frame

from envreel.capture import Recorder
from envreel.schemas import open_run, validate

N, H, W = 5, 6, 8
GH, GW = 4, 6
STEPS = 60


def _flags(step: int) -> tuple[np.ndarray, np.ndarray]:
    """Done flags of a staggered schedule with a few envs done twice in a row."""
    e = np.arange(N)
    terminated = (step + 2 * e) % (5 + e) == 0
    truncated = (step % 13 == 0) & (e % 2 == 0)
    return terminated, truncated


def _reference_episodes(steps, autoreset: str) -> tuple[np.ndarray, np.ndarray]:
    """Episode index and step of every env at ``steps`` (0..), written independently."""
    episode = np.zeros((len(steps), N), np.int64)
    episode_step = np.zeros((len(steps), N), np.int64)
    count, last = np.zeros(N, np.int64), np.full(N, steps[0] - (autoreset == "next_step"))
    for t, step in enumerate(steps):
        done = np.logical_or(*_flags(step))
        if autoreset == "same_step":
            episode[t] = count + done
            episode_step[t] = np.where(done, 0, step - last)
        else:
            episode[t] = count
            episode_step[t] = step - last - 1
        count += done
        last = np.where(done, step, last)
    return episode, episode_step


def _record(path, *, skip, autoreset: str = "same_step", manual: bool = False, **windows):
    """Record STEPS steps; outside the windows, ``skip`` False passes the frames anyway, True
    calls ``capture(None, ...)``, "batch" hands the flags to ``count_done`` 3 steps at a time
    (and before anything else reaches the recorder)."""
    rec = Recorder(
        path,
        num_envs=N,
        fps=30,
        env_frame_shape=(H, W),
        global_frame_shape=(GH, GW),
        block_frames=4,
        autoreset=autoreset,
        writer="thread",
        **windows,
    )
    asked = []
    idle: tuple[list[int], list[np.ndarray]] = ([], [])

    def count_idle():
        if idle[0]:
            rec.count_done(idle[0], np.stack(idle[1]))
            idle[0].clear(), idle[1].clear()

    for step in range(STEPS):
        if manual and step in (20, 35):
            count_idle()
            rec.stop_clip() if step == 20 else rec.start_clip()
        terminated, truncated = _flags(step)
        wanted = rec.wants(step)
        asked.append(wanted)
        if skip == "batch" and not wanted:
            idle[0].append(step)
            idle[1].append(terminated | truncated)
            if len(idle[0]) == 3:
                count_idle()
            continue
        count_idle()
        if skip and not wanted:
            assert rec.capture(None, step=step, terminated=terminated, truncated=truncated) is False
            continue
        kept = rec.capture(
            frames(step, N, H, W),
            global_frame(step, GH, GW),
            step=step,
            reward=np.full(N, step, np.float32),
            terminated=terminated,
            truncated=truncated,
        )
        assert kept == wanted
    count_idle()
    rec.close()
    return rec, asked


WINDOWS = [
    {"video_length": 4, "video_interval": 9, "step_offset": 3, "frame_stride": 2},
    {"video_length": 5, "step_offset": 7},  # one window
    {"step_offset": 10, "frame_stride": 3},  # no windows: everything from step 10, every 3rd
    {"manual": True, "frame_stride": 2},  # manual clips: stopped for steps 20..34
]


@pytest.mark.parametrize("windows", WINDOWS)
@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
@pytest.mark.parametrize("skip", [True, "batch"])
def test_counting_flags_outside_windows_gives_the_same_episodes(tmp_path, windows, autoreset, skip):
    every, asked = _record(tmp_path / "every.zarr", skip=False, autoreset=autoreset, **windows)
    skipped, asked_too = _record(tmp_path / "skip.zarr", skip=skip, autoreset=autoreset, **windows)
    assert asked == asked_too and 0 < sum(asked) < STEPS
    a, b = open_run(tmp_path / "every.zarr"), open_run(tmp_path / "skip.zarr")
    assert not validate(tmp_path / "skip.zarr")
    kept = [s for s in range(STEPS) if asked[s]]
    assert a.frame_values("step").tolist() == b.frame_values("step").tolist() == kept
    assert [(c.id, c.start_step, c.stop_step) for c in a.clips] == [
        (c.id, c.start_step, c.stop_step) for c in b.clips
    ]
    for name in ("episode", "episode_step", "terminated", "truncated", "reward"):
        np.testing.assert_array_equal(a.scalar(name), b.scalar(name), name)
    np.testing.assert_array_equal(b.env_frames(), np.stack([frames(s, N, H, W) for s in kept]))
    np.testing.assert_array_equal(
        b.global_frames(), np.stack([global_frame(s, GH, GW) for s in kept])
    )
    episode, episode_step = _reference_episodes(list(range(STEPS)), autoreset)
    np.testing.assert_array_equal(b.scalar("episode"), episode[kept])
    np.testing.assert_array_equal(b.scalar("episode_step"), episode_step[kept])
    assert skipped.stats.steps == every.stats.steps == STEPS
    assert skipped.stats.frames_captured == len(kept)


def test_counting_torch_flags_outside_windows(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, video_length=2, video_interval=7, writer="thread")
    for step in range(30):
        terminated, truncated = (torch.from_numpy(f) for f in _flags(step))
        rgb = torch.from_numpy(frames(step, N, H, W)) if rec.wants(step) else None
        rec.capture(rgb, step=step, terminated=terminated, truncated=truncated)
    rec.close()
    run = open_run(path)
    kept = [0, 1, 7, 8, 14, 15, 21, 22, 28, 29]
    assert run.frame_values("step").tolist() == kept
    episode, episode_step = _reference_episodes(list(range(30)), "same_step")
    np.testing.assert_array_equal(run.scalar("episode"), episode[kept])
    np.testing.assert_array_equal(run.scalar("episode_step"), episode_step[kept])


def test_wants(tmp_path):
    rec = Recorder(
        tmp_path / "r.zarr",
        num_envs=N,
        fps=30,
        video_length=3,
        video_interval=10,
        step_offset=2,
        writer="thread",
    )
    assert [s for s in range(30) if rec.wants(s)] == [2, 3, 4, 12, 13, 14, 22, 23, 24]
    assert not rec.wants()  # the next step: 0
    rec.capture(None, step=11)
    assert rec.wants()  # 12
    rec.capture(frames(12, N, H, W))
    assert rec.wants() and rec.wants(14) and not rec.wants(15)
    assert rec.stats.steps == 2 and rec.stats.frames_captured == 1
    rec.close()
    assert not rec.wants(13)  # closed: nothing is wanted any more
    run = open_run(tmp_path / "r.zarr")
    assert run.frame_values("step").tolist() == [12]


def test_wants_with_manual_clips_and_stride(tmp_path):
    rec = Recorder(tmp_path / "r.zarr", num_envs=N, fps=30, frame_stride=3, writer="thread")
    assert rec.wants(5)  # the clip's first capture sets where the stride counts from
    rec.capture(frames(5, N, H, W), step=5)
    assert [s for s in range(6, 15) if rec.wants(s)] == [8, 11, 14]
    rec.stop_clip()
    assert not rec.wants(8)
    rec.capture(None, step=8)
    rec.start_clip()
    assert rec.wants(9)
    rec.close()


def test_capture_none_inside_a_window_raises_and_records_nothing(tmp_path):
    rec = Recorder(
        tmp_path / "r.zarr", num_envs=N, fps=30, video_length=3, video_interval=6, writer="thread"
    )
    terminated = np.zeros(N, bool)
    terminated[1] = True
    assert rec.capture(frames(0, N, H, W), step=0)
    with pytest.raises(ValueError, match="env_rgb is None at step 1, which is inside a recording"):
        rec.capture(None, step=1, terminated=terminated)
    with pytest.raises(ValueError, match=r"inside a recording window \(wants\(step\) is True\)"):
        rec.capture(None, terminated=terminated)  # step None: the next one, 1
    assert rec.stats.steps == 1
    # Bad input outside a window is refused as well, before anything is counted.
    with pytest.raises(ValueError, match="global_rgb was given without env_rgb"):
        rec.capture(None, global_frame(4, GH, GW), step=4)
    with pytest.raises(ValueError, match="terminated"):
        rec.capture(None, step=4, terminated=np.zeros(N + 1, bool))
    assert rec.stats.steps == 1
    # Step 1 was not taken by the refused calls: it can still be captured, and its flag counts.
    assert rec.capture(frames(1, N, H, W), step=1, terminated=terminated)
    with pytest.raises(ValueError, match="step"):
        rec.capture(None, step=1)  # steps must increase, for skipped steps too
    rec.capture(None, step=3, terminated=terminated)
    rec.capture(frames(6, N, H, W), step=6)
    rec.close()
    run = open_run(tmp_path / "r.zarr")
    assert run.frame_values("step").tolist() == [0, 1, 6]
    assert run.scalar("episode")[:, 1].tolist() == [0, 1, 2]
    assert rec.stats.steps == 4


def test_a_run_of_skipped_steps_only_is_an_empty_valid_run(tmp_path):
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, env_frame_shape=(H, W), step_offset=100)
    for step in range(5):
        assert rec.capture(None, step=step, terminated=np.ones(N, bool)) is False
    rec.close()
    run = open_run(path)
    assert run.num_frames == 0 and run.closed and not validate(path)
    assert rec.stats.steps == 5 and rec.stats.frames_captured == 0


@pytest.mark.parametrize("gaps", [False, True])
def test_count_done_takes_torch_flags(tmp_path, gaps):
    """Torch flags, all the idle steps up to a window in one call; with ``gaps`` every other
    idle step is never given (counting sees only the steps it is given)."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "r.zarr"
    rec = Recorder(path, num_envs=N, fps=30, video_length=2, video_interval=9, writer="thread")
    given = [s for s in range(40) if rec.wants(s) or not (gaps and s % 2)]
    idle: list[int] = []

    def count_idle():
        if idle:
            flags = [torch.from_numpy(np.logical_or(*_flags(s))) for s in idle]
            rec.count_done(list(idle), torch.stack(flags))
            idle.clear()

    for step in given:
        if not rec.wants(step):
            idle.append(step)
            continue
        count_idle()
        terminated, truncated = (torch.from_numpy(f) for f in _flags(step))
        rgb = torch.from_numpy(frames(step, N, H, W))
        assert rec.capture(rgb, step=step, terminated=terminated, truncated=truncated)
    count_idle()
    rec.close()
    run = open_run(path)
    kept = [s for s in given if s % 9 < 2]
    assert run.frame_values("step").tolist() == kept
    episode, episode_step = _reference_episodes(given, "same_step")
    rows = [given.index(s) for s in kept]
    np.testing.assert_array_equal(run.scalar("episode"), episode[rows])
    np.testing.assert_array_equal(run.scalar("episode_step"), episode_step[rows])
    assert rec.stats.steps == len(given)


def test_count_done_refuses_bad_input_and_counts_nothing_of_it(tmp_path):
    rec = Recorder(
        tmp_path / "r.zarr", num_envs=N, fps=30, video_length=2, video_interval=6, writer="thread"
    )
    done = np.zeros((2, N), bool)
    done[1, 3] = True
    assert rec.capture(frames(0, N, H, W), step=0)
    with pytest.raises(ValueError, match=r"step 7 is inside a recording window \(wants\(7\)"):
        rec.count_done([2, 7], done)
    with pytest.raises(ValueError, match="step must increase from call to call: got 2 after 3"):
        rec.count_done([3, 2], done)
    with pytest.raises(ValueError, match=r"shape \(2, 5\) \(steps × envs\), got shape \(2, 4\)"):
        rec.count_done([2, 3], done[:, :4])
    with pytest.raises(TypeError, match="bool .* got float32"):
        rec.count_done([2, 3], done.astype(np.float32))
    with pytest.raises(TypeError, match="step must be an int"):
        rec.count_done([2, 3.5], done)
    with pytest.raises(TypeError, match=r"done is a numpy masked array \(1 masked of 10\)"):
        rec.count_done([2, 3], np.ma.masked_array(done, mask=done))
    with pytest.raises(TypeError, match="steps must be a sequence of step numbers, got 2"):
        rec.count_done(2, done[:1])
    rec.count_done([], np.zeros((0, N), bool))  # nothing to count
    assert rec.stats.steps == 1
    # The refused calls took nothing: steps 2 and 3 can still be counted, and env 3's flag at 3
    # starts its episode 1 at step 6.
    rec.count_done([2, 3], done)
    assert rec.capture(frames(6, N, H, W), step=6)
    rec.close()
    run = open_run(tmp_path / "r.zarr")
    assert run.scalar("episode")[:, 3].tolist() == [0, 1]
    assert run.scalar("episode_step")[:, 3].tolist() == [0, 3]
    assert rec.stats.steps == 4
    with pytest.raises(RuntimeError, match=r"count_done\(\) on a closed Recorder"):
        rec.count_done([8], done[:1])


def test_the_documented_buffered_loop_records_every_window(tmp_path):
    # docs/recording.md: done flags buffered between windows and handed to count_done, asking
    # wants(step); the same store as calling capture(None, ...) every step
    n, steps = 3, 25
    rng = np.random.default_rng(5)
    done = rng.random((steps, n)) < 0.2
    kw = dict(num_envs=n, fps=30, video_length=3, video_interval=10, block_frames=4)
    with Recorder(tmp_path / "each.zarr", **kw) as rec:
        for s in range(steps):
            rec.capture(frames(s, n, 8, 8) if rec.wants(s) else None, step=s, terminated=done[s])
    with Recorder(tmp_path / "buffered.zarr", **kw) as rec:
        kept: list[int] = []
        for s in range(steps):
            if rec.wants(s):
                if kept:
                    rec.count_done(kept, done[kept])
                    kept = []
                rec.capture(frames(s, n, 8, 8), step=s, terminated=done[s])
            else:
                kept.append(s)
    each, buffered = open_run(tmp_path / "each.zarr"), open_run(tmp_path / "buffered.zarr")
    np.testing.assert_array_equal(buffered.frame_values("step"), [0, 1, 2, 10, 11, 12, 20, 21, 22])
    for name in ("episode", "episode_step"):
        np.testing.assert_array_equal(buffered.scalar(name), each.scalar(name))
    np.testing.assert_array_equal(buffered.env_frames(), each.env_frames())
