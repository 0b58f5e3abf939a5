"""Layout maths under property-based tests: pages, grid geometry, size limits, resizing."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from envreel.render import Layout
from envreel.render._compose import Resizer, compute_geometry, grid_shape

VIEWS = ("none", "left", "right", "top", "bottom", "inset", "only")


def _rects_overlap(a, b) -> bool:
    ay, ax, ah, aw = a
    by, bx, bh, bw = b
    return ay < by + bh and by < ay + ah and ax < bx + bw and bx < ax + aw


@st.composite
def layouts(draw):
    n = draw(st.integers(1, 300))
    view = draw(st.sampled_from(VIEWS))
    columns = draw(st.one_of(st.none(), st.integers(1, 40)))
    rows = draw(st.one_of(st.none(), st.integers(1, 40)))
    if columns and rows:
        n = min(n, columns * rows)
    lay = Layout(
        columns=columns,
        rows=rows,
        aspect=draw(st.floats(0.2, 5.0)),
        gap=draw(st.integers(0, 12)),
        scale=draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])),
        tile_size=draw(st.one_of(st.none(), st.tuples(st.integers(1, 300), st.integers(1, 300)))),
        global_view=view,
        global_size=draw(st.one_of(st.none(), st.tuples(st.integers(8, 900), st.integers(8, 900)))),
        inset_fraction=draw(st.floats(0.05, 1.0)),
        inset_corner=draw(
            st.sampled_from(["top-left", "top-right", "bottom-left", "bottom-right"])
        ),
        max_width=draw(st.integers(64, 4096)),
        max_height=draw(st.integers(64, 4096)),
    )
    env_shape = (draw(st.integers(8, 256)), draw(st.integers(8, 256)))
    global_shape = (draw(st.integers(16, 1080)), draw(st.integers(16, 1920)))
    return lay, n, env_shape, global_shape


@settings(max_examples=400, deadline=None)
@given(layouts())
def test_geometry_properties(case):
    lay, n, env_shape, global_shape = case
    try:
        g = compute_geometry(lay, num_tiles=n, env_shape=env_shape, global_shape=global_shape)
    except ValueError as exc:
        assert "cannot fit" in str(exc)
        return
    # output dimensions even and within the limit
    assert g.width % 2 == 0 and g.height % 2 == 0
    assert 2 <= g.width <= lay.max_width and 2 <= g.height <= lay.max_height
    canvas = (0, 0, g.height, g.width)
    if lay.global_view != "only":
        assert g.slots >= n and len(g.tiles) == g.slots
        if lay.columns:
            assert g.columns == lay.columns
        if lay.rows:
            assert g.rows == lay.rows
        rects = [g.tile_rect(i) for i in range(g.slots)]
        for r in rects:  # inside the canvas
            y, x, h, w = r
            assert y >= 0 and x >= 0 and y + h <= g.height and x + w <= g.width
        # tiles never overlap: a grid with distinct top-left corners at >= tile pitch
        ys = sorted({y for y, _ in g.tiles})
        xs = sorted({x for _, x in g.tiles})
        assert len(ys) == g.rows and len(xs) == g.columns
        assert all(b - a >= g.tile_height for a, b in zip(ys, ys[1:], strict=False))
        assert all(b - a >= g.tile_width for a, b in zip(xs, xs[1:], strict=False))
    if lay.global_view == "none":
        assert g.global_rect is None
    else:
        gr = g.global_rect
        assert gr is not None and gr[2] >= 1 and gr[3] >= 1
        assert gr[0] >= 0 and gr[1] >= 0 and gr[0] + gr[2] <= g.height
        assert gr[1] + gr[3] <= g.width
        if lay.global_view not in ("inset", "only"):
            # beside the grid: no tile under the global view
            assert not any(_rects_overlap(gr, g.tile_rect(i)) for i in range(g.slots))
        if lay.global_view == "inset":  # inside the grid's area
            grid_h = max(y for y, _ in g.tiles) + g.tile_height
            grid_w = max(x for _, x in g.tiles) + g.tile_width
            gy, gx, gh, gw = gr
            assert gy + gh <= grid_h and gx + gw <= grid_w
    assert _rects_overlap(canvas, canvas)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 500),
    aspect=st.floats(0.1, 10.0),
    th=st.integers(1, 200),
    tw=st.integers(1, 200),
    gap=st.integers(0, 10),
)
def test_auto_grid_holds_every_tile_without_an_empty_row(n, aspect, th, tw, gap):
    c, r = grid_shape(n, aspect=aspect, tile_shape=(th, tw), gap=gap)
    assert c * r >= n
    assert c * (r - 1) < n  # the last row is not empty
    assert 1 <= c <= n


def test_auto_grid_examples():
    assert grid_shape(64, aspect=1.0, tile_shape=(128, 128)) == (8, 8)
    assert grid_shape(16, aspect=1.0, tile_shape=(128, 128)) == (4, 4)
    # an exact grid near the aspect beats one with empty slots (16 envs: 4×4, not 6×3)
    assert grid_shape(16, aspect=16 / 9, tile_shape=(128, 128)) == (4, 4)
    assert grid_shape(12, aspect=16 / 9, tile_shape=(128, 128)) == (4, 3)
    assert grid_shape(64, aspect=16 / 9, tile_shape=(128, 128)) == (8, 8)
    assert grid_shape(7, aspect=16 / 9, tile_shape=(128, 128)) == (4, 2)  # prime: 7×1 is too wide
    assert grid_shape(1) == (1, 1)
    assert grid_shape(10, columns=3) == (3, 4)
    assert grid_shape(10, rows=3) == (4, 3)
    with pytest.raises(ValueError, match="holds 4 tiles, not 5"):
        grid_shape(5, columns=2, rows=2)


def test_geometry_exact_grid():
    g = compute_geometry(Layout(columns=8, gap=0), num_tiles=64, env_shape=(128, 128))
    assert (g.width, g.height, g.tile_width, g.factor) == (1024, 1024, 128, 1.0)
    g = compute_geometry(Layout(columns=3, gap=2), num_tiles=6, env_shape=(32, 48))
    assert (g.height, g.width) == (66, 148)
    assert g.tiles[:4] == ((0, 0), (0, 50), (0, 100), (34, 0))


def test_geometry_limit_scales_down_and_keeps_even():
    g = compute_geometry(
        Layout(columns=32, gap=1, max_width=1001, max_height=1001),
        num_tiles=1024,
        env_shape=(128, 128),
    )
    assert g.width <= 1000 and g.height <= 1000 and g.width % 2 == 0 and g.factor < 1
    assert g.tile_width == g.tile_height < 128


def test_automatic_grid_that_does_not_fit_takes_one_that_does_at_full_tile_size():
    # 4,096 tiles of 32²: the exact 64×64 grid is 2,174 px high at gap 2, over 2,160; 86×48
    # fits 3840×2160 at 32 px, where 64×64 was shrunk to 31 px tiles (and every tile resized)
    g = compute_geometry(Layout(), num_tiles=4096, env_shape=(32, 32))
    assert (g.columns, g.rows, g.tile_height, g.tile_width, g.factor) == (86, 48, 32, 32, 1.0)
    assert (g.width, g.height) == (2922, 1630) and len(g.tiles) == 86 * 48
    assert g.tiles[86] == (34, 0) and g.tiles[-1] == (47 * 34, 85 * 34)
    # small: 16 tiles of 10² under 80×30: 6×3 (nearest 16:9 of those that fit), not 4×4 at 7 px
    g = compute_geometry(
        Layout(gap=0, max_width=80, max_height=30), num_tiles=16, env_shape=(10, 10)
    )
    assert (g.columns, g.rows, g.tile_height, g.width, g.height) == (6, 3, 10, 60, 30)
    # given columns are kept (and shrunk); where no grid fits, the automatic one shrinks as before
    g = compute_geometry(Layout(columns=64), num_tiles=4096, env_shape=(32, 32))
    assert (g.columns, g.rows, g.tile_height) == (64, 64, 31)
    g = compute_geometry(
        Layout(global_view="right"), num_tiles=4096, env_shape=(32, 32), global_shape=(1080, 1920)
    )
    assert (g.columns, g.rows, g.tile_height, g.width, g.height) == (64, 64, 20, 3732, 1344)


def test_geometry_global_views():
    lay = Layout(columns=4, gap=2, global_view="left")
    g = compute_geometry(lay, num_tiles=16, env_shape=(64, 64), global_shape=(100, 200))
    assert g.global_rect == (0, 0, 262, 524)
    assert g.tiles[0] == (0, 526)
    g = compute_geometry(
        lay.replace(global_view="top"), num_tiles=16, env_shape=(64, 64), global_shape=(100, 200)
    )
    assert g.global_rect == (0, 0, 131, 262) and g.tiles[0] == (133, 0)
    g = compute_geometry(
        lay.replace(global_view="only"), num_tiles=16, env_shape=(64, 64), global_shape=(100, 200)
    )
    assert (g.height, g.width, g.slots) == (100, 200, 0)
    with pytest.raises(ValueError, match="needs a run with a global camera"):
        compute_geometry(lay, num_tiles=4, env_shape=(8, 8))


def test_geometry_that_cannot_fit_says_so_at_once():
    # 200 scale factors are tried: by size alone, not by placing 32,768 tiles each time (1.7 s)
    t = time.perf_counter()
    with pytest.raises(ValueError, match="32768 tiles of 32×32.*cannot fit 3840×2160"):
        compute_geometry(Layout(columns=8, rows=4096), num_tiles=8 * 4096, env_shape=(32, 32))
    assert time.perf_counter() - t < 0.5


def test_geometry_cannot_fit():
    with pytest.raises(ValueError, match="cannot fit"):
        compute_geometry(
            Layout(columns=100, gap=0, max_width=64, max_height=64),
            num_tiles=10000,
            env_shape=(8, 8),
        )


# ---- pages -------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(st.integers(0, 999), unique=True, min_size=1, max_size=200),
    page=st.one_of(st.none(), st.integers(1, 64)),
)
def test_every_env_appears_exactly_once_across_pages(ids, page):
    from envreel.render._select import _pages

    pages = _pages(tuple(ids), page)
    flat = [e for p in pages for e in p]
    assert flat == ids
    size = page or len(ids)
    assert all(1 <= len(p) <= size for p in pages)
    assert all(len(p) == size for p in pages[:-1])
    for p in pages:  # once per page
        assert len(set(p)) == len(p)
    assert len(pages) == math.ceil(len(ids) / size)


# ---- resizing ----------------------------------------------------------------------------------
def test_resizer_modes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 3, 8, 12, 3), dtype=np.uint8)
    same = Resizer((8, 12), (8, 12))
    assert same(img) is img
    up = Resizer((8, 12), (16, 24))
    assert up.mode == "repeat"
    out = up(img)
    assert out.shape == (2, 3, 16, 24, 3)
    assert np.array_equal(out[:, :, ::2, ::2], img)
    flat = np.full((1, 8, 12, 3), 77, np.uint8)
    for dst in ((5, 7), (13, 30), (4, 6)):
        r = Resizer((8, 12), dst)
        assert r.mode == "filter"
        assert np.all(r(flat) == 77)  # weights sum to one: flat stays flat
        assert r(img).shape == (2, 3, *dst, 3)


@given(src=st.integers(1, 64), dst=st.integers(1, 64), value=st.integers(0, 255))
def test_resizer_filter_preserves_constant_images(src, dst, value):
    assume(src != dst)
    r = Resizer((src, src + 1), (dst, dst + 2))
    out = r(np.full((1, src, src + 1, 3), value, np.uint8))
    assert np.all(out == value)


def _pillow_each(images: np.ndarray, dst: tuple[int, int]) -> np.ndarray:
    """The reference: one Pillow ``BILINEAR`` resize per image, as the Resizer once did."""
    from PIL import Image

    dh, dw = dst
    flat = images.reshape(-1, *images.shape[-3:])
    out = [np.asarray(Image.fromarray(i).resize((dw, dh), Image.Resampling.BILINEAR)) for i in flat]
    return np.stack(out).reshape(*images.shape[:-3], dh, dw, 3)


RESIZES = [
    ((32, 32), (20, 20)),  # 4,096 envs beside a global view
    ((32, 32), (21, 19)),
    ((7, 13), (5, 4)),  # odd sizes, both shrink
    ((13, 7), (2, 6)),  # the height shrinks far more than the width: Pillow 13 goes height first
    ((31, 8), (2, 9)),  # height shrinks, width grows: height first
    ((9, 17), (20, 5)),  # height grows, width shrinks
    ((8, 12), (13, 30)),  # non-integer enlarge
    ((5, 5), (12, 7)),
    ((20, 5), (1, 1)),  # one output pixel
    ((1, 1), (3, 2)),
    ((3, 64), (3, 20)),  # width alone
    ((64, 3), (21, 3)),  # height alone
]


@pytest.mark.parametrize("n", [1, 2, 7, 40])
@pytest.mark.parametrize(("src", "dst"), RESIZES)
def test_resizer_filter_equals_pillow_per_image(src, dst, n):
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, *src, 3), dtype=np.uint8)
    r = Resizer(src, dst)
    r.group = 3  # several groups, the last one short
    assert r.mode == "filter"
    assert np.array_equal(r(images), _pillow_each(images, dst))
    assert r.pass_order() in (("w", "h"), ("h", "w"))  # grouped, not one call per image
    lead = rng.integers(0, 256, (2, n, *src, 3), dtype=np.uint8)  # (rows, envs, H, W, 3)
    assert np.array_equal(Resizer(src, dst)(lead), _pillow_each(lead, dst))


@settings(max_examples=60, deadline=None)
@given(
    src=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    dst=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    n=st.integers(1, 6),
    group=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_resizer_filter_equals_pillow_per_image_any_size(src, dst, n, group, seed):
    r = Resizer(src, dst)
    assume(r.mode == "filter")
    r.group = group
    images = np.random.default_rng(seed).integers(0, 256, (n, *src, 3), dtype=np.uint8)
    assert np.array_equal(r(images), _pillow_each(images, dst))


def test_resizer_shrinks_many_tiles_in_a_few_pillow_calls(monkeypatch):
    from PIL import Image

    calls = []
    resize = Image.Image.resize
    monkeypatch.setattr(
        Image.Image, "resize", lambda im, *a, **k: calls.append(1) or resize(im, *a, **k)
    )
    tiles = np.random.default_rng(0).integers(0, 256, (2, 4096, 32, 32, 3), dtype=np.uint8)
    r = Resizer((32, 32), (20, 20))
    out = r(tiles)
    first = len(calls)
    calls.clear()
    assert np.array_equal(r(tiles), out)
    assert len(calls) == 26  # 2 per group of 682 tiles (2 MiB); was 8,192: one per tile
    assert r.group == (2 << 20) // (32 * 32 * 3) == 682
    # the first call also found the pass order: 6 images one by one, then each order at most
    assert 26 < first <= 26 + 6 + 2 * 2
    assert np.array_equal(out[1, 4095], _pillow_each(tiles[1, 4095], (20, 20)))
