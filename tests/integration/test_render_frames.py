"""The frames tier: ``frames(run, layout)`` in order, at random, and as render() writes it."""

from __future__ import annotations

import numpy as np
import pytest
from render_fixtures import make_store, read_pngs

from envreel.render import Layout, frames, render


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "run.zarr"
    return make_store(path, num_envs=6, frames=70, global_shape=(24, 40), cameras=True)


LAYOUTS = {
    "grid": Layout(columns=3, label="{env} {step} r={reward:.1f}", border=2, border_hold=3),
    "global": Layout(envs="4,0,2", global_view="right", markers=True, stride=2),
    "episodes": Layout(episode=1, border=1, columns=2),
    "pages": Layout(page_size=4, label=None),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_random_access_equals_the_stream(store, name) -> None:
    source = frames(store, LAYOUTS[name])
    streamed = np.stack(list(source))  # each frame kept as iterated: the stream reuses blocks
    assert streamed.shape == (len(source), *source.shape, 3)
    rng = np.random.default_rng(0)
    order = [0, 1, 2, len(source) - 1, 5, 4] + rng.integers(0, len(source), 25).tolist()
    for t in order:  # jumps back and forth, and runs of consecutive frames
        # the same pixels; resizing a batch of other length may round a value the other way
        diff = np.abs(source.frame(t).astype(int) - streamed[t])
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, f"frame {t}: {diff.max()}"


@pytest.mark.parametrize("name", ["grid", "global"])
def test_render_writes_exactly_the_frames(store, tmp_path, name) -> None:
    out = tmp_path / "pngs"
    result = render(store, LAYOUTS[name], out)
    written = read_pngs(out)
    streamed = np.stack([f.copy() for f in frames(store, LAYOUTS[name])])
    np.testing.assert_array_equal(written, streamed)
    assert result.frames == (len(streamed),)


def test_facts_tiles_and_store_frames(store) -> None:
    source = frames(store, Layout(envs="4,0,2", columns=3, stride=2, gap=2))
    assert source.envs == (4, 0, 2) and source.fps == pytest.approx(20.0)
    tiles = source.tiles()
    assert [t.env for t in tiles] == [4, 0, 2]
    assert tiles[1].x == tiles[0].x + tiles[0].w + 2 and tiles[1].y == tiles[0].y
    np.testing.assert_array_equal(source.store_frames, np.arange(0, 70, 2))
    assert source.size == (source.shape[1], source.shape[0])
    with pytest.raises(ValueError, match="frame 35 is not in 0..34"):
        source.frame(35)
    with pytest.raises(TypeError):
        source.frame(1.5)
    assert frames(store, Layout(envs=range(3), columns=3)).envs == (0, 1, 2)  # a range is ids


def test_random_access_to_a_large_canvas_with_the_global_view(store) -> None:
    # A 24 MB canvas makes blocks of 2 frames; a random access composes 8 at once, and its
    # global view buffer was sized for 2 ("out must be ... shape (8, ...)" in the viewer).
    lay = Layout(columns=1, tile_size=(350, 300), global_view="right", label=None, stop=12)
    source = frames(store, lay)
    assert source.reader.max_rows < 8 and source.shape[0] * source.shape[1] * 3 > 8 << 20
    streamed = [f.copy() for f in source]
    for t in (3, 10, 0):
        np.testing.assert_array_equal(source.frame(t), streamed[t])


def test_pages_out_of_range_are_named(store) -> None:
    source = frames(store, LAYOUTS["pages"])  # 6 envs, 4 a page: pages 0 and 1
    assert source.pages == 2 and [t.env for t in source.tiles(1)] == [4, 5]
    for call in (source.tiles, source.page_frames, source.blocks):
        for page, exc in ((2, ValueError), (-1, ValueError), (1.0, TypeError)):
            with pytest.raises(exc, match=r"page .*(0\.\.1|int)"):
                call(page)


def test_command_renders_the_same_layout(store, tmp_path) -> None:
    from click.testing import CliRunner

    from envreel.tools.cli import main

    layout = Layout(envs="4,0,2", columns=2, global_view="bottom", label=None, stride=3)
    source = frames(store, layout)
    argv = source.command(store, str(tmp_path / "cli"))
    result = CliRunner().invoke(main, argv.split()[1:])  # drops "envreel"
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_pngs(tmp_path / "cli"), np.stack([f.copy() for f in source]))


def test_show_plays_the_layout_inline(store, tmp_path) -> None:
    import base64
    import re

    av = pytest.importorskip("av")
    from envreel.render import show

    video = show(store, Layout(envs="0-3", columns=2, stop=20))
    html = video._repr_html_()
    match = re.search(r'src="data:video/mp4;base64,([^"]+)"', html)
    assert match and "<video controls" in html
    path = tmp_path / "shown.mp4"
    path.write_bytes(base64.b64decode(match.group(1)))
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == video.frames == 20
    assert decoded[0].shape == (video.height, video.width, 3)


def test_a_shown_video_saves_like_every_output(store, tmp_path) -> None:
    # Video.save wrote in place and replaced an existing file silently
    from envreel.render import show

    video = show(store, Layout(envs="0-1", stop=4))
    saved = video.save(tmp_path / "saved.mp4")
    assert saved == tmp_path / "saved.mp4" and saved.read_bytes() == video.data
    saved.write_bytes(b"earlier")
    with pytest.raises(FileExistsError, match=r"saved\.mp4' exists; pass overwrite=True"):
        video.save(saved)
    assert saved.read_bytes() == b"earlier"
    assert video.save(saved, overwrite=True).read_bytes() == video.data
    assert [p.name for p in tmp_path.iterdir()] == ["saved.mp4"]  # no temporary file left


def _count_composed(source, monkeypatch) -> list[tuple[int, int]]:
    """The (first, stop) output frames of each block ``source`` composes from now on."""
    composed: list[tuple[int, int]] = []
    fill = source.composer.fill
    monkeypatch.setattr(
        source.composer,
        "fill",
        lambda job, out: composed.append((job.o0, job.o1)) or fill(job, out),
    )
    return composed


def test_a_jump_composes_the_frame_asked_for_alone(store, monkeypatch) -> None:
    """A frame of 4,096 tiles takes ~0.3 s to compose: a scrubbing viewer must not pay for 8,
    nor for the frame before it when no border is held past its flag."""
    source = frames(store, Layout(columns=3, border=2))  # border_hold 0: nothing carries over
    composed = _count_composed(source, monkeypatch)
    streamed = np.stack(list(frames(store, Layout(columns=3, border=2))))
    for t in (40, 41, 42, 10, 69):
        np.testing.assert_array_equal(source.frame(t), streamed[t])
    # the jumps to 40, 10 and 69 compose one frame; 41 follows on: the next 8 (42 comes from them)
    assert composed == [(40, 41), (41, 49), (10, 11), (69, 70)]
    # a held border is rebuilt from the frames before the jump
    held = frames(store, Layout(columns=3, border=2, border_hold=3))
    composed = _count_composed(held, monkeypatch)
    held.frame(40)
    assert composed == [(36, 40), (40, 41)]
