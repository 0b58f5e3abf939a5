"""Per-env episode index and episode step, derived from done flags on the flags' own device.

The rule (``autoreset="same_step"``, Isaac Lab and gymnasium's SAME_STEP vector envs): an env
that is done (terminated or truncated) in a step was reset inside that step, so the frame returned
with done=True already shows the new episode: it gets the next episode index and episode step 0.
If that frame is marked ``stale`` (rendered before the reset: Isaac Lab without
``num_rerenders_on_reset``), it still shows the finished episode: it keeps the old index and the
finished episode's last step, and the new episode becomes visible at the next frame, whose
episode step counts from the reset (1 when capture() is called every step). With
``autoreset="next_step"`` (gymnasium's default for vector envs) the done frame shows the end of
the finished episode and the next frame is the new episode's step 0.

State: ``state`` (2, N) int64 holds [episode index, step at which the episode's step 0 is]; a
frame's episode step is ``step - state[1]``, computed by the writer thread from a snapshot. The
state lives where the flags live (numpy, or a CUDA tensor), so counting costs a few elementwise
kernels on the producer's stream and never a device-to-host read. Counting only sees the steps
given to ``capture()``: call it every step (frames outside windows are cheap) or pass
``episode_step`` explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Episodes", "AUTORESET_MODES"]

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
        self.state: Any = None  # (2, N) int64, numpy or torch
        self._pending: Any = None  # (N,) bool: the new episode starts at the next frame
        self._has_pending = False
        self._torch = None
        self.device: Any = None  # torch device when the state lives in torch

    def _init(self, step: int) -> None:
        self.state = np.zeros((2, self.num_envs), np.int64)
        self.state[1] = step
        self._pending = np.zeros(self.num_envs, bool)
        if self._torch is not None:
            self._to_device(self.device)

    def _to_device(self, device: Any) -> None:
        import torch

        self._torch = torch
        self.device = device
        if self.state is not None:
            # One synchronous upload, the first time flags arrive on the device.
            self.state = torch.as_tensor(self.state, device=device)
            self._pending = torch.as_tensor(self._pending, device=device)

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

    def before(self, step: int, terminated: Any, truncated: Any, stale: Any) -> tuple:
        """Advance the counters to the frame at ``step``; return what ``after`` needs.

        Args:
            step: the frame's step.
            terminated, truncated, stale: (is_cuda, array) from ``ValueInput.check`` or None.
        """
        if self.state is None:
            self._init(step)
        if self._torch is None:
            for v in (terminated, truncated, stale):
                if v is not None and v[0]:
                    self._to_device(v[1].device)
                    break
        term, trunc, stl = self._flag(terminated), self._flag(truncated), self._flag(stale)
        done = term if trunc is None else trunc if term is None else term | trunc
        ep, base = self.state[0], self.state[1]
        on_torch = self._torch is not None
        if self._has_pending:
            ep += self._pending
            if self.autoreset == "next_step":
                if on_torch:
                    base.masked_fill_(self._pending, step)
                else:
                    np.putmask(base, self._pending, step)
        if done is not None and self.autoreset == "same_step":
            new = done if stl is None else done & ~stl
            ep += new
            if on_torch:
                base.masked_fill_(new, step)
            else:
                np.putmask(base, new, step)
        return done, stl

    def after(self, step: int, ctx: tuple) -> None:
        """Finish the frame at ``step`` once its snapshot of ``state`` is taken (or not needed)."""
        done, stl = ctx
        on_torch = self._torch is not None
        if self.autoreset == "same_step":
            pend = None if done is None or stl is None else done & stl
            if pend is not None:
                # A stale reset: the new episode's step 0 was this step, shown from the next frame.
                if on_torch:
                    self.state[1].masked_fill_(pend, step)
                else:
                    np.putmask(self.state[1], pend, step)
        else:
            pend = done
        if pend is not None:
            if on_torch:
                self._pending.copy_(pend)
            else:
                np.copyto(self._pending, pend)
            self._has_pending = True
        elif self._has_pending:
            self._pending[...] = False
            self._has_pending = False
