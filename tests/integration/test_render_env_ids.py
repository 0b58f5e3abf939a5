"""Rendering a store of a subset of a sim's envs: users see and give global env ids.

The subset store holds sim envs 0, 256, 512, 768 as stored envs 0..3; its frames, episodes and
rewards are those of the stored index (``render_fixtures.make_store``), so stored env 1 is the
one users call 256.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from render_fixtures import (
    corrupt_chunk,
    decode_video,
    env_frame,
    global_frame,
    make_store,
    psnr,
    read_pngs,
    tile,
)

from envreel.render import FrameSource, Layout, contact_sheet, render, render_envs
from envreel.render._compose import (
    LabelCache,
    colors,
    compute_geometry,
    marker_sprite,
    placeholder_tile,
    stamp,
)
from envreel.schemas import CorruptChunkError, open_run
from envreel.schemas.geometry import project_points
from envreel.tools.cli import main

H, W, T, B = 32, 48, 24, 8
SUBSET = (0, 256, 512, 768)
PLAIN = dict(label=None, border=0)


def _store(path, **kw):
    return make_store(
        path,
        num_envs=4,
        frames=T,
        shape=(H, W),
        block_frames=B,
        global_shape=(60, 80),
        cameras=True,
        **kw,
    )


@pytest.fixture(scope="module")
def substore(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("ids") / "sub.zarr", env_ids=SUBSET)


@pytest.fixture(scope="module")
def plainstore(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("ids") / "plain.zarr")


def _geometry(layout, num_tiles, global_shape=None):
    return compute_geometry(
        layout, num_tiles=num_tiles, env_shape=(H, W), global_shape=global_shape
    )


def test_cli_envs_select_by_global_id(substore, tmp_path):
    out = tmp_path / "two.mp4"
    res = CliRunner().invoke(
        main,
        [
            "render",
            substore,
            str(out),
            "--envs",
            "256,768",
            "--columns",
            "2",
            "--label",
            "none",
            "--border",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    frames, _ = decode_video(out)
    assert len(frames) == T
    g = _geometry(Layout(envs="256,768", columns=2, **PLAIN), 2)
    for t in (0, 9, T - 1):
        for slot, stored in enumerate((1, 3)):  # global ids 256 and 768
            got = tile(frames[t], g, slot)
            assert psnr(got, env_frame(stored, t, H, W)) >= 30, (t, slot)
            for other in {0, 1, 2, 3} - {stored}:
                assert psnr(got, env_frame(other, t, H, W)) < 30, (t, slot, other)


def test_render_result_and_exact_tiles_by_global_id(substore, tmp_path):
    lay = Layout(envs="768,0,512", columns=3, **PLAIN)
    res = render(substore, lay, tmp_path / "png")
    assert res.envs == (768, 0, 512)
    frames = read_pngs(tmp_path / "png")
    g = _geometry(lay, 3)
    for t in (0, 13):
        for slot, stored in enumerate((3, 0, 2)):
            assert np.array_equal(tile(frames[t], g, slot), env_frame(stored, t, H, W))


def test_label_env_field_is_the_global_id(substore, tmp_path):
    def first_tile(label, name):
        lay = Layout(envs="256", label=label, border=0)
        render(substore, lay, tmp_path / name)
        return tile(read_pngs(tmp_path / name)[0], _geometry(lay, 1), 0)

    shown = first_tile("{env}", "env")
    assert not np.array_equal(shown, env_frame(1, 0, H, W))  # a label is drawn
    assert np.array_equal(shown, first_tile("256", "literal"))
    assert not np.array_equal(shown, first_tile("1", "local"))  # not the stored index


def test_markers_name_global_ids(substore, plainstore, tmp_path):
    lay = Layout(global_view="only", markers=True, label=None)

    def expected(store):
        run = open_run(store)
        g = _geometry(lay, 4, run.global_frame_shape)
        rect = g.global_rect
        assert rect[2:] == run.global_frame_shape  # drawn at the recorded size
        want = global_frame(0, *run.global_frame_shape)
        c = colors(lay)
        labels = LabelCache(lay.font_size, c["label"], c["label_background"])
        r = max(2, lay.font_size // 3)
        pix, front = project_points(
            run.env_origins, run.cameras.global_pose, run.cameras.global_intrinsics
        )
        assert front.all()
        for gid, (u, v) in zip(run.env_ids, pix, strict=True):
            y, x = int(v), int(u)
            stamp(want, marker_sprite(r, c["marker"]), y - r, x - r, rect)
            text = labels.get(str(gid))
            stamp(want, text, y - text.shape[0] // 2, x + r + 2, rect)
        return want

    render(plainstore, lay, tmp_path / "plain")
    render(substore, lay, tmp_path / "sub")
    plain, sub = read_pngs(tmp_path / "plain")[0], read_pngs(tmp_path / "sub")[0]
    assert np.array_equal(plain, expected(plainstore))  # the reconstruction is faithful
    assert np.array_equal(sub, expected(substore))  # and the subset shows 256, 512, 768
    assert not np.array_equal(sub, plain)


def test_rank_stores_mark_only_the_envs_of_the_global_views_rank(plainstore, tmp_path):
    # rank 1 has the same origin grid in its own simulation, as under Isaac Lab multi-GPU: its
    # envs 4-7 are not in rank 0's global view, and their labels were drawn over envs 0-3
    rank1 = _store(tmp_path / "rank1.zarr", env_id_offset=4)
    lay = Layout(global_view="only", markers=True, label=None)
    alone = FrameSource(plainstore, lay).frame(0)
    with pytest.warns(UserWarning, match=r"markers: envs 4-7 get none; .* envs 0-3 only"):
        both = FrameSource([plainstore, rank1], lay)
    assert np.array_equal(both.frame(0), alone)
    with pytest.warns(UserWarning, match="markers: envs 5 get none"):
        other = FrameSource([plainstore, rank1], lay.replace(envs="5"))
    unmarked = FrameSource(plainstore, lay.replace(markers=False)).frame(0)
    assert np.array_equal(other.frame(0), unmarked)


def test_render_envs_names_files_by_global_id(substore, tmp_path):
    paths = render_envs(substore, tmp_path / "per", Layout(envs="768,256", **PLAIN), workers=1)
    assert [p.name for p in paths] == ["env_0768.mp4", "env_0256.mp4"]
    for p, stored in zip(paths, (3, 1), strict=True):
        frames, _ = decode_video(p)
        assert len(frames) == T and psnr(frames[5], env_frame(stored, 5, H, W)) >= 30
    paths = render_envs(substore, tmp_path / "all", Layout(**PLAIN), workers=1)
    assert [p.name for p in paths] == [f"env_{e:04d}.mp4" for e in SUBSET]


def test_unknown_env_id_is_named_and_nothing_is_written(substore, tmp_path):
    msg = r"env ids \[1, 300\] are not in this run; its 4 envs have ids 0,256,512,768"
    with pytest.raises(ValueError, match=msg):
        render(substore, Layout(envs="256,1,300"), tmp_path / "x.mp4")
    with pytest.raises(ValueError, match=msg):
        render_envs(substore, tmp_path / "per", Layout(envs="1,300"))
    with pytest.raises(ValueError, match=msg):
        contact_sheet(substore, tmp_path / "s.png", Layout(envs="1,300"))
    res = CliRunner().invoke(main, ["render", substore, str(tmp_path / "c.mp4"), "--envs", "3"])
    assert res.exit_code == 1
    assert "env ids [3] are not in this run; its 4 envs have ids 0,256,512,768" in res.output
    assert list(tmp_path.iterdir()) == []


def test_long_id_lists_are_summarised_in_errors(tmp_path):
    ids = tuple(range(0, 40 * 16, 16))
    p = make_store(tmp_path / "many.zarr", num_envs=40, frames=8, shape=(8, 8), env_ids=ids)
    with pytest.raises(ValueError, match=r"its 40 envs have ids 0,16,32,48,64,80,96,\.\.\.,624$"):
        render(p, Layout(envs="5"), tmp_path / "x.mp4")


def test_top_k_order_and_episode_warnings_name_global_ids(substore, tmp_path):
    # reward = stored index × 0.1 + frame × 0.01: stored 3 and 2 are best
    res = render(substore, Layout(top_k=2, order="descending", **PLAIN), tmp_path / "top")
    assert res.envs == (768, 512)
    # episodes last 7 + stored index frames: only stored env 0 starts a 4th in 24 frames
    with pytest.warns(UserWarning, match=r"envs \[256, 512, 768\] have no episode 3"):
        res = render(substore, Layout(episode=3, **PLAIN), tmp_path / "ep")
    assert res.envs == (0,)


def test_skip_bad_warning_names_the_global_id(substore, tmp_path):
    store = tmp_path / "copy.zarr"
    shutil.copytree(substore, store)
    corrupt_chunk(store, "env/frames", (1, 0, 0, 0, 0))
    with pytest.raises(CorruptChunkError) as info:
        render(store, Layout(**PLAIN), tmp_path / "probe.mp4")
    bad = info.value.chunk[1]  # the stored index of the damaged env
    lay = Layout(columns=4, **PLAIN)
    with pytest.warns(UserWarning) as rec:
        render(store, lay, tmp_path / "frames", skip_bad=True)
    assert any(f"env {SUBSET[bad]}, frames 8..15" in str(w.message) for w in rec), [
        str(w.message) for w in rec
    ]
    frames = read_pngs(tmp_path / "frames")
    assert np.array_equal(tile(frames[B], _geometry(lay, 4), bad), placeholder_tile((H, W)))


def test_offset_store_selects_and_labels_by_global_id(tmp_path):
    p = make_store(tmp_path / "rank3.zarr", num_envs=4, frames=8, shape=(H, W), env_id_offset=12)
    res = render(p, Layout(envs="13,15", **PLAIN), tmp_path / "png")
    assert res.envs == (13, 15)
    frames = read_pngs(tmp_path / "png")
    g = _geometry(Layout(envs="13,15", **PLAIN), 2)
    assert np.array_equal(tile(frames[2], g, 0), env_frame(1, 2, H, W))
    assert np.array_equal(tile(frames[2], g, 1), env_frame(3, 2, H, W))
    with pytest.raises(ValueError, match=r"env ids \[1\] are not in this run; .* ids 12-15"):
        render(p, Layout(envs="1"), tmp_path / "x.mp4")


def test_contact_sheet_rows_by_global_id(substore, tmp_path):
    lay = Layout(envs="512,0", **PLAIN)
    p = contact_sheet(substore, tmp_path / "sheet.png", lay, num_times=2)
    from PIL import Image

    sheet = np.asarray(Image.open(p).convert("RGB"))
    g = _geometry(lay.replace(columns=2, rows=2), 4)
    assert np.array_equal(tile(sheet, g, 0), env_frame(2, 0, H, W))  # row 0: 512, first frame
    assert np.array_equal(tile(sheet, g, 3), env_frame(0, T - 1, H, W))  # row 1: 0, last
