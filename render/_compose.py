"""Composition: grid geometry, resizing, pre-rendered labels and stamping into a canvas.

Everything per frame is numpy slicing into a preallocated canvas: tiles are copied into their
rectangles, labels are drawn once per distinct text (Pillow) and then stamped, borders are four
slice assignments. Drawing text with Pillow for every tile of every frame costs more than encoding
(10–31 ms for 64 labels); stamping a cached label costs microseconds.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._memory import mapped_empty
from .layout import Layout, parse_color

__all__ = ["Geometry", "grid_shape", "compute_geometry", "Resizer", "LabelCache", "Sprite"]


# ------------------------------------------------------------------------------------------------
# geometry
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """Where everything goes on the output canvas. Pixel rectangles are (y, x, height, width).

    Attributes:
        height, width: canvas size in pixels, both even.
        tile_height, tile_width: size of each tile.
        columns, rows: grid shape; ``slots = columns * rows`` >= tiles per page.
        tiles: (y, x) of each slot, row-major (slot i holds the page's i-th env).
        global_rect: (y, x, height, width) of the global view, or None.
        factor: how much the output-size limit scaled the layout down (1.0: not at all).
    """

    height: int
    width: int
    tile_height: int
    tile_width: int
    columns: int
    rows: int
    tiles: tuple[tuple[int, int], ...]
    global_rect: tuple[int, int, int, int] | None
    factor: float = 1.0

    @property
    def slots(self) -> int:
        return self.columns * self.rows

    def tile_rect(self, slot: int) -> tuple[int, int, int, int]:
        y, x = self.tiles[slot]
        return (y, x, self.tile_height, self.tile_width)


def grid_shape(
    n: int,
    *,
    columns: int | None = None,
    rows: int | None = None,
    aspect: float = 16 / 9,
    tile_shape: tuple[int, int] = (1, 1),
    gap: int = 0,
) -> tuple[int, int]:
    """(columns, rows) of a grid for ``n`` tiles.

    Given columns and rows are kept; a missing one is ``ceil(n / other)``. With neither, a grid
    without empty slots (``columns * rows == n``) when one comes near ``aspect`` (width / height
    of tiles and gaps, compared in log space): no farther from it than a square grid is, e.g.
    4×4 for 16 square tiles at 16:9. Otherwise the columns whose grid comes closest to
    ``aspect``, ties going to fewer empty slots.

    Raises:
        ValueError: both are given and hold fewer than ``n`` tiles.
    """
    n = max(1, int(n))
    if columns and rows:
        if columns * rows < n:
            raise ValueError(f"a {columns}×{rows} grid holds {columns * rows} tiles, not {n}")
        return columns, rows
    if columns:
        return columns, math.ceil(n / columns)
    if rows:
        return math.ceil(n / rows), rows
    return next(grid_candidates(n, aspect=aspect, tile_shape=tile_shape, gap=gap))


def grid_candidates(
    n: int,
    *,
    aspect: float = 16 / 9,
    tile_shape: tuple[int, int] = (1, 1),
    gap: int = 0,
    limit: tuple[int, int] | None = None,
) -> Iterator[tuple[int, int]]:
    """(columns, rows) of the automatic grids for ``n`` tiles, best first (``grid_shape``'s
    choice is the first); with ``limit`` (height, width), only grids within it at full tile size.
    """
    n = max(1, int(n))
    th, tw = tile_shape

    def size(c: int, r: int) -> tuple[int, int]:
        return r * th + (r - 1) * gap, c * tw + (c - 1) * gap

    def miss(c: int, r: int) -> float:  # how far the grid's shape is from the aspect
        h, w = size(c, r)
        return abs(math.log(w / h / aspect))

    # an exact grid is accepted as far from the aspect as a square is (at least 16:9 vs 1:1)
    near = max(abs(math.log(aspect)), math.log(16 / 9)) + 1e-9
    ranked = []
    for c in range(1, n + 1):
        r = math.ceil(n / c)
        if c > 1 and math.ceil(n / (c - 1)) == r:
            continue  # same rows with fewer columns is never better
        if limit is not None and (size(c, r)[0] > limit[0] or size(c, r)[1] > limit[1]):
            continue
        m, empty = miss(c, r), c * r - n
        ranked.append((not (empty == 0 and m <= near), m, empty, c, r))
    for *_, c, r in sorted(ranked):
        yield c, r


def _even_floor(v: int) -> int:
    return max(2, v - v % 2)


def nominal_tile(layout: Layout, env_shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a tile before the canvas is fitted to its size limit: ``tile_size``,
    else the env frame scaled by ``scale``."""
    if layout.tile_size is not None:
        return layout.tile_size
    return max(1, round(env_shape[0] * layout.scale)), max(1, round(env_shape[1] * layout.scale))


def compute_geometry(
    layout: Layout,
    *,
    num_tiles: int,
    env_shape: tuple[int, int],
    global_shape: tuple[int, int] | None = None,
    max_size: tuple[int, int] | None = None,
) -> Geometry:
    """The canvas geometry of ``layout`` for pages of ``num_tiles`` tiles.

    Args:
        layout: grid, tile size, gap, global view and size limit.
        num_tiles: tiles per page (>= 1; ignored for ``global_view="only"``).
        env_shape: (height, width) of the env frames.
        global_shape: (height, width) of the global frames, needed unless global_view is none.
        max_size: (height, width) limit overriding the layout's (e.g. a GIF's size cap).
            Defaults to None.

    Returns:
        A ``Geometry`` whose width and height are even and within the limit.

    Raises:
        ValueError: the layout cannot fit the limit even with 1-pixel tiles, or a global view is
            asked for without ``global_shape``.
    """
    view = layout.global_view
    if view != "none" and global_shape is None:
        raise ValueError(f"global_view={view!r} needs a run with a global camera")
    max_h, max_w = max_size if max_size is not None else (layout.max_height, layout.max_width)
    max_h, max_w = (
        _even_floor(min(max_h, layout.max_height)),
        _even_floor(min(max_w, layout.max_width)),
    )
    th0, tw0 = nominal_tile(layout, env_shape)
    cols, rows = (0, 0)
    if view != "only":
        cols, rows = grid_shape(
            num_tiles,
            columns=layout.columns,
            rows=layout.rows,
            aspect=layout.aspect,
            tile_shape=(th0, tw0),
            gap=layout.gap,
        )

    def build(f: float) -> Geometry:
        return _build_geometry(layout, f, (th0, tw0), (cols, rows), global_shape)

    g = build(1.0)
    if g.height <= max_h and g.width <= max_w:
        return g
    if view != "only" and not layout.columns and not layout.rows:
        # The automatic grid does not fit at full tile size: another grid may (4,096 tiles of
        # 32² as 64×64 need 2,174 px of height at gap 2; 86×48 fit 3840×2160), sharper than
        # tiles shrunk to fit, and without resizing every tile of every frame.
        grids = grid_candidates(
            num_tiles,
            aspect=layout.aspect,
            tile_shape=(th0, tw0),
            gap=layout.gap,
            limit=(max_h, max_w),
        )
        for c, r in itertools.islice(grids, 256):
            *_, h, w = _canvas(layout, 1.0, (th0, tw0), (c, r), global_shape)
            if h <= max_h and w <= max_w:
                return _build_geometry(layout, 1.0, (th0, tw0), (c, r), global_shape)
    f = min(max_h / g.height, max_w / g.width)
    for _ in range(200):  # sizes only: a geometry's tile positions are 32,768 for a big sheet
        *_, h, w = _canvas(layout, f, (th0, tw0), (cols, rows), global_shape)
        if h <= max_h and w <= max_w:
            return build(f)
        f *= 0.98
    raise ValueError(
        f"the layout ({num_tiles} tiles of {th0}×{tw0}, global view {view!r}) cannot fit "
        f"{max_w}×{max_h} (width×height) even with 1-pixel tiles; raise max_width/max_height or "
        "show fewer envs per page (page_size)"
    )


def _build_geometry(
    layout: Layout,
    f: float,
    tile0: tuple[int, int],
    grid: tuple[int, int],
    global_shape: tuple[int, int] | None,
) -> Geometry:
    """The geometry with tiles, gaps (and a given global size) scaled by ``f``."""
    cols, rows = grid
    th, tw, gap, (dy, dx), grect, H, W = _canvas(layout, f, tile0, grid, global_shape)
    tiles = tuple(
        (dy + r * (th + gap), dx + c * (tw + gap)) for r in range(rows) for c in range(cols)
    )
    return Geometry(
        height=H,
        width=W,
        tile_height=th,
        tile_width=tw,
        columns=cols,
        rows=rows,
        tiles=tiles,
        global_rect=grect,
        factor=f,
    )


def _canvas(
    layout: Layout,
    f: float,
    tile0: tuple[int, int],
    grid: tuple[int, int],
    global_shape: tuple[int, int] | None,
) -> tuple:
    """(tile height, tile width, gap, grid offset, global rect, canvas height, canvas width)
    with tiles, gaps (and a given global size) scaled by ``f``: the geometry without a position
    per tile, so that grids can be tried for size cheaply."""
    cols, rows = grid
    th, tw = max(1, math.floor(tile0[0] * f)), max(1, math.floor(tile0[1] * f))
    gap = math.floor(layout.gap * f)
    grid_h = rows * th + max(0, rows - 1) * gap
    grid_w = cols * tw + max(0, cols - 1) * gap
    offset, grect, H, W = (0, 0), None, grid_h, grid_w
    if layout.global_view != "none":
        gsize = _global_size(layout, f, global_shape, grid_h, grid_w)  # type: ignore[arg-type]
        offset, grect, H, W = _place_global(layout, gsize, gap, grid_h, grid_w)
    H, W = max(H, 1), max(W, 1)
    return th, tw, gap, offset, grect, H + H % 2, W + W % 2


def _global_size(
    layout: Layout, f: float, global_shape: tuple[int, int], grid_h: int, grid_w: int
) -> tuple[int, int]:
    """(height, width) of the global view: given, or fitted to the grid's side it sits on."""
    view = layout.global_view
    gh0, gw0 = global_shape
    if layout.global_size is not None:
        return (
            max(1, math.floor(layout.global_size[0] * f)),
            max(1, math.floor(layout.global_size[1] * f)),
        )
    if view in ("left", "right"):
        return grid_h, max(1, math.floor(gw0 * grid_h / gh0))
    if view in ("top", "bottom"):
        return max(1, math.floor(gh0 * grid_w / gw0)), grid_w
    if view == "inset":
        gw = max(1, math.floor(grid_w * layout.inset_fraction))
        return max(1, math.floor(gh0 * gw / gw0)), gw
    return max(1, math.floor(gh0 * f)), max(1, math.floor(gw0 * f))  # only


def _place_global(layout: Layout, gsize, gap: int, grid_h: int, grid_w: int):
    """(offset of the grid, global rect, canvas height, canvas width) for the global view."""
    view = layout.global_view
    gh, gw = gsize
    if view == "only":
        return (0, 0), (0, 0, gh, gw), gh, gw
    if view == "left":
        return (0, gw + gap), (0, 0, gh, gw), max(gh, grid_h), gw + gap + grid_w
    if view == "right":
        return (0, 0), (0, grid_w + gap, gh, gw), max(gh, grid_h), grid_w + gap + gw
    if view == "top":
        return (gh + gap, 0), (0, 0, gh, gw), gh + gap + grid_h, max(gw, grid_w)
    if view == "bottom":
        return (0, 0), (grid_h + gap, 0, gh, gw), grid_h + gap + gh, max(gw, grid_w)
    # inset, inside the grid's corner, a gap away from its edges
    gh, gw = min(gh, grid_h), min(gw, grid_w)
    m = gap if gh + 2 * gap <= grid_h and gw + 2 * gap <= grid_w else 0
    y = m if layout.inset_corner.startswith("top") else grid_h - gh - m
    x = m if layout.inset_corner.endswith("left") else grid_w - gw - m
    return (0, 0), (y, x, gh, gw), grid_h, grid_w


# ------------------------------------------------------------------------------------------------
# resizing
# ------------------------------------------------------------------------------------------------
def _weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) float32 triangle-filter weights; the filter widens when shrinking (antialias)."""
    scale = src / dst
    support = max(scale, 1.0)
    centers = (np.arange(dst) + 0.5) * scale
    x = np.arange(src) + 0.5
    w = np.clip(1.0 - np.abs(x[None, :] - centers[:, None]) / support, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


class Resizer:
    """Resizes batches of (n, H, W, 3) uint8 images to one target size.

    Same size: no copy. Integer upscale: pixel repetition (sharp). Otherwise Pillow's
    separable triangle filter (``BILINEAR``: bilinear when enlarging, widened to average the
    source when shrinking, as ``_weights`` spells out): it visits only the few source pixels
    each output pixel's taps touch, in C, without the GIL. A dense matrix product of the same
    weights spent all but a few of its ~780 million products a frame on zeros for a 640×360
    global view drawn at 692×388 (8x a render's time).

    Small images are resized a group at a time in two Pillow calls, not one call each (4,096
    tiles shrunk from 32² to 20² took ~110 ms a frame, one call per tile; now ~40 ms): the
    group stacked into one tall image whose width alone is resized, then laid side by side
    in one wide image whose height alone is resized. Pillow's resize is these two one-axis
    passes, rounded to uint8 between them, and no tap of a one-axis pass reaches into the next
    image, so the pixels are those of one call per image. Which pass comes first depends on
    the sizes (Pillow 13 runs the height pass first when the height shrinks much more than the
    width: python-pillow/Pillow#9549), so the first call asks Pillow: random images resized
    both ways, and the order whose pixels equal Pillow's own is kept (one call per image if
    neither does).
    """

    #: Bytes of a group's largest image (source, between passes or output): the per-call
    #: cost vanishes, the group stays in cache (4,096 tiles of 32² at once took 1.5x as
    #: long), and enlarging many tiny images holds no more than this.
    group_bytes = 2 << 20

    def __init__(self, src: tuple[int, int], dst: tuple[int, int]):
        self.src, self.dst = tuple(src), tuple(dst)
        (sh, sw), (dh, dw) = self.src, self.dst
        self.mode = "copy"
        if self.src != self.dst:
            if dh % sh == 0 and dw % sw == 0 and dh // sh == dw // sw:
                self.mode, self.k = "repeat", dh // sh
            else:
                self.mode = "filter"
        self.group = max(1, self.group_bytes // (max(sh, dh) * max(sw, dw) * 3))
        self._order: tuple[str, ...] | None = None  # found at the first grouped call

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.mode == "copy":
            return images
        if self.mode == "repeat":
            return images.repeat(self.k, axis=-3).repeat(self.k, axis=-2)
        lead = images.shape[:-3]
        (sh, sw), (dh, dw) = self.src, self.dst
        flat = images.reshape(-1, sh, sw, 3)
        out = np.empty((len(flat), dh, dw, 3), np.uint8)
        order = self.pass_order() if len(flat) > 1 and self.group > 1 else ()
        for a in range(0, len(flat), self.group):
            out[a : a + self.group] = self._resize(flat[a : a + self.group], order)
        return out.reshape(*lead, dh, dw, 3)

    def pass_order(self) -> tuple[str, ...]:
        """The one-axis passes ("w": width, "h": height), first to last, that give the pixels
        of Pillow's own resize of each image; () when neither order does, or when a probe
        big enough to tell the two apart would cost more than ``4 * group_bytes``."""
        if self._order is None:
            (sh, sw), (dh, dw) = self.src, self.dst
            # enough output values that two orders' roundings, where they differ, differ here
            m = max(4, -(-2048 // (dh * dw)))
            self._order = ()
            if m * sh * sw * 3 <= 4 * self.group_bytes:
                probe = np.random.default_rng(0).integers(0, 256, (m, sh, sw, 3), np.uint8)
                want = self._resize(probe, ())
                for order in (("w", "h"), ("h", "w")):
                    if np.array_equal(self._resize(probe, order), want):
                        self._order = order
                        break
        return self._order

    def _resize(self, images: np.ndarray, order: tuple[str, ...]) -> np.ndarray:
        """(m, dh, dw, 3) of (m, sh, sw, 3) images: the passes of ``order`` over them all, or
        one Pillow call per image for ``()``."""
        from PIL import Image

        (dh, dw), bilinear = self.dst, Image.Resampling.BILINEAR
        if not order:
            out = np.empty((len(images), dh, dw, 3), np.uint8)
            for i, image in enumerate(images):
                out[i] = np.asarray(Image.fromarray(image).resize((dw, dh), bilinear))
            return out
        x = images
        for axis in order:
            m, h, w, _ = x.shape
            if axis == "w" and w != dw:  # one tall image: each row is one image's row
                tall = Image.fromarray(np.ascontiguousarray(x).reshape(m * h, w, 3))
                x = np.asarray(tall.resize((dw, m * h), bilinear)).reshape(m, h, dw, 3)
            elif axis == "h" and h != dh:  # one wide image: each column one image's column
                wide = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(h, m * w, 3)
                wide = np.asarray(Image.fromarray(wide).resize((m * w, dh), bilinear))
                x = wide.reshape(dh, m, w, 3).transpose(1, 0, 2, 3)
        return x


# ------------------------------------------------------------------------------------------------
# labels and sprites
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sprite:
    """A small pre-rendered image to stamp: (h, w, 3) uint8 pixels and an optional (h, w) mask."""

    pixels: np.ndarray
    mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[:2]


def stamp(canvas: np.ndarray, sprite: Sprite, y: int, x: int, clip: tuple) -> None:
    """Copy ``sprite`` into ``canvas[..., y:, x:, :]`` (leading axes broadcast), clipped to
    the rectangle ``clip`` = (y, x, h, w)."""
    cy, cx, ch, cw = clip
    h, w = sprite.shape
    y0, x0 = max(y, cy), max(x, cx)
    y1, x1 = min(y + h, cy + ch), min(x + w, cx + cw)
    if y1 <= y0 or x1 <= x0:
        return
    src = sprite.pixels[y0 - y : y1 - y, x0 - x : x1 - x]
    dst = canvas[..., y0:y1, x0:x1, :]
    if sprite.mask is None:
        dst[...] = src
    else:
        m = sprite.mask[y0 - y : y1 - y, x0 - x : x1 - x]
        np.copyto(dst, np.broadcast_to(src, dst.shape), where=m[..., None])


class LabelCache:
    """Renders each distinct label text once (Pillow) and keeps it, least recently used first out.

    Args:
        font_size: text height in pixels.
        color: text colour (r, g, b).
        background: box colour, or None for outlined text without a box.
        max_entries: labels kept. Defaults to 4096.
    """

    def __init__(
        self,
        font_size: int,
        color: tuple[int, int, int],
        background: tuple[int, int, int] | None,
        *,
        max_entries: int = 4096,
    ):
        from PIL import ImageFont

        try:
            self.font = ImageFont.load_default(size=font_size)
        except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed bitmap font
            self.font = ImageFont.load_default()
        # Pillow's bundled font draws a space 1/3 of a digit wide ("6 0.98" reads "60.98"):
        # spaces are drawn at least 0.6 of a digit wide.
        space, digit = self.font.getlength(" "), self.font.getlength("0")
        self.space = " " * max(1, math.ceil(0.6 * digit / space)) if space > 0 else " "
        self.color, self.background = color, background
        self.max_entries = max_entries
        self._cache: OrderedDict[str, Sprite] = OrderedDict()
        self.rendered = 0

    def get(self, text: str) -> Sprite:
        sprite = self._cache.get(text)
        if sprite is not None:
            self._cache.move_to_end(text)
            return sprite
        sprite = self._render(text)
        self.rendered += 1
        self._cache[text] = sprite
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return sprite

    def _render(self, text: str) -> Sprite:
        from PIL import Image, ImageDraw

        text = text[:200].replace(" ", self.space)
        left, top, right, bottom = self.font.getbbox(text or " ")
        pad = 2
        w = max(1, right - min(0, left) + 2 * pad)
        h = max(1, bottom - min(0, top) + 2 * pad)
        if self.background is not None:
            img = Image.new("RGB", (w, h), self.background)
            ImageDraw.Draw(img).text(
                (pad - min(0, left), pad - min(0, top)), text, font=self.font, fill=self.color
            )
            return Sprite(np.asarray(img).copy())
        img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        ImageDraw.Draw(img).text(
            (pad - min(0, left), pad - min(0, top)),
            text,
            font=self.font,
            fill=self.color + (255,),
            stroke_width=1,
            stroke_fill=(0, 0, 0, 255),
        )
        arr = np.asarray(img)
        return Sprite(arr[..., :3].copy(), arr[..., 3] > 127)


def marker_sprite(radius: int, color: tuple[int, int, int]) -> Sprite:
    """A filled disc with a dark outline, centred in a (2r+1)² sprite."""
    r = max(1, radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    d = np.sqrt(yy**2 + xx**2)
    mask = d <= r + 0.25
    px = np.zeros((2 * r + 1, 2 * r + 1, 3), np.uint8)
    px[d <= r - 0.75] = color
    return Sprite(px, mask)


def placeholder_tile(shape: tuple[int, int]) -> np.ndarray:
    """A (h, w, 3) grey tile with a red cross: a chunk that could not be read."""
    h, w = shape
    tile = np.full((h, w, 3), 64, np.uint8)
    n = max(h, w) * 2
    ys = np.linspace(0, h - 1, n).round().astype(int)
    xs = np.linspace(0, w - 1, n).round().astype(int)
    for dx in (-1, 0, 1):
        xa = np.clip(xs + dx, 0, w - 1)
        tile[ys, xa] = (220, 40, 40)
        tile[ys, w - 1 - xa] = (220, 40, 40)
    return tile


def dimmed(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` (uint8) times ``factor`` (0..1), rounded down."""
    k = int(round(factor * 256))
    return ((image.astype(np.uint16) * k) >> 8).astype(np.uint8)


def draw_border(canvas: np.ndarray, rect: tuple, width: int, color) -> None:
    """A ``width``-pixel border inside ``rect`` = (y, x, h, w) of ``canvas[..., H, W, 3]``."""
    y, x, h, w = rect
    b = min(width, h // 2 or 1, w // 2 or 1)
    canvas[..., y : y + b, x : x + w, :] = color
    canvas[..., y + h - b : y + h, x : x + w, :] = color
    canvas[..., y : y + h, x : x + b, :] = color
    canvas[..., y : y + h, x + w - b : x + w, :] = color


def label_origin(rect: tuple, sprite_shape: tuple[int, int], corner: str) -> tuple[int, int]:
    """Top-left of a label placed in ``corner`` of ``rect`` (y, x, h, w), 1 pixel in."""
    y, x, h, w = rect
    sh, sw = sprite_shape
    ly = y + 1 if corner.startswith("top") else y + h - sh - 1
    lx = x + 1 if corner.endswith("left") else x + w - sw - 1
    return max(y, ly), max(x, lx)


def colors(layout: Layout) -> dict[str, tuple[int, int, int] | None]:
    """The layout's colours as RGB triples."""

    def rgb(v):
        return None if v is None else parse_color(v)

    return {
        "background": rgb(layout.background),
        "label": rgb(layout.label_color),
        "label_background": rgb(layout.label_background),
        "terminated": rgb(layout.terminated_color),
        "truncated": rgb(layout.truncated_color),
        "stale": rgb(layout.stale_color),
        "marker": rgb(layout.marker_color),
    }


# ------------------------------------------------------------------------------------------------
# the composer: one job's tiles, labels, borders and global view into a canvas block
# ------------------------------------------------------------------------------------------------
_STATIC_FIELDS = frozenset({"env"})


def _runs(values: list) -> list[tuple[int, int, object]]:
    """Runs of equal consecutive values: (start, stop, value)."""
    out, i = [], 0
    while i < len(values):
        j = i + 1
        while j < len(values) and values[j] == values[i]:
            j += 1
        out.append((i, j, values[i]))
        i = j
    return out


def _as_list(a: np.ndarray) -> list:
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    return a.tolist()


class Composer:
    """Composes jobs of a plan into canvas blocks (used from the prefetch thread).

    Args:
        run: the open run.
        plan: the resolved plan.
        layout: the layout (colours, label placement, borders).
        geometry: the canvas geometry.
        reader: the block reader of the plan.
    """

    def __init__(self, run, plan, layout: Layout, geometry: Geometry, reader):
        self.run, self.plan, self.layout, self.g, self.reader = run, plan, layout, geometry, reader
        self.colors = colors(layout)
        self.bg = np.array(self.colors["background"], np.uint8)
        g = geometry
        self.tile_shape = (g.tile_height, g.tile_width)
        self.resize_tile = Resizer(run.env_frame_shape, self.tile_shape)
        self.resize_global = None
        if g.global_rect is not None:
            self.resize_global = Resizer(run.global_frame_shape, g.global_rect[2:])
        font = max(4, min(layout.font_size, int(layout.font_size * max(g.factor, 0.5))))
        self.labels = LabelCache(font, self.colors["label"], self.colors["label_background"])
        self.placeholder = placeholder_tile(self.tile_shape)
        self.bg_tile = np.empty((*self.tile_shape, 3), np.uint8)
        self.bg_tile[...] = self.bg
        static = _STATIC_FIELDS | ({"score"} if plan.label_score else set())
        self.static_label = plan.label is not None and set(plan.label.fields) <= static
        self.border_colors = {
            1: self.colors["terminated"],
            2: self.colors["truncated"],
            3: self.colors["stale"],
        }
        self.held: dict[int, np.ndarray] = {}
        self.carry: dict[int, tuple[int, int]] = {}
        self.markers = (
            _Markers(run, plan, layout, geometry, self.labels) if layout.markers else None
        )

    def make_block(self, rows: int) -> np.ndarray:
        """A canvas block for ``fill``: background only where ``fill`` leaves pixels unwritten.

        A layout whose tiles and global view cover the whole canvas (no gaps, no empty slots
        around an uneven grid, not episode mode, which holds tiles) gets an uninitialised block:
        colouring it first cost a pass over 25 MB before a 512² GIF's first frame.
        """
        if self.fill_covers_canvas:
            return mapped_empty((rows, self.g.height, self.g.width, 3))
        return self.make_buffer(rows)

    @cached_property
    def fill_covers_canvas(self) -> bool:
        """Whether ``fill`` writes every pixel of every frame."""
        g, plan = self.g, self.plan
        if plan.episode_mode or len(set(zip(plan.starts, plan.stops, strict=True))) > 1:
            return False  # tiles that end early are held or left as they were
        covered = np.zeros((g.height, g.width), bool)
        th, tw = self.tile_shape
        for y, x in g.tiles if g.slots else ():
            covered[y : y + th, x : x + tw] = True
        if g.global_rect is not None:
            gy, gx, gh, gw = g.global_rect
            covered[gy : gy + gh, gx : gx + gw] = True
        return bool(covered.all())

    def make_buffer(self, rows: int) -> np.ndarray:
        """A canvas block of ``rows`` frames filled with the background colour."""
        buf = mapped_empty((rows, self.g.height, self.g.width, 3))
        # Broadcasting the 3-byte colour over the block runs numpy's inner loop 3 bytes at a
        # time (440 ms for 32 frames of 1024²): colour one row, copy it down the first frame,
        # then copy that frame (~30 ms, mostly first-touch page faults).
        if rows:
            buf[0, 0] = self.bg
            buf[0, 1:] = buf[0, 0]
        for i in range(1, rows):
            buf[i] = buf[0]
        return buf

    def fill(self, job, out: np.ndarray) -> None:
        """Compose ``job`` into ``out`` (len(job), H, W, 3)."""
        g, plan = self.g, self.plan
        page = plan.pages[job.page]
        if job.o0 == 0:
            self.held.clear()
            self.carry.clear()
        if g.slots:
            th, tw = self.tile_shape
            for slot in range(len(page), g.slots):
                y, x = g.tiles[slot]
                out[:, y : y + th, x : x + tw] = self.bg_tile
            for batch in self.reader.batches(job):
                self._tiles(batch, out)
            if plan.episode_mode:
                for slot, env in enumerate(page):
                    length = plan.env_length(env)
                    if length < job.o1:
                        y, x = g.tiles[slot]
                        out[max(0, length - job.o0) :, y : y + th, x : x + tw] = self.held[slot]
        if g.global_rect is not None:
            self._global(job, out)

    def compose_at(self, picks: dict[int, int]) -> np.ndarray:
        """One frame of the first page showing each env at its own store frame: ``{stored env
        index: store frame}`` (a contact sheet's column); (H, W, 3) uint8."""
        out = self.make_buffer(1)
        slot_of = {env: slot for slot, env in enumerate(self.plan.pages[0])}
        by_frame: dict[int, list[int]] = {}
        for env, f in picks.items():
            by_frame.setdefault(int(f), []).append(env)
        for f, envs in by_frame.items():
            for g0 in range(0, len(envs), 64):  # many envs per read, a bounded group
                group = envs[g0 : g0 + 64]
                batch = self.reader.batch_at(group, [slot_of[e] for e in group], f)
                self._tiles(batch, out)
        return out[0]

    # ---- tiles ----------------------------------------------------------------------------------
    def _tiles(self, batch, out: np.ndarray) -> None:
        g, lay = self.g, self.layout
        th, tw = self.tile_shape
        r0, r1 = batch.rows
        tiles = self.resize_tile(batch.frames)
        label = self.plan.label
        codes = self._border_codes(batch) if lay.border > 0 else None
        any_bad = batch.bad.any(axis=0)
        for j, slot in enumerate(batch.slots):
            y, x = g.tiles[slot]
            rect = (y, x, th, tw)
            dst = out[r0:r1, y : y + th, x : x + tw]
            dst[...] = tiles[:, j]
            if any_bad[j]:
                dst[batch.bad[:, j]] = self.placeholder
            if codes is not None:
                self._borders(codes[:, j], slot, out[r0:r1], rect)
            if label is not None:
                self._label(batch, j, out[r0:r1], rect)
            last = batch.last_rows[j]
            if self.plan.episode_mode and last >= 0:
                self.held[slot] = dimmed(out[r0 + last, y : y + th, x : x + tw], lay.dim)

    def _label(self, batch, j: int, block: np.ndarray, rect: tuple) -> None:
        label, corner = self.plan.label, self.layout.label_position
        env = self.plan.global_id(batch.envs[j])  # users see global ids; reads take indices
        per_env = {"env": env}
        if self.plan.label_score:
            per_env["score"] = self.plan.score_of(batch.envs[j])
        if self.static_label:
            sprite = self.labels.get(_format_label(label, per_env))
            stamp(block, sprite, *label_origin(rect, sprite.shape, corner), rect)
            return
        n = batch.rows[1] - batch.rows[0]
        cols = {name: _as_list(v[:, j]) for name, v in batch.scalars.items()}
        cols.update({name: _as_list(v) for name, v in batch.frame_values.items()})
        cols["frame"] = batch.store_frames.tolist()
        fields = label.fields
        texts = []
        for i in range(n):
            values = dict(per_env)
            for f in fields:
                if f not in per_env:
                    values[f] = cols[f][i]
            texts.append(_format_label(label, values))
        for a, b, text in _runs(texts):
            sprite = self.labels.get(text)
            stamp(block[a:b], sprite, *label_origin(rect, sprite.shape, corner), rect)

    def _border_codes(self, batch) -> np.ndarray:
        """(rows, envs) border code of each tile: 1 terminated, 2 truncated, 3 stale, 0 none
        (terminated wins over truncated over stale), for the whole batch at once."""
        code = np.zeros((batch.rows[1] - batch.rows[0], len(batch.envs)), np.int8)
        for c, name in ((3, "stale"), (2, "truncated"), (1, "terminated")):
            v = batch.scalars.get(name)
            if v is not None and self.border_colors[c] is not None:
                code[v > 0.5] = c  # NaN (unreadable) compares False: no border
        return code

    def _borders(self, code: np.ndarray, slot: int, block: np.ndarray, rect: tuple) -> None:
        n = len(code)
        rem, cur = self.carry.get(slot, (0, 0))
        if rem == 0 and not code.any():
            return
        hold = self.layout.border_hold
        per_row = []
        for i in range(n):
            if code[i]:
                rem, cur = hold + 1, int(code[i])
            per_row.append(cur if rem > 0 else 0)
            rem = max(0, rem - 1)
        self.carry[slot] = (rem, cur)
        for a, b, c in _runs(per_row):
            if c:
                draw_border(block[a:b], rect, self.layout.border, self.border_colors[c])

    # ---- global view ----------------------------------------------------------------------------
    def _global(self, job, out: np.ndarray) -> None:
        gy, gx, gh, gw = self.g.global_rect
        frames, fa, fb = self.reader.global_frames(job)
        dst = out[:, gy : gy + gh, gx : gx + gw]
        if frames is None:
            dst[...] = placeholder_tile((gh, gw))
        else:
            dst[...] = self.resize_global(frames)
        if self.markers is not None:
            self.markers.draw(job, out, fa, fb)


def _format_label(label, values: dict) -> str:
    try:
        return label.format(values)
    except (ValueError, TypeError):  # a NaN from an unreadable chunk under an int format
        return label.format({k: (v if v == v else 0) for k, v in values.items()}) + "?"


class _Markers:
    """Markers and global env ids at env origins projected into the global view."""

    def __init__(self, run, plan, layout: Layout, geometry: Geometry, labels: LabelCache):
        from envreel.schemas.geometry import project_points

        self.project = project_points
        self.run, self.plan, self.labels = run, plan, labels
        cams = run.cameras
        self.origins = run.env_origins + np.array([0.0, 0.0, layout.marker_height])
        self.K = cams.global_intrinsics
        self.static_pose = cams.global_pose
        self.rect = geometry.global_rect
        gh0, gw0 = run.global_frame_shape
        self.sy, self.sx = self.rect[2] / gh0, self.rect[3] / gw0
        self.size = (gh0, gw0)
        r = max(2, layout.font_size // 3)
        self.radius = r
        self.sprite = marker_sprite(r, parse_color(layout.marker_color))
        # rank stores read as one: only the global view's rank's envs are in its simulation
        self.shown = run.global_view_envs
        self._static: dict[int, list] = {}

    def _positions(self, envs: tuple[int, ...], pose: np.ndarray) -> list[tuple[int, int, int]]:
        envs = tuple(e for e in envs if e in self.shown)
        pts = self.origins[list(envs)]
        pix, front = self.project(pts, pose, self.K)
        gh0, gw0 = self.size
        gy, gx = self.rect[:2]
        out = []
        for env, (u, v), ok in zip(envs, pix, front, strict=True):
            if ok and 0 <= u <= gw0 and 0 <= v <= gh0:
                out.append((env, int(gy + v * self.sy), int(gx + u * self.sx)))
        return out

    def _draw(self, block: np.ndarray, positions) -> None:
        r = self.radius
        for env, y, x in positions:
            stamp(block, self.sprite, y - r, x - r, self.rect)
            text = self.labels.get(str(self.plan.global_id(env)))
            stamp(block, text, y - text.shape[0] // 2, x + r + 2, self.rect)

    def draw(self, job, out: np.ndarray, fa: int, fb: int) -> None:
        envs = self.plan.pages[job.page]
        if self.static_pose is not None:
            if job.page not in self._static:
                self._static[job.page] = self._positions(envs, self.static_pose)
            self._draw(out, self._static[job.page])
            return
        poses = self.run.global_camera_poses(fa, fb)[:: self.plan.stride]
        for i in range(len(out)):
            self._draw(out[i : i + 1], self._positions(envs, poses[i]))
