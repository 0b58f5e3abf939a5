"""Several rank stores of one multi-GPU run, read as one run with global env ids.

Under torchrun each rank records its own store (``runs/ppo_rank0.zarr``, ``_rank1``...), each
holding its N envs with ``env_id_offset = rank × N``. ``open_run([...])`` of those stores gives a
:class:`RankedRun`: a :class:`~envreel.schemas.Run` whose envs are every rank's envs, in rank
order, with their global ids, so a renderer lays out 4 ranks × 64 envs as one 256-env grid.

The stores must belong together: same world size, fps, frame size, block length and scalars,
distinct env ids, and the same steps frame for frame (ranks step in lockstep; if one was cut
short, the run is as long as the shortest). Ranks may be left out (a subset of ranks is
rendered on purpose), with a warning naming them. The global view, its pose and the per-frame
values (step, time, clip) are those of the lowest rank that has a global view (env origins of
different ranks are in different simulations, so the global view shows its own rank's envs).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from envreel.errors import StoreFormatError

from .reader import Cameras, Run

__all__ = ["RankedRun", "open_ranks"]


def open_ranks(runs: Sequence[Run]) -> RankedRun:
    """A :class:`RankedRun` of open rank stores (``open_run`` with a list calls this).

    Warns:
        UserWarning: the stores leave out ranks of ``0..world_size-1`` (named).

    Raises:
        ValueError: fewer than one store.
        StoreFormatError: the stores do not belong to one run (the message names the
            mismatch: world size, fps, frame size, block length, scalars, env ids, or steps).
    """
    if not runs:
        raise ValueError("open_run needs at least one store")
    ordered = sorted(runs, key=lambda r: (r.rank, r.env_ids[0] if r.num_envs else 0))
    first = ordered[0]
    for what, get in (
        ("world size", lambda r: r.world_size),
        ("fps", lambda r: r.fps),
        ("env frame size (height, width)", lambda r: r.env_frame_shape),
        ("block length (frames)", lambda r: r.block_frames),
        ("scalars", lambda r: r.scalar_names),
    ):
        if any(get(run) != get(first) for run in ordered[1:]):
            each = ", ".join(f"{run.url} has {get(run)}" for run in ordered)
            raise StoreFormatError(
                f"the stores do not belong to one run, their {what} differs: {each}; rank "
                "stores of one run share it"
            )
    ids = [g for run in ordered for g in run.env_ids]
    if len(set(ids)) != len(ids):
        seen: dict[int, str] = {}
        for run in ordered:
            for g in run.env_ids:
                if g in seen:
                    raise StoreFormatError(
                        f"env id {g} is in both {seen[g]} and {run.url} (ranks {_ranks(ordered)}); "
                        "give each rank's store once"
                    )
                seen[g] = run.url
    ranked = RankedRun(ordered)
    _warn_missing_ranks(ordered)
    return ranked


def _ranks(runs: Sequence[Run]) -> list[int]:
    return [r.rank for r in runs]


def _warn_missing_ranks(runs: Sequence[Run]) -> None:
    """Names the ranks of 0..world_size-1 that no store holds (not an error: a subset of ranks is
    often rendered on purpose, but a rank left out by a glob should not pass unseen)."""
    given = sorted({r.rank for r in runs})
    missing = sorted(set(range(runs[0].world_size)) - set(given))
    if missing:
        warnings.warn(
            f"{_plural('rank', missing)} of this {runs[0].world_size}-rank run "
            f"{'is' if len(missing) == 1 else 'are'} not given: the run holds the envs of "
            f"{_plural('rank', given)} only",
            UserWarning,
            stacklevel=4,
        )


def _plural(word: str, items: Sequence[int]) -> str:
    return f"{word}{'s' if len(items) > 1 else ''} {', '.join(map(str, items))}"


class RankedRun(Run):
    """Rank stores read as one run (see the module doc). Reads take stored env indices of the
    combined run, 0..N-1 over all ranks in rank order; ``env_ids`` gives their global ids."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = list(runs)
        self._lead = next((r for r in self.runs if r.has_global), self.runs[0])
        n_frames = min(r.num_frames for r in self.runs)
        self._num_frames = n_frames
        self._check_steps(n_frames)
        self._starts = np.cumsum([0] + [r.num_envs for r in self.runs])
        ids = tuple(g for r in self.runs for g in r.env_ids)
        names = ", ".join(r.url for r in self.runs)
        self.url = f"{names} ({len(self.runs)} ranks)"
        self.spec = dataclasses.replace(
            self._lead.spec,
            num_envs=len(ids),
            env_ids=ids,
            env_id_offset=0,
            envs_per_shard=self._lead.spec.envs_per_shard,
            rank=0,
            world_size=self._lead.world_size,
            global_frame_shape=self._lead.global_frame_shape,
        )
        self._global_ids = ids
        self._static = dict(self._lead._static)
        self._state = {
            **self._lead._state,
            "num_frames": n_frames,
            "clips": self._cut_clips(n_frames),
            "counters": self.counters,
            "errors": self.errors,
            "closed": self.closed,
        }

    def _cut_clips(self, n: int) -> list[dict]:
        """The lead rank's clips within the first ``n`` frames, the last one cut at ``n``."""
        clips = []
        for c in self._lead._state["clips"]:
            if c["start_frame"] >= n:
                break
            if c["stop_frame"] > n:
                last_step = int(self._lead.frame_values("step", n - 1, n)[0])
                c = {**c, "stop_frame": n, "stop_step": last_step + 1}
            clips.append(c)
        return clips

    def _check_steps(self, n: int) -> None:
        if n == 0:
            return
        lead = self.runs[0].frame_values("step", 0, n)
        for run in self.runs[1:]:
            steps = run.frame_values("step", 0, n)
            if not np.array_equal(steps, lead):
                k = int(np.flatnonzero(steps != lead)[0])
                raise StoreFormatError(
                    f"{run.url} and {self.runs[0].url} recorded different steps: frame {k} is "
                    f"step {int(steps[k])} in one and {int(lead[k])} in the other; rank stores "
                    "of one run record the same steps"
                )

    # ---- facts --------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self._num_frames

    @property
    def format_version(self) -> str:
        return min(r.format_version for r in self.runs)

    @property
    def counters(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for run in self.runs:
            for k, v in run.counters.items():
                total[k] = total.get(k, 0) + v
        return total

    @property
    def errors(self) -> list[str]:
        return [f"{r.url}: {e}" for r in self.runs for e in r.errors]

    @property
    def closed(self) -> bool:
        return all(r.closed for r in self.runs)

    def refresh(self) -> RankedRun:
        """Re-reads every rank's commit record (new frames of a live recording)."""
        runs = [r.refresh() for r in self.runs]
        return open_ranks(runs)

    # ---- reads --------------------------------------------------------------------------------
    def _split(self, env_ids: Sequence[int] | None) -> tuple[np.ndarray, list[tuple[int, Any]]]:
        """(ids, [(rank position, positions in the request)]) for combined stored indices."""
        ids = self._env_ids(env_ids)
        which = np.searchsorted(self._starts, ids, side="right") - 1
        return ids, [(k, np.flatnonzero(which == k)) for k in np.unique(which)]

    def env_frames(
        self,
        env_ids: Sequence[int] | None = None,
        start: int | None = None,
        stop: int | None = None,
        *,
        stride: int = 1,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """As :meth:`Run.env_frames`, each env read from its rank's store."""
        ids, parts = self._split(env_ids)
        start, stop, stride = self._range(start, stop, stride)
        h, w = self.env_frame_shape
        shape = (len(range(start, stop, stride)), len(ids), h, w, 3)
        if out is None:
            out = np.empty(shape, np.uint8)
        elif not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.uint8:
            raise ValueError(f"out must be a uint8 numpy array of shape {shape}")
        for k, pos in parts:
            local = ids[pos] - self._starts[k]
            contiguous = np.array_equal(pos, np.arange(pos[0], pos[0] + len(pos)))
            if contiguous:
                sub = out[:, pos[0] : pos[0] + len(pos)]
                self.runs[k].env_frames(local, start, stop, stride=stride, out=sub)
            else:
                out[:, pos] = self.runs[k].env_frames(local, start, stop, stride=stride)
        return out

    def _env_frames_object(self, env: int, frame: int) -> tuple[str, range, range]:
        """As :meth:`Run._env_frames_object`, the object of ``env``'s rank store (named with
        the store), its envs as stored indices of the combined run."""
        k = int(np.searchsorted(self._starts, env, side="right") - 1)
        start = int(self._starts[k])
        name, envs, frames = self.runs[k]._env_frames_object(env - start, frame)
        frames = range(frames.start, min(frames.stop, self.num_frames))
        return f"{self.runs[k].url}: {name}", range(envs.start + start, envs.stop + start), frames

    def scalar(
        self,
        name: str,
        start: int | None = None,
        stop: int | None = None,
        *,
        env_ids: Sequence[int] | None = None,
        stride: int = 1,
    ) -> np.ndarray:
        """As :meth:`Run.scalar`, gathered over the ranks."""
        ids, parts = self._split(env_ids)
        start, stop, stride = self._range(start, stop, stride)
        cols = [
            (
                pos,
                self.runs[k].scalar(
                    name, start, stop, env_ids=ids[pos] - self._starts[k], stride=stride
                ),
            )
            for k, pos in parts
        ]
        t = len(range(start, stop, stride))
        dtype = cols[0][1].dtype if cols else np.float32
        out = np.empty((t, len(ids)), dtype)
        for pos, values in cols:
            out[:, pos] = values
        return out

    @property
    def global_view_envs(self) -> range:
        """The lead rank's envs: other ranks' envs are in other simulations, not in its view."""
        k = self.runs.index(self._lead)
        return range(int(self._starts[k]), int(self._starts[k + 1]))

    def global_frames(self, start=None, stop=None, *, stride=1, out=None) -> np.ndarray:
        """The lead rank's global view (see the module doc)."""
        if not self.has_global:
            raise ValueError(f"{self.url} has no global view (no rank recorded one)")
        start, stop, stride = self._range(start, stop, stride)
        return self._lead.global_frames(start, stop, stride=stride, out=out)

    def frame_values(self, name: str, start=None, stop=None, *, stride: int = 1) -> np.ndarray:
        start, stop, stride = self._range(start, stop, stride)
        return self._lead.frame_values(name, start, stop, stride=stride)

    def _concat(self, arrays: Sequence[np.ndarray | None]) -> np.ndarray | None:
        present = [a for a in arrays if a is not None]
        return np.concatenate(present) if len(present) == len(arrays) else None

    @property
    def env_origins(self) -> np.ndarray | None:
        return self._concat([r.env_origins for r in self.runs])

    @property
    def cameras(self) -> Cameras:
        cams = [r.cameras for r in self.runs]
        lead = self._lead.cameras
        per_frame = any(c.env_pose_per_frame for c in cams)
        k = [c.env_intrinsics for c in cams]
        k = [
            None if a is None else np.broadcast_to(a, (r.num_envs, 3, 3))
            for a, r in zip(k, self.runs, strict=True)
        ]
        return dataclasses.replace(
            lead,
            env_pose=None if per_frame else self._concat([c.env_pose for c in cams]),
            env_intrinsics=self._concat(k),
            env_pose_per_frame=per_frame,
        )

    def env_camera_poses(self, start=None, stop=None) -> np.ndarray | None:
        start, stop, _ = self._range(start, stop)
        poses = [r.env_camera_poses(start, stop) for r in self.runs]
        present = [p for p in poses if p is not None]
        return np.concatenate(present, axis=1) if len(present) == len(poses) else None

    def global_camera_poses(self, start=None, stop=None) -> np.ndarray | None:
        start, stop, _ = self._range(start, stop)
        return self._lead.global_camera_poses(start, stop)

    def stored_bytes(self) -> int:
        sizes = [r.stored_bytes() for r in self.runs]
        return -1 if min(sizes) < 0 else sum(sizes)

    def raw_bytes(self) -> int:
        return sum(r.raw_bytes() for r in self.runs)

    def info(self) -> dict[str, Any]:
        facts = super().info()
        facts["ranks"] = [
            {"url": r.url, "rank": r.rank, "num_envs": r.num_envs, "num_frames": r.num_frames}
            for r in self.runs
        ]
        return facts

    def __repr__(self) -> str:
        h, w = self.env_frame_shape
        return (
            f"RankedRun({len(self.runs)} ranks: {self.num_envs} envs × {self.num_frames} frames "
            f"of {h}×{w})"
        )
