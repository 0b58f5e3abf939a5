"""The render verbs: ``render`` (mp4, GIF, PNG frames), ``render_envs`` (one video per env, on
worker threads) and ``contact_sheet`` (one PNG of envs × sampled times)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from envreel._options import check_options, option
from envreel.schemas import Run

from ._compose import compute_geometry, nominal_tile
from ._encode import (
    check_encoder_options,
    check_output,
    find_ffmpeg,
    open_writer,
    output_kind,
    safe_filename,
    safe_join,
    some_names,
    write_png,
)
from ._select import DamageLog
from .frames import FrameSource, as_layout, as_run
from .layout import LabelTemplate, Layout

__all__ = ["render", "render_envs", "contact_sheet", "RenderResult", "SheetOptions"]

GIF_MAX_FPS = 50.0
"""Browsers play GIF delays under 20 ms as 100 ms, so GIFs are capped at 50 fps."""
_SWITCH_INTERVAL_S = 0.0005
GIF_MAX_SIDE = 1024
"""Default cap on a GIF's longer side (GIFs are large: one byte per pixel per frame)."""


@dataclass(frozen=True)
class SheetOptions:
    """The options of ``contact_sheet`` beyond its layout, declared once (the CLI reads them)."""

    num_times: int = option(
        8, "sampled times per env (columns of the sheet)", minimum=1, maximum=256
    )

    def __post_init__(self) -> None:
        check_options(self)


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
    run: Run | str | os.PathLike | list | tuple,
    layout: Layout | Mapping | str | None = None,
    out: str | os.PathLike | None = None,
    *,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int | None = None,
    skip_bad: bool = False,
    progress: bool | None = None,
    overwrite: bool = False,
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
        overwrite: replace an existing output (PNG: a folder of an earlier render's frames
            only). Defaults to False (FileExistsError).
        gif_max_side: longest side of a GIF (larger: scaled down, warned). Defaults to 1024.
        prefetch: read the next block in a thread while encoding. Defaults to True.

    Returns:
        A ``RenderResult`` naming the outputs.

    Raises:
        ValueError: a bad layout, env id, scalar name, time window, output suffix or folder.
        FileExistsError: the output exists and ``overwrite`` is False (both before writing).
        CorruptChunkError: a chunk cannot be read (``skip_bad=False``); names array and chunk.
        RenderError: the encoder failed; its message is included.

    Example:
        >>> render("runs/ant.zarr", Layout(envs="0-15", columns=4), "ant.mp4")  # doctest: +SKIP
        >>> render("runs/ant.zarr", "top16", "best.gif")                        # doctest: +SKIP
    """
    t0 = time.monotonic()
    options = _check_render_args(out, crf=crf, preset=preset, threads=threads)
    if isinstance(gif_max_side, bool) or not isinstance(gif_max_side, int) or gif_max_side < 2:
        raise ValueError(f"gif_max_side must be an int >= 2, got {gif_max_side!r}")
    layout = as_layout(layout)
    out = cast(str | os.PathLike, out)  # checked above
    kind = output_kind(out)
    path = check_output(out, kind, overwrite=overwrite)
    # ffmpeg is looked for (~15 ms: imageio-ffmpeg runs it once) when its writer opens, while the
    # first block composes; a missing one is still reported before anything is written.
    source = _open_source(run, layout, kind, skip_bad, gif_max_side, prefetch)
    paths = _page_paths(path, kind, source.pages, layout.pages == "separate")
    for p in paths[1:]:
        check_output(p, kind, overwrite=overwrite)
    bar = _Progress(source.num_frames, Path(out).name, progress)
    done = _encode_pages(source, paths, kind, options, bar, prefetch=prefetch, cancel=None)
    return RenderResult(
        paths=tuple(p for p, _ in done),
        frames=tuple(n for _, n in done),
        width=source.size[0],
        height=source.size[1],
        fps=source.fps,
        envs=source.envs,
        seconds=time.monotonic() - t0,
        warnings=tuple(source.warnings),
    )


def _check_render_args(out: Any, **options: Any) -> dict[str, Any]:
    """The encoder options, checked; ValueError for a missing ``out`` or a bad option."""
    if out is None:
        raise ValueError("out is required: a .mp4 or .gif path, or a folder for PNG frames")
    check_encoder_options(**options)
    return options


def _open_source(
    run: Any,
    layout: Layout,
    kind: str,
    skip_bad: bool,
    gif_max_side: int,
    prefetch: bool,
    damage: DamageLog | None = None,
) -> FrameSource:
    """The frames of ``layout`` for an output of ``kind`` (GIFs: size and fps capped);
    ``damage``: a log of damaged frames shared with other renders."""
    gif = kind == "gif"
    source = FrameSource(
        run,
        layout,
        skip_bad=skip_bad,
        max_size=(gif_max_side, gif_max_side) if gif else None,
        fps_cap=GIF_MAX_FPS if gif else None,
        prefetch=prefetch,
        _damage=damage,
    )
    if source.downsized_from is not None:
        w0, h0 = source.downsized_from
        _warn(
            source.warnings,
            f"GIF downsized from {w0}×{h0} to {source.size[0]}×{source.size[1]} "
            f"(gif_max_side={gif_max_side}); use mp4 for full size",
        )
    return source


def _encode_pages(
    source: FrameSource,
    paths: list[Path],
    kind: str,
    options: dict[str, Any],
    bar: _Progress,
    *,
    prefetch: bool,
    cancel: threading.Event | None,
) -> list[tuple[Path, int]]:
    """Every output of ``source``: one, or one per page with ``pages="separate"``."""
    separate = source.layout.pages == "separate"
    pages = list(range(source.pages)) if separate else [None]
    # The main thread only wakes to hand the next frame to ffmpeg; with the default 5 ms GIL
    # switch interval it would wait behind the reader thread's Python work (zarr) and starve
    # the encoder. A short interval for the render's duration keeps ffmpeg fed.
    switch = sys.getswitchinterval()
    if prefetch:
        sys.setswitchinterval(min(switch, _SWITCH_INTERVAL_S))
    try:
        return [
            _encode(source, page, kind, target, options, bar, cancel)
            for target, page in zip(paths, pages, strict=True)
        ]
    finally:
        sys.setswitchinterval(switch)
        bar.close()


def _encode(
    source: FrameSource,
    page: int | None,
    kind: str,
    target: Path,
    options: dict[str, Any],
    bar: _Progress,
    cancel: threading.Event | None = None,
) -> tuple[Path, int]:
    """Streams one output (one page, or all of them) of ``source`` into its encoder.

    When ``cancel`` is set, the output is removed (nothing partial is left) and
    ``(target, -1)`` comes back.
    """
    blocks = source.blocks(page)  # the first block composes while the encoder starts
    w, h = source.size
    try:
        writer = open_writer(kind, target, width=w, height=h, fps=source.fps, **options)
    except BaseException:
        blocks.close()
        raise
    try:
        for block in blocks:
            for frame in block:
                if cancel is not None and cancel.is_set():
                    blocks.close()
                    writer.abort()
                    return target, -1
                writer.write(frame)
            bar.update(len(block))
        return writer.close(), writer.frames
    except BaseException:
        blocks.close()
        writer.abort()
        raise


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
    overwrite: bool = False,
) -> list[Path]:
    """One video per selected env (``env_0007.mp4``, ... by global env id), rendered in parallel.

    The layout chooses the envs (ids, filters, top-k, order) and the tile look (size, label,
    borders, time window, episode mode); each output shows one env. Renders run on threads of
    this process (ffmpeg encodes in its own processes), so it works from a plain script without
    an ``if __name__ == "__main__":`` guard. On an error or Ctrl-C the renders still running stop
    within a block of frames and remove their unfinished files: every output is whole or absent.

    Args:
        run: an open ``Run`` or a store path / URL. Stores in memory (``memory://``) are
            rendered one after another.
        out_dir: folder for the outputs; created if its parent exists.
        layout: the layout, as for ``render``. Defaults to None.
        suffix: ``".mp4"`` or ``".gif"``. Defaults to ".mp4".
        name: file name template; fields ``env`` (the global env id, with an integer format
            spec if any: ``{env:04d}``, ``{env:x}``, ``{env:>6}``), ``rank`` and ``run`` (the
            store's ``metadata["name"]``, else its folder name); attribute and item access
            are refused and the result is sanitised to one file name inside ``out_dir``,
            whatever the store says. Defaults to "env_{env:04d}".
        workers: envs rendered at once. Defaults to None (the number of CPUs, at most one per
            env).
        crf, preset, skip_bad: as for ``render``.
        threads: encoder threads per output, as for ``render``. Defaults to None (CPUs / workers).
        overwrite: replace an earlier per-env render in ``out_dir``: remove, before rendering,
            every .mp4 or .gif that ``name`` gives some env id, whichever envs it showed;
            never other files. Defaults to False (FileExistsError naming such files).

    Returns:
        The output paths, in env order.

    Raises:
        ValueError: as for ``render``; also a bad suffix, workers or name (``{env:.1f}``).
        FileExistsError: ``out_dir`` holds an earlier per-env render; ``overwrite`` is False.
    """
    layout = as_layout(layout)
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"suffix must be '.mp4' or '.gif', got {suffix!r}")
    check_encoder_options(crf=crf, preset=preset, threads=threads)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be an int >= 1 or None, got {workers!r}")
    out_dir = Path(out_dir)
    # the folder's own checks (writable, not a file); the files are checked by name below
    probe = out_dir if not out_dir.exists() else out_dir / f"probe{suffix}"
    check_output(probe, suffix[1:], overwrite=True)
    if suffix == ".mp4":
        find_ffmpeg()
    run = as_run(run)
    plan = FrameSource(run, layout, skip_bad=skip_bad, prefetch=False).plan
    paths = _env_paths(run, plan.global_ids, out_dir, name, suffix)
    earlier = _earlier_outputs(run, out_dir, name, overwrite)
    workers = min(workers or os.cpu_count() or 1, len(plan.envs))
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    options = dict(crf=crf, preset=preset, threads=threads)
    # each output re-selects its env by global id, as the user gave them
    jobs = [
        (layout.replace(envs=str(e), **_SINGLE), p)
        for e, p in zip(plan.global_ids, paths, strict=True)
    ]
    opener = _opener(run, workers)
    for p in earlier:  # every check passed: the earlier render goes, whole
        p.unlink(missing_ok=True)
    with _folder_for(out_dir):
        return _render_jobs(jobs, opener, options, skip_bad=skip_bad, workers=workers)


def _opener(run: Run, workers: int) -> Any:
    """What each of ``workers`` renders calls for its run: ``run`` itself when there is one
    worker or the stores are in memory, else a fresh open of the same stores."""
    urls = [r.url for r in run.runs] if hasattr(run, "runs") else [run.url]  # rank stores
    in_memory = any(
        u.startswith("memory://") or "://" not in u and not Path(u).exists() for u in urls
    )
    if workers == 1 or in_memory:
        return lambda: run  # one run object, used by one render at a time
    source = urls[0] if len(urls) == 1 else urls
    return lambda: as_run(source)  # each render reads its own open store


@contextlib.contextmanager
def _folder_for(path: Path) -> Iterator[None]:
    """Makes the folder ``path`` if missing; on an error removes it again if it made it and
    nothing was finished in it (a failed run leaves nothing)."""
    made = not path.exists()
    path.mkdir(exist_ok=True)
    try:
        yield
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                path.rmdir()  # refused when not empty: finished outputs stay
        raise


def _env_paths(
    run: Run, global_ids: tuple[int, ...], out_dir: Path, name: str, suffix: str
) -> list[Path]:
    """The output of each env, from the name template; errors before anything is written."""
    template = LabelTemplate(name)
    template.check({"env": 0, "rank": 0, "run": "run"})
    _NamePattern(name, {"rank": run.rank, "run": _run_name(run)})  # {env} as an integer
    paths = [
        safe_join(
            out_dir, template.format({"env": e, "rank": run.rank, "run": _run_name(run)}) + suffix
        )
        for e in global_ids
    ]
    if len(set(paths)) != len(paths):
        raise ValueError(f"name template {name!r} gives the same file name to several envs")
    return paths


_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?z?(?P<alt>#)?0?\d*[,_]?(?:\.\d+)?"
    r"(?P<type>[bcdeEfFgGnosxX%])?",
    re.DOTALL,
)
"""Python's format spec: ``[[fill]align][sign][z][#][0][width][grouping][.precision][type]``."""
_ID_TYPES = {None: 10, "d": 10, "n": 10, "x": 16, "X": 16, "o": 8, "b": 2}
"""Integer presentation types a name template may give ``{env}``, and their bases."""
_FIELD_MARK = "ENVREELENVFIELD{}Q"
"""Stands for the k-th ``{env}`` field in ``_NamePattern``'s regex (letters: kept as is when
the name is sanitised)."""


class _NamePattern:
    """Which file names ``render_envs``' name template gives some env id, exactly.

    The template is formatted with the ``{env}`` fields left as marks and sanitised as output
    names are; each mark becomes a group that captures what the field left in a name. The id
    is read back from a group by the field's format spec (its base, ``#`` prefix, fill and
    grouping) and the name is formatted again from it: a file matches only if that gives its
    name exactly, so no other file is ever taken for an earlier output.

    Raises:
        ValueError: a format spec of ``{env}`` is not an integer one (``04d``, ``x``, ``#o``,
            ``,``, ...): a float or character form of an id cannot be read back.
    """

    def __init__(self, name: str, fields: Mapping[str, Any]):
        self.template = LabelTemplate(name)
        self.fields = dict(fields)
        self.specs: list[re.Match] = []
        text = []
        for literal, key, spec in self.template._parts:
            text.append(literal)
            if key is None:
                continue
            if key != "env":
                text.append(format(self.fields[key], spec))
                continue
            parsed = _SPEC.fullmatch(spec)
            if parsed is None or parsed["type"] not in _ID_TYPES:
                raise ValueError(
                    f"name template {name!r}: {{env:{spec}}} does not write the env id as an "
                    "integer; use an integer format spec such as {env:04d}, {env:x} or {env:>6} "
                    "(earlier outputs are found by reading the id back from file names)"
                )
            text.append(_FIELD_MARK.format(len(self.specs)))
            self.specs.append(parsed)
        marked = safe_filename("".join(text), max_length=10_000)
        pattern = re.escape(marked)
        seen: dict[str, int] = {}
        for k, parsed in enumerate(self.specs):
            mark = _FIELD_MARK.format(k)
            # the same spec twice writes the same text twice
            group = f"(?P=f{seen[parsed[0]]})" if parsed[0] in seen else f"(?P<f{k}>.+?)"
            seen.setdefault(parsed[0], k)
            pattern = pattern.replace(mark, group, 1)
        self.regex = re.compile(pattern + r"\.(mp4|gif)")

    def name_of(self, env: int, suffix: str) -> str:
        """The file name ``render_envs`` gives ``env`` (as ``_env_paths`` makes it)."""
        return safe_filename(self.template.format({**self.fields, "env": env}) + suffix)

    def matches(self, file_name: str) -> bool:
        """Whether the template gives ``file_name`` to some env id, as .mp4 or .gif."""
        found = self.regex.fullmatch(file_name)
        if found is None:
            return False
        suffix = "." + found.groups()[-1]
        if not self.specs:
            return self.name_of(0, suffix) == file_name
        for k, parsed in enumerate(self.specs):
            text = found.groupdict().get(f"f{k}")
            for env in _read_ids(text, parsed) if text is not None else ():
                if self.name_of(env, suffix) == file_name:
                    return True
        return False


def _read_ids(text: str, spec: re.Match) -> set[int]:
    """The env ids a field of format spec ``spec`` may have written as ``text`` (sanitised):
    one, or with a digit for fill (``{env:0<4}``) every split of fill and digits."""
    base = _ID_TYPES[spec["type"]]
    if spec["alt"] and base != 10:  # "0x", "0X", "0o", "0b" before the digits
        prefix = "0" + ("X" if spec["type"] == "X" else spec["type"])
        text = text.replace(prefix, "", 1)
    cores = [text]
    fill = spec["fill"]
    if fill and fill not in "_-." and safe_filename(fill) == fill:
        # a fill that names keep (a letter or digit) pads on the sides the align gives; the id
        # may begin or end with that character too, so each split is a candidate (an id has at
        # most a few dozen digits)
        align = spec["align"]
        lead = len(text) - len(text.lstrip(fill)) if align in ">=^" else 0
        trail = len(text) - len(text.rstrip(fill)) if align in "<^" else 0
        cores = [
            text[i : len(text) - j]
            for i in range(max(0, lead - 32), lead + 1)
            for j in range(max(0, trail - 32), trail + 1)
            if i + j < len(text)
        ]
    ids = set()
    for core in cores:
        # the sign, the grouping and fills that names hold as "_" (or as "-" or ".")
        digits = re.sub(r"[_.\-]", "", core)
        with contextlib.suppress(ValueError):
            ids.add(int(digits, base))
    return ids


def _earlier_outputs(run: Run, out_dir: Path, name: str, overwrite: bool) -> list[Path]:
    """Files in ``out_dir`` that ``render_envs`` with template ``name`` writes for some env id
    of this run's rank and name, as .mp4 or .gif: an earlier per-env render's outputs, which
    would look like part of the new render beside it.

    Raises:
        ValueError: the template formats ``{env}`` in a way the id cannot be read back from.
        FileExistsError: there are some and ``overwrite`` is False.
    """
    pattern = _NamePattern(name, {"rank": run.rank, "run": _run_name(run)})
    if not out_dir.is_dir():
        return []
    found = sorted(p for p in out_dir.iterdir() if pattern.matches(p.name) and p.is_file())
    if found and not overwrite:
        raise FileExistsError(
            f"{str(out_dir)!r} holds per-env files of an earlier render "
            f"({some_names([p.name for p in found])}); pass overwrite=True (--overwrite) to "
            "remove them and render anew (other files stay), or choose a new folder"
        )
    return found


def _render_jobs(
    jobs: list[tuple[Layout, Path]],
    opener: Any,
    options: dict[str, Any],
    *,
    skip_bad: bool,
    workers: int,
) -> list[Path]:
    """Render ``jobs`` (layout, output) on ``workers`` threads, in order.

    An exception in one (or KeyboardInterrupt in the caller) sets ``cancel``: renders not yet
    started never start, running ones abort and remove their file, then the exception rises,
    with a note naming the outputs finished before it (they are whole and kept).
    """
    cancel = threading.Event()
    # each output reads one env: a damaged shard is warned about once, naming every env it
    # took out, when the renders are over
    damage = DamageLog([], deferred=True)

    def one(layout: Layout, out: Path) -> Path | None:
        """Renders one output: its path, or None when it was cancelled (nothing written)."""
        if cancel.is_set():
            return None
        kind = output_kind(out)
        source = _open_source(
            opener(), layout, kind, skip_bad, GIF_MAX_SIDE, prefetch=False, damage=damage
        )
        bar = _Progress(source.num_frames, out.name, False)
        [(path, frames)] = _encode_pages(
            source, [out], kind, options, bar, prefetch=False, cancel=cancel
        )
        return path if frames >= 0 else None  # stopped midway: its file is removed

    try:
        return _run_jobs(jobs, one, cancel, workers)
    finally:
        damage.flush()


def _run_jobs(
    jobs: list[tuple[Layout, Path]], one: Any, cancel: threading.Event, workers: int
) -> list[Path]:
    """``one(layout, out)`` of every job on ``workers`` threads (see ``_render_jobs``)."""
    if workers == 1:
        done: list[Path | None] = []
        try:
            for lay, p in jobs:
                done.append(one(lay, p))
        except BaseException as exc:
            _note_finished(exc, done, len(jobs))
            raise
        return cast(list[Path], done)  # nothing cancels a render on this thread
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="envreel-render-envs")
    futures = [pool.submit(one, lay, p) for lay, p in jobs]
    try:
        return cast(list[Path], [f.result() for f in futures])  # None only once cancelled
    except BaseException as exc:
        cancel.set()
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True)
        ok = [f.result() for f in futures if not f.cancelled() and f.exception() is None]
        _note_finished(exc, ok, len(jobs))
        raise
    finally:
        pool.shutdown(wait=True)


def _note_finished(exc: BaseException, outputs: list[Path | None], total: int) -> None:
    """Adds a note to ``exc`` naming the outputs finished (and kept) before it."""
    finished = [p for p in outputs if p is not None]
    if not finished:
        return
    names = ", ".join(p.name for p in finished[:4]) + (", ..." if len(finished) > 4 else "")
    exc.add_note(
        f"{len(finished)} of {total} outputs were finished before this and kept in "
        f"{str(finished[0].parent)!r}: {names}"
    )


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
    overwrite: bool = False,
) -> Path:
    """One PNG for a quick look: a row per selected env, a column per sampled time.

    Times are spread evenly over the layout's time window (in episode mode, over each env's
    episode). Tiles carry the layout's label (default: env id and step).

    Args:
        run: an open ``Run`` or a store path / URL.
        out: the .png path.
        layout: chooses envs, time window, tile size and look, as for ``render``; its grid
            fields are replaced (rows: envs, columns: times). Defaults to None.
        num_times: sampled times per env (columns), 1..256; a window of fewer frames gives a
            column per frame. Defaults to 8.
        skip_bad: placeholder tiles for unreadable chunks, with a warning. Defaults to False.
        overwrite: replace an existing file (when the new one is complete); without it an
            existing ``out`` is an error, before anything is read. Defaults to False.

    Returns:
        The path written (through a temporary name: an error or an interrupt leaves no
        partial PNG).

    Raises:
        ValueError: as for ``render``; also a suffix other than .png or a bad num_times.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    layout = as_layout(layout)
    SheetOptions(num_times=num_times)
    p = Path(out)
    if p.suffix.lower() != ".png":
        raise ValueError(f"contact sheet {str(out)!r} must end in .png")
    check_output(p, "mp4", overwrite=overwrite)  # a file in a writable folder
    run = as_run(run)
    if layout.label == Layout().label:
        layout = layout.replace(label="{env} s{step}")
    plain = layout.replace(global_view="none", markers=False, page_size=None)
    canvas = _sheet_canvas(run, plain, num_times, skip_bad)
    return write_png(p, canvas)  # whole or absent, as every output


def _sheet_canvas(run: Run, plain: Layout, num_times: int, skip_bad: bool) -> np.ndarray:
    """The sheet's pixels: a row per env of ``plain``, ``num_times`` sampled frames each."""
    picked = FrameSource(run, plain, skip_bad=skip_bad, prefetch=False)
    envs = picked.envs
    picks = {}  # first and last frame included, evenly between (fewer for short tracks)
    for env in envs:
        s, e = picked.plan.track(picked._stored(env))
        picks[env] = np.unique(np.linspace(s, e - 1, num_times).round().astype(int))
    num_times = max(len(v) for v in picks.values())  # no more columns than distinct frames
    # The sheet's tile size and gap, as if it were one grid of envs × times; each column is then
    # one frame of a one-column layout of those tiles, every env at its own sampled time.
    try:
        sheet = compute_geometry(
            plain.replace(columns=num_times, rows=len(envs)),
            num_tiles=num_times * len(envs),
            env_shape=run.env_frame_shape,
        )
    except ValueError:  # its words are a grid's ("page_size"): say what a sheet can change
        raise ValueError(
            f"a contact sheet has a row per env: {len(envs)} envs × {num_times} times cannot "
            f"fit {plain.max_width}×{plain.max_height} (width×height) even with 1-pixel tiles; "
            "select fewer envs (envs, e.g. '0-63', or top_k) or raise max_height"
        ) from None
    if sheet.factor < 1:
        th0, tw0 = nominal_tile(plain, run.env_frame_shape)
        warnings.warn(
            f"contact sheet tiles shown at {sheet.tile_width}×{sheet.tile_height} instead of "
            f"{tw0}×{th0} to fit {plain.max_width}×{plain.max_height} (a row per env: "
            f"{len(envs)} envs × {num_times} times); select fewer envs for larger tiles",
            UserWarning,
            stacklevel=3,
        )
    gap = (sheet.tiles[1][1] - sheet.tile_width) if num_times > 1 else 0
    column = FrameSource(
        run,
        plain.replace(
            envs=",".join(map(str, envs)),
            top_k=None,
            bottom_k=None,
            only=None,
            order="given",
            columns=1,
            rows=len(envs),
            tile_size=(sheet.tile_height, sheet.tile_width),
            scale=1.0,
            gap=gap,
            border_hold=0,
        ),
        skip_bad=skip_bad,
        prefetch=False,
    )
    columns = [
        column.compose({env: picks[env][j] for env in envs if j < len(picks[env])})
        for j in range(num_times)
    ]
    canvas = np.empty((sheet.height, sheet.width, 3), np.uint8)
    canvas[...] = column.composer.bg
    h, w = columns[0].shape[:2]
    for j, image in enumerate(columns):
        x = j * (sheet.tile_width + gap)
        canvas[:h, x : x + w] = image[:, : min(w, sheet.width - x)]
    return canvas
