"""render(): bad input fails before anything is written; corrupt and hostile stores."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_fixtures import corrupt_chunk, env_frame, make_store, read_pngs, tile
from store_helpers import mark_inner_chunks_empty

from envreel.render import Layout, RenderError, contact_sheet, render, render_envs
from envreel.render._compose import compute_geometry, placeholder_tile
from envreel.schemas import CorruptChunkError, EnvreelError

H, W, N, T, B = 32, 48, 6, 24, 8


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_store(
        tmp_path_factory.mktemp("err") / "run.zarr",
        num_envs=N,
        frames=T,
        shape=(H, W),
        block_frames=B,
    )


@pytest.fixture()
def store(pristine, tmp_path):
    """A fresh copy to damage."""
    dst = tmp_path / "copy.zarr"
    shutil.copytree(pristine, dst)
    return str(dst)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- the bad-input matrix: each fails with a message naming the value, and writes nothing ------
BAD_LAYOUTS = [
    (dict(envs="0-9"), ValueError, r"env ids \[6, 7, 8, 9\] are not in this run"),
    (dict(envs="2", only="terminated", stop=3), ValueError, "nothing to render"),
    (dict(label="{rewrd:.2f}"), ValueError, r"unknown field \{rewrd\}"),
    (dict(label="{env:q}"), ValueError, "format spec 'q'"),
    (dict(order="descending", score="speed"), ValueError, "score 'speed' is not a scalar"),
    (dict(top_k=2, score="speed"), ValueError, "score 'speed'"),
    (dict(only="succeeded"), ValueError, "needs a 'success' scalar"),
    (dict(start=30), ValueError, "start=30 frames is past the end"),
    (dict(stop=99), ValueError, "stop=99 frames is past the end"),
    (dict(start=5, stop=5), ValueError, "selects no frames"),
    (dict(start=500, stop=600, unit="step"), ValueError, "no frame of the run's 24 frames"),
    (dict(clip=7), ValueError, r"clip 7 is not in this run; its clips are \[0\]"),
    (dict(global_view="left"), ValueError, "recorded without a global camera"),
    (dict(episode=9), ValueError, "has an episode 9"),
    (dict(columns=64, gap=0, max_width=8, max_height=8, scale=1.0), ValueError, "cannot fit"),
]


@pytest.mark.parametrize("fields, exc, match", BAD_LAYOUTS)
@pytest.mark.parametrize("suffix", [".mp4", ".gif", ""])
def test_bad_layout_for_this_run_writes_nothing(pristine, tmp_path, fields, exc, match, suffix):
    out = tmp_path / "out"
    out.mkdir()
    before = _listing(tmp_path)
    with pytest.raises(exc, match=match):
        render(pristine, Layout(**fields), out / f"video{suffix}")
    assert _listing(tmp_path) == before


def test_start_after_stop_is_refused_in_layout_and_dict(pristine, tmp_path):
    with pytest.raises(ValueError, match="start=10 is after stop=5"):
        render(pristine, {"start": 10, "stop": 5}, tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="start=10 is after stop=5"):
        Layout(start=10, stop=5)
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    "out, exc, match",
    [
        ("missing/video.mp4", ValueError, "does not exist"),
        ("afile.txt/video.mp4", ValueError, "is not a folder"),
        ("video.avi", ValueError, r"unknown suffix '\.avi'; expected \.mp4, \.gif"),
        ("video.png", ValueError, r"unknown suffix '\.png'.*contact_sheet"),
        ("full", FileExistsError, r"holds files that are not frames of an earlier render \(keep"),
        ("plainfile", ValueError, "PNG output folder '.*plainfile' is a file"),
        ("folder_as_file", ValueError, "is a folder"),
    ],
)
def test_bad_outputs(pristine, tmp_path, out, exc, match):
    (tmp_path / "afile.txt").write_text("x")
    (tmp_path / "plainfile").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    (tmp_path / "folder_as_file.mp4").mkdir()
    if out == "folder_as_file":
        out = "folder_as_file.mp4"
    before = _listing(tmp_path)
    with pytest.raises(exc, match=match):
        render(pristine, Layout(), tmp_path / out)
    assert _listing(tmp_path) == before


def test_output_folder_not_writable(pristine, tmp_path):
    if os.geteuid() == 0:
        folder = Path("/sys")  # root may write anywhere chmod allows; sysfs refuses new files
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    with pytest.raises(ValueError, match="is not writable"):
        render(pristine, Layout(), folder / "video.mp4")


@pytest.mark.parametrize("name", ["v.mp4", "v.gif", "sheet.png"])
def test_an_existing_output_is_refused_unless_overwrite(pristine, tmp_path, name):
    # render and contact_sheet replaced an existing file silently (overwrite=True by default),
    # unlike pack, demo and the recorder
    out = tmp_path / name
    out.write_bytes(b"old")

    def write(**kw):
        if name == "sheet.png":
            return contact_sheet(pristine, out, Layout(stop=2), **kw)
        return render(pristine, Layout(stop=2), out, **kw)

    with pytest.raises(FileExistsError, match=r"exists; pass overwrite=True \(--overwrite\)"):
        write()
    assert out.read_bytes() == b"old" and _listing(tmp_path) == [name]
    write(overwrite=True)
    assert out.stat().st_size > 3 and _listing(tmp_path) == [name]


def test_a_png_folder_of_an_earlier_render_is_replaced_only_with_overwrite(pristine, tmp_path):
    out = tmp_path / "frames"
    render(pristine, Layout(label=None), out)  # T frames
    with pytest.raises(FileExistsError, match="holds an earlier render's frames .*--overwrite"):
        render(pristine, Layout(stop=3, label=None), out)
    assert len(list(out.iterdir())) == T
    render(pristine, Layout(stop=3, label=None), out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]
    (out / "notes.txt").write_text("mine")  # never removed, so the folder is refused
    with pytest.raises(FileExistsError, match=r"not frames of an earlier render \(notes.txt\)"):
        render(pristine, Layout(stop=2, label=None), out, overwrite=True)
    assert len(list(out.iterdir())) == 4


def test_per_env_render_refuses_or_removes_an_earlier_per_env_render(pristine, tmp_path):
    # re-rendering fewer envs left the earlier render's other env files beside the new ones
    each = tmp_path / "each"
    render_envs(pristine, each, suffix=".gif", workers=2)
    assert sorted(p.name for p in each.iterdir()) == [f"env_{e:04d}.gif" for e in range(N)]
    (each / "notes.txt").write_text("mine")
    (each / "env_final.gif").write_text("mine")  # not a name the template gives an env
    (each / "env_0009.mp4").write_text("earlier")  # the same pattern in the other format
    mtimes = {p.name: p.stat().st_mtime_ns for p in each.iterdir()}
    with pytest.raises(FileExistsError) as info:
        render_envs(pristine, each, Layout(envs="0,1"), suffix=".gif")
    assert str(info.value) == (
        f"{str(each)!r} holds per-env files of an earlier render (env_0000.gif, env_0001.gif, "
        "env_0002.gif, env_0003.gif and 3 more); pass overwrite=True (--overwrite) to remove "
        "them and render anew (other files stay), or choose a new folder"
    )
    assert {p.name: p.stat().st_mtime_ns for p in each.iterdir()} == mtimes
    render_envs(pristine, each, Layout(envs="0,1"), suffix=".gif", overwrite=True)
    assert sorted(p.name for p in each.iterdir()) == [
        "env_0000.gif",
        "env_0001.gif",
        "env_final.gif",
        "notes.txt",
    ]


@pytest.mark.parametrize(
    ("name", "first", "decoys"),
    [
        ("env_{env:b}", "env_0.gif", ["env_2.gif", "env_b.gif"]),
        ("e{env:#x}", "e0x0.gif", ["e0x.gif", "e0xg.gif", "e5.gif"]),
        ("{run} {env:+04d}", "run_000.gif", ["run__000.gif", "run_00x.gif"]),
        ("v{env:0<3}", "v000.gif", ["v0001.gif", "v05.gif"]),
        ("{env:a^5x}", "aa0aa.gif", ["aa0a.gif", "aaga.gif"]),
    ],
)
def test_per_env_render_finds_earlier_outputs_of_a_name_with_a_format_spec(
    pristine, tmp_path, name, first, decoys
):
    # the template was matched by formatting the env id 987654321: a binary, hex, signed or
    # left-aligned id never showed those digits, so an earlier render's files went unseen
    each = tmp_path / "each"
    render_envs(pristine, each, Layout(envs="0-5"), suffix=".gif", name=name, workers=2)
    earlier = sorted(p.name for p in each.iterdir())
    assert len(earlier) == N and first in earlier
    for d in [*decoys, "notes.txt"]:  # names the template gives no env id: never touched
        (each / d).write_text("mine")
    with pytest.raises(FileExistsError, match="holds per-env files of an earlier render") as info:
        render_envs(pristine, each, Layout(envs="0,1"), suffix=".gif", name=name)
    assert f"({earlier[0]}, {earlier[1]}, {earlier[2]}, {earlier[3]} and 2 more)" in str(info.value)
    new = render_envs(pristine, each, Layout(envs="2"), suffix=".gif", name=name, overwrite=True)
    assert sorted(p.name for p in each.iterdir()) == sorted([new[0].name, *decoys, "notes.txt"])


def test_per_env_name_whose_env_spec_is_not_an_integer_one_is_refused(pristine, tmp_path):
    for spec in (".1f", "e", "%", "c"):
        with pytest.raises(ValueError, match=rf"name template 'e{{env:{re.escape(spec)}}}': "):
            render_envs(pristine, tmp_path / "each", name=f"e{{env:{spec}}}", suffix=".gif")
    assert list(tmp_path.iterdir()) == []


def test_cli_render_and_sheet_refuse_an_existing_output_unless_overwrite(pristine, tmp_path):
    from click.testing import CliRunner

    from envreel.tools.cli import main

    runner = CliRunner()
    for args in (["render", pristine], ["sheet", pristine]):
        out = str(tmp_path / ("v.gif" if args[0] == "render" else "s.png"))
        assert runner.invoke(main, [*args, out]).exit_code == 0
        before = Path(out).read_bytes()
        res = runner.invoke(main, [*args, out, "--envs", "0"])
        assert res.exit_code == 1 and "exists; pass overwrite=True (--overwrite)" in res.output
        assert Path(out).read_bytes() == before
        res = runner.invoke(main, [*args, out, "--envs", "0", "--overwrite"])
        assert res.exit_code == 0 and Path(out).read_bytes() != before
    each = str(tmp_path / "each")
    assert runner.invoke(main, ["render", pristine, each, "--per-env", "--per-env-format", "gif"])
    res = runner.invoke(main, ["render", pristine, each, "--per-env", "--envs", "0"])
    assert res.exit_code == 1 and "holds per-env files of an earlier render" in res.output
    res = runner.invoke(main, ["render", pristine, each, "--per-env", "--envs", "0", "--overwrite"])
    assert res.exit_code == 0 and sorted(os.listdir(each)) == ["env_0000.mp4"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(crf=60), "crf must be"),
        (dict(crf=1.5), "crf must be"),
        (dict(preset="warp"), "preset must be one of"),
        (dict(threads=-1), "threads must be"),
        (dict(gif_max_side=1), "gif_max_side"),
    ],
)
def test_bad_encoder_options(pristine, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        render(pristine, Layout(), tmp_path / "v.mp4", **kwargs)
    assert _listing(tmp_path) == []


def test_bad_layout_arguments(pristine, tmp_path):
    with pytest.raises(TypeError, match="layout must be a Layout"):
        render(pristine, 42, tmp_path / "v.mp4")
    with pytest.raises(ValueError, match="unknown layout preset 'nope'"):
        render(pristine, "nope", tmp_path / "v.mp4")
    with pytest.raises(ValueError, match="unknown layout field 'colour'"):
        render(pristine, {"colour": "red"}, tmp_path / "v.mp4")
    with pytest.raises(ValueError, match="out is required"):
        render(pristine, Layout())
    with pytest.raises(TypeError, match="run must be a Run"):
        render(3.5, Layout(), tmp_path / "v.mp4")
    assert _listing(tmp_path) == []


def test_not_a_store(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(EnvreelError):
        render(tmp_path / "empty.zarr", Layout(), tmp_path / "v.mp4")
    assert _listing(tmp_path) == ["empty.zarr"]


def test_render_envs_and_contact_sheet_bad_input(pristine, tmp_path):
    with pytest.raises(ValueError, match="suffix must be"):
        render_envs(pristine, tmp_path / "d", suffix=".avi")
    with pytest.raises(ValueError, match="workers must be"):
        render_envs(pristine, tmp_path / "d", workers=0)
    with pytest.raises(ValueError, match="env ids"):
        render_envs(pristine, tmp_path / "d", Layout(envs="40"))
    with pytest.raises(ValueError, match="gives the same file name"):
        render_envs(pristine, tmp_path / "d", name="same")
    with pytest.raises(ValueError, match="num_times must be"):
        contact_sheet(pristine, tmp_path / "s.png", num_times=0)
    with pytest.raises(ValueError, match="unknown field"):
        contact_sheet(pristine, tmp_path / "s.png", Layout(label="{nope}"))
    assert _listing(tmp_path) == []  # not even the folder


# ---- encoder failures --------------------------------------------------------------------------
def test_missing_ffmpeg_has_an_install_hint(pristine, tmp_path, monkeypatch):
    import imageio_ffmpeg

    monkeypatch.setattr(shutil, "which", lambda name: None)

    def gone():
        raise RuntimeError("no ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", gone)
    with pytest.raises(RenderError, match="pip install imageio-ffmpeg"):
        render(pristine, Layout(), tmp_path / "v.mp4")
    assert _listing(tmp_path) == []
    render(pristine, Layout(stop=3), tmp_path / "v.gif")  # GIFs need no ffmpeg


def test_failing_ffmpeg_reports_exit_code_and_leaves_nothing(pristine, tmp_path, monkeypatch):
    import envreel.render._encode as enc

    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264 (fake)' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(enc, "find_ffmpeg", lambda: str(fake))
    with pytest.raises(RenderError, match=r"exit code 3.*Unknown encoder libx264 \(fake\)"):
        render(pristine, Layout(), tmp_path / "v.mp4")
    assert _listing(tmp_path) == ["bin", "bin/ffmpeg"]


# ---- corrupt stores ----------------------------------------------------------------------------
def _frames_chunk(store, block):
    return corrupt_chunk(store, "env/frames", (block, 0, 0, 0, 0))


def test_corrupt_frame_chunk_names_array_and_chunk(store, tmp_path):
    _frames_chunk(store, 1)
    with pytest.raises(CorruptChunkError) as info:
        render(store, Layout(label=None), tmp_path / "v.mp4")
    err = info.value
    assert err.array == "env/frames" and err.chunk[0] == 1
    assert "env/frames" in str(err) and f"chunk {err.chunk}" in str(err)
    assert _listing(tmp_path) == ["copy.zarr"] + [
        p for p in _listing(tmp_path) if p.startswith("copy.zarr/")
    ]
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))


def test_skip_bad_draws_a_placeholder_and_warns(store, tmp_path):
    _frames_chunk(store, 1)
    with pytest.raises(CorruptChunkError) as info:
        render(store, Layout(label=None), tmp_path / "probe.mp4")
    bad_env = info.value.chunk[1]
    lay = Layout(columns=3, label=None, border=0)
    with pytest.warns(UserWarning, match=r"damaged object .*'env/frames'") as rec:
        res = render(store, lay, tmp_path / "frames", skip_bad=True)
    assert any(f"env {bad_env}" in str(w.message) for w in rec)
    assert any("env/frames" in m for m in res.warnings)
    frames = read_pngs(tmp_path / "frames")
    assert frames.shape[0] == T
    g = compute_geometry(lay, num_tiles=N, env_shape=(H, W))
    ph = placeholder_tile((H, W))
    for t in range(T):
        for env in range(N):
            got = tile(frames[t], g, env)
            if env == bad_env and B <= t < 2 * B:
                assert np.array_equal(got, ph)
            else:
                assert np.array_equal(got, env_frame(env, t, H, W)), (t, env)


def _damage_warnings(rec) -> list[str]:
    return [str(w.message) for w in rec if "env/frames" in str(w.message)]


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_skip_bad_warns_once_per_damaged_shard_naming_its_envs(store, tmp_path, damage):
    # a shard holds every env's chunk of a block: it warned once per env (6 lines here)
    shard = Path(store) / "env/frames/c/1/0/0/0/0"
    if damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:100])
    else:
        shard.unlink()
    held = "object env/frames/c/1/0/0/0/0 (it holds envs 0..5, frames 8..15)"
    lay = Layout(label=None)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = render(store, lay, tmp_path / "a.gif", skip_bad=True)
    [msg] = _damage_warnings(rec)
    assert msg.startswith(
        f"skipping damaged {held} of 'env/frames': envs 0..5, frames 8..15 shown as "
        "placeholder tiles (first error: env/frames chunk (1, 0, 0, 0, 0): "
    ), msg
    assert [m for m in res.warnings if "env/frames" in m] == [msg]
    # one output per env: still one warning, naming every env the outputs skipped
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        render_envs(store, tmp_path / "each", lay, suffix=".gif", workers=3, skip_bad=True)
    [msg] = _damage_warnings(rec)
    assert msg.startswith(f"skipping damaged {held} of 'env/frames': envs 0..5, frames 8..15 ")


def test_skip_bad_names_the_one_env_of_a_shard_that_cannot_be_read(store, tmp_path):
    corrupt_chunk(store, "env/frames", (1, 0, 0, 0, 0))  # the bytes of env 2's chunk
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        render(store, Layout(label=None), tmp_path / "a.gif", skip_bad=True)
    [msg] = _damage_warnings(rec)
    assert msg.startswith(
        "skipping damaged object env/frames/c/1/0/0/0/0 (it holds envs 0..5, frames 8..15) of "
        "'env/frames': env 2, frames 8..15 shown as placeholder tiles (first error: "
        "env/frames chunk (1, 2, 0, 0, 0): "
    ), msg


def test_a_chunk_a_shard_index_marks_never_written_is_damage_not_black_tiles(store, tmp_path):
    # validate named it, but render read zarr's fill value and drew env 2 black for frames 8..15
    mark_inner_chunks_empty(Path(store) / "env/frames/c/1/0/0/0/0", [2])
    with pytest.raises(CorruptChunkError, match="marks this env's chunk never written") as info:
        render(store, Layout(label=None), tmp_path / "a.gif")
    assert (info.value.array, info.value.chunk) == ("env/frames", (1, 2, 0, 0, 0))
    assert not list(tmp_path.glob("*.gif")) and not list(tmp_path.glob(".*"))
    lay = Layout(columns=3, label=None, border=0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        render(store, lay, tmp_path / "frames", skip_bad=True)
    [msg] = _damage_warnings(rec)
    assert msg.startswith(
        "skipping damaged object env/frames/c/1/0/0/0/0 (it holds envs 0..5, frames 8..15) of "
        "'env/frames': env 2, frames 8..15 shown as placeholder tiles (first error: "
        "env/frames chunk (1, 2, 0, 0, 0): the index of shard (1, 0, 0, 0, 0) marks this env's "
        "chunk never written, although its frames [8, 16) are committed"
    ), msg
    frames = read_pngs(tmp_path / "frames")
    g = compute_geometry(lay, num_tiles=N, env_shape=(H, W))
    for t in range(T):
        for env in range(N):
            want = placeholder_tile((H, W)) if env == 2 and B <= t < 2 * B else None
            want = env_frame(env, t, H, W) if want is None else want
            assert np.array_equal(tile(frames[t], g, env), want), (t, env)


def test_cli_skip_bad_prints_one_line_per_damaged_shard(store, tmp_path):
    from click.testing import CliRunner

    from envreel.tools.cli import main

    shard = Path(store) / "env/frames/c/0/0/0/0/0"
    shard.write_bytes(shard.read_bytes()[:100])
    for extra in ([], ["--per-env", "--per-env-format", "gif"]):
        out = str(tmp_path / ("each" if extra else "a.gif"))
        res = CliRunner().invoke(main, ["render", store, out, "--skip-bad", *extra])
        assert res.exit_code == 0, res.output
        lines = [ln for ln in res.output.splitlines() if "env/frames" in ln]
        assert len(lines) == 1 and lines[0].startswith(
            "warning: skipping damaged object env/frames/c/0/0/0/0/0 (it holds envs 0..5, "
            "frames 0..7) of 'env/frames': envs 0..5, frames 0..7 shown as placeholder tiles"
        ), res.output


def test_deleted_and_truncated_chunks(store, tmp_path):
    obj = Path(store) / "env/frames/c/2/0/0/0/0"
    obj.unlink()
    with pytest.raises(CorruptChunkError, match="env/frames") as info:
        render(store, Layout(), tmp_path / "a.mp4")
    assert info.value.array == "env/frames"
    with pytest.warns(UserWarning, match="placeholder tile"):
        res = render(store, Layout(), tmp_path / "b.mp4", skip_bad=True)
    assert res.frames == (T,) and res.warnings
    obj = Path(store) / "env/frames/c/0/0/0/0/0"
    obj.write_bytes(obj.read_bytes()[: obj.stat().st_size // 2])
    with pytest.raises(CorruptChunkError, match="env/frames"):
        render(store, Layout(), tmp_path / "c.gif")
    assert sorted(p.name for p in tmp_path.glob("*.*") if p.suffix != ".zarr") == ["b.mp4"]


def test_per_env_render_that_fails_keeps_what_it_finished_and_says_so(store, tmp_path):
    from click.testing import CliRunner

    from envreel.tools.cli import main

    corrupt_chunk(store, "env/frames", (1, 0, 0, 0, 0))  # the bytes of env 2's chunk
    with pytest.raises(CorruptChunkError) as info:
        render_envs(store, tmp_path / "each", suffix=".gif", workers=1)
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == [
        "env_0000.gif",
        "env_0001.gif",
    ]
    [note] = info.value.__notes__
    assert note.startswith("2 of 6 outputs were finished before this and kept in")
    assert "env_0000.gif, env_0001.gif" in note
    # in parallel: whatever finished is whole, named in the note, and nothing else is left
    with pytest.raises(CorruptChunkError) as info:
        render_envs(store, tmp_path / "par", suffix=".gif", workers=3)
    kept = sorted(p.name for p in (tmp_path / "par").iterdir())
    assert "env_0002.gif" not in kept and not any(n.startswith(".") for n in kept)
    assert all(n in info.value.__notes__[0] for n in kept[:4])
    assert info.value.__notes__[0].startswith(f"{len(kept)} of 6 outputs")
    res = CliRunner().invoke(
        main, ["render", store, str(tmp_path / "cli"), "--per-env", "--per-env-format", "gif"]
    )
    assert res.exit_code == 1 and "outputs were finished before this and kept" in res.output
    assert f"--skip-bad draws damaged chunks as placeholder tiles; `envreel validate {store}`" in (
        res.output
    )


def test_per_env_render_that_finishes_nothing_leaves_no_folder(store, tmp_path):
    shard = Path(store) / "env/frames/c/0/0/0/0/0"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # every env's first block
    for workers in (1, 3):
        with pytest.raises(CorruptChunkError) as info:
            render_envs(store, tmp_path / f"each{workers}", suffix=".gif", workers=workers)
        assert not hasattr(info.value, "__notes__")
        assert not (tmp_path / f"each{workers}").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made stays
    with pytest.raises(CorruptChunkError):
        render_envs(store, tmp_path / "mine", suffix=".gif")
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_corrupt_scalar_chunk_in_labels(store, tmp_path):
    corrupt_chunk(store, "env/reward", (1, 0))
    lay = Layout(label="{env} {reward:.2f}")
    with pytest.raises(CorruptChunkError) as info:
        render(store, lay, tmp_path / "v.mp4")
    assert info.value.array == "env/reward" and "env/reward" in str(info.value)
    with pytest.warns(UserWarning, match="env/reward"):
        res = render(store, lay, tmp_path / "v.mp4", skip_bad=True)
    assert res.frames == (T,)
    # and for ranking: the corrupt block's frames are left out of the mean
    with pytest.warns(UserWarning, match="env/reward"):
        res = render(store, Layout(top_k=1, label=None), tmp_path / "t.mp4", skip_bad=True)
    assert res.envs == (5,)


def test_corrupt_global_chunk_with_skip_bad(tmp_path):
    p = make_store(
        tmp_path / "g.zarr",
        num_envs=2,
        frames=16,
        shape=(H, W),
        block_frames=8,
        global_shape=(20, 30),
    )
    corrupt_chunk(p, "global/frames", (1, 0, 0, 0))
    lay = Layout(global_view="only", global_size=(20, 30), label=None)
    with pytest.raises(CorruptChunkError, match="global/frames"):
        render(p, lay, tmp_path / "v.mp4")
    with pytest.warns(UserWarning, match="global/frames"):
        render(p, lay, tmp_path / "g", skip_bad=True)
    frames = read_pngs(tmp_path / "g")
    assert np.array_equal(frames[12], placeholder_tile((20, 30)))


# ---- hostile stores and names ------------------------------------------------------------------
def test_output_names_from_store_contents_stay_inside(tmp_path):
    from envreel.schemas import Block, RunSpec, create_run

    spec = RunSpec(
        num_envs=2, env_frame_shape=(16, 16), fps=10, metadata={"name": "../../../../tmp/escaped"}
    )
    w = create_run(str(tmp_path / "evil.zarr"), spec)
    w.append(Block.empty(spec, 4))
    w.close()
    out = tmp_path / "out"
    paths = render_envs(tmp_path / "evil.zarr", out, name="{run}_{env}", suffix=".gif", workers=1)
    for p in paths:
        assert p.parent == out.resolve() and not p.name.startswith(".")
    assert sorted(p.name for p in out.iterdir()) == [
        "_.._.._.._tmp_escaped_0.gif",
        "_.._.._.._tmp_escaped_1.gif",
    ]
    paths = render_envs(tmp_path / "evil.zarr", out, name="../../x{env}", suffix=".gif", workers=1)
    assert all(p.parent == out.resolve() for p in paths)


def test_safe_filename():
    from envreel.render._encode import safe_filename, safe_join

    assert safe_filename("env_0007.mp4") == "env_0007.mp4"
    for hostile in ("../x", "/etc/passwd", "..", ".", "", "a/../../b", "\x00", "..\\..\\w"):
        name = safe_filename(hostile)
        assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
        assert not name.startswith(".")
        assert safe_join("/tmp/base", hostile).parent == Path("/tmp/base").resolve()


def test_label_templates_cannot_reach_attributes(pristine, tmp_path):
    for text in ("{env.__class__}", "{reward.__class__.__mro__}", "{env[0]}", "{0}"):
        with pytest.raises(ValueError, match="not allowed"):
            render(pristine, Layout(label="{env}").to_dict() | {"label": text}, tmp_path / "v.mp4")
    assert _listing(tmp_path) == []


# ---- import hygiene ----------------------------------------------------------------------------
def test_import_does_not_load_torch_or_capture():
    code = (
        "import sys, envreel.render\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.') "
        "or m.startswith('envreel.capture')]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_contact_sheet_with_a_corrupt_chunk(store, tmp_path):
    _frames_chunk(store, 1)
    lay = Layout(envs="0-5", label=None, border=0)
    with pytest.raises(CorruptChunkError, match="env/frames"):
        contact_sheet(store, tmp_path / "s.png", lay, num_times=3)
    assert not (tmp_path / "s.png").exists()
    with pytest.warns(UserWarning, match="env/frames"):
        contact_sheet(store, tmp_path / "s.png", lay, num_times=3, skip_bad=True)
    assert (tmp_path / "s.png").exists()


# ---- fuzzing: damaged chunks only ever give envreel's documented errors ----------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_store(
        tmp_path_factory.mktemp("fuzz") / "tiny.zarr",
        num_envs=3,
        frames=12,
        shape=(16, 16),
        block_frames=4,
    )


def _chunk_objects(store: str) -> list[str]:
    root = Path(store)
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file()
        and "/c/" in str(p.relative_to(root)).replace("\\", "/") + "/"
        and p.name != "zarr.json"
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_damaged_chunks_raise_only_envreel_errors(tiny, data):
    import tempfile

    objects = _chunk_objects(tiny)
    target = data.draw(st.sampled_from(objects), label="object")
    action = data.draw(st.sampled_from(["flip", "truncate", "delete", "garbage"]), label="action")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.zarr"
        shutil.copytree(tiny, store)
        obj = store / target
        raw = obj.read_bytes()
        if action == "flip":
            pos = data.draw(st.integers(0, max(0, len(raw) - 1)), label="pos")
            obj.write_bytes(raw[:pos] + bytes([raw[pos] ^ 0xFF]) + raw[pos + 1 :])
        elif action == "truncate":
            obj.write_bytes(raw[: data.draw(st.integers(0, max(0, len(raw) - 1)), label="n")])
        elif action == "delete":
            obj.unlink()
        else:
            obj.write_bytes(data.draw(st.binary(max_size=64), label="bytes"))
        lay = Layout(label="{env} {reward:.2f} {step} {episode}", border=1)
        try:
            render(store, lay, Path(tmp) / "a.gif")
        except EnvreelError:
            pass  # CorruptChunkError or StoreFormatError, naming what is broken
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = render(store, lay, Path(tmp) / "b.gif", skip_bad=True)  # never raises
        assert res.frames == (12,)
        assert not list(Path(tmp).glob(".*partial*"))
