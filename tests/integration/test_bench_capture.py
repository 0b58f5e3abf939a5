"""bench_capture on tiny inputs: it runs, alternates rounds, and reports an interval."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from envreel.tools import bench_capture
from envreel.tools._interval import median_interval, median_summary


def test_bench_capture_prints_json_with_an_overhead_interval(tmp_path, capsys) -> None:
    argv = ["--device", "cpu", "--steps", "60", "--step-ms", "0.5", "--configs", "4x16x16"]
    argv += ["--baseline-steps", "10", "--block", "10", "--dir", str(tmp_path), "--json"]
    assert bench_capture.main(argv) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["rounds"] == 3 and result["block_steps"] == 10
    lo, hi = result["overhead_ci_pct"]
    assert lo <= result["overhead_pct"] <= hi
    assert result["frames_dropped"] == 0 and result["frames_captured"] == 31  # 1 + 3 × 10
    assert result["sustained_env_frames_per_s"] > 0
    # the 30 timed captures are frames 1-30 of the first 32-frame block: none at its edges
    edges = result["capture_by_block_position"]
    assert edges["block_frames"] == 32 and edges["edge"] is None and edges["inside"]["n"] == 30
    assert edges["slowest_at_edges"] == 0 and edges["edge_share"] == 0
    split = result["capture_time_split"]
    if split is not None:  # Linux: every call's wall time, split
        assert split["slowest"]["n"] == 1 and split["all"]["wall_ms_median"] > 0
        assert split["all"]["cpu_ms_median"] > 0 and split["all"]["wait_ms_median"] >= 0


def test_block_edges_splits_the_captures_that_start_or_end_a_block() -> None:
    # captures 1..10 after the one that started block 0, blocks of 4 frames: frames
    # 1 2 3 0 1 2 3 0 1 2 of their blocks; those at frame 3 or 0 (k = 3, 4, 7, 8) are slow
    times = [t * 1e-3 for t in (1, 1, 9, 8, 1, 1, 9, 8, 1, 2)]
    e = bench_capture.block_edges(times, 4)
    assert e["block_frames"] == 4 and e["edge_share"] == 0.4
    assert e["edge"]["n"] == 4 and e["edge"]["max_ms"] == pytest.approx(9.0)
    assert e["edge"]["median_ms"] == pytest.approx(8.5)
    assert e["inside"]["n"] == 6 and e["inside"]["max_ms"] == pytest.approx(2.0)
    assert e["slowest_at_edges"] == 1.0  # the slowest 1 % (one call) is at an edge
    assert bench_capture.block_edges([1e-3] * 3, 1)["inside"] is None  # every frame an edge


def test_bench_capture_table_names_the_block_edges_only_where_measured(tmp_path, capsys) -> None:
    argv = ["--device", "cpu", "--steps", "80", "--step-ms", "0.5", "--configs", "4x16x16"]
    argv += ["--baseline-steps", "10", "--block", "10", "--dir", str(tmp_path), "--json"]
    assert bench_capture.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    (result,) = out["results"]  # 40 timed captures: frames 31 and 0 of their blocks are edges
    assert result["capture_by_block_position"]["edge"]["n"] == 2
    text = bench_capture.table([result], out["machine"], "cpu")
    assert "Captures that start or end a ring block" in text and "4x16x16: p99 " in text
    if result["capture_time_split"] is not None:
        assert "capture() medians, ms: wall (on the CPU + waiting for a core + blocked)" in text
        assert "4x16x16: all " in text and "; slowest 1% " in text
    result["capture_by_block_position"]["edge"] = None  # measured inside one block only
    assert "ring block" not in bench_capture.table([result], out["machine"], "cpu")


def test_time_split_parts_a_slow_tail_into_cpu_waiting_and_blocked() -> None:
    # 200 calls of 0.1 ms on the CPU; the two slowest (1 %): one waited 0.4 ms for a core,
    # one was blocked 0.6 ms (its CPU and wait leave 0.6 of its 0.7 ms unaccounted)
    wall = [1e-4] * 198 + [5e-4, 7e-4]
    cpu = [1e-4] * 198 + [1e-4, 1e-4]
    wait = [0.0] * 198 + [4e-4, 0.0]
    s = bench_capture.time_split(wall, cpu, wait)
    assert s["all"]["wall_ms_median"] == pytest.approx(0.1)
    assert s["all"]["blocked_ms_median"] == pytest.approx(0.0)
    slow = s["slowest"]
    assert slow["n"] == 2 and slow["wall_ms_mean"] == pytest.approx(0.6)
    assert slow["cpu_ms_mean"] == pytest.approx(0.1)
    assert slow["wait_ms_mean"] == pytest.approx(0.2)
    assert slow["blocked_ms_mean"] == pytest.approx(0.3)
    assert bench_capture.time_split(wall, cpu, [None] * 200) is None  # no schedstat: no split
    assert bench_capture.time_split([], [], []) is None


def test_thread_times_count_this_threads_cpu_and_leave_the_file_read_out() -> None:
    clock = bench_capture.ThreadTimes()
    try:
        a = clock.start()
        x = sum(range(200_000))  # CPU work, a few ms
        b = clock.stop()
    finally:
        clock.close()
    assert x > 0 and b[0] - a[0] > 0.5e-3
    if a[1] is not None:  # Linux: the wait for a core, never negative
        assert b[1] >= a[1]


def test_median_interval_covers_the_median_with_order_statistics() -> None:
    med, lo, hi, cov = median_interval(range(1, 11))
    assert (med, lo, hi) == (5.5, 2, 9) and 0.97 < cov < 0.99
    med, lo, hi, cov = median_interval([3.0, 1.0, 2.0, 4.0])
    assert (med, lo, hi) == (2.5, 1.0, 4.0) and cov == 0.875
    assert median_interval([7.0])[:3] == (7.0, 7.0, 7.0)
    summary = median_summary([3.0, 1.0, 2.0, 4.0])
    assert summary == {"median": 2.5, "low": 1.0, "high": 4.0, "coverage": 0.875}


def test_bench_wrapper_prints_json_with_an_overhead_interval(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from envreel.tools import bench_wrapper

    argv = ["--device", "cpu", "--num-envs", "4", "--size", "16", "--steps", "40"]
    argv += ["--step-ms", "0.5", "--block", "10", "--dir", str(tmp_path), "--json"]
    assert bench_wrapper.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    o = result["overhead_pct"]
    assert result["rounds"] == 2 and o["low"] <= o["median"] <= o["high"]
    assert result["frames_dropped"] == 0 and result["frames_captured"] >= 20
    assert 0 < result["own_ms"]["median"] <= result["own_ms"]["p99"]
    # the mean step's overhead splits exactly into the wrapper's own time and the env's step
    split, env_ms = result["split_pct"], result["env_step_ms"]
    assert split["own"] + split["env_step"] == pytest.approx(split["whole"])
    bare_ms = result["step_ms_bare"]
    assert split["whole"] == pytest.approx(100 * (result["step_ms_recorded"] / bare_ms - 1))
    assert split["env_step"] == pytest.approx(100 * (env_ms["inside"] - env_ms["bare"]) / bare_ms)
    assert 0 < env_ms["bare"] < bare_ms and split["own"] > 0
    text = bench_wrapper.table(result)
    assert f"the wrapper's own time {split['own']:+.2f}%" in text
    # the env's step in parts: on the CPU all of its work is the CPU's, no wait, no GPU time
    parts, parts_pct = result["env_step_parts_ms"], result["env_step_parts_pct"]
    for way in ("bare", "inside"):
        p = parts[way]
        assert p["whole"] == pytest.approx(env_ms[way])
        assert p["work"] + p["wait"] + p["rest"] == pytest.approx(p["whole"])
        assert p["work"] > 0.5 * result["config"]["step_ms"] and p["wait"] == 0
        assert 0 < p["rest"] < p["work"] and p["gpu"] is None
    assert sum(parts_pct[k] for k in ("work", "wait", "rest")) == pytest.approx(split["env_step"])
    assert parts_pct["gpu"] is None and "on the GPU" not in text
    assert f"the rest of its step {parts_pct['rest']:+.2f}%" in text


@pytest.mark.gpu
def test_bench_wrapper_splits_the_env_step_on_cuda_with_its_kernels_gpu_time(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from envreel.tools import bench_wrapper

    argv = ["--device", "cuda", "--num-envs", "4", "--size", "16", "--steps", "200"]
    argv += ["--step-ms", "2", "--block", "20", "--dir", str(tmp_path), "--json"]
    assert bench_wrapper.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames_dropped"] == 0 and result["rounds"] == 5
    parts, parts_pct = result["env_step_parts_ms"], result["env_step_parts_pct"]
    for p in parts.values():
        assert p["work"] + p["wait"] + p["rest"] == pytest.approx(p["whole"])
        # the launches are quick and the sync waits for the kernels, which take about 2 ms
        assert 0 < p["work"] < p["wait"] and 0 < p["rest"]
        assert 1.0 < p["gpu"] < 4.0 and p["gpu"] < p["whole"]
    total = sum(parts_pct[k] for k in ("work", "wait", "rest"))
    assert total == pytest.approx(result["split_pct"]["env_step"])
    gpu_pct = 100 * (parts["inside"]["gpu"] - parts["bare"]["gpu"]) / result["step_ms_bare"]
    assert parts_pct["gpu"] == pytest.approx(gpu_pct)
    assert f"its kernels' time on the GPU {parts_pct['gpu']:+.2f}%" in bench_wrapper.table(result)


def test_bench_wrapper_floor_times_capture_by_hand_and_the_copies_alone(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from envreel.schemas import open_run
    from envreel.tools import bench_wrapper

    argv = ["--device", "cpu", "--num-envs", "4", "--size", "16", "--steps", "40"]
    argv += ["--step-ms", "0.5", "--block", "10", "--dir", str(tmp_path), "--floor", "--json"]
    assert bench_wrapper.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["floor"]) == {"capture", "copies"}
    for o in result["floor"].values():
        assert o["low"] <= o["median"] <= o["high"] and o["own_ms"] > 0
    # capture() by hand stored every step it was given: 20 warm-up steps and 2 rounds of 10
    run = open_run(tmp_path / "by_hand.zarr")
    assert run.num_frames == 40
    pool = bench_capture.make_pool(4, 16, 16)  # what the stand-in's camera renders
    for frame in run.env_frames():
        assert any(np.array_equal(frame, rendered) for rendered in pool)
    text = bench_wrapper.table(result)
    assert "the copies alone" in text and "`Recorder.capture` by hand" in text


def test_bench_wrapper_times_the_wrapper_on_other_writer_thread_counts(
    tmp_path, capsys, monkeypatch
) -> None:
    pytest.importorskip("torch")
    import subprocess

    from envreel.capture import _process
    from envreel.schemas import _chunkwrite, open_run
    from envreel.schemas._chunkwrite import THREADS_ENV
    from envreel.tools import bench_wrapper

    started = []  # the thread count each writer process was started with
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        if _process._BOOT in args[0]:  # a writer process
            started.append(kwargs["env"].get(THREADS_ENV))
        return real_popen(*args, **kwargs)

    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(_process.subprocess, "Popen", popen)
    argv = ["--device", "cpu", "--num-envs", "4", "--size", "16", "--steps", "60"]
    argv += ["--step-ms", "0.5", "--block", "10", "--dir", str(tmp_path), "--json"]
    assert bench_wrapper.main([*argv, "--writer-threads", "2,1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert started == [None, "2", "1"] and THREADS_ENV not in os.environ
    threads = result["writer_threads"]
    assert threads["default"] == _chunkwrite.encode_threads() and set(threads["ways"]) == {"2", "1"}
    for count, t in threads["ways"].items():
        assert t["low"] <= t["median"] <= t["high"] and t["own_ms"] > 0
        d = t["vs_recordenvs_pct"]
        assert d["low"] <= d["median"] <= d["high"] and t["frames_dropped"] == 0
        # each wrapper recorded every step it was given into its own store: 20 warm-up steps
        # and 3 rounds of 10, each frame one the camera rendered
        run = open_run(tmp_path / f"threads{count}.zarr")
        assert run.num_frames == 50
        pool = bench_capture.make_pool(4, 16, 16)
        for frame in run.env_frames():
            assert any(np.array_equal(frame, rendered) for rendered in pool)
    # every recorded way's env step by the ring block's fill: 1 + 20 warm-up captures before
    # the first timed block, so each way's 30 timed steps reach every part of a 32-frame block
    assert result["block_frames"] == 32
    labels = ["0", "1", "2-7", "8-31"]
    assert list(result["env_step_slower_by_fill_us"]) == labels
    assert all(list(t["env_step_slower_by_fill_us"]) == labels for t in threads["ways"].values())
    text = bench_wrapper.table(result)
    assert "RecordEnvs, its writer on 2 encode threads |" in text
    assert "- its writer on 1 encode thread: 0: " in text
    assert "RecordEnvs, its writer on 1 encode thread |" in text


@pytest.mark.parametrize("value", ["0", "2,x", "", "2,2", "-1"])
def test_bench_wrapper_rejects_a_bad_writer_thread_list(value, capsys) -> None:
    from envreel.tools import bench_wrapper

    with pytest.raises(SystemExit):
        bench_wrapper.main(["--writer-threads", value])
    err = capsys.readouterr().err
    assert (
        f"expected distinct positive integers separated by commas (e.g. 4,2,1), got {value!r}"
        in err
    )


def test_bench_wrapper_splits_the_env_step_slowdown_by_the_ring_block_fill() -> None:
    pytest.importorskip("torch")
    from envreel.tools.bench_wrapper import EnvStep, _by_fill

    def steps(*ms):
        return [EnvStep(m / 1e3, m / 1e3, 0.0, 0.0, None) for m in ms]

    bare = steps(5.0, 5.0, 5.0)
    inside = steps(5.1, 5.05, 5.02, 5.04, 5.0, 5.03, 5.06)
    fills = [0, 1, 2, 7, 8, 9, 0]  # two steps right after a hand-off
    by_fill = _by_fill(inside, fills, bare, 10)
    assert list(by_fill) == ["0", "1", "2-7", "8-9"]
    expected = {"0": 80.0, "1": 50.0, "2-7": 30.0, "8-9": 15.0}
    assert by_fill == pytest.approx(expected)
    # a short block leaves out the parts it has no steps in
    assert list(_by_fill(steps(5.1, 5.2), [0, 1], bare, 2)) == ["0", "1"]
