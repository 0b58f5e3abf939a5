"""Render-like synthetic frames for benchmarks and tests.

Pure random pixels do not compress and real renders compress 10–30×; these frames sit in
between the two the way renders do: a smooth per-env background (floor and sky gradients), a
few moving solid shapes, soft shading and a little sensor noise.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SyntheticScene"]


class SyntheticScene:
    """Deterministic (N, H, W, 3) uint8 frames of N envs, one call per step.

    Args:
        num_envs: envs per frame.
        height, width: frame size in pixels.
        seed: seeds colours, shape paths and noise. Defaults to 0.
        noise: standard deviation of sensor noise in grey levels; renders have none.
            Defaults to 0.0.
    """

    def __init__(
        self, num_envs: int, height: int, width: int, *, seed: int = 0, noise: float = 0.0
    ):
        rng = np.random.default_rng(seed)
        self.num_envs, self.height, self.width = num_envs, height, width
        y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
        x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
        horizon = rng.uniform(0.35, 0.6, num_envs).astype(np.float32)
        sky = rng.uniform(120, 230, (num_envs, 3)).astype(np.float32)
        floor = rng.uniform(40, 140, (num_envs, 3)).astype(np.float32)
        is_floor = (y[None] > horizon[:, None, None]).astype(np.float32)[..., None]
        shade = (0.75 + 0.25 * (1 - y))[None, :, :, None] * (0.9 + 0.1 * x)[None, :, :, None]
        self._background = (
            (is_floor * floor[:, None, None] + (1 - is_floor) * sky[:, None, None]) * shade
        ).astype(np.float32)
        self._yy, self._xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._colors = rng.uniform(0, 255, (num_envs, 3, 3)).astype(np.float32)
        self._phase = rng.uniform(0, 2 * np.pi, (num_envs, 3)).astype(np.float32)
        self._speed = rng.uniform(0.02, 0.08, (num_envs, 3)).astype(np.float32)
        self._radius = rng.uniform(0.06, 0.16, (num_envs, 3)).astype(np.float32) * min(
            height, width
        )
        self._noise = noise
        self._rng = rng
        self.step = 0

    def frame(self, step: int | None = None) -> np.ndarray:
        """The frame of ``step`` (default: the next step). (N, H, W, 3) uint8."""
        if step is None:
            step, self.step = self.step, self.step + 1
        out = self._background.copy()
        h, w = self.height, self.width
        for k in range(3):
            ang = self._phase[:, k] + self._speed[:, k] * step
            cy = (0.55 + 0.25 * np.sin(ang * (k + 1))) * h
            cx = (0.5 + 0.35 * np.cos(ang)) * w
            d2 = (self._yy[None] - cy[:, None, None]) ** 2 + (
                self._xx[None] - cx[:, None, None]
            ) ** 2
            inside = d2 < (self._radius[:, k] ** 2)[:, None, None]
            lit = 1.0 - 0.35 * np.sqrt(d2) / self._radius[:, k][:, None, None]
            col = self._colors[:, k][:, None, None, :] * lit[..., None]
            out = np.where(inside[..., None], col, out)
        if self._noise:
            out += self._rng.normal(0, self._noise, out.shape).astype(np.float32)
        return np.clip(out, 0, 255).astype(np.uint8)
