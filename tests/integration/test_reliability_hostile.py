"""Damaged and hostile stores, hostile layouts and names, and the gaps of the bad-input matrices.

Extends ``test_store_safety.py`` (one break per ``validate`` check) and ``test_render_errors.py``
(corrupt chunks in ``render``): here *every* data object of a store is damaged in every way, the
metadata JSON is broken for ``open_run``, ``validate`` and ``render`` alike, and stores written
by strangers try pickle codecs, absurd shapes, huge or deeply nested JSON and escaping names.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import (
    KeyCountingStore,
    build_store,
    data_objects,
    edit_json,
    flip_byte,
    traced_peak,
    truncate,
    within,
)
from store_helpers import frames_for
from zarr.storage import LocalStore

from envreel.render import Layout, contact_sheet, render, render_envs
from envreel.schemas import (
    CorruptChunkError,
    EnvreelError,
    StoreFormatError,
    open_run,
    validate,
)

N, H, W, T, B = 4, 12, 16, 13, 8  # small_spec: 4 envs of 12×16, blocks of 8; 13 frames


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("hostile") / "run.zarr", block_sizes=(8, 5))


@pytest.fixture()
def store(pristine, tmp_path):
    """A fresh copy of the pristine store, to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "copy.zarr"))


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _object_block(key: str) -> tuple[str, int]:
    """(array path, time block) of a data object key like ``env/reward/c/1/0``."""
    array, coords = key.split("/c/")
    return array, int(coords.split("/")[0])


def _read_block(run, array: str, blk: int):
    """Read what array ``array`` holds for block ``blk`` through the public ``Run`` API."""
    t0, t1 = blk * B, min(T, (blk + 1) * B)
    if array == "env/frames":
        return run.env_frames(None, t0, t1)
    if array == "global/frames":
        return run.global_frames(t0, t1)
    if array.startswith("frame/"):
        return run.frame_values(array.split("/")[1], t0, t1)
    if array.startswith("env/"):
        return run.scalar(array.split("/")[-1], t0, t1)
    if array == "scene/env_origins":
        return run.env_origins
    cams = run.cameras
    return {
        "camera/env/pose": cams.env_pose,
        "camera/env/intrinsics": cams.env_intrinsics,
        "camera/global/pose": cams.global_pose,
        "camera/global/intrinsics": cams.global_intrinsics,
    }[array]


# ---- 3. corruption: every object, every kind of damage ---------------------------------------
DAMAGES = {
    "byte flipped in the middle": lambda p: flip_byte(p),
    "last byte flipped (checksum or shard index)": lambda p: flip_byte(p, -1),
    "truncated (interrupted copy)": lambda p: truncate(p),
    "emptied": lambda p: truncate(p, 0),
    "deleted": lambda p: p.unlink(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_every_damaged_object_is_named_by_validate_and_reads(store, damage):
    keys = data_objects(store)
    assert len(keys) == 33  # 14 per-frame arrays × 2 blocks + 5 static (cameras, origins)
    for key in keys:
        DAMAGES[damage](store / key)
    problems = validate(store)
    named = {(p.where, p.message.split(")")[0]) for p in problems}
    run = open_run(store)  # metadata is intact: the store opens, reads fail per chunk
    for key in keys:
        array, blk = _object_block(key)
        assert any(w == array and m.startswith(f"chunk ({blk}") for w, m in named), (key, named)
        with pytest.raises(CorruptChunkError) as info:
            _read_block(run, array, blk)
        if array.startswith("camera/"):
            # Run.cameras reads all four camera arrays; the first damaged one is named.
            assert info.value.array.startswith("camera/"), (key, info.value)
            continue
        assert info.value.array == array and info.value.chunk[0] == blk, (key, info.value.chunk)
        assert f"{array} chunk ({blk}" in str(info.value)


@pytest.mark.parametrize(
    "key",
    [
        "env/frames/c/1/0/0/0/0",
        "global/frames/c/0/0/0/0",
        "env/scalars/success/c/1/0",
        "frame/wall_time/c/0",
        "camera/env/intrinsics/c/0/0/0",
    ],
)
def test_one_damaged_object_is_the_only_one_named(store, pristine, key):
    flip_byte(store / key)
    problems = validate(store)
    array, blk = _object_block(key)
    assert {p.where for p in problems} == {array}, problems
    assert all(p.message.startswith(f"chunk ({blk}") for p in problems), problems
    run, good = open_run(store), open_run(pristine)
    for other in data_objects(pristine):  # everything else still reads, unchanged
        if other != key and not (other.startswith("camera/") and key.startswith("camera/")):
            a, b = _object_block(other)
            got, want = _read_block(run, a, b), _read_block(good, a, b)
            np.testing.assert_array_equal(got, want, err_msg=other)


def _set_root(store, fn):
    edit_json(store / "zarr.json", fn)


BROKEN_METADATA = {
    "root zarr.json deleted": (
        lambda s: (s / "zarr.json").unlink(),
        "zarr.json",
        "has no zarr.json",
    ),
    "root zarr.json truncated": (
        lambda s: truncate(s / "zarr.json"),
        "zarr.json",
        "zarr.json is not valid JSON",
    ),
    "root zarr.json not an object": (
        lambda s: (s / "zarr.json").write_text("[1, 2]"),
        "zarr.json",
        "must hold a JSON object",
    ),
    "root zarr.json not UTF-8": (
        lambda s: (s / "zarr.json").write_bytes(b"\xff\xfe{}"),
        "zarr.json",
        "not valid JSON",
    ),
    "commit record key misspelt": (
        lambda s: _set_root(
            s, lambda d: d["attributes"].update(envreel_staet=d["attributes"].pop("envreel_state"))
        ),
        "zarr.json",
        "attributes.envreel_state: missing commit record",
    ),
    "num_frames misspelt": (
        lambda s: _set_root(s, lambda d: d["attributes"]["envreel_state"].pop("num_frames")),
        "zarr.json",
        "attributes.envreel_state.num_frames",
    ),
    "spec field of the wrong type": (
        lambda s: _set_root(s, lambda d: d["attributes"]["envreel"]["spec"].update(num_envs="4")),
        "zarr.json",
        "attributes.envreel.spec: num_envs must be an int",
    ),
    "array zarr.json deleted": (
        lambda s: (s / "env/reward/zarr.json").unlink(),
        "env/reward",
        "missing",
    ),
    "array zarr.json truncated": (
        lambda s: truncate(s / "env/frames/zarr.json"),
        "env/frames",
        "env/frames/zarr.json is not valid JSON",
    ),
    "array data type misspelt": (
        lambda s: edit_json(s / "frame/step/zarr.json", lambda d: d.update(data_type="int6t")),
        "frame/step",
        "data type 'int6t', expected 'int64'",
    ),
    "array shape not a list": (
        lambda s: edit_json(s / "env/stale/zarr.json", lambda d: d.update(shape="13,4")),
        "env/stale",
        "shape '13,4' is not a list",
    ),
    "array chunk grid broken": (
        lambda s: edit_json(s / "global/frames/zarr.json", lambda d: d.update(chunk_grid=7)),
        "global/frames",
        "chunk_grid 7 is not a regular grid",
    ),
    "array codecs not a list": (
        lambda s: edit_json(s / "env/episode/zarr.json", lambda d: d.update(codecs={"a": 1})),
        "env/episode",
        "codecs must be a list",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_METADATA))
def test_broken_metadata_is_named_by_open_run_validate_and_render(store, tmp_path, case):
    breaker, where, text = BROKEN_METADATA[case]
    breaker(store)
    with pytest.raises(StoreFormatError) as info:
        open_run(store)
    assert text in str(info.value) and (where == "zarr.json" or where in str(info.value))
    problems = validate(store)
    assert any(p.where == where and text in str(p) for p in problems), problems
    out = tmp_path / "out"
    out.mkdir()
    for skip_bad in (False, True):  # skip_bad skips unreadable chunks, never broken metadata
        with pytest.raises(StoreFormatError, match=text.replace("(", r"\(").replace(")", r"\)")):
            render(store, Layout(), out / "v.gif", skip_bad=skip_bad)
        with pytest.raises(StoreFormatError):
            contact_sheet(store, out / "s.png", skip_bad=skip_bad)
    assert _tree(out) == []  # nothing written


def test_contact_sheet_names_a_corrupt_chunk_and_skip_bad_draws_a_placeholder(store, tmp_path):
    from PIL import Image
    from render_fixtures import tile

    from envreel.render._compose import compute_geometry, placeholder_tile

    flip_byte(store / "env/frames/c/1/0/0/0/0")
    layout = Layout(label=None, border=0)
    with pytest.raises(CorruptChunkError) as info:
        contact_sheet(store, tmp_path / "a.png", layout, num_times=3)
    assert info.value.array == "env/frames" and info.value.chunk[0] == 1
    assert not (tmp_path / "a.png").exists()
    bad_env = info.value.chunk[1]
    with pytest.warns(UserWarning, match=rf"env/frames.*env {bad_env}"):
        out = contact_sheet(store, tmp_path / "b.png", layout, num_times=3, skip_bad=True)
    sheet = np.asarray(Image.open(out).convert("RGB"))
    lay = layout.replace(columns=3, rows=N, page_size=None)
    g = compute_geometry(lay, num_tiles=3 * N, env_shape=(H, W))
    times = [0, 6, 12]  # 3 times spread over 13 frames; frame 6 is in block 0, 12 in block 1
    for env in range(N):
        for col, t in enumerate(times):
            got = tile(sheet, g, env * 3 + col)
            if env == bad_env and t >= B:
                np.testing.assert_array_equal(got, placeholder_tile((H, W)))
            else:
                np.testing.assert_array_equal(got, frames_for(t, 1, N, H, W)[0, env])


def test_corrupt_frame_values_in_labels_are_named_and_skippable(store, tmp_path):
    flip_byte(store / "frame/step/c/1")
    with pytest.raises(CorruptChunkError, match=r"frame/step chunk \(1,\)"):
        render(store, Layout(label="{env} s{step}"), tmp_path / "a.gif")
    with pytest.warns(UserWarning, match="frame/step"):
        res = render(store, Layout(label="{env} s{step}"), tmp_path / "b.gif", skip_bad=True)
    assert res.frames == (T,)


# ---- 4. hostile stores ---------------------------------------------------------------------------
def _pickle_codec(doc):
    doc["codecs"].insert(1, {"name": "numcodecs.pickle", "configuration": {"protocol": 5}})


def _pickle_in_shard(doc):
    doc["codecs"][0]["configuration"]["codecs"].insert(1, {"name": "numcodecs.pickle"})


def _pickle_in_index(doc):
    doc["codecs"][0]["configuration"]["index_codecs"].insert(0, {"name": "numcodecs.pickle"})


HOSTILE_CODECS = {
    "pickle codec": ("env/reward", _pickle_codec, "numcodecs.pickle"),
    "pickle codec inside the shards": ("env/frames", _pickle_in_shard, "numcodecs.pickle"),
    "pickle codec for the shard index": ("env/frames", _pickle_in_index, "numcodecs.pickle"),
    "object dtype": ("env/reward", lambda d: d.update(data_type="object"), "'object'"),
    "numpy object dtype": ("frame/step", lambda d: d.update(data_type="|O"), "'|O'"),
    "structured dtype": (
        "frame/step",
        lambda d: d.update(data_type={"name": "numcodecs.pickle"}),
        "data type",
    ),
    "variable-length strings": ("env/reward", lambda d: d.update(data_type="string"), "'string'"),
    "vlen-bytes codec": (
        "env/stale",
        lambda d: d["codecs"].insert(0, {"name": "vlen-bytes"}),
        "vlen-bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CODECS))
def test_pickle_and_object_codecs_are_refused_before_any_chunk_is_read(
    store, tmp_path, monkeypatch, case
):
    array, edit, text = HOSTILE_CODECS[case]
    edit_json(store / array / "zarr.json", edit)

    def never(*args, **kwargs):
        raise AssertionError("pickle was called on store data")

    import numcodecs

    monkeypatch.setattr(pickle, "loads", never)
    monkeypatch.setattr(numcodecs.Pickle, "decode", never)
    counting = KeyCountingStore(LocalStore(str(store), read_only=True))
    with pytest.raises(StoreFormatError, match=f"{array}: .*{text}"):
        open_run(counting)
    assert all(k.endswith("zarr.json") for k in counting.keys), counting.keys  # no chunk read
    problems = validate(store)
    assert [p.where for p in problems] == [array] and text in problems[0].message
    with pytest.raises(StoreFormatError, match=array):
        render(store, Layout(), tmp_path / "v.gif")
    assert not (tmp_path / "v.gif").exists()


def _spec(d, **kw):
    d["attributes"]["envreel"]["spec"].update(kw)


ABSURD_SHAPES = {
    "10^12 committed frames": (
        lambda s: _set_root(
            s, lambda d: d["attributes"]["envreel_state"].update(num_frames=10**12)
        ),
        "num_frames: expected an int between 0 and 100000000",
    ),
    "10^12 frames declared by an array": (
        lambda s: edit_json(
            s / "env/frames/zarr.json", lambda d: d["shape"].__setitem__(0, 10**12)
        ),
        "env/frames: declares 1000000000000 frames",
    ),
    "10^6 × 10^6 images": (
        lambda s: _set_root(s, lambda d: _spec(d, env_frame_shape=[10**6, 10**6])),
        "env_frame_shape[0] (height) must be between 1 and 16384",
    ),
    "10^9 envs": (
        lambda s: _set_root(s, lambda d: _spec(d, num_envs=10**9)),
        "num_envs must be between 1 and 1048576",
    ),
    "a 4 TB block": (
        lambda s: _set_root(
            s, lambda d: _spec(d, block_frames=4096, env_frame_shape=[16384, 16384])
        ),
        "GiB; lower block_frames",
    ),
    "a chunk shape of 10^12 frames": (
        lambda s: edit_json(
            s / "frame/step/zarr.json",
            lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[10**12]),
        ),
        "frame/step: chunk shape [1000000000000] needs more than 4 GiB",
    ),
    "a 2 GiB chunk where the layout has blocks of 8 frames": (
        lambda s: edit_json(
            s / "frame/step/zarr.json",
            lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[2**28]),
        ),
        "frame/step: chunk shape (268435456,), expected (8,)",
    ),
    "a huge inner chunk in the shards": (
        lambda s: edit_json(
            s / "env/frames/zarr.json",
            lambda d: d["codecs"][0]["configuration"].update(chunk_shape=[2**20, 1, 12, 16, 3]),
        ),
        "env/frames: shard inner chunk shape",
    ),
}


@pytest.mark.parametrize("case", sorted(ABSURD_SHAPES))
def test_absurd_declared_shapes_are_refused_before_any_allocation(store, tmp_path, case):
    breaker, text = ABSURD_SHAPES[case]
    breaker(store)
    for call in (
        lambda: open_run(store),
        lambda: render(store, Layout(), tmp_path / "v.gif"),
        lambda: contact_sheet(store, tmp_path / "s.png"),
    ):
        peak, exc = traced_peak(lambda call=call: within(30, call))
        assert isinstance(exc, StoreFormatError) and text in str(exc), (case, exc)
        assert peak < 4 << 20, f"{case}: {peak / 2**20:.0f} MiB traced before refusing"
    peak, exc = traced_peak(lambda: validate(store))
    assert exc is None and peak < 4 << 20
    assert any(text.split(": ", 1)[-1][:30] in str(p) for p in validate(store)), validate(store)


def _zstd_frame_declaring(size: int) -> bytes:
    """A zstd frame whose header declares ``size`` bytes of content but holds 8 (a bomb)."""
    header = struct.pack("<I", 0xFD2FB528) + bytes([0b11100000]) + struct.pack("<Q", size)
    payload = b"\x00" * 8
    block = ((len(payload) << 3) | 1).to_bytes(3, "little")  # raw block, the last one
    return header + block + payload


def test_zstd_chunk_declaring_a_terabyte_is_a_named_corrupt_chunk(store):
    from numcodecs.checksum32 import CRC32C

    body = _zstd_frame_declaring(10**12)
    (store / "frame/step/c/1").write_bytes(bytes(CRC32C().encode(body)))  # a valid checksum
    run = open_run(store)
    peak, exc = traced_peak(lambda: run.frame_values("step", 8, 13))
    assert isinstance(exc, CorruptChunkError) and exc.array == "frame/step" and exc.chunk == (1,)
    assert peak < 4 << 20
    np.testing.assert_array_equal(run.frame_values("step", 0, 8), np.arange(8) * 2)
    assert [p.where for p in validate(store)] == ["frame/step"]


@pytest.mark.parametrize(
    "where, size, text",
    [
        ("zarr.json", 100 * 2**20, "zarr.json is more than 16777216 bytes"),
        ("env/reward/zarr.json", 5 * 2**20, "env/reward/zarr.json is more than 1048576 bytes"),
    ],
)
def test_huge_metadata_documents_are_refused_with_bounded_reads(store, where, size, text):
    def pad(d):
        d["attributes"]["padding"] = "x" * size

    edit_json(store / where, pad)
    peak, exc = traced_peak(lambda: open_run(store))
    assert isinstance(exc, StoreFormatError) and text in str(exc)
    # At most the limit plus the first read is held: 16 MiB for the root, 1 MiB per array.
    assert peak < 20 << 20, f"{peak / 2**20:.0f} MiB traced for a {size >> 20} MiB document"
    assert any(text in str(p) for p in validate(store))


def test_huge_user_metadata_inside_the_limits_is_refused_by_the_spec_check(store):
    _set_root(store, lambda d: _spec(d, metadata={"blob": "x" * (2 << 20)}))
    with pytest.raises(StoreFormatError, match=r"spec: metadata is \d+ bytes as JSON; at most"):
        open_run(store)


@pytest.mark.parametrize("depth", [120, 990, 100_000])
def test_deeply_nested_metadata_is_a_format_error(store, depth):
    text = (store / "zarr.json").read_text()
    nested = "[" * depth + "]" * depth
    (store / "zarr.json").write_text(
        text.replace('"metadata": {}', f'"metadata": {{"x": {nested}}}')
    )
    with pytest.raises(StoreFormatError, match="nests (JSON )?deeper than"):
        open_run(store)
    assert "deeper than" in str(validate(store)[0])


def test_label_templates_cannot_reach_attributes_from_layout_files(pristine, tmp_path):
    """Beyond test_render_errors' render(label=...): conversions, nested specs, huge widths,
    and the same templates arriving in a shared layout file, a render_envs name or a sheet."""
    hostile = [
        "{env.__class__}",
        "{env.__class__.__init__.__globals__}",
        "{reward[0]}",
        "{env!r}",
        "{env!s:>{step}}",
        "{reward:{step}}",
        "{0.__class__}",
        "{}",
        "{env:>300000000}",
        "{env:.99999f}",
    ]
    out = tmp_path / "out"
    out.mkdir()
    for text in hostile:
        for suffix in (".json", ".yaml"):
            f = tmp_path / f"layout{suffix}"
            f.write_text(json.dumps({"label": text}))  # JSON is YAML too
            with pytest.raises(ValueError, match="label template"):
                render(pristine, f, out / "v.gif")
        with pytest.raises(ValueError, match="template"):
            contact_sheet(pristine, out / "s.png", {"label": text})
        with pytest.raises(ValueError, match="template"):
            render_envs(pristine, out / "per_env", name=text, suffix=".gif", workers=1)
    assert _tree(out) == []


def test_yaml_layout_files_cannot_build_python_objects(pristine, tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "layout.yaml"
    f.write_text(f'label: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ValueError):
        render(pristine, f, tmp_path / "v.gif")
    assert not marker.exists() and not (tmp_path / "v.gif").exists()


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../../../../../../tmp/escaped",
        "..",
        ".hidden",
        "a/../../b",
        "..\\..\\windows",
        "nul\x00byte",
        "x" * 5000,
        "\u2215slash\u2044lookalikes",
        "~/home",
    ],
)
def test_output_names_from_store_metadata_stay_in_the_output_folder(tmp_path, name):
    from envreel.schemas import Block, RunSpec, create_run

    spec = RunSpec(num_envs=2, env_frame_shape=(8, 8), fps=10, metadata={"name": name})
    w = create_run(str(tmp_path / "evil.zarr"), spec)
    w.append(Block.empty(spec, 2))
    w.close()
    before = _tree(tmp_path)
    out = tmp_path / "out"
    paths = render_envs(tmp_path / "evil.zarr", out, name="{run}_{env}", suffix=".gif", workers=1)
    assert len(paths) == 2 and len(set(paths)) == 2
    for p in paths:
        assert p.parent == out.resolve() and p.is_file()
        assert not p.name.startswith(".") and len(p.name) <= 255
    assert _tree(tmp_path) == sorted(before + ["out"] + [f"out/{p.name}" for p in paths])


# ---- 7. bad input: the gaps of the capture and render matrices -----------------------------------
@pytest.mark.parametrize(
    "kwargs, exc, fragments",
    [
        (dict(step=2**70), ValueError, ["step must be below 2**63", str(2**70)]),
        (dict(episode_step=np.array([2**40, 0, 0])), ValueError, ["episode_step", "1099511627776"]),
        (dict(episode_step=np.array([-1, 0, 0])), ValueError, ["episode_step", "[0, 2147483647]"]),
        (dict(truncated=np.zeros(4, bool)), ValueError, ["truncated", "(3,)", "(4,)"]),
        (dict(stale=np.zeros((3, 1), bool)), ValueError, ["stale", "(3,)", "(3, 1)"]),
        (dict(stale="reset"), ValueError, ["stale", "'done'", "'reset'"]),
        (dict(global_rgb=np.zeros((3, 4, 6), np.uint8)), ValueError, ["global_rgb", "channels"]),
        (dict(global_rgb=np.zeros((4, 6, 3), np.float32)), TypeError, ["global_rgb", "float32"]),
        (dict(global_rgb=np.zeros((5, 6, 3), np.uint8)), ValueError, ["global_rgb", "5×6"]),
        (dict(env_rgb=np.zeros((3, 0, 10, 3), np.uint8)), ValueError, ["(height", "0"]),
        (dict(env_rgb=np.zeros((3, 8, 10, 3), object)), TypeError, ["env_rgb", "object"]),
        (dict(scalars={"speed": np.zeros(3, complex)}), TypeError, ["speed", "complex"]),
        (dict(scalars=[1.0, 2.0]), TypeError, ["scalars must be a dict"]),
        (dict(sim_time=float("inf")), ValueError, ["sim_time", "inf"]),
    ],
    ids=lambda v: None,
)
@pytest.mark.parametrize("first", [True, False], ids=["first-capture", "mid-run"])
def test_capture_bad_input_gaps(tmp_path, kwargs, exc, fragments, first):
    from envreel.capture import Recorder

    path = tmp_path / "r.zarr"
    rec = Recorder(
        path,
        num_envs=3,
        fps=30,
        block_frames=4,
        writer="thread",
        scalar_names=("speed",),
        global_frame_shape=(4, 6),
    )

    def good(t):
        return dict(
            env_rgb=frames_for(t, 1, 3, 8, 10)[0], global_rgb=np.full((4, 6, 3), t, np.uint8)
        )

    steps = [] if first else [0, 1, 2, 3, 4]
    for t in steps:
        rec.capture(**good(t), step=t)
    bad = {**good(99), **kwargs}
    with pytest.raises(exc) as info:
        rec.capture(**bad)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    if first:
        assert not path.exists()  # a rejected first capture creates nothing
    assert rec.stats.steps == len(steps)
    for t in (5, 6):  # the recorder is unharmed and nothing of the bad call was kept
        rec.capture(**good(t), step=t)
    rec.close()
    run = open_run(path)
    np.testing.assert_array_equal(run.frame_values("step"), steps + [5, 6])
    np.testing.assert_array_equal(
        run.env_frames(), np.stack([frames_for(t, 1, 3, 8, 10)[0] for t in steps + [5, 6]])
    )
    assert validate(path) == []


@pytest.mark.parametrize(
    "call, exc, text",
    [
        (lambda s, o: render(s, Layout(envs=[0, 99]), o / "v.gif"), ValueError, "99"),
        (lambda s, o: render(s, Layout(envs="-1"), o / "v.gif"), ValueError, "-1"),
        (lambda s, o: render(s, {"start": -5}, o / "v.gif"), ValueError, "start"),
        (lambda s, o: render(s, {"columns": 0}, o / "v.gif"), ValueError, "columns"),
        (lambda s, o: render(s, {"columns": 10**9}, o / "v.gif"), ValueError, "columns"),
        (lambda s, o: render(s, {"label": 5}, o / "v.gif"), TypeError, "label"),
        (lambda s, o: render(s, Layout(), o / ("x" * 300 + ".gif")), (ValueError, OSError), ""),
        (lambda s, o: contact_sheet(s, o / "s.png", num_times=10**6), ValueError, "num_times"),
    ],
    ids=[
        "env id out of range",
        "negative env id",
        "negative start",
        "zero columns",
        "a billion columns",
        "label not text",
        "file name too long",
        "a million sheet columns",
    ],
)
def test_render_bad_input_gaps(pristine, tmp_path, call, exc, text):
    out = tmp_path / "out"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=text):
            within(30, lambda: call(pristine, out))
    assert _tree(out) == []


def test_documented_errors_only():
    """The error classes the tests above accept are envreel's documented ones."""
    assert issubclass(CorruptChunkError, StoreFormatError)
    assert issubclass(StoreFormatError, EnvreelError)
    assert sys.getrecursionlimit() >= 1000  # the nesting tests rely on the default limit
