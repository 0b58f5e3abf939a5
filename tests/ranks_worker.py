"""One rank of a CPU multi-process run under torchrun (gloo), recording with RecordEnvs.

Run by tests/integration/test_ranks.py as
``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ranks_worker.py OUT``.
Each rank steps a stand-in Isaac Lab env of 4 envs in lockstep with the others (a barrier per
step, as training's all-reduce does) and records every rank (``all_ranks=True``) into
``OUT/ppo_rank<r>.zarr``. Frames carry the rank: env i of rank r draws as env ``i + 100 r``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
import isaaclab_standins as standins  # noqa: E402

from envreel.capture.isaaclab import RecordEnvs, RecorderCfg, _wrapper  # noqa: E402

STEPS = 20


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    mp = pytest.MonkeyPatch()
    standins.install_fake_isaaclab(mp, version="3.0.0")
    plain = standins.expected_rgb
    mp.setattr(standins, "expected_rgb", lambda env, *a, **k: plain(env + 100 * rank, *a, **k))
    env = standins.make_fake_env(version="3.0.0", num_envs=4, height=12, width=16)
    mp.setattr(_wrapper, "NewtonViews", standins.fake_newton_views(env))
    rec = RecordEnvs(env, Path(out) / "ppo.zarr", RecorderCfg(all_ranks=True))
    rec.reset(seed=rank)
    for _ in range(STEPS):
        rec.step(torch.zeros(4, 2))
        dist.barrier()
    rec.close()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
