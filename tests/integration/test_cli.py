"""The envreel command through click's CliRunner: every command, its help, its exit codes."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from store_helpers import small_spec, write_run

from envreel.tools.cli import Declared, main

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def store(tmp_path):
    url = tmp_path / "run.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8, 5))
    return url


def _commands():
    return sorted(main.commands)


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for name in [None, *_commands()]:
        args = ["-h"] if name is None else [name, "-h"]
        res = runner.invoke(main, args)
        assert res.exit_code == 0, (name, res.output)
        assert "Example:" in res.output and "envreel " in res.output.split("Example:")[1], name


def test_every_command_is_in_the_readme():
    text = README.read_text()
    for name in _commands():
        assert re.search(rf"envreel {name}\b", text), f"`envreel {name}` is not in README.md"


def test_version():
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and re.search(r"envreel, version \d", res.output)


def test_info_text_and_json(store):
    runner = CliRunner()
    res = runner.invoke(main, ["info", str(store)])
    assert res.exit_code == 0, res.output
    assert "4 (frames 16×12 px)" in res.output and "21 at 30 fps" in res.output
    # last frames and steps, as inclusive as the env ids (a clip's stops are exclusive)
    clip = json.loads(runner.invoke(main, ["info", str(store), "--json"]).output)["clips"][0]
    last_frame, last_step = clip["stop_frame"] - 1, clip["stop_step"] - 1
    assert f"#0: frames 0..{last_frame} (steps {clip['start_step']}..{last_step})\n" in res.output
    res = runner.invoke(main, ["info", str(store), "--json"])
    facts = json.loads(res.output)
    assert facts["num_envs"] == 4 and facts["num_frames"] == 21 and facts["format_version"] == "1.1"


def test_info_shows_env_ids_compactly(tmp_path):
    runner = CliRunner()
    url = tmp_path / "sub.zarr"
    write_run(url, small_spec(env_ids=[0, 256, 512, 768]), block_sizes=(8,))
    res = runner.invoke(main, ["info", str(url)])
    assert res.exit_code == 0, res.output
    assert "env ids      0,256,512,768\n" in res.output
    facts = json.loads(runner.invoke(main, ["info", str(url), "--json"]).output)
    assert facts["env_ids"] == "0,256,512,768"

    url = tmp_path / "rank1.zarr"
    write_run(url, small_spec(rank=1, world_size=2, env_id_offset=4), block_sizes=(8,))
    assert "env ids      4-7\n" in runner.invoke(main, ["info", str(url)]).output

    url = tmp_path / "many.zarr"
    spec = small_spec(num_envs=20, env_ids=list(range(0, 400, 20)))
    write_run(url, spec, block_sizes=(8,))
    res = runner.invoke(main, ["info", str(url)])
    assert "env ids      0,20,40,60,80,100,120,...,380 (20 envs)\n" in res.output
    facts = json.loads(runner.invoke(main, ["info", str(url), "--json"]).output)
    assert facts["env_ids"] == ",".join(str(i) for i in range(0, 400, 20))  # all of them


def test_validate_ok_and_broken(store):
    runner = CliRunner()
    res = runner.invoke(main, ["validate", str(store)])
    assert res.exit_code == 0 and "valid" in res.output
    (store / "env/reward/c/1/0").unlink()
    res = runner.invoke(main, ["validate", str(store)])
    assert res.exit_code == 1
    assert "env/reward: chunk (1, 0): missing" in res.output
    res = runner.invoke(main, ["validate", str(store), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc["valid"] is False and doc["problems"][0]["where"] == "env/reward"


def test_library_errors_are_one_line_exit_1(tmp_path):
    res = CliRunner().invoke(main, ["info", str(tmp_path / "missing.zarr")])
    assert res.exit_code == 1
    assert res.output.strip().startswith("Error: no store at")
    assert len(res.output.strip().splitlines()) == 1


def test_render_mp4_and_flags(store, tmp_path):
    out = tmp_path / "grid.mp4"
    res = CliRunner().invoke(
        main,
        [
            "render",
            str(store),
            str(out),
            "--envs",
            "0-2",
            "--columns",
            "3",
            "--label",
            "{env} r={reward:.1f}",
            "--tile-size",
            "24x32",
            "--no-markers",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(out)
    import av

    with av.open(str(out)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 21
    assert (s.codec_context.width, s.codec_context.height) == (3 * 32 + 2 * 2, 24)


def test_render_bad_option_exits_2(store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main, ["render", str(store), str(tmp_path / "x.mp4"), "--global-view", "sideways"]
    )
    assert res.exit_code == 2, res.output
    assert "sideways" in res.output
    res = runner.invoke(main, ["render", str(store), str(tmp_path / "x.mp4"), "--columns", "two"])
    assert res.exit_code == 2
    res = runner.invoke(main, ["render", str(store), str(tmp_path / "x.mp4"), "--bogus"])
    assert res.exit_code == 2
    assert not (tmp_path / "x.mp4").exists()


def test_render_unknown_env_exits_1_before_writing(store, tmp_path):
    res = CliRunner().invoke(main, ["render", str(store), str(tmp_path / "x.mp4"), "--envs", "9"])
    assert res.exit_code == 1
    assert "9" in res.output
    assert not (tmp_path / "x.mp4").exists()


def test_render_layout_file_and_preset(store, tmp_path):
    lay = tmp_path / "l.json"
    lay.write_text(json.dumps({"envs": "1,3", "columns": 1, "label": None}))
    out = tmp_path / "frames"
    res = CliRunner().invoke(
        main, ["render", str(store), str(out) + "/", "--layout", str(lay), "--stride", "7"]
    )
    assert res.exit_code == 0, res.output
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3
    from PIL import Image

    from envreel.schemas import open_run

    img = np.asarray(Image.open(pngs[1]).convert("RGB"))
    run = open_run(store)
    want = run.env_frames([1, 3], 7, 8)[0]
    h = run.env_frame_shape[0]
    np.testing.assert_array_equal(img[:h, : run.env_frame_shape[1]], want[0])
    np.testing.assert_array_equal(img[h + 2 : 2 * h + 2, : run.env_frame_shape[1]], want[1])
    res = CliRunner().invoke(
        main, ["render", str(store), str(tmp_path / "t.gif"), "--preset", "top16", "--fps", "10"]
    )
    assert res.exit_code == 0, res.output


def test_render_per_env(store, tmp_path):
    res = CliRunner().invoke(
        main, ["render", str(store), str(tmp_path / "each"), "--per-env", "--envs", "0,2"]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["env_0000.mp4", "env_0002.mp4"]


def test_render_per_env_gifs_and_an_out_that_is_a_file_name(store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main,
        ["render", str(store), str(tmp_path / "each"), "--per-env", "--per-env-format", "gif"],
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert names and all(n.endswith(".gif") for n in names)
    res = runner.invoke(main, ["render", str(store), str(tmp_path / "pe.gif"), "--per-env"])
    assert res.exit_code == 2 and "OUT must be a folder name" in res.output
    assert "'" + str(tmp_path / "pe.gif") + "'" in res.output
    res = runner.invoke(
        main, ["render", str(store), str(tmp_path / "x.mp4"), "--per-env-format", "gif"]
    )
    assert res.exit_code == 2 and "needs --per-env" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["each", "run.zarr"]


def test_sheet(store, tmp_path):
    out = tmp_path / "s.png"
    res = CliRunner().invoke(main, ["sheet", str(store), str(out), "--envs", "0-1", "--times", "3"])
    assert res.exit_code == 0, res.output
    from PIL import Image

    w, h = Image.open(out).size
    assert w >= 3 * 16 and h >= 2 * 12
    res = CliRunner().invoke(main, ["sheet", str(store), str(tmp_path / "s.jpg")])
    assert res.exit_code == 1 and ".png" in res.output


# ---- flags read the library's declarations -------------------------------------------------------
def _param(command: str, flag: str):
    for p in main.commands[command].params:
        if flag in getattr(p, "opts", ()):
            return p
    raise AssertionError(f"envreel {command} has no {flag}")


def _same_as_declared(param, decl, extra=()):
    t = param.type
    assert isinstance(t, Declared) and t.spec == decl, param.opts
    if decl.kind == "choice":
        assert tuple(t.inner.choices) == (*decl.choices, *extra), param.opts
    elif decl.kind in ("int", "number"):
        assert (t.inner.min, t.inner.max) == (decl.minimum, decl.maximum), param.opts
        assert t.inner.min_open == decl.exclusive_minimum


def test_every_flag_mapped_to_a_library_option_has_its_choices_and_bounds():
    from envreel._options import spec, specs
    from envreel.render import PRESETS, Layout
    from envreel.render._encode import X264_PRESETS, EncodeOptions
    from envreel.render.api import SheetOptions
    from envreel.render.layout import ONLY_ALIASES

    mapped = {
        ("render", "--crf"): spec(EncodeOptions, "crf"),
        ("render", "--speed"): spec(EncodeOptions, "preset"),
        ("sheet", "--times"): spec(SheetOptions, "num_times"),
        ("sheet", "--scale"): spec(Layout, "scale"),
    }
    for name, decl in specs(Layout).items():
        if decl.kind != "bool":
            mapped[("render", "--" + name.replace("_", "-"))] = decl
    for (command, flag), decl in mapped.items():
        extra = tuple(ONLY_ALIASES) if flag == "--only" else ()
        _same_as_declared(_param(command, flag), decl, extra)
    assert spec(EncodeOptions, "preset").choices == X264_PRESETS  # all 9 x264 presets
    assert len(X264_PRESETS) == 9
    assert tuple(_param("render", "--preset").type.choices) == tuple(PRESETS)
    # every bool field is an on/off flag pair
    for name, decl in specs(Layout).items():
        if decl.kind == "bool":
            assert _param("render", "--" + name.replace("_", "-")).secondary_opts
    # the bounds the CLI used to restate differently now match the library
    assert (
        _param("sheet", "--times").type.inner.max,
        _param("sheet", "--scale").type.inner.min,
    ) == (
        256,
        0.01,
    )


def test_quiet_works_after_every_subcommand():
    for name in _commands():
        assert "--quiet" in _param(name, "--quiet").opts, name
    res = CliRunner().invoke(main, ["info", "--quiet", "--help"])
    assert res.exit_code == 0


def test_quiet_after_the_subcommand_sets_quiet(store, tmp_path, monkeypatch):
    import envreel.tools.cli as cli

    seen = []
    monkeypatch.setattr(
        cli, "_show_progress", lambda ctx: seen.append(ctx.find_root().obj) or False
    )
    out = tmp_path / "q.mp4"
    res = CliRunner().invoke(main, ["render", str(store), str(out), "--envs", "0", "--quiet"])
    assert res.exit_code == 0, res.output
    assert seen and seen[0]["quiet"] is True


@pytest.mark.parametrize("label", ["{nope}", "{env.__class__}", "{env[0]}", "{env!r}"])
def test_label_template_errors_are_usage_errors(store, tmp_path, label):
    res = CliRunner().invoke(
        main, ["render", str(store), str(tmp_path / "x.mp4"), "--label", label]
    )
    assert res.exit_code == 2, res.output
    error = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "label template" in error[0], res.output
    assert not (tmp_path / "x.mp4").exists()


def test_gif_downsize_warning_is_printed_once_without_a_python_location(store, tmp_path):
    out = tmp_path / "big.gif"
    res = CliRunner().invoke(
        main, ["render", str(store), str(out), "--envs", "0", "--tile-size", "1200x1200"]
    )
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if "downsized" in line]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("warning: GIF downsized from 1200×1200")
    assert "UserWarning" not in res.output and ".py:" not in res.output


def test_info_counts_an_error_repeated_block_after_block(store, monkeypatch):
    # a full disk repeats one error per block: 20 identical lines said less than one
    from envreel.schemas.reader import Run

    errors = ["OSError: [Errno 28] No space left on device"] * 20 + ["OSError: EIO"]
    monkeypatch.setattr(Run, "errors", property(lambda self: errors))
    out = CliRunner().invoke(main, ["info", str(store)]).output
    assert "errors       OSError: [Errno 28] No space left on device (×20)\n" in out
    assert "             OSError: EIO\n" in out
