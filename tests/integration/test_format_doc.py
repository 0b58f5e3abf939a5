"""FORMAT.md's array table is what the writer stores: path, dtype, dimension_names, the
``description`` attribute and the fill value, read back with plain zarr."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import zarr
from store_helpers import small_spec, write_run

FORMAT_MD = Path(__file__).resolve().parents[2] / "schemas" / "FORMAT.md"


def _table() -> dict[str, dict[str, str]]:
    """The rows of FORMAT.md's array table, by path, as {column: text}."""
    lines = FORMAT_MD.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| path | shape |"))
    header = [c.strip().strip("`") for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return rows


def _documented_names(cell: str, per_frame: bool) -> tuple[str | None, ...] | None:
    """The ``dimension_names`` a table cell gives: "none", "time, env, null", or "A / B" for an
    array stored once (A) or per frame (B)."""
    if " / " in cell:
        cell = cell.split(" / ")[per_frame]
    if cell == "none":
        return None
    return tuple(None if n == "null" else n for n in re.split(r",\s*", cell))


@pytest.mark.parametrize("per_frame", [False, True])
def test_every_array_is_as_the_table_says(tmp_path: Path, per_frame: bool) -> None:
    spec = small_spec(env_pose_per_frame=per_frame, global_pose_per_frame=per_frame)
    url = tmp_path / "run.zarr"
    write_run(url, spec, block_sizes=(8,))
    table = _table()
    root = zarr.open_group(url, mode="r")
    arrays = {p: a for p, a in root.members(max_depth=None) if isinstance(a, zarr.Array)}
    scalar_row = table["env/scalars/<name>"]
    assert {p for p in arrays if not p.startswith("env/scalars/")} == set(table) - {
        "env/scalars/<name>"
    }
    for path, arr in arrays.items():
        row = scalar_row if path.startswith("env/scalars/") else table[path]
        assert str(arr.dtype) == row["dtype"], path
        assert arr.metadata.dimension_names == _documented_names(
            row["dimension_names"], per_frame
        ), path
        timed = arr.metadata.dimension_names is not None
        assert set(arr.attrs) == ({"description"} if timed else set()), path
        assert arr.metadata.fill_value == 0, path


def test_values_never_given_are_nan_while_the_fill_value_is_zero(tmp_path: Path) -> None:
    from envreel.capture import Recorder

    url = tmp_path / "nan.zarr"
    with Recorder(str(url), num_envs=2, fps=30, block_frames=4, scalar_names=("speed",)) as rec:
        for _ in range(4):
            rec.capture(np.zeros((2, 8, 8, 3), np.uint8))
    root = zarr.open_group(url, mode="r")
    for path in ("env/reward", "env/scalars/speed"):
        assert np.isnan(root[path][:]).all() and root[path].metadata.fill_value == 0.0
    assert "NaN where none was given" in _table()["env/reward"]["meaning"]


def _copy_with_zarr(src: Path, dst: Path) -> None:
    """A store rewritten array by array with zarr-python, same chunks, shards and codecs."""
    source = zarr.open_group(src, mode="r")
    target = zarr.open_group(dst, mode="w", attributes=dict(source.attrs))
    for path, node in source.members(max_depth=None):
        if isinstance(node, zarr.Group):
            target.require_group(path)
            continue
        copy = target.create_array(
            path,
            shape=node.shape,
            dtype=node.dtype,
            chunks=node.chunks,
            shards=node.shards,
            compressors=node.compressors,
            fill_value=node.fill_value,
            dimension_names=node.metadata.dimension_names,
            attributes=dict(node.attrs),
        )
        copy[...] = node[...]


def test_a_zarr_copy_keeps_all_zero_chunks_only_as_the_docs_say(tmp_path: Path) -> None:
    from envreel.schemas import validate

    url = tmp_path / "run.zarr"
    write_run(url, small_spec(), block_sizes=(8, 8))
    _copy_with_zarr(url, tmp_path / "default.zarr")  # zarr's default: write_empty_chunks=False
    missing = {p.where for p in validate(tmp_path / "default.zarr") if "missing" in p.message}
    assert "frame/clip" in missing  # clip 0: all zero
    with zarr.config.set({"array.write_empty_chunks": True}):  # what docs/format.md says to do
        _copy_with_zarr(url, tmp_path / "kept.zarr")
    assert validate(tmp_path / "kept.zarr") == []
