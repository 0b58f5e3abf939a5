"""Direct reads of the store's own chunk layout, by time block, without zarr's read machinery.

zarr's read path costs about 0.5 ms of Python per store request (its async loop runs in another
thread) and hops to a worker thread for every zstd chunk; rendering a 64-env grid spent ~8 ms of
CPU per frame there against ~0.8 ms of actual zstd decoding. This module reads the layout the
writer produces (``chunk_format`` recognises it exactly) with one request per run of adjacent
chunks, checks each chunk's crc32c and decodes it with numcodecs' zstd (which releases the GIL)
straight into the caller's memory. Any other layout or codec chain is left to zarr.

What is read is what zarr reads: only the requested envs' inner chunks (and each shard's
index). Every problem (a missing object, a bad checksum, a chunk that does not decode to exactly
its size, an inner chunk the shard's index marks never written) is a ``CorruptChunkError`` naming
the array and the chunk. zarr reads that last one as the fill value 0 (black frames), but the
writer writes every env's chunk of every block, so it is damage (a rewritten index, a partial
copy), not frames.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
from numcodecs import zstd
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore

from envreel.errors import CorruptChunkError

from . import _format as F

__all__ = ["ChunkFormat", "chunk_format", "ChunkReader", "shard_index_reader", "never_written"]

_EMPTY = 2**64 - 1
"""Shard index entry (offset and length) of an inner chunk that was never written."""
_ZSTD_MAGIC = 0xFD2FB528
_KEY_ENCODINGS = ({"name": "default"}, {"name": "default", "configuration": {"separator": "/"}})
_INDEX_CODECS = tuple(
    [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c", **extra}]
    for extra in ({}, {"configuration": {}})
)
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)
"""What zarr's LocalStore reads as a missing object."""
_INDEX_CACHE = 256
"""Shard indexes kept per array (16 bytes per env each)."""


@dataclass(frozen=True)
class ChunkFormat:
    """A layout this module reads: chunks split the time axis only (a whole block of every other
    axis), or shards of ``envs_per_shard`` envs holding one inner chunk per env.

    Attributes:
        chunk: chunk shape of the grid (the shard shape when sharded).
        inner: inner chunk shape of the shards, or None when not sharded.
        dtype: the array's dtype (little-endian on disk).
        zstd: chunks are zstd-compressed (else stored raw).
        crc32c: chunks end with a crc32c checksum.
    """

    chunk: tuple[int, ...]
    inner: tuple[int, ...] | None
    dtype: np.dtype
    zstd: bool
    crc32c: bool

    @property
    def sharded(self) -> bool:
        return self.inner is not None


def _chain(codecs: Any, dtype: np.dtype) -> tuple[bool, bool] | None:
    """(zstd, crc32c) of an ``[bytes, zstd?, crc32c?]`` chain, or None for any other chain."""
    if not isinstance(codecs, list) or not codecs:
        return None
    names = []
    for c in codecs:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            return None
        conf = c.get("configuration") or {}
        if not isinstance(conf, dict):
            return None
        names.append((c["name"], conf))
    (first, conf), rest = names[0], names[1:]
    if first != "bytes" or set(conf) - {"endian"}:
        return None
    if conf.get("endian", "little" if dtype.itemsize == 1 else None) != "little":
        return None
    zstd_on = bool(rest) and rest[0][0] == "zstd"
    if zstd_on:
        zconf = rest[0][1]
        if set(zconf) - {"level", "checksum"} or not isinstance(zconf.get("checksum", False), bool):
            return None
        rest = rest[1:]
    crc = bool(rest) and rest[0] == ("crc32c", {})
    if crc:
        rest = rest[1:]
    return None if rest else (zstd_on, crc)


def chunk_format(doc: Any, shape: tuple[int, ...]) -> ChunkFormat | None:
    """The ``ChunkFormat`` of an array's ``zarr.json`` when this module can read it exactly.

    Args:
        doc: the array's metadata document.
        shape: the array's shape with the time axis at any length (only the others are checked).

    Returns:
        The format, or None for anything else (zarr then reads the array).
    """
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
        return None
    name = doc.get("data_type")
    if name not in F.NUMERIC_DTYPES or doc.get("fill_value") not in (0, False):
        return None
    dtype = np.dtype(name)
    if dtype.itemsize > 1 and sys.byteorder != "little":
        return None
    if doc.get("storage_transformers") not in (None, []):
        return None
    if doc.get("chunk_key_encoding") not in _KEY_ENCODINGS:
        return None
    grid = doc.get("chunk_grid")
    conf = grid.get("configuration") if isinstance(grid, dict) else None
    chunk = conf.get("chunk_shape") if isinstance(conf, dict) else None
    if not isinstance(chunk, list) or grid.get("name") != "regular" or len(chunk) != len(shape):
        return None
    chunk = tuple(chunk)
    if not all(isinstance(c, int) and c > 0 for c in chunk):
        return None
    codecs = doc.get("codecs")
    if not isinstance(codecs, list) or not codecs:
        return None
    first = codecs[0]
    if isinstance(first, dict) and first.get("name") == "sharding_indexed":
        conf = first.get("configuration")
        if len(codecs) != 1 or not isinstance(conf, dict):
            return None
        if set(conf) - {"chunk_shape", "codecs", "index_codecs", "index_location"}:
            return None
        if conf.get("index_location", "end") != "end":
            return None
        if conf.get("index_codecs") not in _INDEX_CODECS:
            return None
        inner = conf.get("chunk_shape")
        if not isinstance(inner, list) or len(inner) != len(shape) or len(shape) < 2:
            return None
        inner = tuple(inner)
        # shards of a block × some envs, one inner chunk per env; other axes whole
        if inner != (chunk[0], 1, *shape[2:]) or chunk[2:] != tuple(shape[2:]):
            return None
        codec_flags = _chain(conf.get("codecs"), dtype)
    else:
        inner = None
        if chunk[1:] != tuple(shape[1:]):
            return None
        codec_flags = _chain(codecs, dtype)
    if codec_flags is None:
        return None
    return ChunkFormat(
        chunk=chunk, inner=inner, dtype=dtype, zstd=codec_flags[0], crc32c=codec_flags[1]
    )


def _zstd_content_size(data: np.ndarray) -> int | None:
    """The content size a zstd frame header declares, or None when it does not declare one.

    Raises:
        ValueError: the bytes do not start with a zstd frame.
    """
    if len(data) < 6 or int.from_bytes(data[:4].tobytes(), "little") != _ZSTD_MAGIC:
        raise ValueError("not a zstd frame (bad magic number)")
    fhd = int(data[4])
    fcs_flag, single, did_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        return None
    if len(data) < pos + size:
        raise ValueError("truncated zstd frame header")
    value = int.from_bytes(data[pos : pos + size].tobytes(), "little")
    return value + 256 if size == 2 else value


class _Bytes:
    """Byte ranges of store objects: straight from the file for a local store (a few µs), else
    through the store's own ``get`` (one zarr request each)."""

    def __init__(self, store: Any):
        self.store = store
        self.root: Path | None = Path(store.root) if type(store) is LocalStore else None
        self.prototype = default_buffer_prototype()

    def get(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Bytes ``[start, stop)`` of ``key`` (fewer at its end; ``stop=None``: to the end), or
        with a negative ``start`` its last ``-start`` bytes. None when the object does not
        exist."""
        if self.root is not None:
            try:
                with open(self.root / key, "rb", buffering=0) as f:
                    size = os.fstat(f.fileno()).st_size
                    if start < 0:
                        start, stop = max(0, size + start), size
                    stop = size if stop is None else min(stop, size)
                    f.seek(min(start, size))
                    return np.frombuffer(_read_exactly(f, max(0, stop - start)), np.uint8)
            except _MISSING:
                return None
        if start < 0:
            rng = SuffixByteRequest(-start)
        elif stop is None:
            rng = None if start == 0 else OffsetByteRequest(start)
        else:
            rng = RangeByteRequest(start, stop)
        try:
            buf = sync(self.store.get(key, prototype=self.prototype, byte_range=rng))
        except FileNotFoundError:
            return None
        return None if buf is None else buf.as_numpy_array().view(np.uint8).reshape(-1)


def _read_exactly(f: Any, n: int) -> bytes:
    """Up to ``n`` bytes from ``f`` (fewer only at its end)."""
    parts, got = [], 0
    while got < n:
        part = f.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)  # one part: no copy


class ChunkReader:
    """Reads blocks of time (and, when sharded, runs of envs) of one array of a store.

    Args:
        store: the zarr store.
        path: the array's path in the store.
        fmt: its ``chunk_format``.
    """

    def __init__(self, store: Any, path: str, fmt: ChunkFormat):
        self.path, self.fmt = path, fmt
        self.bytes = _Bytes(store)
        inner = fmt.inner or fmt.chunk
        self.chunk_items = int(np.prod(inner))
        self.chunk_bytes = self.chunk_items * fmt.dtype.itemsize
        self.per_shard = fmt.chunk[1] if fmt.sharded else 1
        self.index_bytes = 16 * self.per_shard + 4
        # No encoding of a chunk is larger (zstd's worst case is +0.4% and a header; crc32c adds
        # 4 bytes): a larger object or index entry is damage, refused before anything that size
        # is allocated.
        self.max_encoded = self.chunk_bytes + self.chunk_bytes // 128 + 4096
        self._indexes: OrderedDict[str, np.ndarray] = OrderedDict()
        self._local = threading.local()

    # ---- reading ------------------------------------------------------------------------------
    def read(
        self,
        start: int,
        stop: int,
        stride: int,
        out: np.ndarray,
        *,
        envs: tuple[int, int] | None = None,
        committed: int,
    ) -> np.ndarray:
        """Read frames ``[start, stop)`` by ``stride`` (of envs ``[e0, e1)`` when sharded) into
        ``out`` of shape (t, ...) or (t, e1 - e0, ...), ``committed`` frames being final.

        Raises:
            CorruptChunkError: a chunk is missing, fails its checksum, does not decode to its
                size, or its shard's index marks it never written.
        """
        b = self.fmt.chunk[0]
        t = len(range(start, stop, stride))
        if t == 0:
            return out
        for blk in range(start // b, (start + (t - 1) * stride) // b + 1):
            lo = blk * b
            r0 = 0 if lo <= start else -(-(lo - start) // stride)
            r1 = min(t, -(-(lo + b - start) // stride))
            if r1 <= r0:
                continue
            sel = slice(start + r0 * stride - lo, start + (r1 - 1) * stride - lo + 1, stride)
            if envs is None:
                self._plain(blk, sel, out[r0:r1])
            else:
                self._sharded(blk, sel, envs, out[r0:r1], committed)
        return out

    def _plain(self, blk: int, sel: slice, dst: np.ndarray) -> None:
        coords = (blk,) + (0,) * (len(self.fmt.chunk) - 1)
        key = f"{self.path}/c/" + "/".join(map(str, coords))
        try:
            data = self.bytes.get(key, 0, self.max_encoded + 1)
            if data is None:
                raise FileNotFoundError(f"{key} does not exist")
            if len(data) > self.max_encoded:
                raise ValueError(f"{key} is larger than any encoding of its chunk")
        except Exception as exc:  # noqa: BLE001 - any backend error names the chunk
            raise self._error(coords, exc) from exc
        self._decode_into(data, sel, dst, coords)

    def _sharded(
        self, blk: int, sel: slice, envs: tuple[int, int], dst: np.ndarray, committed: int
    ) -> None:
        e0, e1 = envs
        final = (blk + 1) * self.fmt.chunk[0] <= committed  # a partly written block may change
        s_per = self.per_shard
        rest = (0,) * (len(self.fmt.chunk) - 2)
        for shard in range(e0 // s_per, (e1 - 1) // s_per + 1):
            a, z = max(e0, shard * s_per), min(e1, (shard + 1) * s_per)
            key = f"{self.path}/c/" + "/".join(map(str, (blk, shard, *rest)))
            index = self._index(key, (blk, a, *rest), final)
            entries = index[a - shard * s_per : z - shard * s_per]
            i = 0
            while i < len(entries):
                coords = (blk, a + i, *rest)
                off, n = int(entries[i, 0]), int(entries[i, 1])
                if off == _EMPTY and n == _EMPTY:  # zarr would read the fill value: black frames
                    b = self.fmt.chunk[0]
                    t1 = min(committed, (blk + 1) * b)
                    raise never_written(self.path, coords, (blk, shard, *rest), blk * b, t1)
                # one request for a run of chunks stored back to back
                j, end = i + 1, off + n
                while (
                    j < len(entries) and int(entries[j, 0]) == end and int(entries[j, 1]) != _EMPTY
                ):
                    end += int(entries[j, 1])
                    j += 1
                try:
                    if any(int(m) > self.max_encoded for m in entries[i:j, 1]):
                        raise ValueError("a shard index entry is larger than any encoded chunk")
                    data = self.bytes.get(key, off, end)
                    if data is None:
                        raise FileNotFoundError(f"{key} does not exist")
                    if len(data) != end - off:
                        raise ValueError(
                            f"the shard index points past the end of the shard ({key})"
                        )
                except Exception as exc:  # noqa: BLE001
                    raise self._error(coords, exc) from exc
                pos = 0
                for k in range(i, j):
                    n = int(entries[k, 1])
                    c = (blk, a + k, *rest)
                    self._decode_into(data[pos : pos + n], sel, dst[:, a + k - e0], c)
                    pos += n
                i = j

    def _index(self, key: str, coords: tuple, final: bool) -> np.ndarray:
        """(envs per shard, 2) offsets and lengths of a shard's chunks (cached when final)."""
        index = self._indexes.get(key)
        if index is not None:
            return index
        try:
            raw = self.bytes.get(key, -self.index_bytes)
            if raw is None:
                raise FileNotFoundError(f"{key} does not exist")
            if len(raw) != self.index_bytes:
                raise ValueError(
                    f"shard is {len(raw)} bytes, shorter than its {self.index_bytes}-byte index"
                )
            _check_crc(raw, "shard index")
            index = np.frombuffer(raw[:-4], "<u8").reshape(self.per_shard, 2)
        except Exception as exc:  # noqa: BLE001
            raise self._error(coords, exc) from exc
        if final:
            self._indexes[key] = index
            if len(self._indexes) > _INDEX_CACHE:
                self._indexes.popitem(last=False)
        return index

    # ---- decoding -----------------------------------------------------------------------------
    def _scratch(self) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = np.empty(self.chunk_items, self.fmt.dtype)
        return buf

    def _decode_into(self, data: np.ndarray, sel: slice, dst: np.ndarray, coords: tuple) -> None:
        """Decode one chunk and put its time rows ``sel`` into ``dst``: straight into ``dst``
        when it is the whole chunk and contiguous, else through a per-thread scratch chunk."""
        b = self.fmt.chunk[0]
        whole = sel == slice(0, b, 1) and dst.flags.c_contiguous and dst.dtype == self.fmt.dtype
        target = dst.reshape(-1) if whole else self._scratch()
        try:
            if self.fmt.crc32c:
                _check_crc(data, "chunk")
                data = data[:-4]
            flat = target.view(np.uint8)
            if self.fmt.zstd:
                size = _zstd_content_size(data)
                if size is not None and size != self.chunk_bytes:
                    raise ValueError(
                        f"zstd frame holds {size} bytes, expected {self.chunk_bytes} (the chunk)"
                    )
                zstd.decompress(data, flat)
            elif len(data) != self.chunk_bytes:
                raise ValueError(f"chunk holds {len(data)} bytes, expected {self.chunk_bytes}")
            else:
                flat[...] = np.frombuffer(data, np.uint8)
        except Exception as exc:  # noqa: BLE001
            raise self._error(coords, exc) from exc
        if not whole:
            shape = (b, *dst.shape[1:])
            dst[...] = target.reshape(shape)[sel]

    def _error(self, coords: tuple, exc: BaseException) -> CorruptChunkError:
        return CorruptChunkError(
            f"{self.path} chunk {coords}: cannot read or decode: {type(exc).__name__}: {exc}",
            array=self.path,
            chunk=coords,
        )


def never_written(path: str, coords: tuple, shard: tuple, t0: int, t1: int) -> CorruptChunkError:
    """The error for inner chunk ``coords`` (block, env, ...) of the shard at ``shard`` whose
    index marks it never written while its frames ``[t0, t1)`` are committed."""
    return CorruptChunkError(
        f"{path} chunk {coords}: the index of shard {shard} marks this env's chunk never written, "
        f"although its frames [{t0}, {t1}) are committed (the writer writes every env's chunk of "
        "every block: the index was rewritten or the shard copied in part)",
        array=path,
        chunk=coords,
    )


def _check_crc(data: np.ndarray, what: str) -> None:
    if len(data) < 4:
        raise ValueError(f"{what} of {len(data)} bytes has no room for its crc32c")
    stored = int.from_bytes(data[-4:].tobytes(), "little")
    if google_crc32c.value(data[:-4]) != stored:
        raise ValueError(f"{what} fails its crc32c checksum")


def shard_index_reader(store: Any, path: str, doc: Any) -> Any:
    """A function ``(shard coords) -> (inner chunks, 2) offsets and lengths`` reading the index
    of one shard of a sharded array (one ranged request of 16 bytes per inner chunk), for index
    chains ``[bytes]`` or ``[bytes, crc32c]`` at either end of the shard (any zarr v3
    writer's, envreel's included). None when the array is not sharded or its index chain is
    another.

    The function returns None for a missing shard and raises ``ValueError`` for a damaged
    index.
    """
    codecs = doc.get("codecs") if isinstance(doc, dict) else None
    first = codecs[0] if isinstance(codecs, list) and len(codecs) == 1 else None
    conf = first.get("configuration") if isinstance(first, dict) else None
    if not isinstance(conf, dict) or first.get("name") != "sharding_indexed":
        return None
    grid = (doc.get("chunk_grid") or {}).get("configuration") or {}
    shard, inner = grid.get("chunk_shape"), conf.get("chunk_shape")
    ok = isinstance(shard, list) and isinstance(inner, list) and len(shard) == len(inner)
    if not ok or not all(isinstance(x, int) and x > 0 for x in (*shard, *inner)):
        return None
    count = int(np.prod([-(-s // i) for s, i in zip(shard, inner, strict=True)]))
    chain = conf.get("index_codecs")
    if not isinstance(chain, list) or not 1 <= len(chain) <= 2:
        return None
    head = chain[0] if isinstance(chain[0], dict) else {}
    endian = (head.get("configuration") or {}).get("endian", "little")
    if head.get("name") != "bytes" or endian not in ("little", "big"):
        return None
    crc = len(chain) == 2
    if crc and (not isinstance(chain[1], dict) or chain[1].get("name") != "crc32c"):
        return None
    encoding = doc.get("chunk_key_encoding") or {"name": "default"}
    name = encoding.get("name") if isinstance(encoding, dict) else None
    sep = ((encoding.get("configuration") if name else None) or {}).get(
        "separator", "/" if name == "default" else "."
    )
    if name not in ("default", "v2") or sep not in ("/", "."):
        return None
    at_end = conf.get("index_location", "end") == "end"
    nbytes = 16 * count + 4 * crc
    source = _Bytes(store)

    def read(coords: tuple[int, ...]) -> np.ndarray | None:
        key = sep.join(map(str, coords))
        key = f"{path}/c{sep}{key}" if name == "default" else f"{path}/{key}"
        raw = source.get(key, -nbytes) if at_end else source.get(key, 0, nbytes)
        if raw is None:
            return None
        if len(raw) != nbytes:
            raise ValueError(f"shard is {len(raw)} bytes, shorter than its {nbytes}-byte index")
        if crc:
            _check_crc(raw, "shard index")
            raw = raw[:-4]
        dtype = "<u8" if endian == "little" else ">u8"
        return np.frombuffer(raw, dtype).astype(np.uint64).reshape(-1, 2)

    return read
