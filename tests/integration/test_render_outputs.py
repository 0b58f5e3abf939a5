"""render() end to end: decode every output and check what each tile shows."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image
from render_fixtures import (
    decode_video,
    env_frame,
    episode_length,
    global_frame,
    make_store,
    psnr,
    read_pngs,
    tile,
)

from envreel.render import Layout, RenderResult, contact_sheet, render, render_envs
from envreel.render._compose import compute_geometry
from envreel.schemas import open_run

H, W = 64, 96
N, T = 6, 40


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(
        tmp_path_factory.mktemp("render") / "run.zarr",
        num_envs=N,
        frames=T,
        shape=(H, W),
        block_frames=8,
        fps=20.0,
    )


@pytest.fixture(scope="module")
def gstore(tmp_path_factory):
    return make_store(
        tmp_path_factory.mktemp("render") / "glob.zarr",
        num_envs=4,
        frames=24,
        shape=(H, W),
        block_frames=8,
        global_shape=(60, 80),
        cameras=True,
        scalar_names=("success", "score"),
        clips=[(0, 10), (3, 14)],
    )


PLAIN = dict(label=None, border=0)


def geometry(store_path, layout, num_tiles):
    run = open_run(store_path)
    return compute_geometry(
        layout,
        num_tiles=num_tiles,
        env_shape=run.env_frame_shape,
        global_shape=run.global_frame_shape,
    )


# ---- formats -----------------------------------------------------------------------------------
def test_mp4_frames_size_fps_and_tiles(store, tmp_path):
    lay = Layout(columns=3, **PLAIN)
    res = render(store, lay, tmp_path / "out.mp4")
    assert isinstance(res, RenderResult) and res.paths == (tmp_path / "out.mp4",)
    frames, rate = decode_video(res.path)
    assert frames.shape == (T, res.height, res.width, 3)
    assert (res.width, res.height, res.fps, res.frames) == (292, 130, 20.0, (T,))
    assert rate == pytest.approx(20.0)
    g = geometry(store, lay, N)
    for t in (0, 1, 17, T - 1):
        for slot, env in enumerate(range(N)):
            got = tile(frames[t], g, slot)
            assert psnr(got, env_frame(env, t, H, W)) >= 30, (t, env)
    # and not some other frame or env: the match is specific
    assert psnr(tile(frames[5], g, 0), env_frame(0, 9, H, W)) < 30
    assert not list(tmp_path.glob(".*partial*"))


def test_png_folder_is_exact(store, tmp_path):
    lay = Layout(envs="5,0-2", columns=2, gap=3, background="#102030", **PLAIN)
    res = render(store, lay, tmp_path / "frames")
    frames = read_pngs(tmp_path / "frames")
    assert frames.shape == (T, res.height, res.width, 3)
    g = geometry(store, lay, 4)
    for t in range(0, T, 7):
        for slot, env in enumerate((5, 0, 1, 2)):
            assert np.array_equal(tile(frames[t], g, slot), env_frame(env, t, H, W))
    assert np.all(frames[0][:, W : W + 3] == (0x10, 0x20, 0x30))  # the gap is background


def test_gif_is_close_with_fps_and_frame_count(store, tmp_path):
    lay = Layout(columns=3, **PLAIN)
    res = render(store, lay, tmp_path / "out.gif")
    im = Image.open(res.path)
    assert im.n_frames == T and im.size == (res.width, res.height)
    durations = []
    g = geometry(store, lay, N)
    for t in range(T):
        im.seek(t)
        durations.append(im.info["duration"])
        if t % 9 == 0:
            frame = np.asarray(im.convert("RGB"))
            for slot in range(N):
                got, want = tile(frame, g, slot), env_frame(slot, t, H, W)
                # 256 colours (fast octree, no dithering) for six hues: close, not exact
                assert np.abs(got.astype(int) - want).mean() <= 10 and psnr(got, want) >= 25
                other = env_frame((slot + 1) % N, t, H, W)
                assert psnr(got, other) < psnr(got, want) - 5
    assert sum(durations) == pytest.approx(T / 20 * 1000, abs=10)  # 50 ms per frame
    frames, rate = decode_video(res.path)  # PyAV reads it too
    assert len(frames) == T


def test_gif_fps_and_size_caps_warn(store, tmp_path):
    lay = Layout(columns=3, fps=120, scale=2.0, **PLAIN)
    with pytest.warns(UserWarning) as rec:
        res = render(store, lay, tmp_path / "fast.gif", gif_max_side=100)
    msgs = " ".join(str(w.message) for w in rec)
    assert "above the 50 fps" in msgs and "GIF downsized" in msgs
    assert res.fps == pytest.approx(40.0) and res.frames == (T // 3 + 1,)
    assert max(res.width, res.height) <= 100 and res.width % 2 == 0
    assert len(res.warnings) == 2


def test_scale_and_tile_size(store, tmp_path):
    lay = Layout(envs="1", scale=2.0, **PLAIN)
    render(store, lay, tmp_path / "big")
    frames = read_pngs(tmp_path / "big")
    assert frames.shape[1:3] == (2 * H, 2 * W)
    assert np.array_equal(frames[3][::2, ::2], env_frame(1, 3, H, W))
    res = render(store, Layout(envs="1", tile_size=(20, 30), **PLAIN), tmp_path / "small")
    assert (res.height, res.width) == (20, 30)


def test_output_size_limit_downscales_keeping_even(store, tmp_path):
    lay = Layout(columns=3, max_width=101, max_height=1000, **PLAIN)
    with pytest.warns(UserWarning, match="tiles shown at 32×21 instead of 96×64"):
        res = render(store, lay, tmp_path / "lim.mp4")
    assert res.width <= 100 and res.width % 2 == 0 and res.height % 2 == 0
    frames, _ = decode_video(res.path)
    assert frames.shape[1:3] == (res.height, res.width)


# ---- global view and markers -------------------------------------------------------------------
@pytest.mark.parametrize("view", ["left", "right", "top", "bottom", "inset", "only"])
def test_global_view_placement(gstore, tmp_path, view):
    lay = Layout(columns=2, global_view=view, global_size=(60, 80), **PLAIN)
    res = render(gstore, lay, tmp_path / f"g_{view}")
    frames = read_pngs(tmp_path / f"g_{view}")
    g = geometry(gstore, lay, 4)
    gy, gx, gh, gw = g.global_rect
    assert (gh, gw) == (60, 80)
    for t in (0, 11):
        assert np.array_equal(frames[t][gy : gy + gh, gx : gx + gw], global_frame(t, 60, 80))
        if view not in ("inset", "only"):
            for slot in range(4):
                assert np.array_equal(tile(frames[t], g, slot), env_frame(slot, t, H, W))
    assert res.frames == (24,)


def test_markers_at_projected_origins(gstore, tmp_path):
    from envreel.schemas.geometry import project_points

    lay = Layout(global_view="only", markers=True, marker_color="#ff00ff", label=None)
    render(gstore, lay, tmp_path / "m")
    frame = read_pngs(tmp_path / "m")[0]
    run = open_run(gstore)
    pix, front = project_points(
        run.env_origins, run.cameras.global_pose, run.cameras.global_intrinsics
    )
    assert front.all()
    for u, v in pix:
        y, x = int(v), int(u)
        assert tuple(frame[y, x]) == (255, 0, 255), (u, v)
    assert np.count_nonzero(np.all(frame == (255, 0, 255), axis=-1)) >= 4


def test_markers_at_a_height_above_the_origins(gstore, tmp_path):
    """``marker_height`` lifts every marker to where the envs' content is (Cartpole's rail is
    2 m above its origin); the world's up is +z."""
    from envreel.schemas.geometry import project_points

    run = open_run(gstore)
    cams = run.cameras
    height = 0.6 * float(cams.global_pose[2, 3])  # most of the way up to the camera
    lay = Layout(global_view="only", markers=True, marker_color="#ff00ff", label=None)
    render(gstore, lay.replace(marker_height=height), tmp_path / "up")
    frame = read_pngs(tmp_path / "up")[0]
    lifted, front = project_points(
        run.env_origins + [0.0, 0.0, height], cams.global_pose, cams.global_intrinsics
    )
    ground, _ = project_points(run.env_origins, cams.global_pose, cams.global_intrinsics)
    assert front.all() and np.abs(lifted - ground).max() > 3  # the two places differ
    magenta = np.all(frame == (255, 0, 255), axis=-1)
    for (u, v), (u0, v0) in zip(lifted, ground, strict=True):
        assert magenta[int(v), int(u)], (u, v)
        if np.hypot(u - u0, v - v0) > 6:  # the origin itself is not marked
            assert not magenta[int(v0), int(u0)], (u0, v0)
    with pytest.raises(ValueError, match="marker_height"):
        Layout(markers=True, global_view="only", marker_height=float("nan"))


def test_markers_need_origins_and_cameras(tmp_path):
    p = make_store(tmp_path / "nocam.zarr", num_envs=2, frames=8, global_shape=(20, 20))
    with pytest.raises(ValueError, match="markers=True needs env origins"):
        render(p, Layout(global_view="left", markers=True), tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


# ---- pages -------------------------------------------------------------------------------------
def test_pages_in_sequence(store, tmp_path):
    lay = Layout(columns=2, rows=2, start=0, stop=10, **PLAIN)
    res = render(store, lay, tmp_path / "seq")
    frames = read_pngs(tmp_path / "seq")
    assert res.frames == (20,) and frames.shape[0] == 20
    g = geometry(store, lay, 4)
    assert np.array_equal(tile(frames[3], g, 3), env_frame(3, 3, H, W))
    assert np.array_equal(tile(frames[13], g, 1), env_frame(5, 3, H, W))  # page 2: envs 4, 5
    assert np.all(tile(frames[13], g, 2) == 0)  # empty slot


def test_pages_separate(store, tmp_path):
    lay = Layout(envs="0-4", columns=2, rows=1, pages="separate", stop=8, **PLAIN)
    res = render(store, lay, tmp_path / "pages.mp4")
    assert [p.name for p in res.paths] == ["pages_p000.mp4", "pages_p001.mp4", "pages_p002.mp4"]
    frames, _ = decode_video(res.paths[2])
    g = geometry(store, lay, 2)
    assert frames.shape[0] == 8
    assert psnr(tile(frames[4], g, 0), env_frame(4, 4, H, W)) >= 30


# ---- time --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields, first, count",
    [
        (dict(start=5, stop=17), 5, 12),
        (dict(start=105, stop=117, unit="step"), 5, 12),
        (dict(start=5.25, stop=5.8, unit="second"), 5, 11),  # sim_time = step / 20
        (dict(start=30), 30, 10),
        (dict(start=3, stop=20, stride=4), 3, 5),
    ],
)
def test_time_window(store, tmp_path, fields, first, count):
    lay = Layout(envs="2", **PLAIN, **fields)
    res = render(store, lay, tmp_path / "w")
    frames = read_pngs(tmp_path / "w")
    assert frames.shape[0] == count == res.frames[0]
    stride = fields.get("stride", 1)
    for i in (0, count - 1):
        assert np.array_equal(frames[i], env_frame(2, first + i * stride, H, W))


def test_clip_and_fps_override(gstore, tmp_path):
    res = render(gstore, Layout(envs="1", clip=3, fps=7.5, **PLAIN), tmp_path / "clip.mp4")
    frames, rate = decode_video(res.path)
    assert frames.shape[0] == 14 and rate == pytest.approx(7.5)
    assert psnr(frames[0], env_frame(1, 10, H, W)) >= 30
    res = render(gstore, Layout(envs="1", clip=3, start=2, stop=4, **PLAIN), tmp_path / "c2")
    assert np.array_equal(read_pngs(tmp_path / "c2")[0], env_frame(1, 12, H, W))


# ---- episode mode ------------------------------------------------------------------------------
def test_episode_mode_staggered_resets(store, tmp_path):
    k = 1
    lay = Layout(episode=k, columns=3, dim=0.5, **PLAIN)
    res = render(store, lay, tmp_path / "ep")
    frames = read_pngs(tmp_path / "ep")
    lengths = [episode_length(e) for e in range(N)]
    assert res.frames[0] == max(lengths) == frames.shape[0]
    g = geometry(store, lay, N)
    for env in range(N):
        start = k * lengths[env]  # env e's episode 1 starts at frame k * (7 + e)
        for t in (0, 3, lengths[env] - 1):
            assert np.array_equal(tile(frames[t], g, env), env_frame(env, start + t, H, W))
        last = env_frame(env, start + lengths[env] - 1, H, W)
        for t in range(lengths[env], res.frames[0]):  # held, dimmed
            held = tile(frames[t], g, env).astype(int)
            assert np.abs(held - (last.astype(int) * 128 >> 8)).max() <= 1


def test_episode_mode_window_and_missing_episode(store, tmp_path):
    # in frames 20..39, env 0 (episodes of 7) has episodes starting at 21, 28, 35
    with pytest.warns(UserWarning, match=r"envs \[5\] have no episode 2"):
        res = render(store, Layout(envs="0,5", episode=2, start=20, **PLAIN), tmp_path / "e2")
    frames = read_pngs(tmp_path / "e2")
    g = geometry(store, Layout(envs="0,5", **PLAIN), 2)
    assert np.array_equal(tile(frames[0], g, 0), env_frame(0, 35, H, W))
    # env 5 (episodes of 12, starts 24, 36): episode 2 would start at 48 > 39: left out
    assert res.envs == (0,)
    assert any("have no episode 2" in w for w in res.warnings)
    # over the whole run, env 5's episodes start at 0, 12, 24, 36: there is no episode 4
    with pytest.raises(ValueError, match="no env of envs='5' has an episode 4"):
        render(store, Layout(envs="5", episode=4, **PLAIN), tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()


# ---- selection and order -----------------------------------------------------------------------
def test_selection_top_bottom_only_order(gstore, store, tmp_path):
    # reward = e * 0.1 + f * 0.01: higher env id, higher reward
    res = render(store, Layout(top_k=2, order="descending", **PLAIN), tmp_path / "t")
    assert res.envs == (5, 4)
    res = render(store, Layout(bottom_k=3, **PLAIN), tmp_path / "b")
    assert res.envs == (0, 1, 2)
    res = render(
        store, Layout(envs="3,1,4", order="ascending", score_stat="final", **PLAIN), tmp_path / "o"
    )
    assert res.envs == (1, 3, 4)
    # even envs terminate, odd envs are truncated (every episode fits in 40 frames)
    res = render(store, Layout(only="terminated", **PLAIN), tmp_path / "term")
    assert res.envs == (0, 2, 4)
    res = render(store, Layout(only="timed_out", **PLAIN), tmp_path / "trunc")
    assert res.envs == (1, 3, 5)
    # succeeded: terminated with success > 0.5 (success = env % 3 == 0): env 0 only
    res = render(gstore, Layout(only="succeeded", **PLAIN), tmp_path / "succ")
    assert res.envs == (0,)
    res = render(
        gstore, Layout(top_k=1, score="score", score_stat="max", **PLAIN), tmp_path / "score"
    )
    assert res.envs == (3,)
    frames = read_pngs(tmp_path / "t")
    g = geometry(store, Layout(**PLAIN), 2)
    assert np.array_equal(tile(frames[0], g, 0), env_frame(5, 0, H, W))


def test_only_with_no_match_is_an_error(store, tmp_path):
    with pytest.raises(ValueError, match="no env of envs='0-5' terminated in frames 0..4"):
        render(store, Layout(envs="0-5", only="terminated", stop=5), tmp_path / "x.mp4")


# ---- labels and borders ------------------------------------------------------------------------
def test_labels_are_drawn_from_a_template(store, tmp_path):
    lay = Layout(
        envs="0,1",
        columns=2,
        label="{env} r={reward:.2f} s{step}",
        label_background="#000000",
        label_color="#ffffff",
        border=0,
    )
    render(store, lay, tmp_path / "lab")
    frames = read_pngs(tmp_path / "lab")
    g = geometry(store, lay, 2)
    t0 = tile(frames[0], g, 0)
    raw = env_frame(0, 0, H, W)
    diff = np.any(t0 != raw, axis=-1)
    assert diff[:12, :].any() and not diff[20:, :].any()  # label in the top-left corner only
    assert (t0[:12] == 255).all(axis=-1).any()  # white text
    # the text changes with the step: the label region differs between frames
    assert not np.array_equal(tile(frames[0], g, 0)[:12], tile(frames[1], g, 0)[:12])


def test_label_cache_draws_each_text_once(store):
    from envreel.render._compose import LabelCache

    cache = LabelCache(11, (255, 255, 255), (0, 0, 0))
    a = cache.get("env 3")
    assert cache.get("env 3") is a and cache.rendered == 1
    cache.get("env 4")
    assert cache.rendered == 2


def test_label_words_are_drawn_apart(store):
    # Pillow's bundled font draws a space a third of a digit wide: "6 0.98" read as "60.98"
    from envreel.render._compose import LabelCache

    for size in (11, 24):
        cache = LabelCache(size, (255, 255, 255), (0, 0, 0))
        ink = cache.get("6 0.98").pixels.max(axis=(0, 2)) > 100  # columns with text in them
        runs, gap = [], 0  # widths of the blank runs between inked columns
        for col in ink[np.argmax(ink) : len(ink) - np.argmax(ink[::-1])]:
            if col and gap:
                runs.append(gap)
            gap = 0 if col else gap + 1
        digit = cache.font.getlength("0")
        assert max(runs) >= 0.6 * digit, (size, runs, digit)  # the space between the words
        assert cache.get("60.98").pixels.shape[1] < cache.get("6 0.98").pixels.shape[1]


def test_a_scalar_named_score_in_a_label_is_that_scalar_with_a_warning(gstore, tmp_path):
    lay = Layout(top_k=1, score="reward", label="{env} {score:.2f}", label_position="top-left")
    with pytest.warns(UserWarning, match="scalar named 'score', per frame, not the mean of"):
        res = render(gstore, lay, tmp_path / "shadow")
    assert any("scalar named 'score'" in w for w in res.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ranking: {score} is plainly the scalar
        render(gstore, Layout(label="{env} {score:.2f}"), tmp_path / "plain")


def test_tiles_shrunk_to_fit_the_size_limit_are_named_in_a_warning(store, tmp_path):
    lay = Layout(columns=6, max_width=300, stop=2, **PLAIN)  # 6 tiles of 96 px: 576 px wide
    with pytest.warns(UserWarning, match=r"tiles shown at 49×32 instead of 96×64 to fit"):
        res = render(store, lay, tmp_path / "small")
    assert res.width <= 300 and len(res.warnings) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at its own size: nothing to say
        render(store, Layout(columns=3, stop=2, **PLAIN), tmp_path / "full")


def test_more_columns_or_rows_than_envs_are_named_in_a_warning(store, tmp_path):
    lay = Layout(envs="0-2", columns=5, stop=2, **PLAIN)
    with pytest.warns(UserWarning, match=r"columns=5 for at most 3 envs a page: 2 of the 5×1"):
        res = render(store, lay, tmp_path / "wide")
    assert res.width >= 5 * 96 and len(res.warnings) == 1  # as asked: the slots stay
    with pytest.warns(UserWarning, match=r"rows=4 for at most 3 envs a page: 1 of the 1×4"):
        render(store, lay.replace(columns=None, rows=4), tmp_path / "tall")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a last page with fewer envs is no mistake
        render(store, Layout(columns=4, page_size=4, stop=2, **PLAIN), tmp_path / "pages")


def test_output_folders_get_the_mode_mkdir_would_give(store, tmp_path):
    old = os.umask(0o022)
    try:
        render(store, Layout(stop=2, **PLAIN), tmp_path / "new")
        render_envs(store, tmp_path / "each", Layout(stop=2, envs="0", **PLAIN), suffix=".gif")
        (tmp_path / "mine").mkdir(mode=0o770)
        (tmp_path / "mine").chmod(0o770)
        render(store, Layout(stop=2, **PLAIN), tmp_path / "mine")
    finally:
        os.umask(old)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o755  # mkdtemp alone gives 0700
    assert (tmp_path / "each").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "mine").stat().st_mode & 0o777 == 0o770  # an empty folder keeps its own
    assert len(list((tmp_path / "mine").iterdir())) == 2


def test_borders_on_terminated_truncated_and_stale_frames(store, tmp_path):
    lay = Layout(
        envs="0,1",
        columns=2,
        label=None,
        border=2,
        border_hold=1,
        terminated_color="#ff0000",
        truncated_color="#00ff00",
        stale_color="#0000ff",
    )
    render(store, lay, tmp_path / "bord")
    frames = read_pngs(tmp_path / "bord")
    g = geometry(store, lay, 2)
    # env 0: episodes of 7 -> terminated at frame 6, stale at 7 (a new flag wins)
    assert tuple(tile(frames[6], g, 0)[0, 5]) == (255, 0, 0)
    assert tuple(tile(frames[7], g, 0)[0, 5]) == (0, 0, 255)
    assert tuple(tile(frames[8], g, 0)[0, 5]) == (0, 0, 255)  # held one more frame
    assert np.array_equal(tile(frames[9], g, 0), env_frame(0, 9, H, W))
    assert np.array_equal(tile(frames[5], g, 0), env_frame(0, 5, H, W))
    # env 1: episodes of 8 -> truncated at frame 7
    assert tuple(tile(frames[7], g, 1)[H - 1, 5]) == (0, 255, 0)


# ---- contact sheet -----------------------------------------------------------------------------
def test_contact_sheet(store, tmp_path):
    lay = Layout(envs="0,3", label=None, border=0, gap=1)
    p = contact_sheet(store, tmp_path / "sheet.png", lay, num_times=4)
    img = np.asarray(Image.open(p).convert("RGB"))
    g = compute_geometry(lay.replace(columns=4, rows=2), num_tiles=8, env_shape=(H, W))
    assert img.shape == (g.height, g.width, 3)
    times = np.linspace(0, T - 1, 4).round().astype(int)
    for row, env in enumerate((0, 3)):
        for col, f in enumerate(times):
            assert np.array_equal(tile(img, g, row * 4 + col), env_frame(env, int(f), H, W))
    with pytest.raises(ValueError, match="must end in .png"):
        contact_sheet(store, tmp_path / "sheet.jpg")
    p2 = contact_sheet(store, tmp_path / "sheet2.png")  # default label: env and step
    assert Image.open(p2).size[0] > 0
    # more times than the window has frames: one column per frame, none empty or repeated
    short = lay.replace(stop=5)
    img = np.asarray(Image.open(contact_sheet(store, tmp_path / "s3.png", short, num_times=12)))
    g = compute_geometry(short.replace(columns=5, rows=2), num_tiles=10, env_shape=(H, W))
    assert img.shape == (g.height, g.width, 3)
    for row, env in enumerate((0, 3)):
        for f in range(5):
            assert np.array_equal(tile(img, g, row * 5 + f), env_frame(env, f, H, W))


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_contact_sheet_that_fails_midway_leaves_no_partial_png(
    store, tmp_path, monkeypatch, failure
):
    # the PNG was written in place: a full disk or Ctrl-C left a truncated sheet (and with
    # overwrite, destroyed the previous one), unlike mp4/GIF outputs
    from PIL import Image as PilImage
    from PIL import PngImagePlugin  # registers the PNG writer in Image.SAVE

    real = PngImagePlugin._save
    calls = []

    def fail_midway(im, fp, filename):
        calls.append(filename)
        real(im, fp, filename)
        fp.truncate(fp.tell() // 2)  # half of the file is on disk when the error comes
        raise failure

    lay = Layout(envs="0,3")
    old = contact_sheet(store, tmp_path / "old.png", lay, num_times=2)
    old_bytes = old.read_bytes()
    monkeypatch.setitem(PilImage.SAVE, "PNG", fail_midway)
    with pytest.raises(type(failure)):
        contact_sheet(store, tmp_path / "new.png", lay, num_times=3)
    with pytest.raises(type(failure)):
        contact_sheet(store, tmp_path / "old.png", lay, num_times=3, overwrite=True)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]  # no temp file either
    assert old.read_bytes() == old_bytes  # the earlier sheet is kept whole
    monkeypatch.setitem(PilImage.SAVE, "PNG", real)
    p = contact_sheet(store, tmp_path / "old.png", lay, num_times=3, overwrite=True)
    assert p.read_bytes() == contact_sheet(store, tmp_path / "n.png", lay, num_times=3).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.png", "old.png"]


def test_contact_sheet_in_episode_mode_starts_each_row_at_its_episode(store, tmp_path):
    lay = Layout(envs="0,4", episode=1, label=None, border=0, gap=0)
    p = contact_sheet(store, tmp_path / "ep.png", lay, num_times=3)
    img = np.asarray(Image.open(p).convert("RGB"))
    g = compute_geometry(lay.replace(columns=3, rows=2), num_tiles=6, env_shape=(H, W))
    for row, env in enumerate((0, 4)):
        length = episode_length(env)
        start = length  # episode 1 starts after the first episode
        want = np.linspace(start, start + length - 1, 3).round().astype(int)
        for col, f in enumerate(want):
            assert np.array_equal(tile(img, g, row * 3 + col), env_frame(env, int(f), H, W))


def test_contact_sheet_of_more_envs_than_fit_is_refused_or_warned(tmp_path):
    """A sheet has a row per env: 4,096 envs cannot fit 2160 px; the grid's words ("tiles",
    "page_size") do not say what to change. Tiles shrunk to fit are warned about."""
    many = make_store(tmp_path / "many.zarr", num_envs=300, frames=8, shape=(4, 4))
    lay = Layout(max_height=200, label=None)
    with pytest.raises(ValueError, match=r"a row per env: 300 envs × 2 times cannot fit") as info:
        contact_sheet(many, tmp_path / "no.png", lay, num_times=2)
    assert "page_size" not in str(info.value) and "select fewer envs" in str(info.value)
    assert not (tmp_path / "no.png").exists()
    with pytest.warns(UserWarning, match=r"tiles shown at 3×3 instead of 4×4 .*40 envs × 2"):
        p = contact_sheet(many, tmp_path / "yes.png", lay.replace(envs="0-39"), num_times=2)
    assert Image.open(p).size[1] <= 200


# ---- per-env videos ----------------------------------------------------------------------------
def test_render_envs_parallel(store, tmp_path):
    lay = Layout(envs="1,4", stop=12, **PLAIN)
    paths = render_envs(store, tmp_path / "per_env", lay, workers=2)
    assert [p.name for p in paths] == ["env_0001.mp4", "env_0004.mp4"]
    for p, env in zip(paths, (1, 4), strict=True):
        frames, rate = decode_video(p)
        assert frames.shape == (12, H, W, 3) and rate == pytest.approx(20.0)
        assert psnr(frames[6], env_frame(env, 6, H, W)) >= 30


def test_render_envs_gif_with_selection_and_names(store, tmp_path):
    paths = render_envs(
        store,
        tmp_path / "gifs",
        Layout(top_k=2, stop=4, **PLAIN),
        suffix=".gif",
        name="best_{env:02d}",
        workers=1,
    )
    assert sorted(p.name for p in paths) == ["best_04.gif", "best_05.gif"]
    with pytest.raises(ValueError, match="label template"):
        render_envs(store, tmp_path / "x", name="{env.__class__}")


def test_progress_bar_on_stderr_only_when_asked(store, tmp_path, capsys):
    render(store, Layout(envs="0", stop=4), tmp_path / "p1.mp4", progress=True)
    assert "4/4 frames" in capsys.readouterr().err
    render(store, Layout(envs="0", stop=4), tmp_path / "p2.mp4")  # not a TTY: silent
    assert capsys.readouterr().err == ""


def test_no_prefetch_gives_identical_frames(store, tmp_path):
    lay = Layout(columns=3, label="{env} {reward:.2f}")
    render(store, lay, tmp_path / "a", prefetch=True)
    render(store, lay, tmp_path / "b", prefetch=False)
    assert np.array_equal(read_pngs(tmp_path / "a"), read_pngs(tmp_path / "b"))


def _composer(store_path, layout):
    from envreel.render._compose import Composer
    from envreel.render._select import ScalarReader, plan_render
    from envreel.render._stream import BlockReader

    run = open_run(store_path)
    plan = plan_render(run, layout)
    g = geometry(store_path, layout, plan.page_size)
    scalars = ScalarReader(run, skip_bad=False, messages=[])
    fields = tuple(f for f in ("step", "time") if plan.label and f in plan.label.fields)
    reader = BlockReader(
        run, plan, skip_bad=False, scalars=scalars, frame_fields=fields, canvas_bytes=1
    )
    return Composer(run, plan, layout, g, reader), reader


@pytest.mark.parametrize(
    "which, layout, covers",
    [
        ("store", Layout(columns=3, gap=0), True),
        ("store", Layout(columns=4, gap=0, label="{env} {step}"), True),  # 2 empty slots
        ("store", Layout(columns=3, gap=2), False),
        ("store", Layout(columns=3, gap=0, episode=1), False),
        ("gstore", Layout(columns=2, gap=0, global_view="left", markers=True), True),
        ("gstore", Layout(columns=4, gap=0, global_view="left"), False),  # 1 column to even
        ("gstore", Layout(gap=0, global_view="only"), True),
        ("gstore", Layout(columns=2, gap=0, global_view="inset"), True),
    ],
)
def test_blocks_skip_the_background_only_where_fill_paints_every_pixel(
    store, gstore, which, layout, covers
):
    comp, reader = _composer(store if which == "store" else gstore, layout)
    assert comp.fill_covers_canvas is covers
    for page in range(len(comp.plan.pages)):
        for job in reader.jobs(page):
            want = comp.make_buffer(len(job))
            comp.fill(job, want)
            got = comp.make_block(len(job))
            got[...] = 0xAB  # what an uninitialised block may hold
            if not covers:
                got[...] = comp.make_buffer(len(job))
            comp.fill(job, got)
            assert np.array_equal(got, want), (page, job)


def test_no_warnings_on_a_clean_render(store, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render(store, Layout(), tmp_path / "clean.mp4")


def test_store_layer_out_parameter_is_used_when_offered(store, tmp_path):
    """A store layer whose env_frames takes out= decodes into one reused buffer."""
    run = open_run(store)
    original = run.env_frames
    seen = []

    def env_frames(env_ids, start=None, stop=None, *, stride=1, out=None):
        data = original(env_ids, start, stop, stride=stride)
        seen.append(out is not None)
        out[...] = data
        return out

    run.env_frames = env_frames
    lay = Layout(columns=3, label="{env}")
    render(run, lay, tmp_path / "with_out")
    render(store, lay, tmp_path / "plain")
    assert seen and all(seen)
    assert np.array_equal(read_pngs(tmp_path / "with_out"), read_pngs(tmp_path / "plain"))


def test_memory_does_not_grow_with_run_length(tmp_path):
    """Peak traced memory (numpy reports its buffers to tracemalloc) of a 4x longer run is the
    same; at most two canvas blocks exist at a time."""
    import tracemalloc

    import envreel.render._stream as stream

    made = []
    original = stream.Prefetcher.__init__

    def spy(self, jobs, fill, make_buffer, **kw):
        def counted():
            made.append(1)
            return make_buffer()

        original(self, jobs, fill, counted, **kw)

    stores = [
        make_store(tmp_path / f"len{n}.zarr", num_envs=4, frames=n, shape=(24, 32), block_frames=16)
        for n in (256, 1024)
    ]
    render(stores[0], Layout(columns=2), tmp_path / "warm.mp4")  # lazy imports, font
    peaks = []
    for p in stores:
        made.clear()
        tracemalloc.start()
        stream.Prefetcher.__init__ = spy
        try:
            render(p, Layout(columns=2), tmp_path / "len.mp4", overwrite=True)
        finally:
            stream.Prefetcher.__init__ = original
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        assert len(made) <= 2
    assert peaks[1] < 1.1 * peaks[0] + (256 << 10), peaks


def test_render_envs_from_a_memory_store_runs_in_process(tmp_path):
    url = make_store(
        "memory://render-envs.zarr", num_envs=2, frames=6, shape=(16, 16), block_frames=4
    )
    paths = render_envs(open_run(url), tmp_path / "mem", Layout(label=None), workers=2)
    assert [p.name for p in paths] == ["env_0000.mp4", "env_0001.mp4"]
    assert decode_video(paths[1])[0].shape == (6, 16, 16, 3)


def test_job_length_is_bounded_by_raw_frames_shown_small(store):
    """Big env frames in tiny tiles: a job's raw frames, not only its canvas, stay bounded."""
    from envreel.render._select import ScalarReader, plan_render
    from envreel.render._stream import BlockReader

    run = open_run(store)
    lay = Layout(tile_size=4)
    plan = plan_render(run, lay)
    g = geometry(store, lay, N)
    budget = 256 << 10
    reader = BlockReader(
        run,
        plan,
        skip_bad=False,
        scalars=ScalarReader(run, skip_bad=False, messages=[]),
        frame_fields=(),
        canvas_bytes=g.height * g.width * 3,
        block_bytes=budget,
    )
    env_bytes = H * W * 3
    assert reader.max_rows * env_bytes <= 2 * budget
    assert all(len(j) <= reader.max_rows for j in reader.jobs(0))
    assert sum(len(j) for j in reader.jobs(0)) == T


# ---- ranking with non-finite scores -----------------------------------------------------------
INF, NAN = np.inf, np.nan
NONFINITE_REWARDS = {  # env: (every frame's reward, {frame: another value})
    0: (1.0, {}),
    1: (2.0, {}),
    2: (0.5, {3: INF}),  # a bug in the env: mean, sum and max +inf
    3: (0.0, {5: -INF}),
    4: (NAN, {}),  # no value at all: no score
    5: (3.0, {2: INF, 4: -INF}),  # mean and sum undefined, max +inf, min -inf
}
# the score of each env under each stat, and the descending order it gives: ±inf are the
# highest/lowest scores and NaN ranks after every env with a score, under every stat
NONFINITE_RANKS = {
    "mean": ([1, 2, INF, -INF, NAN, NAN], (2, 1, 0, 3, 4, 5)),
    "sum": ([16, 32, INF, -INF, NAN, NAN], (2, 1, 0, 3, 4, 5)),
    "max": ([1, 2, INF, 0, NAN, INF], (2, 5, 1, 0, 3, 4)),
    "min": ([1, 2, 0.5, -INF, NAN, -INF], (1, 0, 2, 3, 5, 4)),
    "final": ([1, 2, 0.5, 0, NAN, 3], (5, 1, 0, 2, 3, 4)),
}


@pytest.fixture(scope="module")
def nonfinite_store(tmp_path_factory):
    from store_helpers import fill_block

    from envreel.schemas import RunSpec, create_run

    spec = RunSpec(num_envs=6, env_frame_shape=(8, 8), fps=10, block_frames=16)
    url = tmp_path_factory.mktemp("nonfinite") / "run.zarr"
    writer = create_run(url, spec)
    block = fill_block(spec, 0, 16)
    for env, (value, others) in NONFINITE_REWARDS.items():
        block.reward[:, env] = value
        for frame, v in others.items():
            block.reward[frame, env] = v
    writer.append(block)
    writer.close()
    return url


@pytest.mark.filterwarnings("ignore:the .* that ranks the envs is not finite")
@pytest.mark.parametrize("stat", sorted(NONFINITE_RANKS))
def test_non_finite_scores_rank_by_one_rule_under_every_stat(nonfinite_store, stat):
    # +inf ranked first under mean but last under max (made NaN), and -inf alike under min
    from envreel.render._select import plan_render

    want_scores, want_order = NONFINITE_RANKS[stat]
    msgs: list[str] = []
    with pytest.warns(UserWarning, match="not finite"):
        plan = plan_render(
            open_run(nonfinite_store), Layout(order="descending", score_stat=stat), messages=msgs
        )
    assert plan.envs == want_order
    np.testing.assert_array_equal(plan.scores, [want_scores[e] for e in want_order])
    ascending = plan_render(
        open_run(nonfinite_store), Layout(order="ascending", score_stat=stat), messages=[]
    )
    ranked = [e for e in want_order if not np.isnan(want_scores[e])]
    unranked = [e for e in want_order if np.isnan(want_scores[e])]
    assert [e for e in ascending.envs if e in ranked] == sorted(
        ranked, key=lambda e: want_scores[e]
    )
    assert list(ascending.envs[len(ranked) :]) == unranked  # NaN last either way
    for k in (1, 2, len(ranked)):  # NaN is never among the best or the worst
        top = plan_render(open_run(nonfinite_store), Layout(top_k=k, score_stat=stat), messages=[])
        bottom = plan_render(
            open_run(nonfinite_store), Layout(bottom_k=k, score_stat=stat), messages=[]
        )
        assert set(top.envs) == set(want_order[:k])
        assert set(bottom.envs) == set(ascending.envs[:k])
        assert not any(np.isnan(want_scores[e]) for e in top.envs + bottom.envs)
    no_score = {"mean": "envs 4..5 have", "sum": "envs 4..5 have"}.get(stat, "env 4 has")
    assert msgs == [
        f"the {stat} of 'reward' that ranks the envs is not finite: envs 2, 5 reached +inf; "
        f"envs 3, 5 reached -inf; {no_score} no score (a bug in the env?). Under every "
        "score_stat +inf ranks highest and -inf lowest, NaN values are left out, and an env "
        "with no score (NaN: no values, or a mean of +inf and -inf) is never in top_k or "
        "bottom_k and sorts after all others, in either order"
    ]
    # more than the envs with a score: those are all shown, and the others are left out, named
    # (they filled the best and the worst k before, after the scored envs, with no word)
    for lay in (
        Layout(top_k=6, score_stat=stat),
        Layout(bottom_k=len(ranked) + 1, score_stat=stat),
    ):
        msgs = []
        with pytest.warns(UserWarning, match="with a score: .* left out"):
            plan = plan_render(open_run(nonfinite_store), lay, messages=msgs)
        assert set(plan.envs) == set(ranked)
        what = "top_k=6" if lay.top_k else f"bottom_k={len(ranked) + 1}"
        left = {"mean": "2 without one (envs 4..5) are", "sum": "2 without one (envs 4..5) are"}
        assert msgs[-1] == (
            f"{what} ranks the envs with a score: {left.get(stat, '1 without one (env 4) is')} "
            f"left out, so {len(ranked)} are shown"
        )


@pytest.mark.filterwarnings("ignore:the .* that ranks the envs is not finite")
def test_top_k_of_envs_without_any_score_is_refused(nonfinite_store):
    # every reward of env 4 is NaN (and env 5's mean is +inf - inf): top_k=1 of them showed an
    # env chosen by nothing
    from envreel.render._select import plan_render

    for lay in (Layout(envs="4,5", top_k=1), Layout(envs="4", bottom_k=3)):
        with pytest.raises(ValueError) as info:
            plan_render(open_run(nonfinite_store), lay, messages=[])
        k = "top_k=1" if lay.top_k else "bottom_k=3"
        assert str(info.value) == (
            f"{k}: no env of envs={lay.envs!r} has a score (the mean of 'reward' over its frames "
            f"is NaN for all {len(lay.env_ids)}: no values, or a mean of +inf and -inf); "
            "nothing to rank"
        )
    # sorting alone keeps them: they are selected by envs, not chosen by the score
    plan = plan_render(
        open_run(nonfinite_store), Layout(envs="4,5", order="descending"), messages=[]
    )
    assert plan.envs == (4, 5)


def test_top_k_beyond_the_selected_envs_shows_them_all_and_says_so(nonfinite_store):
    from envreel.render._select import plan_render

    msgs: list[str] = []
    with pytest.warns(UserWarning) as caught:
        plan = plan_render(open_run(nonfinite_store), Layout(envs="0,1", top_k=16), messages=msgs)
    assert sorted(plan.envs) == [0, 1]
    assert (
        [str(w.message) for w in caught]
        == msgs
        == ["top_k=16, but only 2 env(s) are selected: all are shown"]
    )


def test_finite_scores_warn_nothing(nonfinite_store, tmp_path):
    from envreel.render._select import plan_render

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = plan_render(open_run(nonfinite_store), Layout(envs="0,1", top_k=1), messages=[])
    assert plan.envs == (1,)
