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
import numbers
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from envreel._checks import check_int, check_number, compact_ids, first_duplicate
from envreel._options import option, specs

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
ONLY_ALIASES = {"timed_out": "truncated"}
"""Other names accepted for values of ``Layout.only``."""
_COLORS = (
    "background",
    "marker_color",
    "label_color",
    "label_background",
    "terminated_color",
    "truncated_color",
    "stale_color",
)
_OPTIONAL_COLORS = ("label_background", "terminated_color", "truncated_color", "stale_color")
# fields checked by their own parsers in Layout.__post_init__, not by their declaration alone
_PARSED = ("envs", "tile_size", "global_size", "start", "stop", *_COLORS)

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
    if isinstance(spec, list | tuple | range):
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
    dup = first_duplicate(ids)
    if dup is not None:
        raise ValueError(f"envs {spec!r} lists env {dup} more than once")
    return tuple(ids)


def format_env_spec(ids: tuple[int, ...] | None) -> str:
    """The compact spec of ``ids`` (runs of consecutive ids as ``a-b``), ``"all"`` for None."""
    return "all" if ids is None else compact_ids(ids)


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
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= int(c) <= 255
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
        for _, name, spec in self._parts:
            if name is not None and spec:
                try:
                    format(samples[name], spec)
                except (ValueError, TypeError) as exc:
                    raise ValueError(
                        f"label template {self.text!r}: format spec {spec!r} does not apply to "
                        f"{{{name}}} ({type(samples[name]).__name__}): {exc}"
                    ) from None

    def __repr__(self) -> str:
        return f"LabelTemplate({self.text!r})"


# ------------------------------------------------------------------------------------------------
# the layout
# ------------------------------------------------------------------------------------------------
def _hint(value: Any, choices: tuple) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Layout:
    """What to render and how: env selection, grid, global view, labels, time and size.

    Every field has a default, so ``Layout()`` renders all envs in an automatic grid. Each field
    is declared once below with its meaning, default and allowed values (``options_table(Layout)``
    from ``envreel._options`` prints them as a table; the ``envreel render`` flags are built from
    the same declarations). Fields are checked when the layout is built (``ValueError`` naming the
    field and the expectation); checks that need the run (env ids, scalar names, time range)
    happen in ``render`` before anything is written.
    """

    # ---- which envs
    envs: str = option(
        "all",
        "env ids and ranges like '0-15,20,31' (kept in this order), a list of ints, or 'all'",
        kind="any",
    )
    # Ids are global env ids (Run.env_ids, which `envreel info` lists; 0..N-1 for a store of
    # all of a sim's envs).
    only: str | None = option(
        None,
        "keep only envs whose episode ended in the window ('timed_out' means 'truncated')",
        choices=SELECT_ONLY,
    )
    # "succeeded": terminated while the success_scalar scalar is > 0.5 (a run without that
    # scalar is refused). In episode mode, within the chosen episode.
    top_k: int | None = option(
        None,
        "keep the k envs with the highest score (of those with one; the others are left out)",
        kind="int",
        minimum=1,
    )
    bottom_k: int | None = option(
        None,
        "keep the k envs with the lowest score (of those with one; the others are left out)",
        kind="int",
        minimum=1,
    )
    score: str = option(
        "reward",
        "scalar that ranks envs for top_k, bottom_k and order: 'reward', 'episode_step' or a "
        "user scalar",
    )
    score_stat: str = option(
        "mean",
        "how the score scalar is reduced over each env's frames in the window (or its "
        "episode); NaN values are left out, ±inf rank highest/lowest, envs without a score are "
        "never in top_k/bottom_k and sort last",
        choices=SCORE_STATS,
    )
    order: str = option("given", "tile order: as given by envs, or by score", choices=ORDERS)
    success_scalar: str = option("success", "user scalar read by only='succeeded'")
    # ---- grid
    columns: int | None = option(
        None, "grid columns (automatic when None)", kind="int", minimum=1, maximum=4096
    )
    rows: int | None = option(
        None, "grid rows (automatic when None)", kind="int", minimum=1, maximum=4096
    )
    aspect: float = option(
        16 / 9,
        "target grid width/height for automatic grids (an exact grid near it, e.g. 4x4 for 16 "
        "tiles, is preferred to one with empty slots)",
        minimum=0.01,
        maximum=100.0,
    )
    tile_size: tuple[int, int] | None = option(
        None,
        "(height, width) of a tile in pixels, an int for a square (None: env frame size × scale)",
        kind="any",
    )
    scale: float = option(
        1.0, "tile size as a factor of the env frame size", minimum=0.01, maximum=64.0
    )
    gap: int = option(2, "pixels between tiles", minimum=0, maximum=1024)
    # ... and between the grid and the global view.
    background: str = option("#000000", "background colour", kind="any")
    page_size: int | None = option(
        None,
        "tiles per page (None: columns × rows when both are set, else every env on one page)",
        kind="int",
        minimum=1,
    )
    pages: str = option(
        "sequence",
        "'sequence' plays page after page in one output; 'separate' writes one output per page "
        "(name_p000.mp4, ...)",
        choices=PAGE_MODES,
    )
    # ---- global view
    global_view: str = option(
        "none", "where the global camera goes ('inset': over a grid corner)", choices=GLOBAL_VIEWS
    )
    global_size: tuple[int, int] | None = option(
        None, "(height, width) of the global view in pixels", kind="any"
    )
    # None: left and right: the grid's height; top and bottom: the grid's width; inset:
    # inset_fraction of the grid's width; only: the recorded size.
    inset_fraction: float = option(
        0.33, "inset width as a fraction of the grid width", minimum=0.05, maximum=1.0
    )
    inset_corner: str = option("bottom-right", "corner of the inset", choices=CORNERS)
    markers: bool = option(False, "markers at env origins in the global view")
    # A marker and the global env id at each shown env's origin, projected into the global view
    # (needs env origins and a global camera pose and intrinsics in the store).
    marker_color: str = option("#ffd400", "marker colour", kind="any")
    marker_height: float = option(
        0.0, "height of the markers above the env origins (e.g. 2 for Cartpole's rail)", unit="m"
    )
    # ---- labels and borders
    label: str | None = option(
        "{env}",
        "tile label template, e.g. '{env} r={reward:.2f}', None for no labels. Fields: {env} "
        "(global env id), {frame}, {step}, {time} (sim seconds), {episode}, {episode_step}, "
        "{reward}, {terminated}, {truncated}, {stale}, {score} (the env's score under score and "
        "score_stat over the window, as top_k and order rank it) and every user scalar",
        kind="str",
        optional=True,
    )
    # Format specs are allowed ({reward:+.2f}); attribute and item access are not. A user
    # scalar named "score" is that scalar, per frame.
    label_position: str = option("top-left", "corner of the label", choices=CORNERS)
    font_size: int = option(11, "label text height in pixels", minimum=4, maximum=256)
    label_color: str = option("#ffffff", "label text colour", kind="any")
    label_background: str | None = option(
        "#000000", "label box colour, None for outlined text and no box", kind="any", optional=True
    )
    border: int = option(2, "border width on flagged frames (0: none)", minimum=0, maximum=256)
    terminated_color: str | None = option(
        "#e5322d", "border colour when terminated", kind="any", optional=True
    )
    truncated_color: str | None = option(
        "#f5a623", "border colour when truncated (timed out)", kind="any", optional=True
    )
    stale_color: str | None = option(
        "#3d7eff",
        "border colour on stale frames (rendered before the env's reset)",
        kind="any",
        optional=True,
    )
    border_hold: int = option(
        0,
        "extra frames a border stays after its flag, so a one-frame flag stays visible",
        minimum=0,
        maximum=100_000,
    )
    # ---- time
    start: float | None = option(None, "window start in unit", kind="number")
    # Frames count from the clip's first frame when clip is set; steps and seconds are
    # absolute. A window past the end of the run is cut to it, with a warning.
    stop: float | None = option(None, "window stop (exclusive) in unit", kind="number")
    unit: str = option("frame", "unit of start and stop (second: sim time)", choices=TIME_UNITS)
    clip: int | None = option(None, "render only this recording window (clip id)", minimum=0)
    stride: int = option(
        1, "take every stride-th frame (a time lapse at the same fps)", minimum=1, maximum=1_000_000
    )
    fps: float | None = option(
        None, "output fps (None: the run's)", kind="number", minimum=0.01, maximum=1000.0
    )
    episode: int | None = option(
        None, "episode mode: each tile plays its env's k-th episode", minimum=0
    )
    # Counting from 0 the episodes that start inside the window, each from its first frame;
    # tiles that finish early hold their last frame, dimmed. Envs without a k-th episode are
    # left out with a warning.
    dim: float = option(
        0.4, "brightness of finished tiles in episode mode", minimum=0.0, maximum=1.0
    )
    # ---- output size
    max_width: int = option(3840, "largest output width", minimum=2, maximum=16384)
    # Larger layouts are scaled down (tiles, gaps and the global view alike), keeping width and
    # height even; an automatic grid (no columns or rows) first takes the grid nearest aspect
    # that fits at full tile size, when one does.
    max_height: int = option(2160, "largest output height", minimum=2, maximum=16384)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        # envs: keep a canonical string so flags, files and dicts agree
        set_(self, "envs", format_env_spec(parse_env_spec(self.envs)))
        if self.only in ONLY_ALIASES:
            set_(self, "only", ONLY_ALIASES[self.only])
        self._check_declared()
        self._check_parsed()
        self._check_time()
        self._check_together()

    def _check_declared(self) -> None:
        """Each field against its declaration; a bad choice names the nearest one."""
        for name, meta in specs(self).items():
            if name in _PARSED:
                continue
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, meta.check(value, name))
            except ValueError as exc:
                if meta.kind != "choice":
                    raise
                raise ValueError(f"{exc}{_hint(value, meta.choices)}") from None

    def _check_parsed(self) -> None:
        """Fields with their own syntax: scalar names, sizes, colours, the label template."""
        set_ = object.__setattr__
        _name("score", self.score)
        _name("success_scalar", self.success_scalar)
        set_(self, "tile_size", _size("tile_size", self.tile_size))
        set_(self, "global_size", _size("global_size", self.global_size))
        for name in _COLORS:
            v = getattr(self, name)
            if v is not None or name not in _OPTIONAL_COLORS:
                set_(self, name, _hex(parse_color(v, name)))
        if self.label is not None:
            LabelTemplate(self.label)  # syntax only; fields are checked against the run

    def _check_time(self) -> None:
        """start and stop: whole frames, >= 0 unless in steps, start <= stop."""
        for name in ("start", "stop"):
            v = getattr(self, name)
            if v is not None:
                v = check_number(v, name, minimum=None if self.unit == "step" else 0.0)
                if self.unit == "frame":
                    if v != int(v):
                        raise ValueError(f"{name}={v} must be a whole frame number")
                    v = int(v)
                object.__setattr__(self, name, v)
        if self.start is not None and self.stop is not None and self.start > self.stop:
            raise ValueError(
                f"start={self.start} is after stop={self.stop} ({self.unit}s); expected "
                "start <= stop"
            )

    def _check_together(self) -> None:
        """Checks that need more than one field."""
        if self.top_k is not None and self.bottom_k is not None:
            raise ValueError(
                f"give top_k or bottom_k, not both (got top_k={self.top_k}, "
                f"bottom_k={self.bottom_k})"
            )
        if (
            self.columns
            and self.rows
            and self.page_size
            and self.page_size > self.columns * self.rows
        ):
            raise ValueError(
                f"page_size={self.page_size} does not fit a grid of columns={self.columns} × "
                f"rows={self.rows} ({self.columns * self.rows} tiles)"
            )
        if self.markers and self.global_view == "none":
            raise ValueError("markers=True needs a global view; set global_view (e.g. 'left')")
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
            elif isinstance(value, float) and value.is_integer():
                args += [flag, str(int(value))]  # "--marker-height 2", as a person types it
            else:
                args += [flag, str(value)]
        return args

    @classmethod
    def field_docs(cls) -> dict[str, tuple[Any, str]]:
        """Field name -> (default, one-line help), for building command-line flags."""
        return {f.name: (f.default, specs(cls)[f.name].doc) for f in fields(cls)}


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
    h = check_int(v[0], f"{name}[0] (height)", minimum=1, maximum=16384)
    w = check_int(v[1], f"{name}[1] (width)", minimum=1, maximum=16384)
    return (h, w)
