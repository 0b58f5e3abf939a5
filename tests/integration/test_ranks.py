"""Rank stores of a multi-process run read, rendered and summarised as one run, with global env
ids. The ranks are real processes under torchrun (gloo, CPU), each recording with RecordEnvs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from render_fixtures import make_store

from envreel.errors import StoreFormatError
from envreel.render import Layout, render
from envreel.schemas import open_run

pytestmark = pytest.mark.slow  # seconds each: the fast lane (-m "not slow") skips them

torch = pytest.importorskip("torch")
WORKER = Path(__file__).resolve().parents[1] / "ranks_worker.py"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("ranks")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(WORKER), str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(out.glob("ppo_rank*.zarr"))


def test_two_torchrun_ranks_read_as_one_run(ranks: list[Path]) -> None:
    assert [p.name for p in ranks] == ["ppo_rank0.zarr", "ppo_rank1.zarr"]
    run = open_run([str(p) for p in reversed(ranks)])  # any order: sorted by rank
    assert run.num_envs == 8 and run.env_ids == tuple(range(8))
    assert [r.rank for r in run.runs] == [0, 1]
    frames = run.env_frames()
    for env in range(8):
        rank, local = divmod(env, 4)
        alone = open_run(ranks[rank]).env_frames([local])
        np.testing.assert_array_equal(frames[:, env : env + 1], alone)
        assert frames[0, env, 0, 0, 1] == local + 100 * rank  # the rank's own pixels
    np.testing.assert_array_equal(
        run.scalar("episode")[:, 4:], open_run(ranks[1]).scalar("episode")
    )
    info = run.info()
    assert info["num_envs"] == 8 and info["env_ids"] == "0-7" and len(info["ranks"]) == 2


def test_a_layout_selects_and_labels_global_ids_across_ranks(
    ranks: list[Path], tmp_path: Path
) -> None:
    run = open_run([str(p) for p in ranks])
    out = tmp_path / "grid.gif"
    result = render(
        run, Layout(envs="2,5,6", columns=3, label=None, gap=0, global_view="none"), out
    )
    assert result.envs == (2, 5, 6)
    from PIL import Image

    with Image.open(out) as gif:
        gif.seek(3)
        tiles = np.asarray(gif.convert("RGB"))
    h, w = run.env_frame_shape
    for slot, env in enumerate((2, 5, 6)):
        tile = tiles[:h, slot * w : (slot + 1) * w]
        rank, local = divmod(env, 4)
        assert abs(int(tile[..., 1].mean()) - (local + 100 * rank)) <= 2, (slot, env)


def test_stores_that_do_not_belong_together_are_one_clear_error(
    ranks: list[Path], tmp_path: Path
) -> None:
    rank1 = dict(rank=1, world_size=2, env_id_offset=8)
    other_fps = make_store(
        tmp_path / "fps.zarr", num_envs=4, frames=21, shape=(12, 16), fps=10.0, **rank1
    )
    with pytest.raises(
        StoreFormatError, match=r"fps differs: .*rank0.zarr has .*fps.zarr has 10.0"
    ):
        open_run([str(ranks[0]), other_fps])
    small = make_store(
        tmp_path / "small.zarr", num_envs=4, frames=21, shape=(8, 8), fps=30.0, **rank1
    )
    with pytest.raises(StoreFormatError, match=r"frame size \(height, width\) differs"):
        open_run([str(ranks[0]), small])
    with pytest.raises(StoreFormatError, match="env id 0 is in both"):
        open_run([str(ranks[0]), str(ranks[0])])
    steps = make_store(
        tmp_path / "steps.zarr",
        num_envs=4,
        frames=21,
        shape=(12, 16),
        fps=run_fps(ranks),
        rank=1,
        world_size=2,
        env_id_offset=8,
        step0=500,
        block_frames=open_run(ranks[0]).block_frames,
    )
    with pytest.raises(StoreFormatError, match="recorded different steps"):
        open_run([str(ranks[0]), steps])


def run_fps(ranks: list[Path]) -> float:
    return open_run(ranks[0]).fps
