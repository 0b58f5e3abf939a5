"""Resolving a ``Layout`` against a run: the time window, which envs, their order and pages.

Everything here reads scalars only (reward, flags, episode indices: a few bytes per env per frame),
streamed in windows of ``_SCAN_FRAMES`` frames, so planning a long run costs little memory. Every
check that needs the run happens here, before an output file is opened.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import numpy as np

from envreel._checks import id_runs
from envreel.schemas import CorruptChunkError, Run

from .layout import LabelTemplate, Layout, format_env_spec

__all__ = ["Plan", "plan_render", "time_window", "label_samples", "BUILTIN_SCALARS"]

BUILTIN_SCALARS = ("reward", "terminated", "truncated", "episode", "episode_step", "stale")
_FRAME_FIELDS = ("env", "frame", "step", "time")
_SCAN_FRAMES = 4096


@dataclass(frozen=True)
class Plan:
    """What to render, resolved against a run.

    Attributes:
        envs: selected envs in tile order, as stored env indices 0..N-1 (what reads take).
        global_ids: the global env id (``Run.env_ids``) of each of ``envs``: what users see
            and give.
        pages: stored env indices of each page, in order.
        page_size: tiles per page (the grid is laid out for this many).
        starts, stops: first and stop (exclusive) store frame of each selected env, in ``envs``
            order; equal for all envs unless in episode mode.
        stride: store frames per output frame.
        fps: output frames per second.
        window: (start, stop) store frames of the time window.
        episode_mode: each env plays its own range (``Layout.episode``).
        label: the compiled label template, or None.
        scalars_needed: scalar names read per frame (labels and borders).
        scores: score of each selected env (NaN where unknown), or None when not computed.
        label_score: the label's ``{score}`` is each env's score (``scores``), not a scalar.
        warnings: messages already warned about while planning.
    """

    envs: tuple[int, ...]
    global_ids: tuple[int, ...]
    pages: tuple[tuple[int, ...], ...]
    page_size: int
    starts: tuple[int, ...]
    stops: tuple[int, ...]
    stride: int
    fps: float
    window: tuple[int, int]
    episode_mode: bool
    label: LabelTemplate | None
    scalars_needed: tuple[str, ...]
    scores: tuple[float, ...] | None = None
    label_score: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def _global_of(self) -> dict[int, int]:
        return dict(zip(self.envs, self.global_ids, strict=True))

    @cached_property
    def _position(self) -> dict[int, int]:
        # first position of each env, as ``envs.index`` gives: a dict, since each tile asks for
        # its env's track and ``index`` scans, 8 million steps a frame for 4,096 envs
        return {e: i for i, e in reversed(list(enumerate(self.envs)))}

    @cached_property
    def _stored_of(self) -> dict[int, int]:
        return {g: e for e, g in reversed(list(zip(self.envs, self.global_ids, strict=True)))}

    def stored(self, env_id: int) -> int:
        """The stored env index of global env id ``env_id`` (one this plan shows).

        Raises:
            ValueError: the plan does not show ``env_id``.
        """
        stored = self._stored_of.get(env_id)
        if stored is None:
            raise ValueError(
                f"env {env_id} is not shown by this layout (it shows "
                f"{_summarize_ids(tuple(sorted(self.global_ids)))})"
            )
        return stored

    def global_id(self, env: int) -> int:
        """The global env id of stored env ``env`` (one of ``envs``)."""
        return self._global_of[env]

    def score_of(self, env: int) -> float:
        """The score of stored env ``env`` (NaN when scores were not computed)."""
        if self.scores is None:
            return math.nan
        return self.scores[self._position[env]]

    def track(self, env: int) -> tuple[int, int]:
        """(start, stop) store frames of ``env``."""
        i = self._position[env]
        return self.starts[i], self.stops[i]

    def env_length(self, env: int) -> int:
        """Output frames ``env`` has (before holding its last frame)."""
        s, e = self.track(env)
        return len(range(s, e, self.stride))

    def page_frames(self, page: int) -> int:
        """Output frames of page ``page``."""
        return max(self.env_length(e) for e in self.pages[page]) if self.pages[page] else 0

    @property
    def total_frames(self) -> int:
        return sum(self.page_frames(p) for p in range(len(self.pages)))


def _warn(msgs: list[str], msg: str) -> None:
    msgs.append(msg)
    warnings.warn(msg, UserWarning, stacklevel=4)


def time_window(run: Run, layout: Layout, messages: list[str] | None = None) -> tuple[int, int]:
    """(start, stop) store frames selected by the layout's clip, start, stop and unit.

    A window in steps or seconds that reaches past the run (or clip) is cut to it with a
    warning naming both ranges (appended to ``messages``); in frames it is an error.

    Raises:
        ValueError: an unknown clip, a range outside the run, start > stop, or no frames.
    """
    n = run.num_frames
    if n == 0:
        raise ValueError(f"{run.url} has no committed frames to render")
    lo, hi, what = 0, n, f"the run's {n} frames"
    if layout.clip is not None:
        clips = {c.id: c for c in run.clips}
        if layout.clip not in clips:
            ids = sorted(clips)
            shown = ids[:20] + (["..."] if len(ids) > 20 else [])
            raise ValueError(f"clip {layout.clip} is not in this run; its clips are {shown}")
        c = clips[layout.clip]
        lo, hi = c.start_frame, c.stop_frame
        what = f"the {hi - lo} frames of clip {layout.clip}"
    start, stop = layout.start, layout.stop
    if start is not None and stop is not None and start > stop:
        raise ValueError(f"start={start} is after stop={stop} ({layout.unit}s)")
    if layout.unit == "frame":
        s = lo + int(start or 0)
        e = hi if stop is None else lo + int(stop)
        if s > hi or e > hi:
            bad = ("start", start) if s > hi else ("stop", stop)
            raise ValueError(
                f"{bad[0]}={bad[1]} frames is past the end of {what} (start and stop may be "
                f"0..{hi - lo}, stop exclusive)"
            )
    else:
        name = "step" if layout.unit == "step" else "sim_time"
        values = run.frame_values(name, lo, hi)
        inside = np.ones(len(values), bool)
        if start is not None:
            inside &= values >= start
        if stop is not None:
            inside &= values < stop
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            raise ValueError(
                f"no frame of {what} has {layout.unit} in [{start}, {stop}); its {name} runs "
                f"from {values[0]} to {values[-1]}"
            )
        s, e = lo + int(idx[0]), lo + int(idx[-1]) + 1
        _warn_cut(messages, layout, values, what)
    if e <= s:
        raise ValueError(
            f"the time window start={start}, stop={stop} ({layout.unit}s) selects no frames"
        )
    return s, e


def _warn_cut(messages: list[str] | None, layout: Layout, values: np.ndarray, what: str) -> None:
    """Warn when the window asked for in steps or seconds reaches past ``values``' range."""
    step = float(values[-1] - values[-2]) if len(values) > 1 else 0.0
    end = float(values[-1]) + step  # stop is exclusive: stop == end asks for nothing more
    first = float(values[0])
    past_end = layout.stop is not None and layout.stop > end + 1e-9 * max(1.0, abs(end))
    before = layout.unit == "step" and layout.start is not None and layout.start < first
    if not (past_end or before):
        return
    unit = "steps" if layout.unit == "step" else "seconds of sim time"
    asked = f"[{_fmt(layout.start)}, {_fmt(layout.stop)})"
    _warn(
        messages if messages is not None else [],
        f"the time window {asked} {unit} reaches past {what}, which cover "
        f"[{_fmt(first)}, {_fmt(end)}); rendering [{_fmt(max(first, layout.start or first))}, "
        f"{_fmt(min(end, layout.stop if layout.stop is not None else end))})",
    )


def _fmt(v: float | None) -> str:
    return "start" if v is None else f"{v:g}"


def label_samples(run: Run) -> dict[str, object]:
    """A sample value of every label field of ``run``, with the right type."""
    samples: dict[str, object] = {
        "env": 0,
        "frame": 0,
        "step": 0,
        "time": 0.0,
        "reward": 0.0,
        "terminated": 0,
        "truncated": 0,
        "stale": 0,
        "episode": 0,
        "episode_step": 0,
        "score": 0.0,  # the env's score (Layout.score, score_stat), unless a scalar is named so
    }
    for name in run.scalar_names:
        samples.setdefault(name, 0.0)
    return samples


def _scalar_names(run: Run) -> tuple[str, ...]:
    return BUILTIN_SCALARS + tuple(n for n in run.scalar_names if n not in BUILTIN_SCALARS)


class DamageLog:
    """Damaged ``env/frames`` objects met with ``skip_bad``, one warning per object.

    A shard holds many envs, and reading around its damage meets it once per env. The warning
    names the object, the envs and frames it holds, and those shown as placeholder tiles. With
    ``deferred`` (renders of one env each, sharing the log) nothing is warned until ``flush``,
    which warns once per object with every env any of the renders skipped.

    Args:
        messages: a list that collects the warning texts.
        deferred: collect until ``flush``. Defaults to False (warn at once).
    """

    def __init__(self, messages: list[str], *, deferred: bool = False):
        self.messages, self.deferred = messages, deferred
        self._lock = threading.Lock()  # per-env renders share one log across threads
        self._found: dict[Any, tuple[Run, CorruptChunkError, set[int], int, int]] = {}
        self._warned: set[Any] = set()

    def add(
        self, run: Run, where: Any, exc: CorruptChunkError, envs: list[int], a: int, b: int
    ) -> None:
        """Stored envs ``envs`` of ``run``, frames ``a..b-1``, of damaged object ``where``
        (``(name, stored envs, frames)`` it holds, from ``Run._env_frames_object``, or any other
        key) are shown as placeholder tiles."""
        with self._lock:
            if where in self._warned:
                return
            old = self._found.get(where)
            if old is None:
                self._found[where] = (run, exc, set(envs), a, b)
            else:
                _, first, seen, a0, b0 = old
                self._found[where] = (run, first, seen | set(envs), min(a, a0), max(b, b0))
            if self.deferred:
                return
        self.flush()

    def flush(self) -> None:
        """Warn about every object collected and not yet warned about."""
        with self._lock:
            found, self._found = self._found, {}
            self._warned.update(found)
        for where, (run, exc, envs, a, b) in found.items():
            ids = run.env_ids
            held = ""
            if isinstance(where, tuple) and len(where) == 3 and isinstance(where[1], range):
                name, held_envs, held_frames = where
                held = (
                    f" object {name} (it holds {_plural_ids([ids[e] for e in held_envs])}, "
                    f"frames {held_frames.start}..{held_frames.stop - 1}) of"
                )
            shown = f"{_plural_ids([ids[e] for e in sorted(envs)])}, frames {a}..{b - 1}"
            _warn(
                self.messages,
                f"skipping damaged{held} {exc.array!r}: {shown} shown as placeholder tiles "
                f"(first error: {exc})",
            )


class ScalarReader:
    """Reads (t, k) windows of a scalar; with ``skip_bad`` a corrupt chunk reads as NaN, warned.
    Also warns about damaged frames (``warn_corrupt``, ``damage``)."""

    def __init__(
        self, run: Run, *, skip_bad: bool, messages: list[str], damage: DamageLog | None = None
    ):
        self.run, self.skip_bad, self.messages = run, skip_bad, messages
        self.damage = damage if damage is not None else DamageLog(messages)
        self._warned: set[tuple] = set()

    def warn_corrupt(self, exc: CorruptChunkError, what: str) -> None:
        key = (exc.array, exc.chunk)
        if key not in self._warned:
            self._warned.add(key)
            _warn(
                self.messages,
                f"skipping corrupt chunk {exc.chunk} of {exc.array!r} ({what}): {exc}",
            )

    def read(self, name: str, a: int, b: int, ids, *, stride: int = 1) -> np.ndarray:
        try:
            return self.run.scalar(name, a, b, env_ids=ids, stride=stride)
        except CorruptChunkError:
            if not self.skip_bad:
                raise
            # Re-read block by block so only the corrupt blocks become NaN.
            bf = self.run.block_frames
            frames = np.arange(a, b, stride)
            out = np.full((len(frames), len(ids)), np.nan)
            for blk in range(a // bf, (max(a, b - 1)) // bf + 1):
                sel = (frames >= blk * bf) & (frames < (blk + 1) * bf)
                if not sel.any():
                    continue
                f0, f1 = int(frames[sel][0]), int(frames[sel][-1]) + 1
                try:
                    out[sel] = self.run.scalar(name, f0, f1, env_ids=ids, stride=stride)
                except CorruptChunkError as e2:
                    self.warn_corrupt(e2, f"scalar {name!r}, frames {f0}..{f1 - 1}")
            return out


def _plural_ids(ids: list[int], most: int = 12) -> str:
    """ "env 3" or "envs 0..15, 18" (runs of consecutive ids collapsed; at most ``most``
    items, then how many more)."""
    parts = id_runs(ids, "..")
    more = f" and {len(parts) - most} more" if len(parts) > most else ""
    return f"env{'s' if len(ids) > 1 else ''} {', '.join(parts[:most])}{more}"


def _scan(a: int, b: int, step: int = _SCAN_FRAMES) -> Iterator[tuple[int, int]]:
    for x in range(a, b, step):
        yield x, min(b, x + step)


def _episode_ranges(
    reader: ScalarReader, ids: np.ndarray, window: tuple[int, int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) of each env's k-th episode starting in the window; -1 where none."""
    s, e = window
    n = len(ids)
    count = np.zeros(n, np.int64)
    starts = np.full(n, -1, np.int64)
    stops = np.full(n, -1, np.int64)
    prev = None
    for a, b in _scan(s, e):
        ep = reader.read("episode", a, b, ids)
        change = np.empty(ep.shape, bool)
        if prev is None:
            first_step = reader.read("episode_step", s, s + 1, ids)[0]
            change[0] = first_step == 0
        else:
            change[0] = ep[0] != prev
        change[1:] = ep[1:] != ep[:-1]
        prev = ep[-1]
        for j in np.flatnonzero(change.any(axis=0)):
            for r in np.flatnonzero(change[:, j]):
                f = a + int(r)
                if starts[j] >= 0 and stops[j] < 0:
                    stops[j] = f
                if count[j] == k:
                    starts[j] = f
                count[j] += 1
        if np.all(stops >= 0):
            break
    stops[(starts >= 0) & (stops < 0)] = e
    return starts, stops


def _env_stats(
    reader: ScalarReader,
    ids: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    *,
    score: str | None,
    stat: str,
    flags: tuple[str, ...],
    success: str | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per env: the score reduced over [start, stop), whether each flag was ever set, and
    whether the score was ever +inf or -inf (``{"+inf": ..., "-inf": ...}``).

    One rule under every ``stat``: NaN values (unknown: e.g. a skipped corrupt chunk) are
    left out, ±inf are values like any other (the mean or sum of an env with +inf is +inf, its
    max too; with both +inf and -inf its mean is undefined, NaN), and an env with no value
    scores NaN.
    """
    n = len(ids)
    total = np.zeros(n)
    count = np.zeros(n)
    best = np.full(n, -np.inf) if stat == "max" else np.full(n, np.inf)
    final = np.full(n, np.nan)
    anyflag = {f: np.zeros(n, bool) for f in flags}
    infinite = {"+inf": np.zeros(n, bool), "-inf": np.zeros(n, bool)}
    lo, hi = int(starts.min()), int(stops.max())
    for a, b in _scan(lo, hi):
        frames = np.arange(a, b)[:, None]
        inside = (frames >= starts[None, :]) & (frames < stops[None, :])
        if not inside.any():
            continue
        if score is not None:
            v = reader.read(score, a, b, ids).astype(np.float64)
            m = inside & ~np.isnan(v)
            infinite["+inf"] |= (m & (v == np.inf)).any(axis=0)
            infinite["-inf"] |= (m & (v == -np.inf)).any(axis=0)
            with np.errstate(invalid="ignore"):  # +inf and -inf: NaN, the mean is undefined
                total += np.where(m, v, 0.0).sum(axis=0)
            count += m.sum(axis=0)
            if stat == "max":
                best = np.maximum(best, np.where(m, v, -np.inf).max(axis=0))
            elif stat == "min":
                best = np.minimum(best, np.where(m, v, np.inf).min(axis=0))
            last = stops - 1
            here = (last >= a) & (last < b)
            final[here] = v[last[here] - a, np.flatnonzero(here)]
        for f in flags:
            v = reader.read(f, a, b, ids)
            hit = inside & (np.nan_to_num(v.astype(np.float64)) > 0.5)
            if f == "terminated" and success is not None:
                ok = reader.read(success, a, b, ids).astype(np.float64)
                hit &= np.nan_to_num(ok) > 0.5
            anyflag[f] |= hit.any(axis=0)
    if stat == "final":
        scores = final
    elif stat in ("mean", "sum"):
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = total / count if stat == "mean" else np.where(count > 0, total, np.nan)
    else:  # an infinite max or min is a score; only an env without values has none
        scores = np.where(count > 0, best, np.nan)
    return scores, anyflag, infinite


def _warn_nonfinite(
    run: Run, layout: Layout, ids: np.ndarray, scores: np.ndarray, infinite, msgs: list[str]
) -> None:
    """Name the envs whose score scalar was ±inf, or whose score is NaN although they have
    frames: most likely a bug in the env, which the ranking would otherwise hide."""
    gid = run.env_ids
    parts = [
        f"{_plural_ids([gid[e] for e in ids[infinite[k]]])} reached {k}"
        for k in ("+inf", "-inf")
        if infinite[k].any()
    ]
    nan = np.isnan(scores)
    if nan.any():
        parts.append(
            f"{_plural_ids([gid[e] for e in ids[nan]])} {'has' if nan.sum() == 1 else 'have'} "
            "no score"
        )
    if parts:
        _warn(
            msgs,
            f"the {layout.score_stat} of {layout.score!r} that ranks the envs is not finite: "
            f"{'; '.join(parts)} (a bug in the env?). Under every score_stat +inf ranks "
            "highest and -inf lowest, NaN values are left out, and an env with no score (NaN: "
            "no values, or a mean of +inf and -inf) is never in top_k or bottom_k and sorts "
            "after all others, in either order",
        )


def _sort_key(scores: np.ndarray, descending: bool) -> Callable[[int], tuple]:
    def key(i: int) -> tuple:
        v = scores[i]
        if np.isnan(v):
            return (1, 0.0)
        return (0, -v if descending else v)

    return key


def _summarize_ids(ids: tuple[int, ...], max_parts: int = 8) -> str:
    """``ids`` as runs like ``"0-15,20"``, cut to ``max_parts`` runs (the last one kept)."""
    parts = format_env_spec(ids).split(",")
    if len(parts) > max_parts:
        parts = [*parts[: max_parts - 1], "...", parts[-1]]
    return ",".join(parts)


def _stored_indices(run: Run, ids: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    """The stored env index (0..N-1) of each global env id in ``ids``.

    Raises:
        ValueError: ids that are not in the run, named, with a summary of the run's ids.
    """
    spec = run.spec
    if spec.env_ids is None:  # ids offset..offset+N-1: no table needed
        local = [i - spec.env_id_offset for i in ids]
        bad = [g for g, i in zip(ids, local, strict=True) if not 0 <= i < run.num_envs]
    else:
        index = {g: i for i, g in enumerate(run.env_ids)}
        local = [index.get(g, -1) for g in ids]
        bad = [g for g, i in zip(ids, local, strict=True) if i < 0]
    if bad:
        raise ValueError(
            f"envs {layout.envs!r}: env ids {bad[:10]}{'...' if len(bad) > 10 else ''} are not "
            f"in this run; its {run.num_envs} envs have ids {_summarize_ids(run.env_ids)}"
        )
    return tuple(local)


def _pages(envs: tuple[int, ...], page_size: int | None) -> tuple[tuple[int, ...], ...]:
    """``envs`` cut into pages of ``page_size`` (all on one page for None), in order."""
    size = min(page_size or len(envs), len(envs))
    return tuple(envs[i : i + size] for i in range(0, len(envs), size))


def plan_render(
    run: Run,
    layout: Layout,
    *,
    skip_bad: bool = False,
    fps_cap: float | None = None,
    messages: list[str] | None = None,
) -> Plan:
    """Resolve ``layout`` against ``run``: check every name and range, choose and order envs.

    Args:
        run: the open run.
        layout: the layout.
        skip_bad: read corrupt scalar chunks as NaN with a warning instead of raising.
            Defaults to False.
        fps_cap: highest output fps (GIF); above it frames are skipped (stride multiplied) and a
            warning says so. Defaults to None.
        messages: a list that collects warning texts. Defaults to None.

    Raises:
        ValueError: unknown env ids, scalars or clip, a bad time window, an empty selection, or
            a global view / markers the run cannot provide.
        CorruptChunkError: a scalar chunk cannot be read and ``skip_bad`` is False.
    """
    msgs: list[str] = messages if messages is not None else []
    reader = ScalarReader(run, skip_bad=skip_bad, messages=msgs)
    # names first: they are cheap to check and the most common mistake
    global_ids = run.env_ids
    local_given = None if layout.env_ids is None else _stored_indices(run, layout.env_ids, layout)
    label_score, success = _check_names(run, layout, msgs)
    _check_global_view(run, layout)
    window = time_window(run, layout, msgs)
    stride, fps = _stride_and_fps(run, layout, fps_cap, msgs)

    cand = np.array(local_given if local_given is not None else range(run.num_envs), np.int64)
    starts = np.full(len(cand), window[0], np.int64)
    stops = np.full(len(cand), window[1], np.int64)
    if layout.episode is not None:
        cand, starts, stops = _episode_tracks(reader, layout, cand, window, global_ids, msgs)
    need_score = _ranking(layout) or layout.order != "given" or label_score
    scores = None
    if need_score or layout.only is not None:
        cand, starts, stops, scores = _filter_and_score(
            reader, layout, cand, starts, stops, window, need_score=need_score, success=success
        )
    order = _tile_order(layout, run, cand, scores, msgs)
    envs = tuple(int(cand[i]) for i in order)
    if not envs:
        raise ValueError(f"the layout selects no env (envs={layout.envs!r})")
    if layout.markers:
        _warn_unmarked(run, envs, msgs)
    pages, page_size = _paginate(layout, envs)
    return Plan(
        envs=envs,
        global_ids=tuple(global_ids[e] for e in envs),
        pages=pages,
        page_size=page_size,
        starts=tuple(int(starts[i]) for i in order),
        stops=tuple(int(stops[i]) for i in order),
        stride=stride,
        fps=fps,
        window=window,
        episode_mode=layout.episode is not None,
        label=layout.label_template,
        scalars_needed=_scalars_needed(layout, label_score),
        scores=None if scores is None else tuple(float(scores[i]) for i in order),
        label_score=label_score,
        warnings=tuple(msgs),
    )


def _ranking(layout: Layout) -> bool:
    return layout.top_k is not None or layout.bottom_k is not None


def _check_names(run: Run, layout: Layout, msgs: list[str]) -> tuple[bool, str | None]:
    """Check the score, success scalar and label fields against the run.

    Returns:
        Whether the label's ``{score}`` is the env's score, and the success scalar (or None).
    """
    known = _scalar_names(run)
    label = layout.label_template
    label_score = label is not None and "score" in label.fields and "score" not in known
    if label is not None and "score" in label.fields and "score" in known:
        if layout.score != "score" and (_ranking(layout) or layout.order != "given"):
            _warn(
                msgs,
                "the label's {score} is this run's scalar named 'score', per frame, not the "
                f"{layout.score_stat} of {layout.score!r} that the envs are ranked by",
            )
    if (_ranking(layout) or layout.order != "given" or label_score) and layout.score not in known:
        raise ValueError(
            f"score {layout.score!r} is not a scalar of this run; it has {list(known)}"
        )
    success = None
    if layout.only == "succeeded":
        if layout.success_scalar not in run.scalar_names:
            raise ValueError(
                f"only='succeeded' needs a {layout.success_scalar!r} scalar (> 0.5 on success), "
                f"but this run's scalars are {list(run.scalar_names)}; record one, set "
                "success_scalar, or use only='terminated'"
            )
        success = layout.success_scalar
    if label is not None:
        label.check(label_samples(run))
    return label_score, success


def _check_global_view(run: Run, layout: Layout) -> None:
    """A global view and markers need what the run recorded."""
    if layout.global_view != "none" and not run.has_global:
        raise ValueError(
            f"global_view={layout.global_view!r}, but {run.url} was recorded without a "
            "global camera; use global_view='none'"
        )
    if not layout.markers:
        return
    cams = run.cameras
    missing = [
        what
        for what, ok in (
            ("env origins", run.env_origins is not None),
            ("a global camera pose", cams.global_pose is not None or cams.global_pose_per_frame),
            ("global camera intrinsics", cams.global_intrinsics is not None),
        )
        if not ok
    ]
    if missing:
        raise ValueError(
            f"markers=True needs {', '.join(missing)} in the store, and {run.url} has none; "
            "use markers=False"
        )


def _warn_unmarked(run: Run, envs: tuple[int, ...], msgs: list[str]) -> None:
    """Names the selected envs that get no marker: rank stores read as one have one global view,
    of one rank's simulation, and the other ranks' envs are not in it."""
    shown = run.global_view_envs
    unmarked = tuple(run.env_ids[e] for e in envs if e not in shown)
    if unmarked:
        _warn(
            msgs,
            f"markers: envs {_summarize_ids(unmarked)} get none; the global view shows the "
            f"simulation of envs {_summarize_ids(tuple(run.env_ids[e] for e in shown))} "
            "only (another rank's envs are in another simulation)",
        )


def _stride_and_fps(
    run: Run, layout: Layout, fps_cap: float | None, msgs: list[str]
) -> tuple[int, float]:
    """Store frames per output frame, and output fps (frames skipped above ``fps_cap``)."""
    stride = layout.stride
    fps = float(layout.fps or run.fps)
    if fps_cap is not None and fps > fps_cap + 1e-9:
        k = math.ceil(fps / fps_cap - 1e-9)
        _warn(
            msgs,
            f"{fps:g} fps is above the {fps_cap:g} fps this format plays; keeping one frame "
            f"of every {k} at {fps / k:g} fps (same duration)",
        )
        stride, fps = stride * k, fps / k
    return stride, fps


def _episode_tracks(reader, layout, cand, window, global_ids, msgs):
    """Episode mode: each candidate's (start, stop) of its k-th episode; envs without one are
    left out with a warning (an error when none is left)."""
    starts, stops = _episode_ranges(reader, cand, window, layout.episode)
    missing = cand[starts < 0]
    keep = starts >= 0
    if missing.size and keep.any():
        _warn(
            msgs,
            f"envs {[global_ids[i] for i in missing[:10]]}"
            f"{'...' if missing.size > 10 else ''} have no "
            f"episode {layout.episode} starting in frames {window[0]}..{window[1] - 1}; "
            "left out",
        )
    if not keep.any():
        raise ValueError(
            f"no env of envs={layout.envs!r} has an episode {layout.episode} starting in "
            f"frames {window[0]}..{window[1] - 1}; choose a smaller episode or a longer "
            "window"
        )
    return cand[keep], starts[keep], stops[keep]


def _filter_and_score(reader, layout, cand, starts, stops, window, *, need_score, success):
    """The envs kept by ``only`` and each one's score (None when no score is needed)."""
    flags: tuple[str, ...] = ()
    if layout.only is not None:
        flags = ("terminated",) if layout.only == "succeeded" else (layout.only,)
    scores, anyflag, infinite = _env_stats(
        reader,
        cand,
        starts,
        stops,
        score=layout.score if need_score else None,
        stat=layout.score_stat,
        flags=flags,
        success=success,
    )
    keep = anyflag[flags[0]] if flags else np.ones(len(cand), bool)
    if (_ranking(layout) or layout.order != "given") and keep.any():
        inf_kept = {k: v[keep] for k, v in infinite.items()}
        _warn_nonfinite(reader.run, layout, cand[keep], scores[keep], inf_kept, reader.messages)
    if not flags:
        return cand, starts, stops, scores
    if not keep.any():
        what = {
            "terminated": "terminated",
            "truncated": "was truncated (timed out)",
            "succeeded": f"terminated with {layout.success_scalar} > 0.5",
        }
        raise ValueError(
            f"no env of envs={layout.envs!r} {what[layout.only]} in frames "
            f"{window[0]}..{window[1] - 1}; nothing to render with only={layout.only!r}"
        )
    return cand[keep], starts[keep], stops[keep], scores[keep]


def _tile_order(layout: Layout, run: Run, cand: np.ndarray, scores, msgs: list[str]) -> list[int]:
    """Indices of the candidates to show, in tile order (top/bottom k, then order).

    ``top_k`` and ``bottom_k`` choose among the envs with a score only: an env without one
    (NaN) is neither among the best nor the worst. When that leaves fewer than k, a warning
    names the envs left out; when it leaves none, nothing can be ranked (ValueError).
    """
    order = list(range(len(cand)))
    if _ranking(layout):
        top = layout.top_k is not None
        k = cast(int, layout.top_k if top else layout.bottom_k)
        what = f"{'top_k' if top else 'bottom_k'}={k}"
        scored = [i for i in order if not np.isnan(scores[i])]
        unscored = [i for i in order if np.isnan(scores[i])]
        if not scored:
            raise ValueError(
                f"{what}: no env of envs={layout.envs!r} has a score (the "
                f"{layout.score_stat} of {layout.score!r} over its frames is NaN for all "
                f"{len(order)}: no values, or a mean of +inf and -inf); nothing to rank"
            )
        if unscored and len(scored) < k:
            gid = run.env_ids
            _warn(
                msgs,
                f"{what} ranks the envs with a score: {len(unscored)} without one "
                f"({_plural_ids([gid[cand[i]] for i in unscored])}) "
                f"{'is' if len(unscored) == 1 else 'are'} left out, so {len(scored)} "
                f"{'is' if len(scored) == 1 else 'are'} shown",
            )
        elif len(order) < k:
            _warn(msgs, f"{what}, but only {len(order)} env(s) are selected: all are shown")
        ranked = sorted(scored, key=_sort_key(scores, descending=top))
        chosen = set(ranked[:k])
        order = [i for i in order if i in chosen]
    if layout.order != "given":
        order = sorted(order, key=_sort_key(scores, descending=layout.order == "descending"))
    return order


def _paginate(layout: Layout, envs: tuple[int, ...]):
    """The pages of ``envs`` and the tiles per page the grid is laid out for."""
    if layout.columns and layout.rows:
        page_size = layout.page_size or layout.columns * layout.rows
    else:
        page_size = layout.page_size or len(envs)
    pages = _pages(envs, page_size)
    page_size = len(pages[0])
    if layout.global_view == "only":
        pages, page_size = (envs,), len(envs)
    return pages, page_size


def _scalars_needed(layout: Layout, label_score: bool) -> tuple[str, ...]:
    """Scalars read per frame: the label's fields and the flags that draw borders."""
    needed: list[str] = []
    label = layout.label_template
    if label is not None:
        needed += [f for f in label.fields if f not in _FRAME_FIELDS]
        if label_score:
            needed.remove("score")
    if layout.border > 0:
        for name in ("terminated", "truncated", "stale"):
            if getattr(layout, f"{name}_color") is not None:
                needed.append(name)
    return tuple(dict.fromkeys(needed))
