"""``envreel serve``: run stores over HTTP, read-only, with byte ranges, for teammates.

``python -m http.server`` ignores HTTP Range requests: a byte range of a chunk comes back as the
whole object, which envreel (and zarr) then misread. This server answers ranges (``bytes=a-b``,
``bytes=a-``, ``bytes=-n``) with 206 and the exact bytes, serves each store under its own
name (``http://127.0.0.1:8765/run.zarr``), from a folder or from a zip made by
``envreel pack``, and nothing else: no listings, no writes, no paths outside the stores. It binds
127.0.0.1 unless told otherwise.

Example:
    >>> server = StoreServer({"run.zarr": "envreel-demo/run.zarr"})  # doctest: +SKIP
    >>> server.start(); server.url("run.zarr")                        # doctest: +SKIP
    'http://127.0.0.1:41837/run.zarr'
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import zipfile
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO, Self, TypeVar
from urllib.parse import quote, unquote

from envreel.errors import StoreFormatError

__all__ = ["StoreServer", "run_names"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_COPY = 1 << 20


class _Source:
    """The objects of one store: a folder or a zip (store at its root or in one folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            if not (path / "zarr.json").is_file():
                raise StoreFormatError(f"{path} is not an envreel store: it has no zarr.json")
            self.root = path.resolve()
            return
        if path.suffix.lower() != ".zip" or not path.is_file():
            raise StoreFormatError(f"no store at {path}: expected a store folder or a .zip")
        self.zip = zipfile.ZipFile(path)
        names = set(self.zip.namelist())
        if "zarr.json" not in names:
            inner = sorted({n.split("/", 1)[0] for n in names if n.endswith("/zarr.json")})
            if len(inner) != 1 or f"{inner[0]}/zarr.json" not in names:
                raise StoreFormatError(f"{path} is a zip file but not an envreel store")
            self.prefix = inner[0] + "/"
        self.lock = threading.Lock()  # one zip file handle, many request threads

    def size_and_open(self, key: str) -> tuple[int, BinaryIO] | None:
        """(size, readable file) of a store object, or None when there is none."""
        if self.zip is None:
            target = (self.root / key).resolve()
            if self.root not in target.parents or not target.is_file():
                return None  # missing, a folder, or outside the store (.., links)
            return target.stat().st_size, open(target, "rb")  # noqa: SIM115 - closed by caller
        try:
            info = self.zip.getinfo(self.prefix + key)
        except KeyError:
            return None
        if info.is_dir():
            return None
        if info.compress_type == zipfile.ZIP_STORED:  # envreel pack: ranges straight from disk
            f = open(self.path, "rb")  # noqa: SIM115 - closed by the caller
            return info.file_size, _Window(f, self._data_offset(f, info), info.file_size)
        with self.lock:
            data = self.zip.read(info)  # a deflated member: whole, decompressed
        return len(data), io.BytesIO(data)

    @staticmethod
    def _data_offset(f: BinaryIO, info: zipfile.ZipInfo) -> int:
        """Where a member's bytes start: after its local header (whose name and extra fields
        may differ in length from the central directory's)."""
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise StoreFormatError(f"bad local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_len + extra_len


class _Window:
    """A byte window [start, start + size) of an open file, as a small file-like object."""

    def __init__(self, f: BinaryIO, start: int, size: int) -> None:
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def seek(self, pos: int) -> None:
        self._pos = pos

    def read(self, n: int) -> bytes:
        n = max(0, min(n, self._size - self._pos))
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def __enter__(self) -> _Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def run_names(paths: list[str | os.PathLike]) -> dict[str, Path]:
    """URL names for store paths: the folder name (``run.zarr``), or the zip's stem + ``.zarr``.

    Any name a folder can have is served (spaces, non-ASCII letters): URLs carry it
    percent-encoded (:meth:`StoreServer.url`), and requests are decoded.

    Raises:
        ValueError: two stores would get the same name, or a path has no name of its own
            (``.``, ``..``) or one with control characters.
    """
    names: dict[str, Path] = {}
    for p in paths:
        path = Path(p).expanduser()
        name = path.stem + ".zarr" if path.suffix.lower() == ".zip" else path.name
        if name in ("", ".", "..") or not name.isprintable():
            raise ValueError(
                f"cannot serve {p}: its name {name!r} cannot name it in a URL; give the store's "
                "own path (e.g. ../run.zarr), with no control characters"
            )
        if name in names:
            raise ValueError(f"two stores would both be served as {name!r}: {names[name]}, {p}")
        names[name] = path
    return names


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {format % args}")

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._serve(body=True)

    def _refuse(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET and HEAD only")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _serve(self, *, body: bool) -> None:
        path = unquote(self.path.split("?", 1)[0])
        name, _, key = path.lstrip("/").partition("/")
        source = self.server.sources.get(name)
        if source is None or not key or ".." in key.split("/"):
            self.send_error(HTTPStatus.NOT_FOUND, "no such store object")
            return
        found = source.size_and_open(key)
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND, "no such store object")
            return
        size, f = found
        with f:
            first, last = 0, size - 1
            status = HTTPStatus.OK
            wanted = self.headers.get("Range")
            if wanted is not None:
                span = _parse_range(wanted, size)
                if span is None:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                first, last = span
                status = HTTPStatus.PARTIAL_CONTENT
            length = max(0, last - first + 1)
            self.send_response(status)
            kind = "application/json" if key.endswith(".json") else "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if body and length:
                f.seek(first)
                left = length
                while left:
                    chunk = f.read(min(_COPY, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single-range header, or None when it cannot be satisfied."""
    m = _RANGE.match(header.strip())
    if m is None:
        return (0, size - 1) if size else None  # not a single byte range: the whole object
    lo, hi = m.group(1), m.group(2)
    if not lo:  # suffix: the last n bytes
        n = int(hi or 0)
        return (max(0, size - n), size - 1) if n and size else None
    first = int(lo)
    last = min(int(hi), size - 1) if hi else size - 1
    return (first, last) if first <= last and first < size else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sources: dict[str, _Source]
    log: object = None


_S = TypeVar("_S", bound=ThreadingHTTPServer)


def bind(server: type[_S], host: str, port: int, handler: type) -> _S:
    """``server((host, port), handler)``, its error naming the address when the port is taken
    or the host is not this machine's."""
    try:
        return server((host, port), handler)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


class LocalServer:
    """An HTTP server run on a background thread (:meth:`start`, or ``with``) or on this one
    (:meth:`serve_forever`) until :meth:`close`: the base of :class:`StoreServer` and the
    viewer (``envreel.tools.viewer.Viewer``)."""

    _thread_name = "envreel-serve"

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self._httpd = httpd
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) bound."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> Self:
        """Serves on a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=self._thread_name, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serves on this thread until :meth:`close` (or Ctrl-C)."""
        self._httpd.serve_forever()

    def close(self) -> None:
        """Stops serving and releases the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._release()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _release(self) -> None:
        """What a subclass holds open beyond the socket."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreServer(LocalServer):
    """Serves run stores read-only over HTTP with byte ranges (see the module doc).

    Args:
        runs: URL name -> store folder or zip (see :func:`run_names`).
        host: the address to bind. Defaults to "127.0.0.1" (this machine only).
        port: the port; 0 picks a free one. Defaults to 0.
        log: called with one line per request, or None for quiet. Defaults to None.

    Raises:
        StoreFormatError: a path is not a store.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        runs: dict[str, str | os.PathLike],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log: object = None,
    ) -> None:
        sources = {name: _Source(Path(path)) for name, path in runs.items()}
        httpd = bind(_Server, host, port, _Handler)
        httpd.sources = sources
        httpd.log = log
        super().__init__(httpd)
        self._sources = sources

    def url(self, name: str) -> str:
        """The URL of the store served as ``name``, percent-encoded (``rün 1.zarr`` is
        ``r%C3%BCn%201.zarr``)."""
        host, port = self.address
        return f"http://{host}:{port}/{quote(name, safe='')}"

    def _release(self) -> None:
        for source in self._sources.values():
            if source.zip is not None:
                source.zip.close()
