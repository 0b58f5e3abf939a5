"""The second step of ``capture()``: put a checked step into its slot of a ring block.

Host inputs are copied into the slot now (one memory copy each). CUDA inputs are routed through
the copier (``_cuda.CudaCopier``): frames through its device staging ring, values straight into
the host slot, all as one batch of asynchronous copies whose event the writer waits for before
it reads the block. Nothing here compresses or touches the store.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from . import _frames as fr
from ._inputs import CheckedStep, Inputs
from ._writer import Slots

__all__ = ["SlotFiller"]

_CUDA_KINDS = (fr.CUDA, fr.CUDA_PIXELS, fr.CUDA_FLOAT)
_RANGE = {"env_frames": "env_range", "global_frames": "global_range"}  # float input's range


class SlotFiller:
    """Fills ring slots from checked steps; owns the CUDA copier once CUDA input shows up.

    Args:
        inputs: the recorder's input checkers (their plans say how to copy).
        value_range: (lo, hi) of float frames, or None.
    """

    def __init__(self, inputs: Inputs, value_range: tuple[float, float] | None) -> None:
        self.inputs = inputs
        self.value_range = value_range
        self.copier: Any = None

    def make_copier(self, device: Any, pinned: bool) -> None:
        from ._cuda import CudaCopier

        self.copier = CudaCopier(device, pinned=pinned)

    def fill(self, s: Slots, i: int, c: CheckedStep, clip: int, gaps: Any, pinned: bool) -> None:
        """Frame ``i`` of block ``s``: the step ``c`` in clip ``clip``.

        ``gaps``: the episode counter's snapshot (``Episodes.snapshot()``), or None.
        """
        a = s.arrays
        # frames: (block, field, index, CUDA source, whole pixels, into 3 of 4 channels), via
        # the staging ring; pairs: (block, field, index, CUDA source) of values, copied
        # directly (see CudaCopier.copy)
        frames: list = []
        pairs: list = []
        a["step"][i] = c.step
        a["sim_time"][i] = c.sim_time
        a["wall_time"][i] = time.time()
        a["clip"][i] = clip
        self._put_frame(s, i, "env_frames", self.inputs.env, c.env, frames, pairs)
        if c.glob is not None:
            self._put_frame(s, i, "global_frames", self.inputs.glob, c.glob, frames, pairs)
        # Values not given keep the defaults the writer reset the block to (reset_defaults).
        for name, v in c.values.items():
            _put_value(s, i, name, v, pairs)
        if "episode_step" in c.values:
            a["explicit_episode_step"][i] = True
        if c.stale_done:
            a["stale_done"][i] = True
        if gaps is not None:  # None after a stored frame: the writer counts
            a["ep_snapshot"][i] = True
            _put_value(s, i, "ep_gaps", (not isinstance(gaps, np.ndarray), gaps), pairs)
        for name, v in c.scalars.items():
            _put_value(s, i, f"scalar:{name}", v, pairs)
        for key, v in (("env_pose", c.env_pose), ("global_pose", c.global_pose)):
            if v is not None:
                _put_value(s, i, key, v, pairs)
        if frames or pairs:
            self._copy_cuda(s, frames, pairs, pinned)

    def _put_frame(
        self, s: Slots, i: int, field: str, inp: Any, plan: tuple[str, Any], frames, values
    ) -> None:
        kind, payload = plan
        ring = s.arrays[field]
        rgba = ring.shape[-1] == 4  # an RGBA ring field: whole pixels are copied (ring_layout)
        if kind in _CUDA_KINDS:
            mm = None
            if rgba and kind == fr.CUDA_PIXELS:
                frames.append((s, field, i, payload, True, False))  # whole pixels
            else:
                u8, mm = inp.to_device_uint8(kind, payload)
                frames.append((s, field, i, u8, False, rgba))
            if mm is not None:
                values.append((s, _RANGE[field], i, mm))
            elif self.value_range is not None:
                s.arrays[_RANGE[field]][i] = self.value_range
            return
        dst = ring[i]
        inp.copy_host(kind, payload, dst[..., :3] if rgba else dst, s.words[field][i])
        if self.value_range is not None:
            s.arrays[_RANGE[field]][i] = self.value_range  # checked before the copy

    def _copy_cuda(self, s: Slots, frames: list, pairs: list, pinned: bool) -> None:
        if self.copier is None:
            if not pinned:
                warnings.warn(
                    "envreel: CUDA input reached a recorder whose first capture was on the "
                    "CPU; its ring is not page-locked, so device-to-host copies are "
                    "synchronous. Pass CUDA tensors from the first capture on.",
                    RuntimeWarning,
                    stacklevel=5,
                )
            self.make_copier((frames or pairs)[-1][3].device, pinned)
        if s.event is None:
            s.event = self.copier.new_event()
        self.copier.copy(frames, pairs)
        s.used_cuda = True

    def finish(self, s: Slots) -> None:
        """Before block ``s`` goes to the writer: its CUDA copies end with its event."""
        if s.used_cuda:
            self.copier.finish(s.event)


def _put_value(s: Slots, i: int, key: str, v: tuple[bool, Any], pairs: list) -> None:
    """A checked (is_cuda, value): CUDA values join the batch, host values are stored now."""
    if v[0]:
        pairs.append((s, key, i, v[1]))
        return
    # float64 into a float32 field: a value beyond float32's range becomes inf here (numpy
    # warns about the cast; np.errstate would cost ~1.2 µs a call), which the writer counts and
    # the recorder reports once (BlockSink._count_inf).
    s.arrays[key][i] = v[1]
