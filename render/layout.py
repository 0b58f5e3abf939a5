"""``Layout``: what to show and how, chosen after the run.

A ``Layout`` is a frozen dataclass of flat fields with simple types (ints, floats, strings, None and
``(height, width)`` pairs), so it maps one field to one command-line flag, round-trips through
``to_dict`` / ``from_dict``, loads from JSON or YAML files and comes in a few named presets.
Nothing here reads a store: the fields are checked on their own when the layout is built, and
against a run (env ids, scalar names, time range) when it is rendered.

Example:
    >>> from envreel.render import Layout
    >>> Layout(envs="0-15", columns=4, label="{env} r={reward:.2f}").columns
    4
    >>> Layout.preset("top16").top_k
    16
    >>> parse_env_spec("0-3,8,5")
    (0, 1, 2, 3, 8, 5)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "Layout",
    "PRESETS",
    "parse_env_spec",
    "format_env_spec",
    "LabelTemplate",
    "parse_color",
]

SELECT_ONLY = ("terminated", "truncated", "succeeded")
"""Values of ``Layout.only``; ``"timed_out"`` is accepted as an alias of ``"truncated"``."""
SCORE_STATS = ("final", "mean", "sum", "max", "min")
ORDERS = ("given", "ascending", "descending")
PAGE_MODES = ("sequence", "separate")
GLOBAL_VIEWS = ("none", "only", "left", "right", "top", "bottom", "inset")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
TIME_UNITS = ("frame", "step", "second")

_ENV_ID_MAX = (1 << 31) - 1  # the largest global env id of the store format (MAX_ENV_ID)
_ENV_SPEC_COUNT = 1 << 20  # more ids than any run holds (MAX_ENVS of the store format)
_ENV_TOKEN = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


# ------------------------------------------------------------------------------------------------
# env specs
# ------------------------------------------------------------------------------------------------
def parse_env_spec(spec: str | int | list | tuple) -> tuple[int, ...] | None:
    """Parse an env selection like ``"0-15,20,31"`` into ids, in the order written.

    Ids are global env ids (``Run.env_ids``): the simulator's env index plus the store's
    ``env_id_offset``, which for an ordinary store are 0..N-1.

    Args:
        spec: ``"all"`` (or ``"*"``), a comma-separated list of ids and inclusive ranges
            ``a-b``, a single int, or a sequence of ints.

    Returns:
        The ids in the order given (ranges expanded), or None for ``"all"``.

    Raises:
        ValueError: a token is not an id or range, a range runs backwards, an id repeats or
            the list is empty.
    """
    if isinstance(spec, bool):
        raise TypeError(
            f"envs must be 'all', a spec like '0-15,20' or a list of ints, got {spec!r}"
        )
    if isinstance(spec, numbers.Integral):
        spec = [int(spec)]
    if isinstance(spec, list | tuple):
        ids = []
        for v in spec:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"envs must hold non-negative ints, got {v!r} in {list(spec)!r}")
            ids.append(int(v))
    elif isinstance(spec, str):
        text = spec.strip()
        if text.lower() in ("all", "*"):
            return None
        ids = []
        for token in text.split(","):
            m = _ENV_TOKEN.match(token)
            if not m:
                raise ValueError(
                    f"envs {spec!r}: {token.strip()!r} is not an env id or a range like '0-15' "
                    "(expected e.g. '0-15,20,31' or 'all')"
                )
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) is not None else a
            if b < a:
                raise ValueError(f"envs {spec!r}: range {token.strip()!r} runs backwards")
            if b > _ENV_ID_MAX:
                raise ValueError(f"envs {spec!r}: id {b} is above the largest possible env id")
            if len(ids) + b - a + 1 > _ENV_SPEC_COUNT:
                raise ValueError(
                    f"envs {spec!r} selects more than {_ENV_SPEC_COUNT} envs, more than a run holds"
                )
            ids.extend(range(a, b + 1))
    else:
        raise TypeError(
            f"envs must be 'all', a spec like '0-15,20' or a list of ints, got {spec!r}"
        )
    if not ids:
        raise ValueError(f"envs {spec!r} selects no env; use 'all' or ids like '0-15'")
    seen: set[int] = set()
    dup = [i for i in ids if i in seen or seen.add(i)]
    if dup:
        raise ValueError(f"envs {spec!r} lists env {dup[0]} more than once")
    return tuple(ids)


def format_env_spec(ids: tuple[int, ...] | None) -> str:
    """The compact spec of ``ids`` (runs of consecutive ids as ``a-b``), ``"all"`` for None."""
    if ids is None:
        return "all"
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


# ------------------------------------------------------------------------------------------------
# colours
# ------------------------------------------------------------------------------------------------
def parse_color(value: Any, name: str = "color") -> tuple[int, int, int]:
    """An RGB triple from ``"#rrggbb"``, ``"#rgb"``, a CSS colour name or ``[r, g, b]``.

    Raises:
        ValueError: the value is not a colour.
    """
    if isinstance(value, str):
        try:
            from PIL import ImageColor

            rgb = ImageColor.getrgb(value.strip())
        except ValueError:
            raise ValueError(
                f"{name} {value!r} is not a colour; expected '#rrggbb', a name like 'red' "
                "or [r, g, b]"
            ) from None
        return tuple(int(c) for c in rgb[:3])  # type: ignore[return-value]
    if isinstance(value, list | tuple) and len(value) == 3:
        if all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 255
            for c in value
        ):
            return (int(value[0]), int(value[1]), int(value[2]))
    raise ValueError(
        f"{name} {value!r} is not a colour; expected '#rrggbb', a name like 'red' or [r, g, b] "
        "with 0..255 ints"
    )


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ------------------------------------------------------------------------------------------------
# label templates
# ------------------------------------------------------------------------------------------------
class LabelTemplate:
    """A safe per-tile label template such as ``"env {env} r={reward:.2f}"``.

    Fields are plain names (``{reward}``), optionally with a format spec (``{reward:+.2f}``).
    Attribute and item access (``{env.__class__}``, ``{env[0]}``), positional fields (``{}``,
    ``{0}``), conversions (``{env!r}``) and nested specs (``{reward:{width}}``) are refused:
    a template comes from users and store files and must not reach Python objects. Values are
    numbers only; formatting calls ``format(value, spec)`` per field.

    Args:
        text: the template. ``{{`` and ``}}`` are literal braces.

    Raises:
        ValueError: the template uses anything but plain names and format specs.
    """

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"label must be a template string or None, got {text!r}")
        if len(text) > 512:
            raise ValueError(f"label template is {len(text)} characters; at most 512")
        parts: list[tuple[str, str | None, str]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"label template {text!r} is malformed: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if field is None:
                parts.append((literal, None, ""))
                continue
            if not _FIELD_NAME.match(field):
                raise ValueError(
                    f"label template {text!r}: field {{{field}}} is not allowed; use plain names "
                    "like {env} or {reward:.2f} (attribute, item and positional fields are "
                    "refused)"
                )
            if conversion is not None:
                raise ValueError(
                    f"label template {text!r}: conversion !{conversion} in {{{field}}} is not "
                    "allowed; use a format spec like {reward:.2f}"
                )
            if spec and ("{" in spec or "}" in spec):
                raise ValueError(
                    f"label template {text!r}: nested fields in the format spec of {{{field}}} "
                    "are not allowed"
                )
            if spec and re.search(r"\d{4,}", spec):
                # format(0, ">999999999") builds a 1 GB string: a layout file must not do that.
                raise ValueError(
                    f"label template {text!r}: the format spec of {{{field}}} asks for a width "
                    "or precision of 1000 or more; at most 999"
                )
            parts.append((literal, field, spec or ""))
        self.text = text
        self._parts = parts
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(f for _, f, _ in parts if f))

    def format(self, values: Mapping[str, Any]) -> str:
        """The label for ``values`` (field name -> number)."""
        out = []
        for literal, field, spec in self._parts:
            out.append(literal)
            if field is not None:
                out.append(format(values[field], spec))
        return "".join(out)

    def check(self, samples: Mapping[str, Any]) -> None:
        """Check fields and format specs against sample values, before rendering starts.

        Raises:
            ValueError: a field is unknown (the message lists the known ones) or a format spec
                does not apply to its value.
        """
        for field in self.fields:
            if field not in samples:
                close = difflib.get_close_matches(field, list(samples), n=1)
                hint = f" (did you mean {{{close[0]}}}?)" if close else ""
                raise ValueError(
                    f"label template {self.text!r}: unknown field {{{field}}}{hint}; this run "
                    f"has {sorted(samples)}"
                )
        for _, field, spec in self._parts:
            if field is not None and spec:
                try:
                    format(samples[field], spec)
                except (ValueError, TypeError) as exc:
                    raise ValueError(
                        f"label template {self.text!r}: format spec {spec!r} does not apply to "
                        f"{{{field}}} ({type(samples[field]).__name__}): {exc}"
                    ) from None

    def __repr__(self) -> str:
        return f"LabelTemplate({self.text!r})"


# ------------------------------------------------------------------------------------------------
# the layout
# ------------------------------------------------------------------------------------------------
def _field_doc(default: Any, doc: str) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Layout:
    """What to render and how: env selection, grid, global view, labels, time and size.

    Every field has a default, so ``Layout()`` renders all envs in an automatic grid. Fields are
    checked when the layout is built (``ValueError`` naming the field and the expectation);
    checks that need the run (env ids, scalar names, time range) happen in ``render`` before
    anything is written.

    Attributes:
        envs: envs to consider: ``"all"`` or ids and inclusive ranges like ``"0-15,20,31"``
            (kept in this order), or a list of ints. Ids are global env ids (``Run.env_ids``,
            which ``envreel info`` lists; 0..N-1 for a store of all of a sim's envs).
            Defaults to "all".
        only: keep only envs whose episode ended in the time window: ``"terminated"``,
            ``"truncated"`` (alias ``"timed_out"``) or ``"succeeded"`` (terminated while the
            ``success_scalar`` scalar is > 0.5; a run without that scalar is refused). In
            episode mode, within the chosen episode. Defaults to None (no filter).
        top_k: keep the k envs with the highest ``score``. Defaults to None.
        bottom_k: keep the k envs with the lowest ``score``. Defaults to None.
        score: scalar that ranks envs for ``top_k``/``bottom_k`` and ``order``: ``"reward"``,
            ``"episode_step"`` or a user scalar. Defaults to "reward".
        score_stat: how the scalar is reduced over each env's frames in the window (or its
            episode): ``"final"``, ``"mean"``, ``"sum"``, ``"max"`` or ``"min"``.
            Defaults to "mean".
        order: tile order: ``"given"`` (the order of ``envs``), ``"ascending"`` or
            ``"descending"`` by score. Defaults to "given".
        success_scalar: user scalar read by ``only="succeeded"``. Defaults to "success".
        columns: grid columns. Defaults to None (automatic, see ``aspect``).
        rows: grid rows. Defaults to None (automatic).
        aspect: target width / height of the grid when columns or rows are automatic.
            Defaults to 16 / 9.
        tile_size: (height, width) of each tile in pixels (an int for a square).
            Defaults to None (env frame size times ``scale``).
        scale: tile size as a factor of the env frame size. Defaults to 1.0.
        gap: pixels between tiles and between the grid and the global view. Defaults to 2.
        background: colour behind and between tiles. Defaults to "#000000".
        page_size: tiles per page when there are more envs than should be shown at once.
            Defaults to None (``columns * rows`` when both are set, else every env on one page).
        pages: ``"sequence"`` plays page after page in one output; ``"separate"`` writes one
            output per page (``name_p000.mp4``, ...). Defaults to "sequence".
        global_view: where the global camera goes: ``"none"``, ``"only"``, ``"left"``,
            ``"right"``, ``"top"``, ``"bottom"`` or ``"inset"`` (over the grid's corner).
            Defaults to "none".
        global_size: (height, width) of the global view in pixels. Defaults to None (left and
            right: the grid's height; top and bottom: the grid's width; inset:
            ``inset_fraction`` of the grid's width; only: the recorded size).
        inset_fraction: width of an inset global view as a fraction of the grid width.
            Defaults to 0.33.
        inset_corner: corner of the inset: ``"top-left"``, ``"top-right"``, ``"bottom-left"``
            or ``"bottom-right"``. Defaults to "bottom-right".
        markers: draw a marker and the global env id at each shown env's origin, projected
            into the global view (needs env origins and a global camera pose and intrinsics in
            the store). Defaults to False.
        marker_color: colour of the markers. Defaults to "#ffd400".
        label: tile label template, e.g. ``"{env} r={reward:.2f}"``. Fields: ``env`` (the
            global env id), ``frame``, ``step``, ``time`` (sim seconds), ``episode``,
            ``episode_step``, ``reward``, ``terminated``, ``truncated``, ``stale`` and every
            user scalar; format specs are allowed, attribute and item access are not. None for
            no labels.
            Defaults to "{env}".
        label_position: corner of the tile for the label. Defaults to "top-left".
        font_size: label text height in pixels. Defaults to 11.
        label_color: label text colour. Defaults to "#ffffff".
        label_background: colour of the box behind the label, or None for text with a dark
            outline and no box. Defaults to "#000000".
        border: border width in pixels on flagged frames (0 for none). Defaults to 2.
        terminated_color: border on frames where the episode terminated (None: none).
            Defaults to "#e5322d".
        truncated_color: border on frames where the episode was truncated (timed out).
            Defaults to "#f5a623".
        stale_color: border on stale frames (rendered before the env's reset).
            Defaults to "#3d7eff".
        border_hold: keep a border this many extra frames after the flag, so a one-frame flag
            stays visible. Defaults to 0.
        start: first frame of the window, in ``unit``; frames count from the clip's first frame
            when ``clip`` is set, steps and seconds are absolute. Defaults to None (the start).
        stop: end of the window (exclusive), in ``unit``. Defaults to None (the end).
        unit: unit of ``start``/``stop``: ``"frame"``, ``"step"`` or ``"second"`` (sim time).
            Defaults to "frame".
        clip: render only the frames of this recording window (clip id). Defaults to None.
        stride: take every stride-th frame (a time lapse at the same fps). Defaults to 1.
        fps: playback frames per second of the output. Defaults to None (the run's fps).
        episode: episode mode: each tile plays its env's k-th episode (counting from 0 the
            episodes that start inside the window) from its first frame; tiles that finish early
            hold their last frame, dimmed. Envs without a k-th episode are left out with a
            warning. Defaults to None (all tiles show the same frames).
        dim: brightness of held tiles in episode mode, 0..1. Defaults to 0.4.
        max_width: largest output width; larger layouts are scaled down (tiles, gaps and the
            global view alike), keeping width and height even. Defaults to 3840.
        max_height: largest output height. Defaults to 2160.
    """

    # which envs
    envs: str = _field_doc("all", "env ids and ranges like '0-15,20,31', or 'all'")
    only: str | None = _field_doc(None, "terminated | truncated | succeeded")
    top_k: int | None = _field_doc(None, "keep the k envs with the highest score")
    bottom_k: int | None = _field_doc(None, "keep the k envs with the lowest score")
    score: str = _field_doc("reward", "scalar that ranks envs")
    score_stat: str = _field_doc("mean", "final | mean | sum | max | min")
    order: str = _field_doc("given", "given | ascending | descending (by score)")
    success_scalar: str = _field_doc("success", "scalar read by only='succeeded'")
    # grid
    columns: int | None = _field_doc(None, "grid columns (auto when None)")
    rows: int | None = _field_doc(None, "grid rows (auto when None)")
    aspect: float = _field_doc(16 / 9, "target grid width/height for automatic grids")
    tile_size: tuple[int, int] | None = _field_doc(None, "(height, width) of a tile")
    scale: float = _field_doc(1.0, "tile size as a factor of the env frame size")
    gap: int = _field_doc(2, "pixels between tiles")
    background: str = _field_doc("#000000", "background colour")
    page_size: int | None = _field_doc(None, "tiles per page")
    pages: str = _field_doc("sequence", "sequence | separate")
    # global view
    global_view: str = _field_doc("none", "none | only | left | right | top | bottom | inset")
    global_size: tuple[int, int] | None = _field_doc(None, "(height, width) of the global view")
    inset_fraction: float = _field_doc(0.33, "inset width as a fraction of the grid width")
    inset_corner: str = _field_doc("bottom-right", "corner of the inset")
    markers: bool = _field_doc(False, "markers at env origins in the global view")
    marker_color: str = _field_doc("#ffd400", "marker colour")
    # labels and borders
    label: str | None = _field_doc("{env}", "tile label template")
    label_position: str = _field_doc("top-left", "corner of the label")
    font_size: int = _field_doc(11, "label text height in pixels")
    label_color: str = _field_doc("#ffffff", "label text colour")
    label_background: str | None = _field_doc("#000000", "label box colour, None for no box")
    border: int = _field_doc(2, "border width on flagged frames")
    terminated_color: str | None = _field_doc("#e5322d", "border colour when terminated")
    truncated_color: str | None = _field_doc("#f5a623", "border colour when truncated")
    stale_color: str | None = _field_doc("#3d7eff", "border colour on stale frames")
    border_hold: int = _field_doc(0, "extra frames a border stays after its flag")
    # time
    start: float | None = _field_doc(None, "window start in unit")
    stop: float | None = _field_doc(None, "window stop (exclusive) in unit")
    unit: str = _field_doc("frame", "frame | step | second")
    clip: int | None = _field_doc(None, "clip id")
    stride: int = _field_doc(1, "take every stride-th frame")
    fps: float | None = _field_doc(None, "output fps (default: the run's)")
    episode: int | None = _field_doc(None, "episode mode: play each env's k-th episode")
    dim: float = _field_doc(0.4, "brightness of finished tiles in episode mode")
    # output size
    max_width: int = _field_doc(3840, "largest output width")
    max_height: int = _field_doc(2160, "largest output height")

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        # envs: keep a canonical string so flags, files and dicts agree
        ids = parse_env_spec(self.envs)
        set_(self, "envs", format_env_spec(ids))
        only = self.only
        if only == "timed_out":
            only = "truncated"
        _choice("only", only, SELECT_ONLY, none_ok=True)
        set_(self, "only", only)
        _opt_int("top_k", self.top_k, lo=1)
        _opt_int("bottom_k", self.bottom_k, lo=1)
        if self.top_k is not None and self.bottom_k is not None:
            raise ValueError(
                f"give top_k or bottom_k, not both (got top_k={self.top_k}, "
                f"bottom_k={self.bottom_k})"
            )
        _name("score", self.score)
        _choice("score_stat", self.score_stat, SCORE_STATS)
        _choice("order", self.order, ORDERS)
        _name("success_scalar", self.success_scalar)
        _opt_int("columns", self.columns, lo=1, hi=4096)
        _opt_int("rows", self.rows, lo=1, hi=4096)
        set_(self, "aspect", _number("aspect", self.aspect, lo=0.01, hi=100.0))
        set_(self, "tile_size", _size("tile_size", self.tile_size))
        set_(self, "scale", _number("scale", self.scale, lo=0.01, hi=64.0))
        _int("gap", self.gap, lo=0, hi=1024)
        set_(self, "background", _hex(parse_color(self.background, "background")))
        _opt_int("page_size", self.page_size, lo=1)
        if (
            self.columns
            and self.rows
            and self.page_size
            and (self.page_size > self.columns * self.rows)
        ):
            raise ValueError(
                f"page_size={self.page_size} does not fit a grid of columns={self.columns} × "
                f"rows={self.rows} ({self.columns * self.rows} tiles)"
            )
        _choice("pages", self.pages, PAGE_MODES)
        _choice("global_view", self.global_view, GLOBAL_VIEWS)
        set_(self, "global_size", _size("global_size", self.global_size))
        set_(
            self,
            "inset_fraction",
            _number("inset_fraction", self.inset_fraction, lo=0.05, hi=1.0),
        )
        _choice("inset_corner", self.inset_corner, CORNERS)
        _bool("markers", self.markers)
        if self.markers and self.global_view == "none":
            raise ValueError("markers=True needs a global view; set global_view (e.g. 'left')")
        set_(self, "marker_color", _hex(parse_color(self.marker_color, "marker_color")))
        if self.label is not None:
            LabelTemplate(self.label)  # syntax only; fields are checked against the run
        _choice("label_position", self.label_position, CORNERS)
        _int("font_size", self.font_size, lo=4, hi=256)
        set_(self, "label_color", _hex(parse_color(self.label_color, "label_color")))
        for name in ("label_background", "terminated_color", "truncated_color", "stale_color"):
            v = getattr(self, name)
            if v is not None:
                set_(self, name, _hex(parse_color(v, name)))
        _int("border", self.border, lo=0, hi=256)
        _int("border_hold", self.border_hold, lo=0, hi=100_000)
        _choice("unit", self.unit, TIME_UNITS)
        for name in ("start", "stop"):
            v = getattr(self, name)
            if v is not None:
                v = _number(name, v, lo=0.0 if self.unit != "step" else -math.inf)
                if self.unit == "frame":
                    if v != int(v):
                        raise ValueError(f"{name}={v} must be a whole frame number")
                    v = int(v)
                set_(self, name, v)
        if self.start is not None and self.stop is not None and self.start > self.stop:
            raise ValueError(
                f"start={self.start} is after stop={self.stop} ({self.unit}s); expected "
                "start <= stop"
            )
        _opt_int("clip", self.clip, lo=0)
        _int("stride", self.stride, lo=1, hi=1_000_000)
        if self.fps is not None:
            set_(self, "fps", _number("fps", self.fps, lo=0.01, hi=1000.0))
        _opt_int("episode", self.episode, lo=0)
        set_(self, "dim", _number("dim", self.dim, lo=0.0, hi=1.0))
        _int("max_width", self.max_width, lo=2, hi=16384)
        _int("max_height", self.max_height, lo=2, hi=16384)
        if self.episode is not None and self.global_view != "none":
            raise ValueError(
                f"global_view={self.global_view!r} needs one time for all tiles, but episode "
                f"mode (episode={self.episode}) plays each tile from its own start; use "
                "global_view='none'"
            )

    # ---- derived ----------------------------------------------------------------------------
    @property
    def env_ids(self) -> tuple[int, ...] | None:
        """The ids of ``envs`` in order, or None for all."""
        return parse_env_spec(self.envs)

    @property
    def label_template(self) -> LabelTemplate | None:
        """``label`` compiled, or None."""
        return None if self.label is None else LabelTemplate(self.label)

    # ---- conversions ------------------------------------------------------------------------
    def to_dict(self, *, changed_only: bool = False) -> dict[str, Any]:
        """A JSON-able dict; ``Layout.from_dict(layout.to_dict()) == layout``.

        Args:
            changed_only: leave out fields equal to their defaults. Defaults to False.
        """
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if changed_only and v == f.default:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Layout:
        """A layout from a dict of field values; ``"preset": name`` starts from a preset.

        Keys may use ``-`` for ``_`` (``tile-size``), as flags do.

        Raises:
            ValueError: an unknown key (with the nearest field name) or a bad value.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"a layout must be a dict of field values, got {type(d).__name__}")
        d = {str(k).replace("-", "_"): v for k, v in d.items()}
        base: dict[str, Any] = {}
        if "preset" in d:
            base = dict(_preset_dict(d.pop("preset")))
        known = [f.name for f in fields(cls)]
        for k in d:
            if k not in known:
                close = difflib.get_close_matches(k, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown layout field {k!r}{hint}; fields are {known}")
        return cls(**{**base, **d})

    @classmethod
    def from_file(cls, path: str | Path) -> Layout:
        """A layout from a ``.json``, ``.yaml`` or ``.yml`` file holding a dict of fields.

        Raises:
            ValueError: an unknown suffix, a file that does not parse, or bad fields.
            FileNotFoundError: no such file.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".json", ".yaml", ".yml"):
            raise ValueError(f"layout file {str(p)!r} must end in .json, .yaml or .yml")
        text = p.read_text(encoding="utf-8")
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
            raise ValueError(f"layout file {str(p)!r} does not parse: {exc}") from None
        if data is None:
            data = {}
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"layout file {str(p)!r}: {exc}") from None

    @classmethod
    def preset(cls, name: str, **changes: Any) -> Layout:
        """A named preset (see ``PRESETS``), optionally with some fields changed.

        Raises:
            ValueError: an unknown preset name.
        """
        return cls.from_dict({**_preset_dict(name), **changes})

    def replace(self, **changes: Any) -> Layout:
        """A copy with some fields changed (checked like a new layout)."""
        return dataclasses.replace(self, **changes)

    def command_args(self) -> list[str]:
        """The ``envreel render`` flags that give this layout (fields that differ from their
        defaults), e.g. ``["--envs", "0-15", "--columns", "4", "--no-markers"]``.

        ``envreel render RUN OUT *layout.command_args()`` renders this layout.
        """
        args: list[str] = []
        for name, value in self.to_dict(changed_only=True).items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + flag[2:])
            elif value is None:
                args += [flag, "none"]
            elif name == "envs" and isinstance(value, list):
                args += [flag, format_env_spec(tuple(value))]
            elif isinstance(value, list):  # sizes: HEIGHTxWIDTH
                args += [flag, "x".join(str(v) for v in value)]
            else:
                args += [flag, str(value)]
        return args

    @classmethod
    def field_docs(cls) -> dict[str, tuple[Any, str]]:
        """Field name -> (default, one-line help), for building command-line flags."""
        return {f.name: (f.default, f.metadata.get("doc", "")) for f in fields(cls)}


PRESETS: dict[str, dict[str, Any]] = {
    "grid": {},
    "top16": {
        "top_k": 16,
        "score": "reward",
        "score_stat": "mean",
        "order": "descending",
        "label": "{env} r={reward:.2f}",
    },
    "bottom16": {
        "bottom_k": 16,
        "score": "reward",
        "score_stat": "mean",
        "order": "ascending",
        "label": "{env} r={reward:.2f}",
    },
    "failures": {"only": "terminated", "label": "{env} ep{episode}", "border_hold": 8},
    "timeouts": {"only": "truncated", "label": "{env} ep{episode}", "border_hold": 8},
    "episodes": {"episode": 0, "label": "{env} t={episode_step}"},
    "overview": {"global_view": "left", "markers": True, "page_size": 16},
    "inset": {"global_view": "inset", "markers": True},
    "global": {"global_view": "only", "markers": True, "label": None},
}
"""Named layouts: field values applied over the defaults (``Layout.preset(name)``)."""


def _preset_dict(name: Any) -> dict[str, Any]:
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown layout preset {name!r}{hint}; presets are {list(PRESETS)}")
    return PRESETS[name]


# ------------------------------------------------------------------------------------------------
# field checks
# ------------------------------------------------------------------------------------------------
def _int(name: str, v: Any, *, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be {rng}, got {v}")
    return int(v)


def _opt_int(name: str, v: Any, *, lo: int | None = None, hi: int | None = None) -> None:
    if v is not None:
        _int(name, v, lo=lo, hi=hi)


def _number(name: str, v: Any, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f) or not lo <= f <= hi:
        rng = f">= {lo:g}" if hi == math.inf else f"between {lo:g} and {hi:g}"
        raise ValueError(f"{name} must be a finite number {rng}, got {v!r}")
    return f


def _bool(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise TypeError(f"{name} must be True or False, got {v!r}")


def _choice(name: str, v: Any, choices: tuple[str, ...], *, none_ok: bool = False) -> None:
    if v is None and none_ok:
        return
    if v not in choices:
        close = difflib.get_close_matches(str(v), list(choices), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name} must be one of {list(choices)}, got {v!r}{hint}")


def _name(name: str, v: Any) -> None:
    if not isinstance(v, str) or not _FIELD_NAME.match(v):
        raise ValueError(f"{name} must be a scalar name (letters, digits, _), got {v!r}")


def _size(name: str, v: Any) -> tuple[int, int] | None:
    if v is None:
        return None
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (v, v)
    if isinstance(v, str):
        parts = re.split(r"[x,×]", v.strip())
        try:
            v = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"{name} must be 'HEIGHTxWIDTH' or an int, got {v!r}") from None
        if len(v) == 1:
            v = (v[0], v[0])
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError(f"{name} must be (height, width) or an int, got {v!r}")
    h = _int(f"{name}[0] (height)", v[0], lo=1, hi=16384)
    w = _int(f"{name}[1] (width)", v[1], lo=1, hi=16384)
    return (h, w)
