"""Integration tests for the Newton demo simulation (``envreel.tools.demo_sim``).

Skipped when Newton is not installed (``pip install 'envreel[demo]'``). The first run in a fresh
environment compiles Warp kernels (~1-1.5 min on 2 CPU cores); afterwards the module takes a few
seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("newton")

from envreel.tools.demo_sim import DemoSim  # noqa: E402

NUM_ENVS = 4
STEPS = 30
H, W = 64, 64
HG, WG = 90, 160
SPACING = 2.5


def _project(points: np.ndarray, pose: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenGL-convention projection, written out independently of the module under test.

    Args:
        points: (M, 3) world points.
        pose: (4, 4) camera-to-world (camera looks along -Z, +Y up).
        K: (3, 3) pinhole intrinsics.

    Returns:
        (M, 2) pixel coordinates (u right, v down) and (M,) depth in front of the camera.
    """
    R, t = pose[:3, :3], pose[:3, 3]
    cam = (points - t) @ R  # row-wise R^T (p - t)
    depth = -cam[:, 2]
    u = K[0, 2] + K[0, 0] * cam[:, 0] / depth
    v = K[1, 2] - K[1, 1] * cam[:, 1] / depth
    return np.stack([u, v], axis=1), depth


def _is_red(pixel: np.ndarray) -> bool:
    r, g, b = (int(c) for c in pixel)
    return r > 120 and r > 2 * g and r > 2 * b


@pytest.fixture(scope="module")
def run() -> dict:
    """Steps a 4-env sim for 30 steps and keeps everything the tests look at."""
    sim = DemoSim(
        NUM_ENVS, height=H, width=W, global_height=HG, global_width=WG, spacing=SPACING, seed=3
    )
    try:
        outs, tips = [], []
        for _ in range(STEPS):
            outs.append(sim.step())
            tips.append(sim.tip_positions())
        yield {
            "outs": outs,
            "tips": np.stack(tips),
            "origins": sim.env_origins.copy(),
            "poses": sim.env_camera_poses.copy(),
            "Ks": sim.env_intrinsics.copy(),
            "gpose": sim.global_camera_pose.copy(),
            "gK": sim.global_intrinsics.copy(),
            "step_dt": sim.step_dt,
        }
    finally:
        sim.close()


def test_shapes_and_dtypes(run: dict) -> None:
    assert run["origins"].shape == (NUM_ENVS, 3) and run["origins"].dtype == np.float32
    assert run["poses"].shape == (NUM_ENVS, 4, 4) and run["poses"].dtype == np.float64
    assert run["Ks"].shape == (NUM_ENVS, 3, 3) and run["Ks"].dtype == np.float64
    assert run["gpose"].shape == (4, 4) and run["gpose"].dtype == np.float64
    assert run["gK"].shape == (3, 3) and run["gK"].dtype == np.float64
    assert run["step_dt"] > 0
    for k, out in enumerate(run["outs"], start=1):
        assert out["env_rgb"].shape == (NUM_ENVS, H, W, 3) and out["env_rgb"].dtype == np.uint8
        assert out["global_rgb"].shape == (HG, WG, 3) and out["global_rgb"].dtype == np.uint8
        assert out["reward"].shape == (NUM_ENVS,) and out["reward"].dtype == np.float32
        assert out["terminated"].shape == (NUM_ENVS,) and out["terminated"].dtype == bool
        assert out["truncated"].shape == (NUM_ENVS,) and out["truncated"].dtype == bool
        assert out["step"] == k
        assert out["sim_time"] == pytest.approx(k * run["step_dt"])
        assert np.all(np.isfinite(out["reward"]))
        assert not np.any(out["terminated"] & out["truncated"])


def test_frames_change_over_time(run: dict) -> None:
    first, last = run["outs"][0], run["outs"][-1]
    for i in range(NUM_ENVS):
        assert not np.array_equal(first["env_rgb"][i], last["env_rgb"][i]), f"env {i} frozen"
    assert not np.array_equal(first["global_rgb"], last["global_rgb"])
    # The pole tips themselves move (not just, say, lighting): path length over the run, since a
    # tip may pass back near where it started.
    path = np.linalg.norm(np.diff(run["tips"], axis=0), axis=2).sum(axis=0)
    assert np.all(path > 0.05), path


def test_envs_differ(run: dict) -> None:
    out = run["outs"][STEPS // 2]
    local_tips = run["tips"][STEPS // 2] - run["origins"]
    for i in range(NUM_ENVS):
        for j in range(i + 1, NUM_ENVS):
            assert not np.array_equal(out["env_rgb"][i], out["env_rgb"][j])
            assert np.linalg.norm(local_tips[i] - local_tips[j]) > 1e-3, (i, j)


def test_origins_on_grid(run: dict) -> None:
    origins = run["origins"].astype(np.float64)
    assert np.allclose(origins[:, 2], 0.0)
    xs, ys = np.unique(origins[:, 0].round(5)), np.unique(origins[:, 1].round(5))
    assert len(xs) == 2 and len(ys) == 2  # 4 envs -> 2 x 2
    assert np.allclose(np.diff(xs), SPACING) and np.allclose(np.diff(ys), SPACING)
    assert len({tuple(o) for o in origins.round(5)}) == NUM_ENVS


def test_projections_match_images(run: dict) -> None:
    out, tips = run["outs"][-1], run["tips"][-1]
    for i in range(NUM_ENVS):
        # Env origin (centre of the white ground disc) lands inside its own image, in front.
        uv, depth = _project(
            run["origins"][i : i + 1].astype(np.float64), run["poses"][i], run["Ks"][i]
        )
        assert depth[0] > 0
        assert 0 <= uv[0, 0] < W and 0 <= uv[0, 1] < H, uv
        # The pole-tip ball centre projects onto a red pixel: pose and K match what is rendered.
        uv, depth = _project(tips[i : i + 1], run["poses"][i], run["Ks"][i])
        u, v = int(np.floor(uv[0, 0])), int(np.floor(uv[0, 1]))
        assert depth[0] > 0 and 0 <= u < W and 0 <= v < H
        assert _is_red(out["env_rgb"][i, v, u]), (i, out["env_rgb"][i, v, u])
        # Every env origin is inside the global view too.
        uv, depth = _project(run["origins"][i : i + 1].astype(np.float64), run["gpose"], run["gK"])
        assert depth[0] > 0 and 0 <= uv[0, 0] < WG and 0 <= uv[0, 1] < HG, uv


def test_truncation_and_reset() -> None:
    episode_length = 5
    sim = DemoSim(
        NUM_ENVS,
        height=16,
        width=16,
        global_height=16,
        global_width=16,
        episode_length=episode_length,
        seed=1,
    )
    try:
        episode_step = np.zeros(NUM_ENVS, dtype=int)
        saw_truncation = False
        for _ in range(3 * episode_length):
            out = sim.step()
            episode_step += 1
            # An episode ends exactly when it terminates or reaches episode_length steps.
            assert np.array_equal(
                out["truncated"], (episode_step >= episode_length) & ~out["terminated"]
            )
            saw_truncation |= bool(out["truncated"].any())
            ended = out["terminated"] | out["truncated"]
            episode_step[ended] = 0
            assert np.all(np.isfinite(out["reward"]))
        assert saw_truncation
        # After a reset the env is back near upright and inside the rail.
        local = sim.tip_positions() - sim.env_origins
        assert np.all(np.abs(local[:, 0]) < 1.5) and np.all(local[:, 2] > 1.0)
    finally:
        sim.close()


def test_deterministic_given_seed() -> None:
    def frames(seed: int) -> list[dict]:
        sim = DemoSim(2, height=24, width=24, global_height=24, global_width=32, seed=seed)
        try:
            return [sim.step() for _ in range(8)]
        finally:
            sim.close()

    a, b, c = frames(7), frames(7), frames(8)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x["env_rgb"], y["env_rgb"])
        assert np.array_equal(x["global_rgb"], y["global_rgb"])
        assert np.array_equal(x["reward"], y["reward"])
    assert not all(np.array_equal(x["env_rgb"], z["env_rgb"]) for x, z in zip(a, c, strict=True))
