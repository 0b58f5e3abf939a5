"""The render verbs: ``render`` (mp4, GIF, PNG frames), ``render_envs`` (one video per env, in
worker processes) and ``contact_sheet`` (one PNG of envs × sampled times)."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envreel.schemas import CorruptChunkError, Run, open_run

from ._compose import Composer, compute_geometry
from ._encode import (
    check_encoder_options,
    check_output,
    find_ffmpeg,
    open_writer,
    output_kind,
    safe_filename,
    safe_join,
)
from ._select import Plan, ScalarReader, plan_render
from ._stream import BlockReader, Prefetcher, TileBatch
from .layout import LabelTemplate, Layout

__all__ = ["render", "render_envs", "contact_sheet", "RenderResult"]

GIF_MAX_FPS = 50.0
"""Browsers play GIF delays under 20 ms as 100 ms, so GIFs are capped at 50 fps."""
_SWITCH_INTERVAL_S = 0.0005
GIF_MAX_SIDE = 1024
"""Default cap on a GIF's longer side (GIFs are large: one byte per pixel per frame)."""


@dataclass(frozen=True)
class RenderResult:
    """What ``render`` wrote.

    Attributes:
        paths: the outputs (one per page with ``pages="separate"``).
        frames: frames written to each output.
        width, height: frame size of the outputs.
        fps: frames per second of the outputs.
        envs: global env ids shown (``Run.env_ids``), in tile order.
        seconds: wall time of the render.
        warnings: warning messages (skipped chunks, downsized GIF, fps cap, left-out envs).
    """

    paths: tuple[Path, ...]
    frames: tuple[int, ...]
    width: int
    height: int
    fps: float
    envs: tuple[int, ...]
    seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def path(self) -> Path:
        """The first (usually only) output."""
        return self.paths[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "paths": [str(p) for p in self.paths],
            "frames": list(self.frames),
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "envs": list(self.envs),
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
        }


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _as_layout(layout: Layout | Mapping | str | None) -> Layout:
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


def _as_run(run: Run | str | os.PathLike) -> Run:
    if isinstance(run, Run):
        return run
    if isinstance(run, str | os.PathLike):
        return open_run(run)
    raise TypeError(f"run must be a Run or a store path/URL, got {type(run).__name__}")


def _warn(messages: list[str], msg: str) -> None:
    messages.append(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)


class _Progress:
    """A one-line progress bar on stderr; silent unless stderr is a terminal (or forced)."""

    def __init__(self, total: int, desc: str, enabled: bool | None):
        stream = sys.stderr
        self.on = bool(enabled) if enabled is not None else stream.isatty()
        self.total, self.desc, self.n = max(1, total), desc, 0
        self.t0 = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.on and (now - self.last > 0.2 or self.n >= self.total):
            self.last = now
            rate = self.n / max(now - self.t0, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else 0
            frac = self.n / self.total
            bar = "#" * int(frac * 24)
            sys.stderr.write(
                f"\r{self.desc} [{bar:<24}] {self.n}/{self.total} frames "
                f"{rate:5.1f} fps ETA {eta:4.0f}s"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _page_paths(path: Path, kind: str, pages: int, separate: bool) -> list[Path]:
    if not separate or pages == 1:
        return [path]
    stem, suffix = path.stem if kind != "png" else path.name, path.suffix if kind != "png" else ""
    return [path.with_name(f"{safe_filename(stem)}_p{p:03d}{suffix}") for p in range(pages)]


# ------------------------------------------------------------------------------------------------
# render
# ------------------------------------------------------------------------------------------------
def render(
    run: Run | str | os.PathLike,
    layout: Layout | Mapping | str | None = None,
    out: str | os.PathLike | None = None,
    *,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int | None = None,
    skip_bad: bool = False,
    progress: bool | None = None,
    overwrite: bool = True,
    gif_max_side: int = GIF_MAX_SIDE,
    prefetch: bool = True,
) -> RenderResult:
    """Render a run store with a layout to an mp4, a GIF or a folder of PNG frames.

    Frames stream through in blocks of time: only the shown envs' chunks are read, composed into
    a preallocated canvas, handed to the encoder and forgotten, while a thread reads the next
    block. Memory does not depend on the length of the run. Everything that can be checked is
    checked before the output is opened: a bad layout or output path writes nothing.

    Args:
        run: an open ``Run``, or a store path / URL.
        layout: a ``Layout``, a dict of its fields, a preset name, or a .json/.yaml layout file.
            Defaults to None (``Layout()``: all envs, automatic grid).
        out: output path; the suffix picks the format: ``.mp4`` (H.264), ``.gif``, or no suffix
            (or an existing empty folder) for PNG frames ``frame_000000.png``, ...
        crf: x264 quality, 0 (lossless) .. 51, lower is better. Defaults to 23.
        preset: x264 speed preset. Defaults to "veryfast".
        threads: encoder threads: ffmpeg's for an mp4; for a GIF, frames quantised and
            encoded at once (the file is the same for any count). Defaults to None (ffmpeg
            decides; a GIF takes one per CPU, at most 4).
        skip_bad: on a chunk that cannot be read, draw a placeholder tile (NaN for scalars) and
            warn, instead of raising. Defaults to False.
        progress: show a progress bar on stderr. Defaults to None (only when stderr is a TTY).
        overwrite: replace an existing output file. Defaults to True.
        gif_max_side: longest side of a GIF; larger layouts are scaled down with a warning.
            Defaults to 1024.
        prefetch: read the next block in a thread while encoding. Defaults to True.

    Returns:
        A ``RenderResult`` naming the outputs.

    Raises:
        ValueError: a bad layout, env id, scalar name, time window, output suffix or folder,
            found before anything is written.
        CorruptChunkError: a chunk cannot be read (``skip_bad=False``); names array and chunk.
        RenderError: the encoder failed; its message is included.

    Example:
        >>> render("runs/ant.zarr", Layout(envs="0-15", columns=4), "ant.mp4")  # doctest: +SKIP
        >>> render("runs/ant.zarr", "top16", "best.gif")                        # doctest: +SKIP
    """
    t0 = time.monotonic()
    if out is None:
        raise ValueError("out is required: a .mp4 or .gif path, or a folder for PNG frames")
    layout = _as_layout(layout)
    kind = output_kind(out)
    check_encoder_options(crf=crf, preset=preset, threads=threads)
    if isinstance(gif_max_side, bool) or not isinstance(gif_max_side, int) or gif_max_side < 2:
        raise ValueError(f"gif_max_side must be an int >= 2, got {gif_max_side!r}")
    path = check_output(out, kind, overwrite=overwrite)
    if kind == "mp4":
        find_ffmpeg()  # a missing ffmpeg is reported before anything is read or written
    run = _as_run(run)
    messages: list[str] = []
    plan = plan_render(
        run,
        layout,
        skip_bad=skip_bad,
        fps_cap=GIF_MAX_FPS if kind == "gif" else None,
        messages=messages,
    )
    geo_args = dict(
        num_tiles=plan.page_size,
        env_shape=run.env_frame_shape,
        global_shape=run.global_frame_shape,
    )
    geometry = compute_geometry(layout, **geo_args)
    if kind == "gif" and max(geometry.height, geometry.width) > gif_max_side:
        big = geometry
        geometry = compute_geometry(layout, **geo_args, max_size=(gif_max_side, gif_max_side))
        _warn(
            messages,
            f"GIF downsized from {big.width}×{big.height} to {geometry.width}×{geometry.height} "
            f"(gif_max_side={gif_max_side}); use mp4 for full size",
        )
    separate = layout.pages == "separate"
    paths = _page_paths(path, kind, len(plan.pages), separate)
    for p in paths[1:]:
        check_output(p, kind, overwrite=overwrite)

    scalars = ScalarReader(run, skip_bad=skip_bad, messages=messages)
    fields = plan.label.fields if plan.label is not None else ()
    reader = BlockReader(
        run,
        plan,
        skip_bad=skip_bad,
        scalars=scalars,
        frame_fields=tuple(f for f in ("step", "time") if f in fields),
        canvas_bytes=geometry.height * geometry.width * 3,
        reads_global=geometry.global_rect is not None,
    )
    composer = Composer(run, plan, layout, geometry, reader)
    outputs = (
        [list(range(len(plan.pages)))] if not separate else [[p] for p in range(len(plan.pages))]
    )
    written: list[Path] = []
    counts: list[int] = []
    bar = _Progress(plan.total_frames, Path(out).name, progress)
    # The main thread only wakes to hand the next frame to ffmpeg; with the default 5 ms GIL
    # switch interval it would wait behind the reader thread's Python work (zarr) and starve
    # the encoder. A short interval for the render's duration keeps ffmpeg fed.
    switch = sys.getswitchinterval()
    if prefetch:
        sys.setswitchinterval(min(switch, _SWITCH_INTERVAL_S))
    try:
        for target, page_list in zip(paths, outputs, strict=True):
            jobs = [job for p in page_list for job in reader.jobs(p)]
            rows = max(len(j) for j in jobs)
            stream = Prefetcher(
                jobs,
                composer.fill,
                lambda rows=rows: composer.make_block(rows),
                threaded=prefetch,
            )
            stream.start()  # the first block is composed while the encoder starts
            try:
                writer = open_writer(
                    kind,
                    target,
                    width=geometry.width,
                    height=geometry.height,
                    fps=plan.fps,
                    crf=crf,
                    preset=preset,
                    threads=threads,
                )
            except BaseException:
                stream.close()
                raise
            try:
                for _, block in stream:
                    for frame in block:
                        writer.write(frame)
                    bar.update(len(block))
                written.append(writer.close())
                counts.append(writer.frames)
            except BaseException:
                stream.close()
                writer.abort()
                raise
    finally:
        sys.setswitchinterval(switch)
        bar.close()
    return RenderResult(
        paths=tuple(written),
        frames=tuple(counts),
        width=geometry.width,
        height=geometry.height,
        fps=plan.fps,
        envs=plan.global_ids,
        seconds=time.monotonic() - t0,
        warnings=tuple(messages),
    )


def _run_name(run: Run) -> str:
    """A name for the run from untrusted store contents (sanitised before use in paths)."""
    name = run.metadata.get("name")
    if not isinstance(name, str) or not name:
        name = Path(run.url.rstrip("/")).name.removesuffix(".zarr")
    return safe_filename(name[:64])


# ------------------------------------------------------------------------------------------------
# one video per env
# ------------------------------------------------------------------------------------------------
_SINGLE = dict(
    only=None,
    top_k=None,
    bottom_k=None,
    order="given",
    columns=1,
    rows=1,
    page_size=None,
    pages="sequence",
    global_view="none",
    markers=False,
)


def _render_env_job(
    url: str, layout: dict[str, Any], out: str, options: dict[str, Any]
) -> tuple[str, int, list[str]]:
    """Worker-process entry point (top level, so spawn can import it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = render(url, Layout.from_dict(layout), out, **options)
    return str(res.path), res.frames[0], list(res.warnings)


def render_envs(
    run: Run | str | os.PathLike,
    out_dir: str | os.PathLike,
    layout: Layout | Mapping | str | None = None,
    *,
    suffix: str = ".mp4",
    name: str = "env_{env:04d}",
    workers: int | None = None,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int | None = None,
    skip_bad: bool = False,
    overwrite: bool = True,
) -> list[Path]:
    """One video per selected env (``env_0007.mp4``, ... by global env id), rendered in parallel
    processes.

    The layout chooses the envs (ids, filters, top-k, order) and the tile look (size, label,
    borders, time window, episode mode); each output shows one env.

    Args:
        run: an open ``Run`` or a store path / URL. Stores in memory (``memory://``) cannot be
            shared with worker processes and are rendered one after another in this process.
        out_dir: folder for the outputs; created if its parent exists.
        layout: the layout, as for ``render``. Defaults to None.
        suffix: ``".mp4"`` or ``".gif"``. Defaults to ".mp4".
        name: file name template; fields ``env`` (the global env id), ``rank`` and ``run``
            (the store's ``metadata["name"]``, else its folder name); attribute and item access
            are refused and the result is sanitised to one file name inside ``out_dir``,
            whatever the store says. Defaults to "env_{env:04d}".
        workers: worker processes. Defaults to None (the number of CPUs, at most one per env).
        crf, preset, skip_bad, overwrite: as for ``render``.
        threads: encoder threads per worker, as for ``render``. Defaults to None (CPUs / workers).

    Returns:
        The output paths, in env order.

    Raises:
        ValueError: as for ``render``; also a bad suffix, name template or workers.
    """
    layout = _as_layout(layout)
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"suffix must be '.mp4' or '.gif', got {suffix!r}")
    check_encoder_options(crf=crf, preset=preset, threads=threads)
    template = LabelTemplate(name)
    template.check({"env": 0, "rank": 0, "run": "run"})
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be an int >= 1 or None, got {workers!r}")
    out_dir = Path(out_dir)
    check_output(out_dir if not out_dir.exists() else out_dir / f"probe{suffix}", suffix[1:])
    if suffix == ".mp4":
        find_ffmpeg()
    run = _as_run(run)
    plan = plan_render(run, layout, skip_bad=skip_bad)
    # named and re-selected in the workers by global id, as the user gave them
    paths = [
        safe_join(
            out_dir, template.format({"env": e, "rank": run.rank, "run": _run_name(run)}) + suffix
        )
        for e in plan.global_ids
    ]
    if len(set(paths)) != len(paths):
        raise ValueError(f"name template {name!r} gives the same file name to several envs")
    if not overwrite:
        for p in paths:
            if p.exists():
                raise FileExistsError(f"{str(p)!r} exists; pass overwrite=True to replace it")
    out_dir.mkdir(exist_ok=True)
    n = len(plan.envs)
    workers = min(workers or os.cpu_count() or 1, n)
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    options = dict(
        crf=crf,
        preset=preset,
        threads=threads,
        skip_bad=skip_bad,
        progress=False,
        overwrite=overwrite,
    )
    jobs = [
        (layout.replace(envs=str(e), **_SINGLE).to_dict(), str(p))
        for e, p in zip(plan.global_ids, paths, strict=True)
    ]
    in_memory = (
        run.url.startswith("memory://") or "://" not in run.url and not Path(run.url).exists()
    )
    if workers == 1 or in_memory:
        return [Path(render(run, Layout.from_dict(lay), p, **options).path) for lay, p in jobs]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_render_env_job, run.url, lay, p, options) for lay, p in jobs]
        results = [f.result() for f in futures]
    for _, _, msgs in results:
        for m in msgs:
            warnings.warn(m, UserWarning, stacklevel=2)
    return [Path(r[0]) for r in results]


# ------------------------------------------------------------------------------------------------
# contact sheet
# ------------------------------------------------------------------------------------------------
def contact_sheet(
    run: Run | str | os.PathLike,
    out: str | os.PathLike,
    layout: Layout | Mapping | str | None = None,
    *,
    num_times: int = 8,
    skip_bad: bool = False,
    overwrite: bool = True,
) -> Path:
    """One PNG for a quick look: a row per selected env, a column per sampled time.

    Times are spread evenly over the layout's time window (in episode mode, over each env's
    episode). Tiles carry the layout's label (default: env id and step).

    Args:
        run: an open ``Run`` or a store path / URL.
        out: the .png path.
        layout: chooses envs, time window, tile size and look, as for ``render``; its grid
            fields are replaced (rows: envs, columns: times). Defaults to None.
        num_times: sampled times per env (columns), 1..256. Defaults to 8.
        skip_bad: placeholder tiles for unreadable chunks, with a warning. Defaults to False.
        overwrite: replace an existing file. Defaults to True.

    Returns:
        The path written.

    Raises:
        ValueError: as for ``render``; also a suffix other than .png or a bad num_times.
    """
    from PIL import Image

    layout = _as_layout(layout)
    if isinstance(num_times, bool) or not isinstance(num_times, int) or not 1 <= num_times <= 256:
        raise ValueError(f"num_times must be an int from 1 to 256, got {num_times!r}")
    p = Path(out)
    if p.suffix.lower() != ".png":
        raise ValueError(f"contact sheet {str(out)!r} must end in .png")
    check_output(p, "mp4", overwrite=overwrite)  # a file in a writable folder
    run = _as_run(run)
    if layout.label == Layout().label:
        layout = layout.replace(label="{env} s{step}")
    messages: list[str] = []
    plan = plan_render(
        run, layout.replace(global_view="none", markers=False), skip_bad=skip_bad, messages=messages
    )
    envs = plan.envs
    lay = layout.replace(
        columns=num_times, rows=len(envs), page_size=None, global_view="none", markers=False
    )
    geometry = compute_geometry(lay, num_tiles=num_times * len(envs), env_shape=run.env_frame_shape)
    sheet_plan = Plan(
        envs=plan.envs,
        global_ids=plan.global_ids,
        pages=(tuple(e for e in envs for _ in range(num_times)),),
        page_size=num_times * len(envs),
        starts=plan.starts,
        stops=plan.stops,
        stride=1,
        fps=plan.fps,
        window=plan.window,
        episode_mode=plan.episode_mode,
        label=plan.label,
        scalars_needed=plan.scalars_needed,
    )
    scalars = ScalarReader(run, skip_bad=skip_bad, messages=messages)
    reader = BlockReader(
        run,
        sheet_plan,
        skip_bad=skip_bad,
        scalars=scalars,
        frame_fields=tuple(f for f in ("step", "time") if plan.label and f in plan.label.fields),
        canvas_bytes=1,
    )
    composer = Composer(run, sheet_plan, lay.replace(border_hold=0), geometry, reader)
    canvas = composer.make_buffer(1)
    picks = {}  # first and last frame included, evenly between
    for env in envs:
        s, e = plan.track(env)
        picks[env] = np.unique(np.linspace(s, e - 1, num_times).round().astype(int))
    if not plan.episode_mode:  # every env samples the same frames: read many envs per call
        frames = picks[envs[0]].tolist()
        for col, f in enumerate(frames):
            for g0 in range(0, len(envs), 64):
                group = list(envs[g0 : g0 + 64])
                slots = [(g0 + i) * num_times + col for i in range(len(group))]
                batch = _sheet_batch(run, reader, scalars, group, slots, f, skip_bad)
                composer._tiles(batch, canvas)
    else:
        for row, env in enumerate(envs):
            for col, f in enumerate(picks[env].tolist()):
                batch = _sheet_batch(
                    run, reader, scalars, [env], [row * num_times + col], f, skip_bad
                )
                composer._tiles(batch, canvas)
    Image.fromarray(canvas[0]).save(p)
    return p


def _sheet_batch(
    run: Run,
    reader: BlockReader,
    scalars: ScalarReader,
    envs: list[int],
    slots: list[int],
    f: int,
    skip_bad: bool,
) -> TileBatch:
    """One frame of some envs, as a batch for the composer (placeholders where unreadable)."""
    bad = np.zeros((1, len(envs)), bool)
    try:
        frames = run.env_frames(envs, f, f + 1)
    except CorruptChunkError:
        if not skip_bad:
            raise
        frames = reader._read_around_damage(envs, f, f + 1, 1, bad)
    fv = reader._frame_values(f, f + 1, 1)
    return TileBatch(
        slots=slots,
        envs=envs,
        rows=(0, 1),
        frames=frames,
        bad=bad,
        store_frames=np.array([f]),
        scalars={n: scalars.read(n, f, f + 1, envs) for n in reader.plan.scalars_needed},
        frame_values=fv,
        last_rows=[-1] * len(envs),
    )
