"""``validate(url)``: every way a store departs from the format, as a list of problems."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from zarr.core.sync import sync

from envreel.errors import CorruptChunkError, StoreFormatError

from . import _format as F
from ._chunks import _EMPTY, shard_index_reader
from ._inspect import (
    OPTIONAL,
    Problem,
    array_docs,
    check_array_doc,
    check_root,
    expected_arrays,
    parse_version,
)
from ._store import StoreLike, open_store, read_json

__all__ = ["validate", "Problem"]

_GROUPS = {
    "",
    "env",
    "env/scalars",
    "frame",
    "scene",
    "camera",
    "camera/env",
    "global",
    "camera/global",
}


def _listing(store) -> list[str]:
    async def collect():
        return [k async for k in store.list()]

    return sync(collect())


def validate(
    url: StoreLike, *, check_data: bool = True, storage_options: dict | None = None
) -> list[Problem]:
    """Check a store against the format. An empty list means it is valid.

    Checks: format name and version (a newer major is reported, not read); the spec (env ids
    one per env, unique, non-negative, and only in format 1.1 or later); the commit record
    (counters, clips inside the committed frames); every expected array is present with the
    dtype, shape and standard codecs the layout gives, holding at least the committed frames; no
    unexpected arrays or groups (a store of a newer minor version may add some: they are
    ignored, as every reader of this major ignores them); with ``check_data``, every committed
    chunk decodes (checksums included), every committed env's inner chunk of every
    ``env/frames`` shard is in the shard's index (a shard whose index marks one never written
    is well-formed, and plain zarr reads it as black frames; the problem names the envs and
    frames), and the clip column agrees with the clip table.

    Args:
        url: path or URL of the store.
        check_data: read every committed chunk. Defaults to True.
        storage_options: fsspec options. Defaults to None.

    Returns:
        Problems, each naming the array or attribute concerned.

    Example:
        >>> for p in validate("runs/ant.zarr"): print(p)   # doctest: +SKIP
    """
    try:
        store = open_store(url, read_only=True, storage_options=storage_options)
        static, spec, state = check_root(read_json(store, "zarr.json"))
    except StoreFormatError as exc:
        return [Problem("zarr.json", str(exc))]
    problems: list[Problem] = []
    # kept apart: a version mismatch does not stop the data checks below
    spec_problems: list[Problem] = []
    if spec.env_ids is not None and parse_version(static["version"]) < (1, 1):
        spec_problems.append(
            Problem(
                f"attributes.{F.ATTR_KEY}.spec.env_ids",
                f"env ids are recorded, but the store says format {static['version']}; they "
                "need format 1.1 (a 1.0 reader would show the envs as 0..N-1)",
            )
        )
    n = int(state["num_frames"])
    expected = expected_arrays(spec)
    docs = array_docs(store, spec)
    present = []
    for path, s in expected.items():
        if docs[path] is None and path in OPTIONAL:
            continue
        found = check_array_doc(docs[path], s, spec.sizes, n, spec=spec)
        problems += found
        if not found:
            present.append(path)
    # A newer minor only adds (FORMAT.md, version policy): nodes this build does not know are
    # then the newer format's, which readers of this major ignore, so validate ignores them too.
    if parse_version(static["version"]) <= F.FORMAT_VERSION:
        problems += _unexpected_nodes(store, expected)
    if check_data and not problems:
        problems += _check_data(url, store, spec, state, present, docs)
    return spec_problems + problems


def _unexpected_nodes(store, expected: dict) -> list[Problem]:
    try:
        keys = _listing(store)
    except Exception as exc:  # noqa: BLE001 - e.g. http stores cannot list
        return [Problem("(listing)", f"cannot list the store to find extra arrays: {exc}")]
    problems = []
    for key in keys:
        if not key.endswith("zarr.json"):
            continue
        node = key[: -len("zarr.json")].rstrip("/")
        if node not in expected and node not in _GROUPS:
            problems.append(Problem(node, "unexpected node: not part of the envreel layout"))
    return problems


def _add(problems: list[Problem], exc: StoreFormatError) -> None:
    """A read's error as a problem. Arrays whose metadata passes the layout checks but that zarr
    cannot open raise a StoreFormatError ("<path>: cannot open: ..."), once per block read."""
    if isinstance(exc, CorruptChunkError):
        p = Problem(exc.array, str(exc)[len(exc.array) :].lstrip(": "))
    else:
        where, _, message = str(exc).partition(": ")
        p = Problem(where, message)
    if p not in problems:
        problems.append(p)


def _shard_indexes(store, doc) -> Callable[[int, int], Any] | None:
    """``(block, shard) -> index`` of ``env/frames``' shards (None for a missing shard), or None
    when the array is not sharded or its index chain is not one ``_chunks`` reads."""
    read = shard_index_reader(store, F.ENV_FRAMES.path, doc)
    if read is None:
        return None

    def index(blk: int, shard: int) -> Any:
        coords = (blk, shard, 0, 0, 0)
        try:
            return read(coords)
        except Exception as exc:  # noqa: BLE001 - a damaged index is named like a read's
            raise CorruptChunkError(
                f"{F.ENV_FRAMES.path} chunk {coords}: cannot read the shard index: "
                f"{type(exc).__name__}: {exc}",
                array=F.ENV_FRAMES.path,
                chunk=coords,
            ) from exc

    return index


def _empty_inner_chunks(
    run, shard_indexes, blk: int, t0: int, t1: int, problems: list[Problem]
) -> set[int]:
    """Add to ``problems`` the committed env chunks of block ``blk`` that a shard's index marks
    never written (one problem per shard), and return those envs.

    Such a shard is well-formed (plain zarr reads the chunk as the fill value: black frames;
    envreel's reader refuses it), but the writer writes every env's chunk of every block, so
    only a tool that rewrote the index or a partial copy leaves one: damage, named by env and
    frames.
    """
    per = int(run.spec.envs_per_shard)
    n = run.num_envs
    found: set[int] = set()
    for shard in range(-(-n // per)):
        coords = (blk, shard, 0, 0, 0)
        try:
            index = shard_indexes(blk, shard)
        except StoreFormatError as exc:
            _add(problems, exc)
            continue
        if index is None:  # a missing shard: the block's read named it
            continue
        entries = index[: min(n, (shard + 1) * per) - shard * per]
        empty = np.flatnonzero((entries[:, 0] == _EMPTY) & (entries[:, 1] == _EMPTY))
        if not empty.size:
            continue
        envs = [shard * per + int(k) for k in empty]
        found.update(envs)
        ids = run.env_ids
        named = ", ".join(
            str(e) if ids[e] == e else f"{e} (env id {ids[e]})" for e in envs[:16]
        ) + (f" and {len(envs) - 16} more" if len(envs) > 16 else "")
        problems.append(
            Problem(
                F.ENV_FRAMES.path,
                f"shard {coords}: the index marks the chunks of env(s) {named} as never "
                f"written, although their frames [{t0}, {t1}) are committed (plain zarr reads "
                "them as black frames)",
            )
        )
    return found


def _check_data(url, store, spec, state, present, docs) -> list[Problem]:
    from .reader import Run

    run = Run(store, str(url), {"version": ""}, spec, state)
    run._present = set(present)
    # with the arrays' documents the reads take the direct chunk reader (checksums and decode
    # as through zarr), not zarr's ~0.4 ms a chunk: 4,096 envs × 48 blocks took 45 s that way
    run._docs = docs
    problems: list[Problem] = []
    for path in present:  # what zarr refuses to open (the direct reads never ask it) is a problem
        try:
            run._array(path)
        except StoreFormatError as exc:
            _add(problems, exc)
    b, n = spec.block_frames, run.num_frames
    shard_indexes = _shard_indexes(store, docs.get(F.ENV_FRAMES.path))
    env_names = ("reward", "terminated", "truncated", "episode", "episode_step", "stale")
    for t0 in range(0, n, b):
        t1 = min(n, t0 + b)
        # the envs whose chunks are never written, named once per shard; the others are read
        empty: set[int] = set()
        if shard_indexes is not None:
            empty = _empty_inner_chunks(run, shard_indexes, t0 // b, t0, t1, problems)
        envs = [e for e in range(run.num_envs) if e not in empty] if empty else None
        reads: list[tuple[Callable[..., Any], tuple]] = [(run.env_frames, (envs, t0, t1))]
        reads += [
            (run.frame_values, (nm, t0, t1)) for nm in ("step", "sim_time", "wall_time", "clip")
        ]
        reads += [(run.scalar, (nm, t0, t1)) for nm in env_names + spec.scalar_names]
        if run.has_global:
            reads.append((run.global_frames, (t0, t1)))
        for read, args in reads:
            try:
                read(*args)
            except StoreFormatError as exc:
                _add(problems, exc)
        if len(problems) > 100:
            problems.append(Problem("(data)", "stopped after 100 problems"))
            return problems
    for path in present:
        if not expected_arrays(spec)[path].per_frame:
            try:
                run._static_array(path)
            except StoreFormatError as exc:
                _add(problems, exc)
    if not problems and n:
        clip = run.frame_values("clip")
        want = np.full(n, -1, np.int64)
        for c in run.clips:
            want[c.start_frame : c.stop_frame] = c.id
        covered = want >= 0
        if not np.array_equal(clip[covered], want[covered]) or not covered.all():
            bad = int(np.flatnonzero((clip != want) | ~covered)[0])
            problems.append(
                Problem(
                    "frame/clip",
                    f"frame {bad} has clip {int(clip[bad])}, but the clip table "
                    f"(attributes.{F.STATE_KEY}.clips) gives {int(want[bad])}",
                )
            )
    return problems
