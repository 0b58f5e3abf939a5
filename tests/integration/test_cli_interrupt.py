"""Ctrl-C during `envreel render --per-env`: stops within a second, exit 130, nothing partial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from render_fixtures import decode_video, make_store

pytestmark = pytest.mark.slow  # seconds each: the fast lane (-m "not slow") skips them

ROOT = Path(__file__).resolve().parents[2]
N, T = 16, 240


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_sigint_stops_per_env_renders_with_exit_130(tmp_path):
    store = make_store(tmp_path / "run.zarr", num_envs=N, frames=T, shape=(96, 128))
    out = tmp_path / "each"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "envreel.tools.cli", "render", store, str(out), "--per-env"]
    # a slow, lossless x264 preset keeps every env busy long enough to interrupt mid-render
    cmd += ["--speed", "veryslow", "--crf", "0", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and any(out.iterdir())):  # a render has started writing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no render started"
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, "every render finished before the interrupt"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()
    assert stopped_in < 3.0, stopped_in  # "within a second", with room for a loaded machine
    assert "Aborted" not in stderr.decode()
    time.sleep(1.0)  # nothing keeps writing after the exit
    # the folder this run made is removed again when no render had finished in it
    names = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert len(names) < N, "the renders ran on after Ctrl-C"
    assert not [n for n in names if n.startswith(".") or not n.endswith(".mp4")], names
    for name in names:  # what is there is whole
        frames, _ = decode_video(out / name)
        assert frames.shape[0] == T, name


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a child process")
def test_sigterm_removes_the_partial_output_with_exit_143(tmp_path):
    # timeout, SLURM and docker stop send SIGTERM: it used to leave a hidden partial file
    store = make_store(tmp_path / "run.zarr", num_envs=N, frames=T, shape=(96, 128))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "envreel.tools.cli", "render", store, str(tmp_path / "o.mp4")]
    cmd += ["--speed", "veryslow", "--crf", "0", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".o.") for p in tmp_path.iterdir()):  # writing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the render never started writing"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr.decode()
    assert "terminated" in stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.zarr"]
