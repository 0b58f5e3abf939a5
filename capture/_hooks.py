"""``on_clip``: the recorder calls user code (a logger, a renderer) when a clip is committed.

A clip is committed whole when the store holds its last frame and the next clip has begun, or
the recorder closed. The writer (thread or process) lists committed clips; a daemon thread here
picks them up and calls the hook, off the training thread and off the writer, so a slow hook
(rendering a video for TensorBoard) delays neither. ``close()`` waits for the hooks of the last
clips. A hook that raises is reported once as a warning (with the clip) and the others still run.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envreel.schemas.reader import Clip

__all__ = ["ClipEvent", "ClipHooks"]

_POLL_S = 0.2


@dataclass(frozen=True)
class ClipEvent(Clip):
    """A clip committed to a run store (what ``on_clip`` hooks get): a
    :class:`~envreel.schemas.Clip` (``id``, ``start_frame``, ``stop_frame``, ``start_step``,
    ``stop_step``, ``num_frames``) and the store holding it.

    Attributes:
        url: the store (open it with ``envreel.schemas.open_run``; it holds this clip).
    """

    url: str

    @property
    def clip(self) -> int:
        """The clip id (``Layout(clip=...)`` renders just it); the same as ``id``."""
        return self.id


class _Nothing:
    clips_done: list = []


class ClipHooks:
    """Calls ``hook(ClipEvent)`` for each clip a writer lists in ``clips_done``.

    Args:
        hook: the user's callable.
        url: the store, as the hook should open it.
        writer: a writer with a growing ``clips_done`` list (set with :meth:`watch`).
    """

    def __init__(self, hook: Callable[[ClipEvent], Any], url: Any) -> None:
        if not callable(hook):
            raise TypeError(f"on_clip must be callable (it gets a ClipEvent), got {hook!r}")
        self.hook = hook
        self.url = os.fspath(url) if isinstance(url, os.PathLike) else url
        self._writer: Any = None
        self._done = 0
        self._stop = threading.Event()
        self._warned = False
        self._thread: threading.Thread | None = None

    def watch(self, writer: Any) -> None:
        """Starts calling the hook for ``writer``'s committed clips."""
        self._writer = writer
        self._thread = threading.Thread(target=self._run, name="envreel-on-clip", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(_POLL_S):
            self._deliver()
        self._deliver()

    def _deliver(self) -> None:
        clips = self._writer.clips_done
        while self._done < len(clips):
            c = clips[self._done]
            self._done += 1
            event = ClipEvent(
                url=str(self.url),
                id=int(c["id"]),
                start_frame=int(c["start_frame"]),
                stop_frame=int(c["stop_frame"]),
                start_step=int(c["start_step"]),
                stop_step=int(c["stop_step"]),
            )
            try:
                self.hook(event)
            except Exception as exc:  # noqa: BLE001 - a hook never stops recording
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"envreel: on_clip hook {self.hook!r} failed for clip {event.clip} of "
                        f"{event.url}: {type(exc).__name__}: {exc}; recording goes on "
                        "(further hook failures are not shown)",
                        RuntimeWarning,
                        stacklevel=1,
                    )

    def abandon(self) -> None:
        """Stops without delivering what is left (interpreter exit)."""
        self._writer = _Nothing()
        self._stop.set()

    def close(self) -> None:
        """Delivers the clips left (the last ones, listed at the writer's close) and stops."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
