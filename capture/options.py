"""The recorder's own options, each declared once: ``Recorder`` and ``RecorderCfg`` share them.

Three groups, beside the store's (``envreel.schemas.options``: clock, store, poses, ranks):

* :class:`WindowOptions`: which steps are recorded (gymnasium's ``RecordVideo`` words);
* :class:`WriterOptions`: the host memory budget, the writer and what happens when it lags or
  fails;
* :class:`InputOptions`: how frames and done flags are read.

Building a group checks every value; ``prefix`` names the owner in messages
(``"RecorderCfg.on_full must be one of ('block', 'drop'), got 'wait'"``). This module imports no
torch.

Example:
    >>> WindowOptions(video_length=100, video_interval=1000).frame_stride
    1
    >>> WriterOptions(on_full="wait")
    Traceback (most recent call last):
    ValueError: on_full must be one of ('block', 'drop'), got 'wait'
"""

from __future__ import annotations

import math
from dataclasses import InitVar, dataclass
from typing import Any

from envreel._options import check_options, option

from ._episodes import AUTORESET_MODES

__all__ = ["DEFAULT_MAX_QUEUE_BYTES", "WindowOptions", "WriterOptions", "InputOptions"]

DEFAULT_MAX_QUEUE_BYTES = 512 * 2**20
"""512 MiB: five blocks of 64 envs × 128×128 RGB × 32 frames (101 MB each). A block is the unit
the writer compresses; the recorder needs room for at least two (one filling, one writing); more
absorb a writer that is briefly slower than the loop. On an H100 host, 64 envs every 5 ms with
room for 3 blocks dropped 11 of 10,000 frames to such jitter (the writer averaged 72% busy)."""

WRITERS = ("auto", "process", "thread")
ON_FULL = ("block", "drop")
ON_ERROR = ("warn", "raise")


@dataclass(frozen=True)
class WindowOptions:
    """Which steps are recorded: ``video_length`` steps every ``video_interval`` steps from
    ``step_offset``, every ``frame_stride``-th of them (see ``capture/_windows.py``)."""

    video_length: int | None = option(
        None,
        "steps per recording window; None: no automatic windows",
        kind="int",
        minimum=1,
        unit="steps",
    )
    video_interval: int | None = option(
        None,
        "steps between window starts (>= video_length); None: one window",
        kind="int",
        minimum=1,
        unit="steps",
    )
    step_offset: int = option(0, "first step that may be recorded", minimum=0, unit="steps")
    frame_stride: int = option(1, "record every k-th step of a window or clip", minimum=1)
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)
        if self.video_interval is None:
            return
        if self.video_length is None:
            raise ValueError(
                f"{prefix}video_interval={self.video_interval} needs {prefix}video_length "
                "(steps per window)"
            )
        if self.video_interval < self.video_length:
            raise ValueError(
                f"{prefix}video_interval={self.video_interval} must be >= "
                f"{prefix}video_length={self.video_length}: windows would overlap"
            )


@dataclass(frozen=True)
class WriterOptions:
    """Where blocks are written from, with how much memory, and what happens when it lags or
    fails."""

    max_queue_bytes: int = option(
        DEFAULT_MAX_QUEUE_BYTES,
        "host memory for the ring of block buffers; it must hold at least 2 blocks",
        minimum=1,
        unit="bytes",
    )
    on_full: str = option(
        "block", "when every buffer waits for the writer: wait, or drop the frame", choices=ON_FULL
    )
    on_error: str = option(
        "warn",
        "when the writer fails: warn once and count, or raise at the next call",
        choices=ON_ERROR,
    )
    writer: str = option(
        "auto",
        "where blocks are compressed and written; auto: a process for paths and URLs",
        choices=WRITERS,
    )
    overwrite: bool = option(False, "replace an existing store at the URL")
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)


@dataclass(frozen=True)
class InputOptions:
    """How ``capture()`` reads frames and done flags."""

    value_range: tuple[float, float] | None = option(
        None, "(lo, hi) of float frames, mapped to 0 and 255; required for float input"
    )
    autoreset: str = option(
        "same_step", "when a done env's new episode shows", choices=AUTORESET_MODES
    )
    prefix: InitVar[str] = ""

    def __post_init__(self, prefix: str) -> None:
        check_options(self, prefix=prefix)
        object.__setattr__(self, "value_range", _value_range(self.value_range, prefix))


def _value_range(value_range: Any, prefix: str) -> tuple[float, float] | None:
    if value_range is None:
        return None
    name = f"{prefix}value_range"
    try:
        lo, hi = value_range
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be (lo, hi) numbers, got {value_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with lo < hi, got {value_range!r}")
    return lo, hi
