"""Property-based fuzzing of stores: mutate a valid store's metadata JSON and its chunk objects,
then open, validate, read and render it. Only envreel's documented errors may come out.

Properties, for every mutated store:

* ``open_run`` and every ``Run`` read either succeed or raise an ``EnvreelError`` (never a bare
  KeyError, IndexError, AttributeError, MemoryError, RecursionError, ...), within a time bound;
* ``validate`` never raises: it returns problems;
* a store ``validate`` finds nothing wrong with reads without error;
* byte-level damage to chunks is never silent: a store that still reads returns the original
  data;
* ``render`` raises only ``EnvreelError`` (or ``ValueError`` for a layout the mutated run cannot
  show), leaves no partial output behind, and with ``skip_bad=True`` renders every frame of a
  store whose metadata is intact.

Example counts are small and derandomized so CI is fast and reproducible; set
``ENVREEL_FUZZ_EXAMPLES`` (e.g. 2000) for a long local run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import (
    BAD_ERRORS,
    build_store,
    data_objects,
    exercise,
    json_paths,
    metadata_docs,
    read_doc,
    within,
)

from envreel.render import Layout, render
from envreel.schemas import EnvreelError, Problem, validate

SCALE = int(os.environ.get("ENVREEL_FUZZ_EXAMPLES", "0"))
TIME_BOUND_S = 30.0  # per call; a correct call takes well under a second


def _settings(examples: int):
    return settings(
        max_examples=SCALE or examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = build_store(tmp_path_factory.mktemp("fuzz") / "run.zarr", block_sizes=(8, 5))
    docs = {rel: read_doc(path / rel) for rel in metadata_docs(path)}
    nodes = {rel: list(json_paths(doc)) for rel, doc in docs.items()}
    return path, docs, nodes, data_objects(path), exercise(path)


# ---- mutations -----------------------------------------------------------------------------------
NASTY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**12, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "uint8",
            "object",
            "|O",
            "numcodecs.pickle",
            "regular",
            "sharding_indexed",
            "bytes",
            "zstd",
            "crc32c",
            "big",
            "../../x",
            "1.0",
            "2.0",
            "C",
            "end",
            "array",
            "group",
        ]
    ),
    st.lists(st.integers(min_value=-3, max_value=2**40), max_size=6),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
)


def _swap_type(value: Any) -> Any:
    """The same information in another JSON type (what a careless producer writes)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 1e18 else str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return 0


@st.composite
def json_mutation(draw, docs: dict, nodes: dict):
    """(doc path, node path, kind, new value) for one metadata mutation."""
    rel = draw(st.sampled_from(sorted(docs)))
    node = draw(st.sampled_from(nodes[rel]))
    kind = draw(st.sampled_from(["replace", "swap type", "delete", "scale", "negate"]))
    value = draw(NASTY) if kind == "replace" else None
    return rel, node, kind, value


def _apply_json(root: Path, docs: dict, mutations) -> None:
    import copy

    from reliability_helpers import delete_at, get_at, set_at, write_doc

    edited = {}
    for rel, node, kind, value in mutations:
        doc = edited.get(rel, copy.deepcopy(docs[rel]))
        try:
            current = get_at(doc, node)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or changed this node
        if kind == "replace":
            doc = set_at(doc, node, value)
        elif kind == "swap type":
            doc = set_at(doc, node, _swap_type(current))
        elif kind == "delete":
            doc = delete_at(doc, node)
        elif isinstance(current, int | float) and not isinstance(current, bool):
            doc = set_at(doc, node, current * 1_000_003 if kind == "scale" else -current - 1)
        else:
            doc = set_at(doc, node, 10**12 if kind == "scale" else -1)
        edited[rel] = doc
    for rel, doc in edited.items():
        write_doc(root / rel, doc)


@st.composite
def chunk_damage(draw, objects: list[str]):
    """(object, kind, position, mask) for one byte-level damage to a data object."""
    key = draw(st.sampled_from(objects))
    kind = draw(st.sampled_from(["flip", "flip", "truncate", "delete", "empty", "append"]))
    pos = draw(st.integers(min_value=0, max_value=2**20))
    mask = draw(st.integers(min_value=1, max_value=255))
    return key, kind, pos, mask


def _apply_chunks(root: Path, damages) -> None:
    for key, kind, pos, mask in damages:
        p = root / key
        if not p.exists():
            continue
        data = bytearray(p.read_bytes())
        if kind == "flip" and data:
            data[pos % len(data)] ^= mask
        elif kind == "truncate":
            data = data[: pos % max(1, len(data))]
        elif kind == "empty":
            data = bytearray()
        elif kind == "append":
            data += bytes([mask]) * (1 + pos % 64)
        if kind == "delete":
            p.unlink()
        else:
            p.write_bytes(bytes(data))


# ---- the properties ------------------------------------------------------------------------------
def _only_documented(fn) -> tuple[Any, BaseException | None]:
    """Run ``fn`` with a time bound; return (result, envreel error) or fail on anything else."""
    try:
        return within(TIME_BOUND_S, fn), None
    except EnvreelError as exc:
        return None, exc
    except BAD_ERRORS as exc:
        raise AssertionError(f"a bare {type(exc).__name__} escaped: {exc!r}") from exc
    except Exception as exc:
        raise AssertionError(f"undocumented {type(exc).__name__} escaped: {exc!r}") from exc


def _same(got: dict, want: dict) -> str | None:
    """The first read that differs from the pristine store's, or None."""
    for k, w in want.items():
        if k in ("info", "cameras"):
            continue
        g = got[k]
        if isinstance(w, np.ndarray):
            if not (isinstance(g, np.ndarray) and g.shape == w.shape):
                return k
            if not np.array_equal(g, w, equal_nan=w.dtype.kind == "f"):
                return k
        elif g != w:
            return k
    return None


def _check_store(root: Path, pristine_reads: dict, *, bytes_only: bool) -> list[Problem]:
    problems, exc = _only_documented(lambda: validate(root))
    assert exc is None, f"validate raised instead of returning problems: {exc!r}"
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    reads, error = _only_documented(lambda: exercise(root))
    if not problems:
        assert error is None, f"validate found nothing, but reading failed: {error!r}"
    if bytes_only and error is None:
        # Checksums and shard indexes turn every byte-level damage into an error: none is silent.
        assert _same(reads, pristine_reads) is None, "damaged chunks read as different data"
    return problems


@_settings(40)
@given(data=st.data())
def test_fuzz_metadata_json(pristine, data):
    path, docs, nodes, _, reads = pristine
    mutations = data.draw(st.lists(json_mutation(docs, nodes), min_size=1, max_size=3))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(path, Path(tmp) / "s.zarr"))
        _apply_json(root, docs, mutations)
        _check_store(root, reads, bytes_only=False)


@_settings(30)
@given(data=st.data())
def test_fuzz_chunk_bytes(pristine, data):
    path, _, _, objects, reads = pristine
    damages = data.draw(st.lists(chunk_damage(objects), min_size=1, max_size=4))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(path, Path(tmp) / "s.zarr"))
        _apply_chunks(root, damages)
        problems = _check_store(root, reads, bytes_only=True)
        touched = {k for k, kind, _, _ in damages}
        if problems:  # every problem concerns an array that was damaged
            arrays = {k.split("/c/")[0] for k in touched}
            assert {p.where for p in problems} <= arrays, (problems, arrays)


def _render_checks(root: Path, out: Path, *, metadata_intact: bool) -> None:
    """render() raises only documented errors and leaves nothing behind when it fails."""
    layout = Layout(label="{env} s{step} {reward:.1f}")
    for skip_bad in (False, True):
        target = out / f"v{int(skip_bad)}.gif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = within(
                    TIME_BOUND_S, lambda t=target, s=skip_bad: render(root, layout, t, skip_bad=s)
                )
            except (EnvreelError, ValueError) as exc:
                assert not any(out.iterdir()), f"partial output left after {exc!r}"
                if skip_bad:
                    assert not metadata_intact, f"skip_bad render failed on chunk damage: {exc!r}"
                continue
            except BAD_ERRORS as exc:
                raise AssertionError(f"render let a bare {type(exc).__name__} escape") from exc
        assert target.is_file() and res.frames[0] > 0
        target.unlink()


@_settings(10)
@given(data=st.data())
def test_fuzz_render(pristine, data):
    path, docs, nodes, objects, _ = pristine
    metadata = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(path, Path(tmp) / "s.zarr"))
        if metadata:
            _apply_json(root, docs, data.draw(st.lists(json_mutation(docs, nodes), max_size=2)))
        else:
            _apply_chunks(root, data.draw(st.lists(chunk_damage(objects), min_size=1, max_size=3)))
        out = Path(tmp) / "out"
        out.mkdir()
        _render_checks(root, out, metadata_intact=not metadata)


@pytest.mark.parametrize(
    "rel, node, value",
    [
        # Regressions found by this fuzzer (fixed in schemas/): a non-dict sharding
        # configuration raised AttributeError; arrays zarr refuses to open made validate raise.
        ("env/frames/zarr.json", ("codecs", 0, "configuration"), 7),
        ("env/truncated/zarr.json", ("chunk_grid", "name"), ["regular"]),
        ("env/episode_step/zarr.json", ("codecs", 1, "configuration", "checksum"), 0),
        ("env/frames/zarr.json", ("dimension_names", 4), 10**12),
        # a codec named by a bare string "sharding_indexed" raised AttributeError
        ("camera/env/intrinsics/zarr.json", ("codecs", 1), "sharding_indexed"),
    ],
)
def test_fuzz_regressions(pristine, tmp_path, rel, node, value):
    path, docs, _, _, reads = pristine
    root = Path(shutil.copytree(path, tmp_path / "s.zarr"))
    _apply_json(root, docs, [(rel, node, "replace", value)])
    problems = _check_store(root, reads, bytes_only=False)
    assert problems and problems[0].where == rel.removesuffix("/zarr.json"), problems
