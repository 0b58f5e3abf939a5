"""The Isaac Lab adapter against the real Isaac Lab 3, kit-less on the CPU (marker ``isaaclab``).

One recording (tests/isaaclab_scenario.py, in a subprocess) of Isaac-Cartpole with 4 envs,
Newton physics and the Newton Warp renderer, then checks on the stores it wrote: they validate
and render; frames move; the global view shows every env; each reset frame's episode labels
agree with its pixels; a subset recorded by envreel's Newton views equals the camera's own
frames of those envs; nothing renders outside recording windows. Needs ``isaaclab==3.0.0``
(Python 3.12, ~8 GB); skipped elsewhere. The first run compiles Warp kernels (~1–2 min).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.isaaclab

if (
    importlib.util.find_spec("isaaclab") is None
    or importlib.util.find_spec("isaaclab_newton") is None
):
    pytest.skip("needs Isaac Lab 3 (pip install isaaclab==3.0.0)", allow_module_level=True)

from envreel.schemas import geometry, open_run, validate  # noqa: E402

SCENARIO = Path(__file__).resolve().parents[1] / "isaaclab_scenario.py"
EPISODE_STEPS = 20  # tests/isaaclab_scenario.py cuts episodes at 20 steps
BACKGROUND = 238  # Isaac Lab's Newton Warp clear colour, 0xEE grey


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("isaaclab")
    proc = subprocess.run(
        [sys.executable, str(SCENARIO), str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        pytest.fail(f"the Isaac Lab scenario failed ({proc.returncode}):\n{tail}")
    return out


@pytest.fixture(scope="module")
def results(recorded: Path) -> dict:
    return json.loads((recorded / "results.json").read_text())


def _frames(path: Path) -> np.ndarray:
    return open_run(path).env_frames()


def _values(path: Path, name: str) -> np.ndarray:
    return open_run(path).scalar(name)


def test_stores_validate_and_render(recorded: Path, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from envreel.render import Layout, render

    for name in ("all.zarr", "subset.zarr", "windows.zarr"):
        assert validate(recorded / name) == [], name
    run = open_run(recorded / "all.zarr")
    assert run.num_envs == 4 and run.num_frames == 41  # reset() + 40 steps
    assert run.has_global and run.source["renderer"] == "newton_warp"
    assert run.source["isaaclab"].startswith("3.")
    out = tmp_path / "grid.mp4"
    render(run, Layout(global_view="right", markers=True), out)
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 41
    assert frames[0].mean() > 100  # grey background and cart-poles, not black


def test_frames_move(recorded: Path) -> None:
    frames = _frames(recorded / "all.zarr").astype(np.int16)
    for env in range(4):
        changes = np.abs(np.diff(frames[:, env], axis=0)).mean(axis=(1, 2, 3))
        assert (changes > 0).sum() >= 30, f"env {env} barely moves: {changes}"


def test_global_view_shows_every_env(recorded: Path) -> None:
    run = open_run(recorded / "all.zarr")
    image = run.global_frames(run.num_frames - 1)[0].astype(np.int16)
    cams = run.cameras
    rails = np.asarray(run.env_origins, float) + np.array([0.0, 0.0, 2.0])
    pixels, in_front = geometry.project_points(rails, cams.global_pose, cams.global_intrinsics)
    h, w = image.shape[:2]
    inside = in_front & (pixels[:, 0] >= 0) & (pixels[:, 0] < w)
    inside &= (pixels[:, 1] >= 0) & (pixels[:, 1] < h)
    assert inside.all(), f"an env's rail centre is outside the global view: {pixels}"
    for env, (u, v) in enumerate(np.floor(pixels).astype(int)):
        patch = image[max(v - 4, 0) : v + 5, max(u - 4, 0) : u + 5]
        assert (np.abs(patch - BACKGROUND).max(axis=-1) > 40).any(), f"env {env} not drawn"
    corner = image[:6, :6]
    assert (np.abs(corner - BACKGROUND) <= 2).all(), "the global view has no background"


def test_reset_frame_labels_match_pixels(recorded: Path) -> None:
    """Every reset puts the envs in the same pose, so a frame returned with done=True shows the
    new episode's first state exactly when it equals the frame of reset() pixel for pixel; its
    labels must say the same (new episode, step 0, not stale) or the opposite (finished
    episode, its last step, stale), whichever the pixels show."""
    path = recorded / "all.zarr"
    frames = _frames(path)
    episode = _values(path, "episode")
    episode_step = _values(path, "episode_step")
    stale = _values(path, "stale").astype(bool)
    done = _values(path, "terminated").astype(bool) | _values(path, "truncated").astype(bool)
    assert (episode[0] == 0).all() and (episode_step[0] == 0).all() and not stale[0].any()
    assert done[EPISODE_STEPS].all(), "episodes of 20 steps end at step 20"
    reference = frames[0]  # reset(): every env's first state
    checked = 0
    for t, env in zip(*np.nonzero(done), strict=True):
        # 19 steps of random pushes later, the finished episode looks different
        assert not np.array_equal(frames[t - 1, env], reference[env])
        shows_new_episode = np.array_equal(frames[t, env], reference[env])
        labelled_new = episode_step[t, env] == 0 and not stale[t, env]
        assert shows_new_episode == labelled_new, (
            f"frame {t} env {env}: pixels {'show' if shows_new_episode else 'do not show'} the "
            f"new episode, labels say episode {episode[t, env]} step {episode_step[t, env]} "
            f"stale {stale[t, env]}"
        )
        if labelled_new:
            assert episode[t, env] == episode[t - 1, env] + 1
        else:
            assert episode[t, env] == episode[t - 1, env]
            assert episode_step[t, env] == episode_step[t - 1, env] + 1
        checked += 1
    assert checked >= 4


def test_subset_equals_the_cameras_frames(recorded: Path) -> None:
    full, part = open_run(recorded / "all.zarr"), open_run(recorded / "subset.zarr")
    assert tuple(part.env_ids) == (3, 1)
    assert part.source["renderer"] == "envreel_newton_views"
    np.testing.assert_array_equal(
        _frames(recorded / "subset.zarr"), _frames(recorded / "all.zarr")[:, [3, 1]]
    )
    np.testing.assert_array_equal(part.global_frames(), full.global_frames())
    for name in ("reward", "terminated", "truncated", "episode", "episode_step", "stale"):
        np.testing.assert_array_equal(
            _values(recorded / "subset.zarr", name), _values(recorded / "all.zarr", name)[:, [3, 1]]
        )
    np.testing.assert_allclose(part.env_origins, np.asarray(full.env_origins)[[3, 1]])


def test_poses_and_intrinsics_agree_with_the_sensor(recorded: Path, results: dict) -> None:
    run = open_run(recorded / "all.zarr")
    sensor = results["sensor"]
    pos = np.asarray(sensor["pos_w"])
    rot = geometry.quat_to_rotation(np.asarray(sensor["quat_w_opengl"]), order="xyzw")
    poses = run.cameras.env_pose
    np.testing.assert_allclose(poses[:, :3, 3], pos, atol=1e-4)
    np.testing.assert_allclose(poses[:, :3, :3], rot, atol=1e-4)
    np.testing.assert_allclose(
        run.cameras.env_intrinsics.reshape(-1, 3, 3),
        np.asarray(sensor["intrinsic_matrices"]),
        rtol=1e-5,
    )


def test_nothing_renders_outside_recording_windows(recorded: Path, results: dict) -> None:
    per_step = results["phase2"]
    inside = [s for s in per_step if s["step"] % 10 < 5]
    outside = [s for s in per_step if s["step"] % 10 >= 5]
    assert inside and outside
    assert all(s["sensor"] == 1 and s["views"] == 1 for s in inside), inside
    assert all(s["sensor"] == 0 and s["views"] == 0 for s in outside), outside
    run = open_run(recorded / "windows.zarr")
    assert len(run.clips) == len({s["step"] // 10 for s in inside})
    assert run.num_frames == len(inside)


def test_bench_isaaclab_runs_on_tiny_inputs(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "envreel.tools.bench_isaaclab", "--num-envs", "4"]
    cmd += ["--subset", "2", "--width", "32", "--height", "24", "--rounds", "2", "--block", "5"]
    cmd += ["--window", "5", "--interval", "10", "--warmup", "3", "--dir", str(tmp_path), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # Isaac Lab's logs go to stderr with --json
    ways = result["ways"]
    assert set(ways) == {"none", "all", "subset", "subset_sync", "windows", "idle"}
    for way in ("all", "subset", "windows"):
        o = ways[way]["overhead"]
        assert o["low"] <= o["median"] <= o["high"] and o["rounds"] == 2
    assert ways["windows"]["own_inside_ms"] > ways["windows"]["own_outside_ms"]
