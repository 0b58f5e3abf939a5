"""Recording windows: which steps a recorder keeps, and the clip id of each kept frame.

Two ways to choose, in the vocabulary of gymnasium's ``RecordVideo`` and Isaac Lab's video
recorder:

* **Automatic windows**: ``video_length`` steps every ``video_interval`` steps, the first one
  starting at ``step_offset``; inside a window every ``frame_stride``-th step is kept. Window k
  covers steps ``[step_offset + k * video_interval, ... + video_length)``. Without
  ``video_interval`` there is one window.
* **Manual clips** (no ``video_length``): a clip is open from the first capture, so without any
  call the whole run is clip 0; ``stop_clip()`` closes the open clip and ``start_clip()`` opens a
  new one. Frames before ``step_offset`` are never kept; inside a clip every ``frame_stride``-th
  step, counted from the clip's first captured step, is kept.

Each window or clip that keeps at least one frame gets the next clip id (0, 1, 2, ...): ids only
grow, so the clips in a store are contiguous and in order.

The decision is arithmetic on the step number, so steps may have gaps (a caller that records
every other step) and costs a few hundred nanoseconds.
"""

from __future__ import annotations

from .options import WindowOptions

__all__ = ["Windows"]


class Windows:
    """Decides per step whether a frame is kept and in which clip.

    Args:
        video_length: steps per automatic window, or None for manual clips. Defaults to None.
        video_interval: steps from the start of one window to the next, at least
            ``video_length``; None with ``video_length`` means a single window. Defaults to None.
        step_offset: first step that may be kept (and start of the first window).
            Defaults to 0.
        frame_stride: keep every ``frame_stride``-th step of a window or clip. Defaults to 1.

    Raises:
        TypeError/ValueError: an argument is not an int in range, or windows would overlap
            (the checks of ``WindowOptions``).
    """

    def __init__(
        self,
        *,
        video_length: int | None = None,
        video_interval: int | None = None,
        step_offset: int = 0,
        frame_stride: int = 1,
    ) -> None:
        opts = WindowOptions(
            video_length=video_length,
            video_interval=video_interval,
            step_offset=step_offset,
            frame_stride=frame_stride,
        )
        self.video_length = opts.video_length
        self.video_interval = opts.video_interval
        self.step_offset = opts.step_offset
        self.frame_stride = opts.frame_stride
        self.automatic = self.video_length is not None
        self._next_id = 0  # id the next window or clip with a kept frame gets
        self._clip = -1  # id of the clip that holds the last kept frame
        self._window = -1  # automatic: index k of the window of the last kept frame
        self._open = True  # manual: a clip is open
        self._clip_start: int | None = None  # manual: step of the open clip's first kept frame
        self._fresh = True  # manual: the open clip has no kept frame yet

    @property
    def is_open(self) -> bool:
        """Manual clips: whether a clip is open. Automatic windows: always True."""
        return self.automatic or self._open

    def past_window(self, step: int) -> bool:
        """Whether the clip of the last kept frame has ended by ``step``: automatic windows,
        ``step`` lies past that frame's window; manual clips, no clip is open."""
        if not self.automatic:
            return not self._open
        rel = step - self.step_offset
        if self.video_interval is None:
            return rel >= self.video_length
        k, pos = divmod(rel, self.video_interval)
        return k != self._window or pos >= self.video_length

    def start_clip(self) -> None:
        """Open a new clip (closing the open one, if any)."""
        if self.automatic:
            raise RuntimeError(
                "start_clip() is for manual clips; this recorder has automatic windows "
                f"(video_length={self.video_length})"
            )
        self._open = True
        self._fresh = True
        self._clip_start = None

    def stop_clip(self) -> None:
        """Close the open clip; frames are not kept until ``start_clip()``."""
        if self.automatic:
            raise RuntimeError(
                "stop_clip() is for manual clips; this recorder has automatic windows "
                f"(video_length={self.video_length})"
            )
        self._open = False
        self._fresh = True
        self._clip_start = None

    def keeps(self, step: int) -> bool:
        """Whether ``decide(step)`` would keep a frame at ``step`` (changes nothing)."""
        rel = step - self.step_offset
        if rel < 0:
            return False
        stride = self.frame_stride
        if self.automatic:
            pos = rel if self.video_interval is None else rel % self.video_interval
            return pos < self.video_length and pos % stride == 0
        if not self._open:
            return False
        return self._clip_start is None or (step - self._clip_start) % stride == 0

    def decide(self, step: int) -> int | None:
        """The clip id of a frame at ``step`` if it is kept, else None.

        Call once per captured step, in increasing step order. A returned id must be used:
        the first kept frame of a window or clip takes a new id.
        """
        rel = step - self.step_offset
        if rel < 0:
            return None
        stride = self.frame_stride
        if self.automatic:
            if self.video_interval is None:
                k, pos = 0, rel
            else:
                k, pos = divmod(rel, self.video_interval)
            if pos >= self.video_length or pos % stride:
                return None
            if k != self._window:
                self._window = k
                self._clip = self._next_id
                self._next_id += 1
            return self._clip
        if not self._open:
            return None
        if self._clip_start is None:
            self._clip_start = step  # strides count from the clip's first kept step
        elif (step - self._clip_start) % stride:
            return None
        if self._fresh:
            self._fresh = False
            self._clip = self._next_id
            self._next_id += 1
        return self._clip
