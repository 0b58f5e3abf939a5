"""``frames(run, layout)``: a layout's composed frames as arrays — the one place the render
pipeline is wired.

:class:`FrameSource` resolves a layout against a run once (the plan: which envs, in what order,
on which pages, over which frames), lays out the canvas (the geometry), and composes output
frames on demand through the block reader and the composer: in order, a block of frames at a
time with the next block read on a thread (what :func:`render` encodes, and what iterating
gives), or at random (:meth:`FrameSource.frame`: what a viewer scrubbing time asks for; the
block around the frame is composed and kept, so playing on from there is cheap). Memory is a
few blocks of frames, whatever the length of the run.

Example:
    >>> from envreel.render import Layout, frames
    >>> for image in frames("envreel-demo/run.zarr", Layout(envs="0-3")):  # doctest: +SKIP
    ...     image.shape                                                     # (H, W, 3) uint8
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from envreel.schemas import Run, open_run

from ._compose import Composer, compute_geometry, nominal_tile
from ._select import DamageLog, ScalarReader, _warn, plan_render
from ._stream import BlockReader, Job, Prefetcher
from .layout import Layout

__all__ = ["FrameSource", "Tile", "frames"]

RANDOM_ROWS = 8
"""Frames composed at once for random access (``FrameSource.frame``) while frames are asked for
in order (a viewer playing); a jump composes the frame asked for alone, since a frame of 4,096
tiles costs ~0.3 s to compose and a scrubbing viewer shows only that one."""


class Tile(NamedTuple):
    """Where an env's tile is on the canvas, in pixels."""

    env: int
    x: int
    y: int
    w: int
    h: int


def as_layout(layout: Layout | Mapping | str | os.PathLike | None) -> Layout:
    """A Layout from a Layout, a dict of fields, a preset name or a .json/.yaml file."""
    if layout is None:
        return Layout()
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, Mapping):
        return Layout.from_dict(layout)
    if isinstance(layout, str | os.PathLike):
        text = str(layout)
        if Path(text).suffix.lower() in (".json", ".yaml", ".yml"):
            return Layout.from_file(text)
        return Layout.preset(text)
    raise TypeError(
        f"layout must be a Layout, a dict of fields, a preset name or a .json/.yaml path, "
        f"got {type(layout).__name__}"
    )


def as_run(run: Run | str | os.PathLike | list | tuple) -> Run:
    """An open Run from a Run, a store path / URL, or a list of rank stores."""
    if isinstance(run, Run):
        return run
    if isinstance(run, str | os.PathLike | list | tuple):
        return open_run(run)
    raise TypeError(f"run must be a Run or a store path/URL, got {type(run).__name__}")


class FrameSource:
    """A layout planned against a run, whose composed frames are taken in order or at random.

    Args:
        run: an open ``Run``, a store path / URL, or a list of rank stores.
        layout: a ``Layout``, a dict of its fields, a preset name, or a .json/.yaml file.
            Defaults to None (all envs, automatic grid).
        skip_bad: unreadable chunks become placeholder tiles (with a warning) instead of
            raising. Defaults to False.
        max_size: (height, width) the canvas must fit, on top of the layout's limits (a GIF's
            cap); the layout is scaled down to fit (``downsized_from`` then holds the size it
            had). Defaults to None.
        fps_cap: highest output fps; above it frames are skipped (with a warning). Defaults to
            None.
        prefetch: read the next block on a thread while the current one is used. Defaults to
            True.

    Attributes:
        run, layout, plan, geometry: what was resolved.
        warnings: messages about what was changed or left out (also warned as UserWarning).

    Raises:
        ValueError: a bad layout, env id, scalar name or time window, named.
        CorruptChunkError: planning read a damaged scalar chunk and ``skip_bad`` is False.
    """

    def __init__(
        self,
        run: Run | str | os.PathLike | list | tuple,
        layout: Layout | Mapping | str | None = None,
        *,
        skip_bad: bool = False,
        max_size: tuple[int, int] | None = None,
        fps_cap: float | None = None,
        prefetch: bool = True,
        _damage: DamageLog | None = None,
    ) -> None:
        self.layout = layout = as_layout(layout)
        self.run = run = as_run(run)
        self.warnings: list[str] = []
        self.plan = plan_render(
            run, layout, skip_bad=skip_bad, fps_cap=fps_cap, messages=self.warnings
        )
        self.geometry = self._geometry(max_size)
        scalars = ScalarReader(run, skip_bad=skip_bad, messages=self.warnings, damage=_damage)
        fields = self.plan.label.fields if self.plan.label is not None else ()
        g = self.geometry
        self.reader = BlockReader(
            run,
            self.plan,
            skip_bad=skip_bad,
            scalars=scalars,
            frame_fields=tuple(f for f in ("step", "time") if f in fields),
            canvas_bytes=g.height * g.width * 3,
            reads_global=g.global_rect is not None,
        )
        self.composer = Composer(run, self.plan, layout, g, self.reader)
        self.prefetch = prefetch
        self._jobs = [self.reader.jobs(p) for p in range(len(self.plan.pages))]
        self._offsets = np.cumsum([0] + [self.plan.page_frames(p) for p in range(self.pages)])
        self._cached: tuple[Job, np.ndarray] | None = None
        self._buffer: np.ndarray | None = None

    def _geometry(self, max_size: tuple[int, int] | None):
        run, layout = self.run, self.layout
        args: dict[str, Any] = dict(
            num_tiles=self.plan.page_size,
            env_shape=run.env_frame_shape,
            global_shape=run.global_frame_shape,
        )
        geometry = compute_geometry(layout, **args)
        n = self.plan.page_size
        if geometry.slots and (geometry.columns > n or geometry.rows > n):
            wide = geometry.columns > n
            _warn(
                self.warnings,
                f"{'columns' if wide else 'rows'}={geometry.columns if wide else geometry.rows} "
                f"for at most {n} envs a page: {geometry.slots - n} of the "
                f"{geometry.columns}×{geometry.rows} slots stay empty; set fewer "
                f"{'columns' if wide else 'rows'} for a smaller video",
            )
        if geometry.factor < 1 and geometry.slots:
            th0, tw0 = nominal_tile(layout, run.env_frame_shape)
            _warn(
                self.warnings,
                f"tiles shown at {geometry.tile_width}×{geometry.tile_height} instead of "
                f"{tw0}×{th0} to fit max_width×max_height {layout.max_width}×"
                f"{layout.max_height} ({geometry.columns}×{geometry.rows} slots for "
                f"{self.plan.page_size} envs a page); raise them, or set fewer columns or "
                "page_size",
            )
        self.downsized_from: tuple[int, int] | None = None
        if max_size is not None and (geometry.height > max_size[0] or geometry.width > max_size[1]):
            self.downsized_from = (geometry.width, geometry.height)
            geometry = compute_geometry(layout, **args, max_size=max_size)
        return geometry

    # -- facts ----------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Output frames, over every page."""
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def pages(self) -> int:
        """Pages (a page: the envs of one grid)."""
        return len(self.plan.pages)

    @property
    def fps(self) -> float:
        return self.plan.fps

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of each frame."""
        return self.geometry.height, self.geometry.width

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of each frame (image libraries' order)."""
        return self.geometry.width, self.geometry.height

    @property
    def envs(self) -> tuple[int, ...]:
        """Global env ids shown, in tile order over the pages."""
        return self.plan.global_ids

    def _page(self, page: object) -> int:
        """``page`` checked: an int in 0..pages-1."""
        if isinstance(page, bool) or not isinstance(page, int | np.integer):
            raise TypeError(f"page must be an int, got {page!r}")
        if not 0 <= page < self.pages:
            raise ValueError(f"page {page} is not in 0..{self.pages - 1} (this layout's pages)")
        return int(page)

    def page_frames(self, page: int) -> range:
        """The output frames of ``page``."""
        page = self._page(page)
        return range(int(self._offsets[page]), int(self._offsets[page + 1]))

    def tiles(self, page: int = 0) -> list[Tile]:
        """Each env's tile on ``page``'s canvas (for hit tests and overlays)."""
        g = self.geometry
        envs = self.plan.pages[self._page(page)]
        return [
            Tile(self.plan.global_id(env), x, y, g.tile_width, g.tile_height)
            for (y, x), env in zip(g.tiles, envs, strict=False)
        ]

    @property
    def store_frames(self) -> np.ndarray:
        """(num_frames,) the store frame each output frame shows (episode mode: of its first
        env)."""
        out = []
        for page, envs in enumerate(self.plan.pages):
            s, e = self.plan.track(envs[0]) if envs else (0, 0)
            n = len(self.page_frames(page))
            idx = s + np.arange(n) * self.plan.stride
            out.append(np.minimum(idx, max(s, e - 1)))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    # -- frames ---------------------------------------------------------------------------------
    def blocks(self, page: int | None = None) -> BlockStream:
        """(rows, H, W, 3) uint8 blocks of consecutive frames, in order (of one page, or of
        all); a block is valid until the next is asked for. The first block starts composing
        (on the prefetch thread) at once, while the caller gets ready, e.g. opens an encoder."""
        pages = range(self.pages) if page is None else [self._page(page)]
        return BlockStream(self, [job for p in pages for job in self._jobs[p]])

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame in order, (H, W, 3) uint8, each an array of its own to keep
        (``list(source)`` holds every frame; ``blocks()`` lends the composed blocks instead)."""
        with self.blocks() as stream:
            for block in stream:
                yield from block.copy()  # the stream reuses its blocks

    def check_frame(self, t: int) -> None:
        """Raises TypeError/ValueError, naming ``t``, unless it is an output frame index."""
        if isinstance(t, bool) or not isinstance(t, int | np.integer):
            raise TypeError(f"t must be an int frame index, got {t!r}")
        if not 0 <= t < self.num_frames:
            raise ValueError(f"frame {t} is not in 0..{self.num_frames - 1}")

    def frame(self, t: int) -> np.ndarray:
        """Output frame ``t`` (0 <= t < num_frames), (H, W, 3) uint8, a fresh array.

        A short block from ``t`` on is composed and kept, so the next frames come from it (a
        viewer playing on) and a jump composes a few frames, not a whole store block.
        """
        self.check_frame(t)
        page = int(np.searchsorted(self._offsets, t, side="right") - 1)
        o = int(t - self._offsets[page])
        cached = self._cached
        if cached is None or cached[0].page != page or not cached[0].o0 <= o < cached[0].o1:
            self._compose_from(page, o, cached[0] if cached is not None else None)
        job, block = cast(tuple[Job, np.ndarray], self._cached)
        return block[o - job.o0].copy()

    def _compose_from(self, page: int, o: int, last: Job | None) -> None:
        """Composes output frames from ``o`` of ``page`` into the kept block: ``RANDOM_ROWS``
        of them when ``o`` follows the last block composed, else ``o`` alone.

        The composer carries state from frame to frame of a page: a border stays drawn for
        ``border_hold`` frames after a done flag, and in episode mode an env whose episode
        ended shows its last frame, dimmed. Unless ``o`` follows the last block composed, that
        state is rebuilt first: the ``border_hold`` frames before ``o`` are composed (in episode
        mode, the page from its start; nothing when no border is held past its frame).
        """
        n = self.plan.page_frames(page)
        sequential = last is not None and last.page == page and last.o1 == o
        if not sequential:
            warm = 0 if self.plan.episode_mode else max(0, o - self.layout.border_hold - 1)
            if (self.layout.border <= 0 or self.layout.border_hold == 0) and (
                not self.plan.episode_mode
            ):
                warm = o
            for a in range(warm, o, RANDOM_ROWS):
                self._fill(Job(page, a, min(o, a + RANDOM_ROWS)))
            if warm == o and o > 0:
                self.composer.held.clear()
                self.composer.carry.clear()
        self._fill(Job(page, o, min(n, o + (RANDOM_ROWS if sequential else 1))))

    def _fill(self, job: Job) -> None:
        if self._buffer is None:
            self._buffer = self.composer.make_buffer(RANDOM_ROWS)
        block = self._buffer[: len(job)]
        self.composer.fill(job, block)
        self._cached = (job, block)

    def compose(self, store_frames: Mapping[int, int]) -> np.ndarray:
        """One frame showing each given env at its own store frame: ``{global env id: store
        frame}`` for envs of the first page (a contact sheet's column); (H, W, 3) uint8."""
        return self.composer.compose_at({self._stored(env): f for env, f in store_frames.items()})

    def _stored(self, env: int) -> int:
        return self.plan.stored(env)

    def command(self, run: str, out: str) -> str:
        """The ``envreel render`` command line that renders this layout of ``run`` to ``out``."""
        import shlex

        return shlex.join(["envreel", "render", run, out, *self.layout.command_args()])

    def close(self) -> None:
        """Releases the kept block."""
        self._cached = None
        self._buffer = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockStream:
    """Blocks of a :class:`FrameSource`, composed one ahead on a thread (see ``blocks()``)."""

    def __init__(self, source: FrameSource, jobs: list[Job]) -> None:
        rows = max((len(j) for j in jobs), default=1)
        composer = source.composer
        self._stream = Prefetcher(
            jobs, composer.fill, lambda: composer.make_block(rows), threaded=source.prefetch
        )
        self._stream.start()
        self._it = iter(self._stream) if jobs else iter(())

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        return next(self._it)[1]

    def close(self) -> None:
        """Stops the prefetch thread."""
        self._stream.close()

    def __enter__(self) -> BlockStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frames(
    run: Run | str | os.PathLike | list | tuple,
    layout: Layout | Mapping | str | None = None,
    **options: Any,
) -> FrameSource:
    """The composed frames of ``layout`` over ``run``: iterate for (H, W, 3) uint8 frames in
    order, or take ``frame(t)`` at random (see :class:`FrameSource` for the options).

    Example:
        >>> source = frames("envreel-demo/run.zarr", {"envs": "0-3"})  # doctest: +SKIP
        >>> len(source), source.shape, source.frame(100).dtype        # doctest: +SKIP
        (201, (256, 256), dtype('uint8'))
    """
    return FrameSource(run, layout, **options)
