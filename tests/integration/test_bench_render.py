"""bench_render end to end on a tiny store: interleaved rounds, the median run, JSON and table."""

from __future__ import annotations

import json

import pytest

from envreel.tools import bench_render


def test_median_run_picks_a_real_run_and_keeps_the_range():
    runs = [{"fps": f, "way": "envreel", "id": i} for i, f in enumerate([30.0, 10.0, 20.0, 40.0])]
    row = bench_render._median_run(runs)
    assert row["id"] == 2  # the lower middle of 4: a run that happened, not an average
    assert (row["runs"], row["fps_min"], row["fps_max"]) == (4, 10.0, 40.0)
    failed = bench_render._median_run([runs[0], {"way": "envreel", "error": "boom"}])
    assert failed["error"] == "boom"


@pytest.mark.slow
def test_bench_interleaves_rounds_and_prints_json_and_a_table(tmp_path, capsys):
    argv = ["--frames", "8", "--long-frames", "0", "--repeat", "2", "--workloads", "gif16"]
    argv += ["--ways", "limit,envreel", "--threads", "2", "--workdir", str(tmp_path)]
    assert bench_render.main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    rows = {r["way"]: r for r in report["rows"]}
    assert set(rows) == {"limit", "envreel"}
    for r in rows.values():
        assert "error" not in r, r
        assert r["frames"] == 8 and r["runs"] == 2
        assert r["fps_min"] <= r["fps"] <= r["fps_max"]
    # each run is logged on stderr as it finishes, the ways alternating round by round
    logged = [json.loads(line)["way"] for line in captured.err.splitlines() if line[:1] == "{"]
    assert logged == ["limit", "envreel", "limit", "envreel"]
    assert bench_render.main(argv) == 0
    table = capsys.readouterr().out
    assert "| gif16 | envreel | 8 |" in table and "(2)" in table


@pytest.mark.parametrize("way", ["limit", "envreel"])
def test_each_way_writes_a_gif_of_every_frame(tmp_path, way):
    from PIL import Image

    store = tmp_path / "s.zarr"
    bench_render.build_store(store, 8)
    out = tmp_path / f"{way}.gif"
    args = ["--child", way, "--workload", "gif16", "--store", str(store), "--out", str(out)]
    assert bench_render.main([*args, "--threads", "2"]) == 0
    with Image.open(out) as im:
        assert (im.n_frames, im.size) == (8, (512, 512))
