"""envreel.capture: record what N parallel envs see, at almost no cost per training step.

``Recorder`` takes per-env frames (numpy or torch, CPU or CUDA) every step, copies them into a
fixed ring of host buffers and returns; a background thread compresses and appends whole blocks
to a run store (see ``envreel.schemas``). The Isaac Lab adapter lives in
``envreel.capture.isaaclab``.

Example:
    >>> import numpy as np
    >>> from envreel.capture import Recorder
    >>> with Recorder("memory://capture-doc.zarr", num_envs=2, fps=30) as rec:
    ...     for _ in range(10):
    ...         _ = rec.capture(np.zeros((2, 32, 32, 3), np.uint8))
    >>> rec.stats.frames_written
    10
"""

from envreel.schemas import EnvreelError, RecorderError

from ._hooks import ClipEvent
from .recorder import DEFAULT_MAX_QUEUE_BYTES, Recorder, RecorderStats

__all__ = [
    "Recorder",
    "RecorderStats",
    "ClipEvent",
    "RecorderError",
    "EnvreelError",
    "DEFAULT_MAX_QUEUE_BYTES",
]
