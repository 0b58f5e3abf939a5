"""Checks of a store's metadata, shared by ``open_run`` (raises) and ``validate`` (lists).

Everything here reads JSON documents only: no chunk is decoded and nothing is allocated from a
declared shape before it has been checked against the limits in ``_format``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zarr.abc.store import Store

from envreel.errors import StoreFormatError

from . import _format as F
from ._store import read_json
from .spec import RunSpec


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store.

    Attributes:
        where: the array path or attribute it concerns (e.g. ``"env/frames"``,
            ``"attributes.envreel.version"``).
        message: what is wrong, naming the value found and what was expected.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def parse_version(value: Any) -> tuple[int, int]:
    if not isinstance(value, str):
        raise StoreFormatError(f"format version must be a string like '1.0', got {value!r}")
    parts = value.split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) < 6 for p in parts):
        raise StoreFormatError(f"format version must look like '1.0', got {value!r}")
    return int(parts[0]), int(parts[1])


def check_root(doc: dict[str, Any] | None) -> tuple[dict[str, Any], RunSpec, dict[str, Any]]:
    """The static attributes, spec and state of a root ``zarr.json``. Raises StoreFormatError."""
    if doc is None:
        raise StoreFormatError("zarr.json (root): missing; this is not a zarr v3 store")
    if doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
        raise StoreFormatError(
            f"zarr.json (root): expected a zarr v3 group, got zarr_format="
            f"{doc.get('zarr_format')!r}, node_type={doc.get('node_type')!r}"
        )
    attrs = doc.get("attributes")
    if not isinstance(attrs, dict) or not isinstance(attrs.get(F.ATTR_KEY), dict):
        raise StoreFormatError(
            f"attributes.{F.ATTR_KEY}: missing; this zarr group is not an envreel run"
        )
    static = attrs[F.ATTR_KEY]
    if static.get("format") != F.FORMAT_NAME:
        raise StoreFormatError(
            f"attributes.{F.ATTR_KEY}.format: expected {F.FORMAT_NAME!r}, "
            f"got {static.get('format')!r}"
        )
    major, minor = parse_version(static.get("version"))
    if major != F.FORMAT_VERSION[0]:
        raise StoreFormatError(
            f"this store is envreel format version {major}.{minor}; this build of envreel reads "
            f"version {F.FORMAT_VERSION[0]}.x (up to {F.FORMAT_VERSION[0]}.{F.FORMAT_VERSION[1]})"
            + ("; upgrade envreel to read it" if major > F.FORMAT_VERSION[0] else "")
        )
    try:
        spec = RunSpec.from_dict(static.get("spec"))
    except (TypeError, ValueError) as exc:
        raise StoreFormatError(f"attributes.{F.ATTR_KEY}.spec: {exc}") from None
    state = attrs.get(F.STATE_KEY)
    if not isinstance(state, dict):
        raise StoreFormatError(f"attributes.{F.STATE_KEY}: missing commit record")
    check_state(state)
    return static, spec, state


def _nonneg_int(value: Any, where: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise StoreFormatError(f"{where}: expected an int between 0 and {limit}, got {value!r}")
    return value


def check_state(state: dict[str, Any]) -> None:
    where = f"attributes.{F.STATE_KEY}"
    n = _nonneg_int(state.get("num_frames"), f"{where}.num_frames", F.MAX_FRAMES)
    counters = state.get("counters")
    if not isinstance(counters, dict):
        raise StoreFormatError(f"{where}.counters: expected a dict, got {counters!r}")
    for k in F.COUNTERS:
        _nonneg_int(counters.get(k), f"{where}.counters.{k}", 1 << 62)
    for k, v in counters.items():
        _nonneg_int(v, f"{where}.counters.{k}", 1 << 62)
    clips = state.get("clips")
    if not isinstance(clips, list) or len(clips) > F.MAX_CLIPS:
        raise StoreFormatError(f"{where}.clips: expected a list of at most {F.MAX_CLIPS} clips")
    last_stop, last_id = 0, -1
    for i, c in enumerate(clips):
        cw = f"{where}.clips[{i}]"
        if not isinstance(c, dict):
            raise StoreFormatError(f"{cw}: expected a dict, got {c!r}")
        cid = _nonneg_int(c.get("id"), f"{cw}.id", 1 << 31)
        s = _nonneg_int(c.get("start_frame"), f"{cw}.start_frame", F.MAX_FRAMES)
        e = _nonneg_int(c.get("stop_frame"), f"{cw}.stop_frame", F.MAX_FRAMES)
        for k in ("start_step", "stop_step"):
            if isinstance(c.get(k), bool) or not isinstance(c.get(k), int):
                raise StoreFormatError(f"{cw}.{k}: expected an int, got {c.get(k)!r}")
        if not last_stop <= s < e <= n:
            raise StoreFormatError(
                f"{cw}: frames [{s}, {e}) must be ordered, non-empty and within the "
                f"{n} committed frames (after {last_stop})"
            )
        if cid <= last_id:
            raise StoreFormatError(f"{cw}.id: clip ids must increase, got {cid} after {last_id}")
        last_stop, last_id = e, cid
    if not isinstance(state.get("errors", []), list):
        raise StoreFormatError(f"{where}.errors: expected a list")


def expected_arrays(spec: RunSpec) -> dict[str, F.ArraySpec]:
    from .writer import static_arrays  # the writer's list is the layout

    out = {s.path: s for s in static_arrays(spec)}
    out[F.ENV_ORIGINS.path] = F.ENV_ORIGINS
    out[F.ENV_INTRINSICS.path] = F.ENV_INTRINSICS
    out[F.GLOBAL_INTRINSICS.path] = F.GLOBAL_INTRINSICS
    if not spec.env_pose_per_frame:
        out[F.ENV_POSE.path] = F.ENV_POSE
    if not spec.global_pose_per_frame:
        out[F.GLOBAL_POSE.path] = F.GLOBAL_POSE
    return out


OPTIONAL = frozenset(
    {
        F.ENV_ORIGINS.path,
        F.ENV_INTRINSICS.path,
        F.GLOBAL_INTRINSICS.path,
        F.ENV_POSE.path,
        F.GLOBAL_POSE.path,
    }
)


def _codec_names(codecs: Any, where: str) -> Iterator[str]:
    if not isinstance(codecs, list):
        raise StoreFormatError(f"{where}: codecs must be a list, got {type(codecs).__name__}")
    for c in codecs:
        name = c.get("name") if isinstance(c, dict) else c
        if not isinstance(name, str):
            raise StoreFormatError(f"{where}: a codec has no name: {c!r}")
        yield name
        if name == "sharding_indexed":
            conf = c.get("configuration") if isinstance(c, dict) else None
            if not isinstance(conf, dict):
                raise StoreFormatError(
                    f"{where}: sharding_indexed configuration must be a dict, got "
                    f"{type(conf).__name__}"
                )
            yield from _codec_names(conf.get("codecs"), where)
            yield from _codec_names(conf.get("index_codecs"), where)


def layout_chunks(s: F.ArraySpec, spec: RunSpec) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """(chunk grid, inner chunk of the shards or None) that the layout gives array ``s``."""
    shape = F.concrete_shape(s, {**spec.sizes, "T": spec.block_frames})
    if s.path == F.ENV_FRAMES.path:
        return (shape[0], spec.envs_per_shard, *shape[2:]), (shape[0], 1, *shape[2:])
    return shape, None


def _sharding_chunk(codecs: Any) -> Any:
    for c in codecs if isinstance(codecs, list) else ():
        if isinstance(c, dict) and c.get("name") == "sharding_indexed":
            conf = c.get("configuration")
            return conf.get("chunk_shape") if isinstance(conf, dict) else None
    return None


def check_array_doc(
    doc: dict[str, Any] | None,
    s: F.ArraySpec,
    sizes: dict[str, int],
    num_frames: int,
    *,
    spec: RunSpec | None = None,
) -> list[Problem]:
    """Problems with one array's ``zarr.json`` against the layout (empty when it is fine).

    With ``spec``, chunk shapes must be exactly the layout's (``layout_chunks``): a chunk is
    what one read decodes, so a store may not declare chunks bigger than its blocks.
    """
    p = s.path
    if doc is None:
        return [Problem(p, "missing")]
    if "_error" in doc:
        return [Problem(p, doc["_error"])]
    if doc.get("zarr_format") != 3 or doc.get("node_type") != "array":
        return [Problem(p, "expected a zarr v3 array")]
    problems = []
    dtype = doc.get("data_type")
    if dtype != s.dtype:
        problems.append(Problem(p, f"data type {dtype!r}, expected {s.dtype!r}"))
    shape = doc.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        return [*problems, Problem(p, f"shape {shape!r} is not a list of non-negative ints")]
    want = F.concrete_shape(s, {**sizes, "T": num_frames})
    if len(shape) != len(want):
        problems.append(
            Problem(p, f"shape {tuple(shape)} has {len(shape)} dims, expected {len(want)} {s.dims}")
        )
    elif s.per_frame:
        if shape[0] < num_frames:
            problems.append(
                Problem(
                    p,
                    f"holds {shape[0]} frames but {num_frames} are committed "
                    f"(attributes.{F.STATE_KEY}.num_frames)",
                )
            )
        if shape[0] > F.MAX_FRAMES:
            problems.append(Problem(p, f"declares {shape[0]} frames; at most {F.MAX_FRAMES}"))
        if tuple(shape[1:]) != want[1:]:
            problems.append(
                Problem(
                    p,
                    f"shape {tuple(shape)} disagrees with the spec: expected "
                    f"(T, {', '.join(map(str, want[1:]))})",
                )
            )
    elif tuple(shape) != want:
        problems.append(Problem(p, f"shape {tuple(shape)}, expected {want}"))
    grid = doc.get("chunk_grid")
    try:
        chunk = grid["configuration"]["chunk_shape"]
        if not (
            isinstance(chunk, list)
            and len(chunk) == len(shape)
            and all(isinstance(c, int) and c > 0 for c in chunk)
        ):
            raise TypeError
        itemsize = 1 if s.dtype in ("bool", "uint8") else 8
        if math.prod(chunk) * itemsize > F.MAX_BLOCK_BYTES:
            problems.append(
                Problem(
                    p,
                    f"chunk shape {chunk} needs more than {F.MAX_BLOCK_BYTES >> 30} GiB per chunk",
                )
            )
        elif spec is not None:
            outer, inner = layout_chunks(s, spec)
            if tuple(chunk) != outer:
                problems.append(
                    Problem(p, f"chunk shape {tuple(chunk)}, expected {outer} (the layout's)")
                )
            found = _sharding_chunk(doc.get("codecs"))
            if found is not None and (not isinstance(found, list) or tuple(found) != inner):
                problems.append(
                    Problem(p, f"shard inner chunk shape {found!r}, expected {inner} (the layout)")
                )
    except (KeyError, TypeError):
        problems.append(Problem(p, f"chunk_grid {grid!r} is not a regular grid"))
    try:
        names = list(_codec_names(doc.get("codecs"), p))
    except StoreFormatError as exc:
        return [*problems, Problem(p, str(exc).split(": ", 1)[-1])]
    bad = [n for n in names if n not in F.STANDARD_CODECS]
    if bad:
        problems.append(
            Problem(
                p,
                f"non-standard codec(s) {bad}; envreel stores use only {sorted(F.STANDARD_CODECS)}",
            )
        )
    return problems


def array_docs(store: Store, spec: RunSpec) -> dict[str, dict[str, Any] | None]:
    """Each expected array's ``zarr.json`` (None when missing)."""
    out = {}
    for path in expected_arrays(spec):
        try:
            out[path] = read_json(store, f"{path}/zarr.json", limit=1 << 20)
        except StoreFormatError as exc:
            out[path] = {"_error": str(exc)}
    return out
