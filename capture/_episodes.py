"""Per-env episode index and episode step, derived from done flags.

The rule (``autoreset="same_step"``, Isaac Lab and gymnasium's SAME_STEP vector envs): an env
that is done (terminated or truncated) in a step was reset inside that step, so the frame returned
with done=True already shows the new episode: it gets the next episode index and episode step 0.
If that frame is marked ``stale`` (rendered before the reset: Isaac Lab without
``num_rerenders_on_reset``), it still shows the finished episode: it keeps the old index and the
finished episode's last step, and the new episode becomes visible at the next frame, whose
episode step counts from the reset (1 when capture() is called every step). With
``autoreset="next_step"`` (gymnasium's default for vector envs) the done frame shows the end of
the finished episode and the next frame is the new episode's step 0.

How the work is split, so that the caller's thread does as little as possible:

* ``Episodes`` keeps a (2, N) int64 ``state`` where the flags live (numpy, or a CUDA tensor, so
  counting never reads the device): row 0 counts the done flags seen in earlier steps, row 1 is
  the step of the current episode's step 0 (with ``next_step``, -1 until the frame after the
  done one). Every ``capture()`` (recorded or not) snapshots the state into the ring, then
  ``update`` adds its done flags: 2–3 elementwise operations, whatever the flags.
* ``derive`` (on the writer's side, a block at a time) turns a frame's snapshot and its own
  flags into its episode index and step with the rule above.

Counting only sees the steps given to ``capture()``: call it every step (frames outside windows
are cheap) or pass ``episode_step`` explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Episodes", "AUTORESET_MODES", "derive"]

AUTORESET_MODES = ("same_step", "next_step")


class Episodes:
    """Episode counters for N envs.

    Args:
        num_envs: N.
        autoreset: "same_step" or "next_step" (see the module doc).
    """

    def __init__(self, num_envs: int, *, autoreset: str) -> None:
        self.num_envs = num_envs
        self.autoreset = autoreset
        self.state: Any = None  # (2, N) int64, numpy or torch: the snapshot of each frame
        self._torch = None
        self.device: Any = None  # torch device when the state lives in torch
        self._pending = False  # next_step: some env's new episode starts at the next frame

    def _init(self, step: int) -> None:
        self.state = np.zeros((2, self.num_envs), np.int64)
        self.state[1] = step
        if self._torch is not None:
            self._to_device(self.device)

    def _to_device(self, device: Any) -> None:
        import torch

        self._torch = torch
        self.device = device
        if self.state is not None:
            # One synchronous upload, the first time flags arrive on the device.
            self.state = torch.as_tensor(self.state, device=device)

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

    def before(self, step: int, terminated: Any, truncated: Any) -> Any:
        """Make ``state`` the snapshot of the frame at ``step``; return its done flags (or None).

        Args:
            step: the frame's step.
            terminated, truncated: (is_cuda, array) from ``ValueInput.check`` or None.
        """
        if self.state is None:
            self._init(step)
        if self._torch is None:
            for v in (terminated, truncated):
                if v is not None and v[0]:
                    self._to_device(v[1].device)
                    break
        if self._pending:  # next_step: the new episodes start at this frame
            base = self.state[1]
            if self._torch is not None:
                base.masked_fill_(base < 0, step)
            else:
                np.putmask(base, base < 0, step)
            self._pending = False
        term, trunc = self._flag(terminated), self._flag(truncated)
        return term if trunc is None else trunc if term is None else term | trunc

    def update(self, step: int, done: Any) -> None:
        """Count this frame's done flags, once its snapshot of ``state`` is taken (or not
        needed)."""
        if done is None:
            return
        count, base = self.state[0], self.state[1]
        start = step if self.autoreset == "same_step" else -1
        count += done
        if self._torch is not None:
            base.masked_fill_(done, start)
        else:
            np.putmask(base, done, start)
        self._pending = self.autoreset == "next_step"


def derive(
    state: np.ndarray,
    step: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    stale: np.ndarray,
    autoreset: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Episode index and step of frames from their snapshots and flags (the module doc's rule).

    Args:
        state: (T, 2, N) snapshots taken by ``Episodes.before``.
        step: (T,) the frames' steps.
        terminated, truncated, stale: (T, N) bool flags of the frames.
        autoreset: "same_step" or "next_step".

    Returns:
        (episode, episode_step), both (T, N) int32.
    """
    count, base = state[:, 0], state[:, 1]
    since = step[:, None] - base
    if autoreset == "next_step":
        return count.astype(np.int32), since.astype(np.int32)
    new = (terminated | truncated) & ~stale  # this frame shows the new episode's step 0
    return (count + new).astype(np.int32), np.where(new, 0, since).astype(np.int32)
