"""Recording windows: which steps are kept, with which clip id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envreel.capture._windows import Windows


def kept(win: Windows, steps) -> list[tuple[int, int]]:
    out = []
    for s in steps:
        c = win.decide(s)
        if c is not None:
            out.append((s, c))
    return out


def test_whole_run_is_clip_zero():
    assert kept(Windows(), range(5)) == [(s, 0) for s in range(5)]


def test_stride_and_offset_without_windows():
    assert kept(Windows(step_offset=3, frame_stride=4), range(20)) == [
        (3, 0),
        (7, 0),
        (11, 0),
        (15, 0),
        (19, 0),
    ]


def test_automatic_windows_gymnasium_style():
    win = Windows(video_length=3, video_interval=10)
    assert kept(win, range(25)) == [
        (0, 0),
        (1, 0),
        (2, 0),
        (10, 1),
        (11, 1),
        (12, 1),
        (20, 2),
        (21, 2),
        (22, 2),
    ]


def test_single_window_without_interval():
    assert kept(Windows(video_length=2, step_offset=5), range(20)) == [(5, 0), (6, 0)]


def test_windows_with_step_gaps_and_skipped_windows_keep_dense_ids():
    win = Windows(video_length=4, video_interval=10)
    # Only every 3rd step is captured and window 1 (steps 10..13) gets no capture at all.
    assert kept(win, [0, 3, 6, 9, 15, 21, 24]) == [(0, 0), (3, 0), (21, 1)]


def test_manual_clips():
    win = Windows(frame_stride=2)
    win.stop_clip()
    assert not win.is_open
    assert win.decide(0) is None
    win.start_clip()
    assert [win.decide(s) for s in (1, 2, 3)] == [0, None, 0]
    win.start_clip()  # cuts: a new clip
    assert win.decide(4) == 1
    win.stop_clip()
    win.start_clip()
    win.stop_clip()  # an empty clip takes no id
    win.start_clip()
    assert win.decide(9) == 2


def test_manual_calls_refused_with_automatic_windows():
    win = Windows(video_length=5)
    with pytest.raises(RuntimeError, match="manual clips"):
        win.start_clip()
    with pytest.raises(RuntimeError, match="manual clips"):
        win.stop_clip()


@given(
    length=st.integers(1, 12),
    extra=st.integers(0, 12),
    offset=st.integers(0, 15),
    stride=st.integers(1, 5),
)
def test_windows_match_a_reference(length, extra, offset, stride):
    interval = length + extra
    win = Windows(
        video_length=length, video_interval=interval, step_offset=offset, frame_stride=stride
    )
    got = kept(win, range(120))
    want = []
    for s in range(120):
        r = s - offset
        if r >= 0 and r % interval < length and (r % interval) % stride == 0:
            want.append((s, r // interval))
    assert got == want
    ids = [c for _, c in got]
    assert ids == sorted(ids)  # clip ids never go back: clips are contiguous in the store


@given(
    length=st.one_of(st.none(), st.integers(1, 8)),
    extra=st.one_of(st.none(), st.integers(0, 8)),
    offset=st.integers(0, 10),
    stride=st.integers(1, 4),
    ops=st.lists(st.sampled_from(["step", "skip", "stop", "start"]), max_size=60),
)
def test_keeps_predicts_decide_and_changes_nothing(length, extra, offset, stride, ops):
    """``keeps(step)`` (what ``Recorder.wants`` asks) says what ``decide(step)`` will do."""
    interval = None if length is None or extra is None else length + extra
    win = Windows(
        video_length=length, video_interval=interval, step_offset=offset, frame_stride=stride
    )
    twin = Windows(
        video_length=length, video_interval=interval, step_offset=offset, frame_stride=stride
    )
    step = 0
    for op in ops:
        if op in ("stop", "start"):
            if length is None:  # manual clips only
                getattr(win, f"{op}_clip")()
                getattr(twin, f"{op}_clip")()
            continue
        step += 1 if op == "step" else 3
        for _ in range(3):  # asking is free: any number of times, same answer
            predicted = win.keeps(step)
        assert predicted == (win.decide(step) is not None)
        twin.decide(step)
    # Asking never changed a clip id: the twin, never asked, decides the same.
    assert [win.decide(s) for s in range(step + 1, step + 30)] == [
        twin.decide(s) for s in range(step + 1, step + 30)
    ]
