"""Per-env episode index and episode step, derived from done flags.

The rule (``autoreset="same_step"``, Isaac Lab and gymnasium's SAME_STEP vector envs): an env
that is done (terminated or truncated) in a step was reset inside that step, so the frame returned
with done=True already shows the new episode: it gets the next episode index and episode step 0.
If that frame is marked ``stale`` (rendered before the reset: Isaac Lab without
``num_rerenders_on_reset``), it still shows the finished episode: it keeps the old index and the
finished episode's last step, and the new episode becomes visible at the next frame, whose
episode step counts from the reset (1 when capture() is called every step). With
``autoreset="next_step"`` (gymnasium's default for vector envs) the done frame shows the end of
the finished episode and the step after it is the new episode's step 0.

In both modes a frame's episode and step follow from two numbers per env, as of just before the
frame's own flags: how many done flags came before it (``count``), and the step of the last of
them (``last``; before any, the first step, less one with ``next_step``):

* same_step: ``new = done & ~stale``; episode = count + new; step = 0 if new else step - last;
* next_step: episode = count; step = step - (last + 1).

How the work is split, so that the caller's thread does as little as possible:

* The writer (``EpisodeChain``, a block at a time, frames in order) adds up the flags of the
  frames it stores itself: they are in the ring anyway.
* Only the flags of ``capture()`` calls that store nothing (outside a recording window, or
  dropped at a full queue) must be counted by the caller (``Episodes``): a (2, N) int64 ``gaps``
  array (numpy, or a CUDA tensor, so counting never reads the device) of [done flags seen in such
  calls, the last step they were seen at]; 2 elementwise operations per such call.
* A stored frame that follows such calls (or is the first) carries a snapshot of ``gaps``. A
  stored frame that follows a stored frame costs no episode operation at all.

Counting only sees the steps given to ``capture()``: call it every step (frames outside windows
are cheap) or pass ``episode_step`` explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Episodes", "EpisodeChain", "AUTORESET_MODES", "NONE"]

AUTORESET_MODES = ("same_step", "next_step")
NONE = np.iinfo(np.int64).min  # "no done flag yet" in a ``last`` field


class Episodes:
    """The caller's side: done flags of the ``capture()`` calls that store no frame.

    Args:
        num_envs: N.
        autoreset: "same_step" or "next_step" (see the module doc).
    """

    def __init__(self, num_envs: int, *, autoreset: str) -> None:
        self.num_envs = num_envs
        self.autoreset = autoreset
        # (2, N) int64, numpy or torch: [flags seen in calls that stored nothing, their last
        # step]; cumulative, so a snapshot never needs a reset.
        self.gaps: Any = None
        self.gap = True  # the next stored frame must carry a snapshot of ``gaps``
        self._torch = None
        self.device: Any = None  # torch device when ``gaps`` lives in torch

    def _init(self, step: int) -> None:
        self.gaps = np.zeros((2, self.num_envs), np.int64)
        # The first call's step stands in for a done flag just before it: episode 0 starts there.
        self.gaps[1] = step if self.autoreset == "same_step" else step - 1
        if self._torch is not None:
            self._to_device(self.device)

    def _to_device(self, device: Any) -> None:
        import torch

        self._torch = torch
        self.device = device
        if self.gaps is not None:
            # One synchronous upload, the first time flags arrive on the device.
            self.gaps = torch.as_tensor(self.gaps, device=device)

    def first(self, step: int, terminated: Any, truncated: Any) -> None:
        """Called by every ``capture()`` before anything else of this module.

        Args:
            step: the call's step.
            terminated, truncated: (is_cuda, array) from ``ValueInput.check`` or None.
        """
        if self.gaps is None:
            self._init(step)
        if self._torch is None:
            for v in (terminated, truncated):
                if v is not None and v[0]:
                    self._to_device(v[1].device)
                    break

    def _flag(self, value: Any) -> Any:
        """A checked (is_cuda, array) flag -> bool array in the state's backend, or None."""
        if value is None:
            return None
        _, arr = value
        if self._torch is None:
            return arr if arr.dtype == bool else arr != 0
        torch = self._torch
        if not isinstance(arr, torch.Tensor):
            arr = torch.as_tensor(np.asarray(arr) != 0, device=self.device)
        return arr if arr.dtype == torch.bool else arr != 0

    def skipped(self, step: int, terminated: Any, truncated: Any) -> None:
        """Count the flags of a call that stores no frame."""
        self.gap = True
        term, trunc = self._flag(terminated), self._flag(truncated)
        done = term if trunc is None else trunc if term is None else term | trunc
        if done is None:
            return
        count, last = self.gaps[0], self.gaps[1]
        count += done
        if self._torch is not None:
            last.masked_fill_(done, step)
        else:
            np.putmask(last, done, step)

    def skipped_steps(self, steps: list[int], done: Any) -> None:
        """Count the flags of several calls that store no frame, at once.

        Args:
            steps: their steps, increasing.
            done: (is_cuda, (len(steps), N) array) of their done flags, as ``_flag`` takes.
        """
        self.gap = True
        done = self._flag(done)
        count, last = self.gaps[0], self.gaps[1]
        # Steps increase, so an env's last done step is the one of its last done row: with the
        # rows numbered 1..K, the largest number among its done rows (0: none).
        if self._torch is not None:
            torch = self._torch
            k = len(steps)
            rows = torch.arange(1, k + 1, device=self.device)
            latest = (done * rows[:, None]).amax(0)
            count += done.sum(0)
            if steps[-1] - steps[0] == k - 1:  # consecutive: row r's step is steps[0] - 1 + r
                stamp = latest + (steps[0] - 1)
            else:
                stamps = torch.tensor([NONE, *steps], dtype=torch.int64)
                if self.device.type == "cuda":  # pinned: an upload that never waits on the device
                    stamps = stamps.pin_memory()
                stamp = stamps.to(self.device, non_blocking=True)[latest]
            last.copy_(torch.where(latest > 0, stamp, last))
        else:
            rows = np.arange(1, len(steps) + 1)
            latest = (done * rows[:, None]).max(0)
            count += done.sum(0)
            np.putmask(last, latest > 0, np.asarray([NONE, *steps], np.int64)[latest])

    def snapshot(self) -> Any:
        """``gaps`` for the stored frame of this call, or None when the previous call stored its
        frame too (nothing happened in between that the writer does not see)."""
        if not self.gap:
            return None
        self.gap = False
        return self.gaps


class EpisodeChain:
    """The writer's side: episode and episode step of stored frames, in order (module doc).

    Args:
        num_envs: N.
        autoreset: "same_step" or "next_step".
    """

    def __init__(self, num_envs: int, *, autoreset: str) -> None:
        self.autoreset = autoreset
        self.count = np.zeros(num_envs, np.int64)  # done flags of the stored frames so far
        self.last = np.full(num_envs, NONE, np.int64)  # the step of the last of them
        self.gaps = np.zeros((2, num_envs), np.int64)  # the latest snapshot
        self.gaps[1] = NONE

    def frames(
        self,
        snapshot: np.ndarray,
        gaps: np.ndarray,
        step: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        stale: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Episode index and step of the next T stored frames; advances the chain past them.

        Args:
            snapshot: (T,) bool, the frame carries a snapshot of the caller's ``gaps``.
            gaps: (T, 2, N) the snapshots (rows without one are ignored).
            step: (T,) the frames' steps (increasing).
            terminated, truncated, stale: (T, N) bool flags of the frames.

        Returns:
            (episode, episode_step), both (T, N) int32.
        """
        t = len(step)
        if t == 0:
            empty = np.zeros((0, len(self.count)), np.int32)
            return empty, empty.copy()
        # The latest snapshot at or before each frame (carried over from earlier blocks).
        idx = np.maximum.accumulate(np.where(snapshot, np.arange(t), -1))
        g = np.concatenate([self.gaps[None], gaps[:t]])[idx + 1]  # (T, 2, N)
        done = terminated | truncated
        # Flags of the stored frames before each frame: exclusive running sum and last step.
        count = self.count + np.cumsum(done, axis=0) - done
        at = np.where(done, step[:, None], NONE)
        last = np.maximum.accumulate(np.concatenate([self.last[None], at[:-1]]), axis=0)
        # Steps increase, so "the later of two" is their maximum.
        count = count + g[:, 0]
        last = np.maximum(last, g[:, 1])
        self.count = count[-1] + done[-1] - g[-1, 0]
        self.last = np.maximum(last[-1], at[-1])
        self.gaps = g[-1]
        step = step[:, None]
        if self.autoreset == "next_step":
            return count.astype(np.int32), (step - last - 1).astype(np.int32)
        new = done & ~stale  # this frame shows the new episode's step 0
        return (count + new).astype(np.int32), np.where(new, 0, step - last).astype(np.int32)
