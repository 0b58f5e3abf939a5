"""`envreel demo` at a small size: a real Newton simulation, recorded, validated and rendered."""

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("newton")

from envreel.schemas import open_run, validate  # noqa: E402
from envreel.tools.cli import main  # noqa: E402


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_demo_small(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(
        main,
        [
            "demo",
            "--out",
            str(out),
            "--num-envs",
            "4",
            "--steps",
            "30",
            "--size",
            "64",
            "--global-size",
            "90x160",
        ],
    )
    assert res.exit_code == 0, res.output
    paths = res.stdout.split()
    assert paths[:4] == [str(out / n) for n in ("run.zarr", "grid.mp4", "grid.gif", "sheet.png")]

    assert validate(out / "run.zarr") == []
    run = open_run(out / "run.zarr")
    assert (run.num_envs, run.num_frames, run.env_frame_shape) == (4, 30, (64, 64))
    assert run.global_frame_shape == (90, 160)
    assert run.counters["dropped_frames"] == 0
    assert run.source["simulator"] == "newton"
    assert run.env_origins.shape == (4, 3) and run.cameras.env_intrinsics.shape == (4, 3, 3)
    frames = run.env_frames()
    assert frames.std() > 10  # real pictures, not blank
    assert not np.array_equal(frames[0], frames[-1])  # something moved

    import av

    with av.open(str(out / "grid.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 30
    # 4 envs in a 2×2 grid of 64 px tiles with 2 px gaps, global view on the right
    # (the label covers the top rows; a terminated/truncated border may cover 2 px at the edges)
    for t in (5, 17, 29):
        for slot, (r, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            y, x = r * 66, col * 66
            tile = decoded[t][y + 16 : y + 62, x + 2 : x + 62]
            scores = [_psnr(tile, frames[t, e, 16:62, 2:62]) for e in range(4)]
            # 64 px tiles of thin poles at crf 23 decode at ~28 dB; other envs score ~22 dB
            assert scores[slot] >= 25, (t, slot, scores)
            assert scores[slot] == max(scores), (t, slot, scores)  # it is env `slot`, no other

    from PIL import Image

    gif = Image.open(out / "grid.gif")
    assert gif.n_frames >= 10
    assert Image.open(out / "sheet.png").size[0] > 64


def test_demo_refuses_an_earlier_demos_outputs_before_simulating(tmp_path):
    # with run.zarr gone but grid.mp4 left, the demo simulated and then replaced grid.mp4
    # silently; now every output is checked first, and --overwrite replaces them
    out = tmp_path / "demo"
    out.mkdir()
    (out / "grid.mp4").write_bytes(b"mine")
    res = CliRunner().invoke(main, ["demo", "--out", str(out), "--steps", "2"])
    assert res.exit_code == 1
    assert f"{out / 'grid.mp4'} exists; pass --overwrite (overwrite=True)" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["grid.mp4"]
