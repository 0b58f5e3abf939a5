"""A recording killed with SIGKILL at random moments leaves a valid store: every committed block.

Each trial runs the real ``Recorder`` in a child process (``envreel.tools.kill_trials``), kills
it at a seeded random moment and checks the store against the generator of the recording. CI
runs a handful of trials; ``python -m envreel.tools.kill_trials --trials 200`` runs the full
count and prints a summary table.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import replace

import numpy as np
import pytest
import zarr
from store_helpers import frames_for

from envreel.schemas import open_run, validate
from envreel.tools import kill_trials as kt

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
    pytest.mark.slow,
]

SEED = 7
# (phase, kill): killed while the first capture creates the store, or while recording; the
# recording process and its writer process at once ("group"), or the recording process only.
PLAN = [
    ("create", "group"),
    ("record", "group"),
    ("record", "main"),
    ("record", "group"),
    ("record", "main"),
    ("create", "main"),
]
TRIALS = [
    # Kill within the first 0.75 s of recording: enough blocks to lose, quick for CI.
    replace(p, delay_s=p.delay_s / 2)
    for p in (kt.trial_params(SEED, i, phase=ph, kill=k) for i, (ph, k) in enumerate(PLAN))
]


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    """All CI trials, run 3 at a time (each mostly waits for its child to start and record)."""
    from concurrent.futures import ThreadPoolExecutor

    workdir = tmp_path_factory.mktemp("kill")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(kt.run_trial, i, p, workdir, keep=True) for i, p in enumerate(TRIALS)
        ]
        return workdir, [f.result() for f in futures]


@pytest.mark.parametrize("index", range(len(TRIALS)))
def test_sigkill_leaves_a_valid_store_with_every_committed_block(trials, index):
    workdir, results = trials
    p, res = TRIALS[index], results[index]
    assert res.failures == [], res
    assert res.outcome in ("killed", "not-created"), res  # a real kill, not a finished run
    store = workdir / f"trial_{index:04d}" / "run.zarr"
    if res.outcome == "not-created":
        # Killed before the first commit record: both readers say so; nothing half-opens.
        assert res.captured == 0
        assert validate(store)[0].where == "zarr.json"
        return
    # The checker's own claims, restated: committed frames are whole blocks, nothing the
    # recorder reported written is missing, and at most the 2 in-flight blocks are lost.
    assert res.num_frames % p.block_frames == 0
    assert res.written <= res.num_frames <= res.captured + 1
    assert res.captured - res.num_frames <= kt.RING_BLOCKS * p.block_frames
    assert validate(store) == []
    run = open_run(store)
    n, h, w = p.num_envs, p.height, p.width
    # Cross-check the trial generator against the store tests' one.
    np.testing.assert_array_equal(run.env_frames(), frames_for(0, run.num_frames, n, h, w))


def test_checker_catches_lost_and_altered_frames(tmp_path):
    """The trial checker is not vacuous: it flags missing commits and altered data."""
    p = kt.trial_params(SEED, 1, phase="record", kill="group", delay_s=0.6)
    res = kt.run_trial(1, p, tmp_path, keep=True)
    assert res.failures == [] and res.num_frames >= p.block_frames, res
    store = tmp_path / "trial_0001" / "run.zarr"
    fails = kt.check_store(store, p, captured=res.num_frames + 40, written=res.num_frames + 8)
    assert any("lost committed frames" in f for f in fails), fails
    assert any("in-flight blocks" in f for f in fails), fails
    # Rewrite one committed frame of env 2 with valid but different pixels (checksums pass).
    arr = zarr.open_array(store / "env" / "frames", mode="r+")
    arr[3, 2] = 0
    fails = kt.check_store(store, p, captured=res.captured, written=res.written)
    assert fails == [
        f"env frames of frames [0, {min(64, res.num_frames)}) differ from the generator"
    ]
    assert validate(store) == []  # valid, but not what was recorded: only the generator knows


def test_expected_episodes_follow_isaaclab_autoreset():
    ep, ep_step = kt.expected_episodes(12, 2)
    v = kt.values_at(np.arange(12), 2)
    done = v["terminated"] | v["truncated"]
    for e in range(2):
        for t in range(12):
            if done[t, e]:  # the done frame already shows the next episode, at step 0
                assert ep_step[t, e] == 0 and ep[t, e] == (ep[t - 1, e] + 1 if t else 1)
            elif t:
                assert ep[t, e] == ep[t - 1, e] and ep_step[t, e] == ep_step[t - 1, e] + 1


def test_command_line_prints_a_summary(tmp_path):
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "envreel.tools.kill_trials",
            "--trials",
            "1",
            "--seed",
            "3",
            "--phase",
            "record",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["summary"]["trials"] == 1 and out["summary"]["failures"] == 0
    assert out["trials"][0]["outcome"] == "killed"
    assert set(out["summary"]) >= {"machine", "python", "zarr", "kill_stages", "lost_frames_max"}
