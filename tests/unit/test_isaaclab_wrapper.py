"""Tests of the Isaac Lab recorder wrapper's pure parts: its config, torchrun variables, per-rank
store names, lazy imports. (Recording through stand-in envs: tests/integration.)"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import py_compile
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from envreel.capture import isaaclab as adapter
from envreel.capture.isaaclab import EnvCameraCfg, GlobalCameraCfg, RecordEnvs, RecorderCfg, _ranks
from envreel.capture.isaaclab import _wrapper as wrapper


def test_recorder_cfg_defaults() -> None:
    assert dataclasses.asdict(RecorderCfg()) == {
        "env_camera": "envreel_cam",
        "global_camera": None,
        "envs": None,
        "video_length": None,
        "video_interval": None,
        "step_offset": 0,
        "frame_stride": 1,
        "record_reset": True,
        "all_ranks": False,
        "fps": None,
        "quat_order": None,
        "block_frames": None,
        "max_queue_bytes": 512 * 2**20,
        "codec": "zstd",
        "on_full": "block",
        "on_error": "warn",
        "overwrite": False,
        "metadata": {},
        "on_clip": None,
    }
    assert RecorderCfg().env_camera == EnvCameraCfg().name
    assert wrapper.DEFAULT_GLOBAL_CAMERA == GlobalCameraCfg().name


def test_every_field_has_an_isaac_lab_style_docstring() -> None:
    """One docstring per field, ending "Defaults to <the default>."."""
    tree = ast.parse(inspect.getsource(RecorderCfg))
    body = tree.body[0].body
    documented = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr):
            documented[node.target.id] = " ".join(after.value.value.split())
    defaults = {f.name: getattr(RecorderCfg(), f.name) for f in dataclasses.fields(RecorderCfg)}
    assert set(documented) == set(defaults)
    for name, doc in documented.items():
        assert "Defaults to " in doc and doc.endswith("."), (name, doc)
        shown = doc.rsplit("Defaults to ", 1)[1][:-1]
        assert ast.literal_eval(shown) == defaults[name], (name, doc)


def test_recorder_cfg_accepts_camera_cfgs() -> None:
    cam = EnvCameraCfg(name="wrist", width=64, height=48)
    top = GlobalCameraCfg(name="top", eye=(5.0, 0.0, 5.0), lookat=(0.0, 0.0, 0.0))
    cfg = RecorderCfg(env_camera=cam, global_camera=top, video_length=10, video_interval=100)
    assert cfg.env_camera is cam and cfg.global_camera is top


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"env_camera": None}, TypeError, "RecorderCfg.env_camera must be a scene camera name"),
        ({"env_camera": "my cam"}, ValueError, "RecorderCfg.env_camera must be a Python"),
        ({"global_camera": 3}, TypeError, "RecorderCfg.global_camera must be None"),
        ({"global_camera": "envreel_cam"}, ValueError, "name the same camera 'envreel_cam'"),
        (
            {"video_length": 0},
            ValueError,
            r"RecorderCfg.video_length must be positive \(steps\), got 0",
        ),
        (
            {"video_interval": 10},
            ValueError,
            "RecorderCfg.video_interval=10 needs RecorderCfg.video_length",
        ),
        ({"video_length": 5, "video_interval": 3}, ValueError, "windows would overlap"),
        ({"frame_stride": 1.5}, TypeError, "frame_stride must be an int"),
        ({"step_offset": -1}, ValueError, "step_offset must be >= 0"),
        ({"record_reset": "yes"}, TypeError, "RecorderCfg.record_reset must be True or False"),
        ({"all_ranks": 1}, TypeError, "RecorderCfg.all_ranks must be True or False"),
        ({"fps": 0}, ValueError, "RecorderCfg.fps must be a positive finite number, got 0"),
        (
            {"quat_order": "wxzy"},
            ValueError,
            r"RecorderCfg.quat_order must be one of \(None, 'xyzw'",
        ),
        (
            {"block_frames": 0},
            ValueError,
            "RecorderCfg.block_frames must be between 1 and 4096, got 0",
        ),
        (
            {"max_queue_bytes": 1.5e9},
            TypeError,
            r"RecorderCfg.max_queue_bytes must be an int \(bytes\)",
        ),
        ({"codec": "lz4"}, ValueError, r"RecorderCfg.codec must be one of \('zstd'"),
        ({"on_full": "wait"}, ValueError, "RecorderCfg.on_full must be one of"),
        ({"on_error": "ignore"}, ValueError, "RecorderCfg.on_error must be one of"),
        ({"metadata": [1]}, TypeError, "RecorderCfg.metadata must be a dict"),
        ({"envs": []}, ValueError, "RecorderCfg.envs is empty; pass None to record every env"),
        ({"envs": [0, 3, 0, 3]}, ValueError, r"lists env\(s\) \[0, 3\] more than once"),
        ({"envs": [2, -1]}, ValueError, "RecorderCfg.envs must be env indices >= 0, got -1"),
        ({"envs": [True, 1]}, TypeError, "RecorderCfg.envs must hold ints, got True"),
        ({"envs": [0, 1.0]}, TypeError, "RecorderCfg.envs must hold ints, got 1.0"),
        ({"envs": "0-3"}, TypeError, "RecorderCfg.envs must be None or a sequence of env"),
        ({"envs": 3}, TypeError, "RecorderCfg.envs must be None or a sequence of env"),
    ],
)
def test_recorder_cfg_rejects_bad_values(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RecorderCfg(**kwargs)


def test_recorder_cfg_envs_are_normalised() -> None:
    assert RecorderCfg(envs=[5, 0, 2]).envs == (5, 0, 2)  # store order is the given order
    assert RecorderCfg(envs=range(3)).envs == (0, 1, 2)
    assert RecorderCfg(envs=np.array([4, 1], np.int64)).envs == (4, 1)
    assert all(type(v) is int for v in RecorderCfg(envs=np.arange(2)).envs)
    with pytest.raises(TypeError, match="must hold ints"):
        RecorderCfg(envs=np.array([True, False]))


def test_edited_recorder_cfg_is_validated_when_used() -> None:
    cfg = RecorderCfg()
    cfg.on_full = "sometimes"  # configclass-style mutation after construction
    env = types.SimpleNamespace(unwrapped=types.SimpleNamespace())
    with pytest.raises(ValueError, match="RecorderCfg.on_full"):
        RecordEnvs(env, "unused.zarr", cfg)


# ---------------------------------------------------------------------------------------------
# torchrun variables and per-rank stores
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (0, 1, 0)),
        ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}, (3, 4, 1)),
        ({"RANK": "", "WORLD_SIZE": ""}, (0, 1, 0)),
    ],
)
def test_ranks_from_torchrun_variables(environ: dict, expected: tuple) -> None:
    ranks = _ranks.read_ranks(environ)
    assert (ranks.rank, ranks.world_size, ranks.local_rank) == expected


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"RANK": "one"}, "RANK='one' must be an integer"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be >= 1"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 must be below WORLD_SIZE=2"),
        ({"LOCAL_RANK": "-1"}, "LOCAL_RANK='-1' must be >= 0"),
    ],
)
def test_malformed_torchrun_variables_are_named(environ: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _ranks.read_ranks(environ)


@pytest.mark.parametrize(
    ("url", "rank", "expected"),
    [
        ("runs/a.zarr", 1, "runs/a_rank1.zarr"),
        ("runs/a.zarr/", 0, "runs/a_rank0.zarr"),
        ("runs/exp", 2, "runs/exp_rank2"),
        ("a.zarr", 3, "a_rank3.zarr"),
        ("s3://bucket/runs/a.zarr", 1, "s3://bucket/runs/a_rank1.zarr"),
        ("memory://x.zarr", 5, "memory://x_rank5.zarr"),
        ("https://host/r.zarr?sig=1", 1, "https://host/r_rank1.zarr?sig=1"),
        (Path("/tmp/runs/a.zarr"), 1, Path("/tmp/runs/a_rank1.zarr")),
    ],
)
def test_rank_url(url, rank: int, expected) -> None:
    assert _ranks.rank_url(url, rank) == expected


def test_rank_url_needs_a_name() -> None:
    with pytest.raises(ValueError, match="cannot derive a per-rank store name"):
        _ranks.rank_url("memory://", 1)
    with pytest.raises(TypeError, match="needs a path or URL"):
        _ranks.rank_url(object(), 1)  # type: ignore[arg-type]


def test_auto_block_frames_fits_three_blocks() -> None:
    frame = 64 * 128 * 128 * 3  # 3.1 MB
    assert wrapper._auto_block_frames(frame, 256 * 2**20) == 16
    assert wrapper._auto_block_frames(frame, 2**30) == 32
    assert wrapper._auto_block_frames(64 * 360 * 480 * 3, 256 * 2**20) == 2
    assert wrapper._auto_block_frames(10**9, 2**20) == 1


# ---------------------------------------------------------------------------------------------
# wrapping and imports
# ---------------------------------------------------------------------------------------------


def test_refuses_an_env_that_is_not_isaac_lab_like() -> None:
    env = types.SimpleNamespace(unwrapped=types.SimpleNamespace(num_envs=4, step_dt=0.02))
    with pytest.raises(TypeError, match="env.unwrapped \\(SimpleNamespace\\) has no 'scene'"):
        RecordEnvs(env, "unused.zarr")
    with pytest.raises(TypeError, match="cfg must be a RecorderCfg, got dict"):
        RecordEnvs(env, "unused.zarr", {"video_length": 5})  # type: ignore[arg-type]


def test_public_names_include_the_wrapper() -> None:
    assert {"RecordEnvs", "RecorderCfg"} <= set(adapter.__all__)
    assert {"RecordEnvs", "RecorderCfg"} <= set(dir(adapter))
    for name in adapter.__all__:
        assert getattr(adapter, name).__doc__, name
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        adapter.Nope  # noqa: B018


def test_nothing_imports_isaaclab_torch_or_gymnasium_until_used() -> None:
    code = (
        "import sys\n"
        "import envreel.capture, envreel.capture.isaaclab as a\n"
        "heavy = ('isaaclab', 'torch', 'omni', 'gymnasium')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy]\n"
        "assert not bad, bad\n"
        "cfg = a.RecorderCfg(video_length=10, env_camera=a.EnvCameraCfg())\n"
        "assert a.RecordEnvs.__name__ == 'RecordEnvs'\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('isaaclab', 'torch', 'omni')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# the example script (needs Isaac Lab and a GPU to run; here: it compiles and parses)
# ---------------------------------------------------------------------------------------------


def test_example_script_compiles_and_asks_for_isaac_lab(monkeypatch, capsys) -> None:
    path = Path(__file__).parents[2] / "tools" / "isaaclab_record.py"
    py_compile.compile(str(path), doraise=True)
    from envreel.tools import isaaclab_record as script

    args = script.build_parser().parse_args(["--task", "Isaac-Cartpole", "--out", "a.zarr"])
    assert (args.num_envs, args.steps, args.width, args.height) == (16, 600, 160, 120)
    assert args.video_length is None and not args.all_ranks and not args.no_global
    assert args.envs is None and args.physics == "newton_mjwarp"
    # the global view: Cartpole's rail framed, at a quarter of GlobalCameraCfg's 1280×720 pixels
    assert script.global_camera_fields(args) == {"lookat_height": 2.0, "width": 640, "height": 360}
    ant = script.build_parser().parse_args(
        ["--task", "Isaac-Ant-v0", "--out", "a.zarr", "--global_width", "320"]
    )
    assert script.global_camera_fields(ant) == {"lookat_height": 0.0, "width": 320, "height": 360}
    ant.lookat_height = 0.0  # given: the task's height is not used
    ant.task = "Isaac-Cartpole"
    assert script.global_camera_fields(ant)["lookat_height"] == 0.0
    top = types.SimpleNamespace(**script.global_camera_fields(args))
    assert script.render_command("runs/cp.zarr", top) == (
        "envreel render runs/cp.zarr out.mp4 --global-view right --markers --marker-height 2"
    )
    assert script.render_command("a.zarr", None) == "envreel render a.zarr out.mp4"
    assert script.parse_envs("0-3,8") == [0, 1, 2, 3, 8]
    # Cartpole's rail is 2 m up: EnvCameraCfg's default pose sees none of it (blank frames)
    assert script.camera_pose("Isaac-Cartpole-v0", None, None) == {
        "eye_offset": (-6.0, 0.0, 2.5),
        "lookat_offset": (0.0, 0.0, 2.0),
    }
    assert script.camera_pose("Isaac-Cartpole", (1, 2, 3), None)["eye_offset"] == (1, 2, 3)
    assert script.camera_pose("Isaac-Ant-v0", None, None) == {}  # EnvCameraCfg's defaults
    args = script.build_parser().parse_args(
        ["--task", "X", "--out", "a.zarr", "--camera_eye", "0", "-4", "2.5"]
    )
    assert args.camera_eye == [0.0, -4.0, 2.5] and args.camera_lookat is None
    with pytest.raises(SystemExit):
        script.build_parser().parse_args(["--task", "Isaac-Cartpole"])  # --out is required
    monkeypatch.setitem(sys.modules, "isaaclab", None)  # import isaaclab -> ImportError
    assert script.main(["--task", "Isaac-Cartpole", "--out", "a.zarr"]) == 1
    assert "needs Isaac Lab 3: pip install isaaclab==3.0.0" in capsys.readouterr().err
