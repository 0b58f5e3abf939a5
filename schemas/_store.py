"""Opening zarr stores from paths and URLs, and the codec choices."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import zarr
import zarr.codecs as zc
from zarr.abc.store import RangeByteRequest, Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from envreel.errors import StoreFormatError

from . import _format as F

StoreLike = str | os.PathLike | Store


def describe(url: StoreLike) -> str:
    """A short name of a store for messages."""
    return str(url) if not isinstance(url, Store) else repr(url)


REMOTE_HINT = "pip install 'envreel[remote]'"
"""How to install what http(s):// and s3:// stores need (fsspec's aiohttp and s3fs backends)."""


def open_store(url: StoreLike, *, read_only: bool, storage_options: dict | None = None) -> Store:
    """A zarr store for a local path, a ``.zip`` file, ``file://``, any fsspec URL, or a store.

    Local paths get zarr's LocalStore, whose writes go to a temporary file and are renamed into
    place, so every object (chunk, shard or metadata document) appears whole or not at all.
    Object stores (s3://, gcs://, memory://) give the same guarantee per PUT. A local ``.zip``
    (``envreel pack``, or a zipped store folder) opens read-only. An http(s):// server must honour
    byte ranges (chunks are read by range): one that does not is refused, with how to fix it.
    """
    if isinstance(url, Store):
        return url
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise TypeError(f"a store must be a path, a URL or a zarr store, got {url!r}")
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" not in url:
        path = Path(url).expanduser()
        if is_zip(path):
            return _open_zip(path, url, read_only=read_only)
        if read_only and not (path / "zarr.json").is_file():
            if not path.exists():
                raise StoreFormatError(f"no store at {url}: the path does not exist")
            raise StoreFormatError(f"{url} is not an envreel store: it has no zarr.json")
        return zarr.storage.LocalStore(path, read_only=read_only)
    try:
        store = zarr.storage.FsspecStore.from_url(
            url, storage_options=storage_options, read_only=read_only
        )
    except ImportError as exc:
        raise ImportError(
            f"opening {url} needs the fsspec backend for its protocol ({exc}): {REMOTE_HINT}"
        ) from exc
    if read_only and url.split("://", 1)[0].lower() in ("http", "https"):
        _check_byte_ranges(store, url)
    return store


def is_zip(path: Path) -> bool:
    """Whether a local path is a zipped store (read-only): a ``.zip`` that is not a folder (a
    folder so named, recorded before zips were refused for recording, is a folder)."""
    return path.suffix.lower() == ".zip" and not path.is_dir()


def _open_zip(path: Path, url: str, *, read_only: bool) -> Store:
    """A zipped store: ``zarr.json`` at the zip's root, or in its one top-level folder."""
    if not read_only:
        raise ValueError(
            f"{url}: a .zip store is read-only; record into a folder (e.g. run.zarr), then "
            "envreel pack it"
        )
    if not path.is_file():
        raise StoreFormatError(f"no store at {url}: the file does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise StoreFormatError(f"{url} is not a readable zip file: {exc}") from None
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    inner = [""] if "zarr.json" in names else [t for t in sorted(tops) if f"{t}/zarr.json" in names]
    if len(inner) != 1:
        found = f"folders {sorted(tops)[:5]}" if tops else "no folder"
        raise StoreFormatError(
            f"{url} is a zip file but not an envreel store: no zarr.json at its root or in one "
            f"top-level folder ({found}); make one with `envreel pack RUN {path.name}`"
        )
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
    from fsspec.implementations.zip import ZipFileSystem

    fs = AsyncFileSystemWrapper(ZipFileSystem(str(path)), asynchronous=True)
    return zarr.storage.FsspecStore(fs, path=inner[0], read_only=True)


def _check_byte_ranges(store: Store, url: str) -> None:
    """Refuses a server that answers a byte range with the whole object (as ``python -m
    http.server`` does): every chunk read would get the wrong bytes."""
    got = _get_range(store, "zarr.json", 0, 2)
    if got is None:
        raise StoreFormatError(f"no store at {url}: the server has no {url}/zarr.json (HTTP 404)")
    if len(got) > 2:
        raise StoreFormatError(
            f"the server at {url} ignores HTTP Range requests (asked for 2 bytes of zarr.json, "
            f"got all {len(got)}): envreel reads chunks by byte range. Serve the store with "
            "`envreel serve RUN` or another server that supports Range requests (nginx, S3)"
        )


def read_json(
    store: Store, key: str, *, limit: int = F.MAX_METADATA_BYTES
) -> dict[str, Any] | None:
    """Read a JSON document from the store, refusing one over ``limit`` bytes.

    Returns None when the key does not exist.

    Raises:
        StoreFormatError: too large, not JSON, or not an object.
    """
    # Read at most limit + 1 bytes: enough to tell a document is too large without ever holding
    # a huge one (a hostile 100 MB zarr.json costs 16 MiB, not 100 MB). A first small read
    # serves the usual few-kB document without asking for a limit-sized buffer.
    first = _get_range(store, key, 0, min(limit + 1, _FIRST_READ))
    if first is None:
        return None
    parts = [first]
    if len(first) == _FIRST_READ and limit + 1 > _FIRST_READ:
        rest = _get_range(store, key, _FIRST_READ, limit + 1)
        parts += [rest] if rest is not None else []
    if sum(len(p) for p in parts) > limit:
        raise StoreFormatError(f"{key} is more than {limit} bytes; envreel reads at most {limit}")
    data = b"".join(parts)
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreFormatError(f"{key} is not valid JSON: {exc}") from None
    except RecursionError:
        raise StoreFormatError(f"{key} nests JSON deeper than Python can parse") from None
    if not isinstance(doc, dict):
        raise StoreFormatError(f"{key} must hold a JSON object, got {type(doc).__name__}")
    if _depth(doc) > MAX_JSON_DEPTH:
        # Later steps (spec checks, zarr's metadata parser) recurse: keep them far from the limit.
        raise StoreFormatError(f"{key} nests JSON deeper than {MAX_JSON_DEPTH} levels")
    return doc


_FIRST_READ = 64 << 10


def _get_range(store: Store, key: str, start: int, end: int) -> bytes | None:
    """Bytes [start, end) of an object (fewer at its end); None when it does not exist.

    A local store's file is read directly: a request through zarr costs ~4 ms here (its event
    loop runs in another thread), which made opening a run (18 documents) take ~70 ms.
    """
    if type(store) is zarr.storage.LocalStore:
        try:
            with open(Path(store.root) / key, "rb") as f:
                f.seek(start)
                return f.read(max(0, end - start))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):  # as zarr's LocalStore
            return None
        except OSError as exc:
            raise StoreFormatError(f"cannot read {key}: {type(exc).__name__}: {exc}") from exc
    try:
        buf = sync(
            store.get(
                key, prototype=default_buffer_prototype(), byte_range=RangeByteRequest(start, end)
            )
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes a format error
        raise StoreFormatError(f"cannot read {key}: {type(exc).__name__}: {exc}") from exc
    return None if buf is None else buf.to_bytes()


MAX_JSON_DEPTH = 128
"""Deepest JSON nesting a store may hold (RunSpec keeps user metadata to 100 levels)."""


def _depth(doc: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, todo = 0, [(doc, 1)]
    while todo:
        value, d = todo.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, d)
            if d <= MAX_JSON_DEPTH:
                todo += [(v, d + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return deepest


def compressors(codec: str, level: int) -> list:
    """The bytes-to-bytes codec chain for a codec name, ending with a crc32c checksum.

    The checksum makes a flipped byte in a chunk an error that names the chunk, instead of
    silently wrong pixels (zstd frames carry no checksum by default).
    """
    chain: list = []
    if codec == "zstd":
        chain.append(zc.ZstdCodec(level=level))
    elif codec == "blosc-lz4":
        chain.append(zc.BloscCodec(cname="lz4", clevel=level, shuffle="shuffle"))
    elif codec == "gzip":
        chain.append(zc.GzipCodec(level=level))
    chain.append(zc.Crc32cCodec())
    return chain


def lock_path(store: str | os.PathLike) -> Path:
    """The file a recorder locks (``flock``) while it records the local store ``store``:
    ``.<store name>.envreel-lock`` in the store's folder."""
    path = Path(os.path.abspath(os.path.expanduser(store)))
    return path.parent / f".{path.name}.envreel-lock"


def being_recorded(store: StoreLike) -> bool | None:
    """Whether a recorder on this machine records the local store now (its lock is held);
    None where that cannot be told (a URL, a zarr store object)."""
    if isinstance(store, Store) or (isinstance(store, str) and "://" in store):
        return None
    return lock_held(lock_path(os.fspath(store)))


def lock_held(path: str | os.PathLike) -> bool | None:
    """Whether a process holds an ``flock`` on the file at ``path`` (the kernel drops it with the
    process): False for no file, None where the file cannot be opened or probed."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # drops the probe's own lock
    return False
