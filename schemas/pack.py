"""``pack_run(run, "run.zip")``: a store as one zip file, to mail, upload or attach.

The zip holds the store's objects at its root, stored without recompression (chunks are
compressed already), and opens by path like a folder: ``open_run("run.zip")``,
``envreel render run.zip out.mp4``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

from zarr.core.sync import sync
from zarr.storage import LocalStore

from envreel._files import give_default_mode
from envreel.errors import StoreFormatError

from ._store import StoreLike, being_recorded, describe, open_store
from .reader import open_run
from .validate import validate

__all__ = ["pack_run"]


def pack_run(
    url: StoreLike,
    zip_path: str | os.PathLike,
    *,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> Path:
    """Writes the store at ``url`` into one zip file.

    The store is validated first (a store that is still recording, or damaged, is refused, with
    the problems named); the zip is written under a temporary name beside ``zip_path`` and
    renamed when complete, so a failure leaves nothing behind.

    Args:
        url: the store: a folder, a URL or another zip.
        zip_path: the zip to write (``.zip``).
        overwrite: replace an existing ``zip_path``. Defaults to False.
        storage_options: fsspec options for URLs. Defaults to None.

    Returns:
        The path of the zip.

    Raises:
        ValueError: ``zip_path`` does not end in ``.zip``.
        FileExistsError: ``zip_path`` exists and ``overwrite`` is False.
        StoreFormatError: not a valid store, or still recording.

    Example:
        >>> pack_run("envreel-demo/run.zarr", "run.zip")  # doctest: +SKIP
        PosixPath('run.zip')
    """
    out = Path(zip_path).expanduser()
    if out.suffix.lower() != ".zip":
        raise ValueError(f"the zip to write must end in .zip, got {os.fspath(zip_path)!r}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of {out} does not exist")
    if isinstance(url, str | os.PathLike) and Path(url).is_dir():
        if out.resolve().is_relative_to(Path(url).resolve()):
            raise ValueError(
                f"the zip {str(out)!r} is inside the store it packs; write it beside the store"
            )
    run = open_run(url, storage_options=storage_options)
    if not run.closed:
        recording = being_recorded(url)
        if recording is not False:
            raise StoreFormatError(
                f"{describe(url)} is "
                + (
                    "being recorded now"
                    if recording
                    else "still recording, or its recorder was killed"
                )
                + ": pack it after the recorder closed, or copy the folder (readers use the "
                "committed frames)"
            )
        warnings.warn(
            f"{describe(url)} was not closed: its recorder ended without closing it (killed?); "
            f"packing the {run.num_frames} frames it committed",
            UserWarning,
            stacklevel=2,
        )
    problems = validate(url, storage_options=storage_options)
    if problems:
        raise StoreFormatError(
            f"{describe(url)} is not a valid store ({len(problems)} problem(s)), e.g. "
            f"{problems[0]}; see `envreel validate`"
        )
    store = open_store(url, read_only=True, storage_options=storage_options)
    keys = sorted(sync(_keys(store)))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    except OSError as exc:  # its message names the temporary file, not the user's
        raise OSError(exc.errno, f"cannot write {str(out)!r}: {exc.strerror}") from None
    os.close(fd)
    try:
        give_default_mode(tmp)  # a zip to send: readable as any file the user writes
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            root = Path(store.root) if isinstance(store, LocalStore) else None
            for key in keys:
                if root is not None:  # streamed from the file: shards can be 100s of MB
                    with open(root / key, "rb") as src, zf.open(_info(key), "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    continue
                data = sync(store.get(key, prototype=_prototype()))
                if data is None:
                    raise StoreFormatError(f"{key} disappeared from {describe(url)} while packing")
                zf.writestr(_info(key), data.to_bytes())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


async def _keys(store) -> list[str]:
    return [key async for key in store.list()]


def _prototype():
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype()


def _info(key: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(key, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info
