"""What a newcomer runs into first: labels with the ranking score, windows past the end,
render_envs from a plain script, the default grid of 16 envs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from render_fixtures import decode_video, make_store, read_pngs

from envreel._options import spec
from envreel.render import FrameSource, Layout, render
from envreel.schemas import open_run

H, W = 32, 48
N, T = 6, 40
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(
        tmp_path_factory.mktemp("newcomer") / "run.zarr",
        num_envs=N,
        frames=T,
        shape=(H, W),
        block_frames=8,
        fps=20.0,
    )


def test_score_label_field_shows_the_ranking_score(store, tmp_path):
    lay = Layout(envs="0-5", label="{score:.4f}", score_stat="mean", start=4, stop=20)
    source = FrameSource(store, lay)
    assert source.plan.label_score and "score" not in source.plan.scalars_needed
    reward = open_run(store).scalar("reward", 4, 20).astype(np.float64)
    assert source.plan.scores == pytest.approx(tuple(reward.mean(axis=0)))
    # the label drawn is the same picture as that number written as a literal label
    for env in (1, 4):
        text = f"{reward[:, env].mean():.4f}"
        got = render(store, lay.replace(envs=str(env)), tmp_path / f"s{env}")
        want = render(store, lay.replace(envs=str(env), label=text), tmp_path / f"l{env}")
        assert got.frames == want.frames
        assert np.array_equal(read_pngs(got.path), read_pngs(want.path))


def test_score_field_is_known_to_label_checks(store):
    with pytest.raises(ValueError, match=r"unknown field \{scor\}.*did you mean \{score\}"):
        FrameSource(store, Layout(label="{scor}"))
    assert "{score}" in spec(Layout, "label").doc


def test_window_past_the_end_warns_once_naming_both_ranges(store, tmp_path):
    # steps run 100..139 (the fixture's first step is 100)
    with pytest.warns(UserWarning) as rec:
        res = render(store, Layout(envs="0", unit="step", start=130, stop=500), tmp_path / "w")
    msgs = [str(w.message) for w in rec if "time window" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert "[130, 500)" in msgs[0] and "[100, 140)" in msgs[0] and "[130, 140)" in msgs[0]
    assert res.frames == (10,) and msgs[0] in res.warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a window inside the run says nothing
        render(store, Layout(envs="0", unit="step", start=130, stop=140), tmp_path / "x")


def test_default_grid_of_16_envs_is_4x4(tmp_path):
    path = make_store(tmp_path / "r16.zarr", num_envs=16, frames=4, shape=(16, 16))
    source = FrameSource(path, Layout(label=None, gap=0))
    g = source.geometry
    assert (g.columns, g.rows) == (4, 4)
    assert source.size == (64, 64)


def test_render_envs_from_a_plain_script(store, tmp_path):
    """The README snippet pasted into a script without a __main__ guard."""
    out = tmp_path / "per_env"
    script = tmp_path / "snippet.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from envreel.render import Layout, render_envs

            paths = render_envs({str(store)!r}, {str(out)!r}, Layout(envs="0-3"), workers=2,
                                suffix=".gif")
            print(len(paths))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines() == ["4"]  # the script ran once, not once per worker
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"env_{e:04d}.gif" for e in range(4)]  # no hidden or partial files
    for e in range(4):
        frames, _ = decode_video(out / f"env_{e:04d}.gif")
        assert frames.shape[0] == T
    assert sorted(p.name for p in tmp_path.iterdir()) == ["per_env", "snippet.py"]
