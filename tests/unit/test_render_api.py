"""The shape of ``envreel.render`` itself: a curated public API, errors in one place, short
functions."""

from __future__ import annotations

import ast
from pathlib import Path

import envreel.render as R
from envreel import errors

RENDER = Path(__file__).resolve().parents[2] / "render"
MAX_LINES = 80


def test_public_names_are_curated():
    for name in R.__all__:
        assert hasattr(R, name), name
    for helper in ("find_ffmpeg", "parse_env_spec"):
        assert helper not in R.__all__
    # helpers stay importable where they live
    from envreel.render._encode import find_ffmpeg  # noqa: F401
    from envreel.render.layout import parse_env_spec

    assert parse_env_spec("0-2") == (0, 1, 2)
    assert {"Layout", "render", "render_envs", "frames", "FrameSource", "contact_sheet"} <= set(
        R.__all__
    )
    assert {"show", "PRESETS", "TensorBoardClips", "WandbClips"} <= set(R.__all__)


def _modules():
    return sorted(RENDER.glob("*.py"))


def test_every_error_class_lives_in_envreel_errors():
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                assert not any(b.endswith(("Error", "Exception", "Warning")) for b in bases), (
                    f"{path.name}: class {node.name}{tuple(bases)} belongs in envreel/errors.py"
                )
    assert R.RenderError is errors.RenderError


def test_no_render_function_runs_past_80_lines():
    long = [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, long
