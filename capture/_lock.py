"""One recorder at a time per local store: a lock beside the store, held while it records.

Two recorders given one path (a requeued job whose first copy still runs, a duplicated launch)
would write into one store, each overwriting the other's blocks, and both report success: the
store then holds frames of both runs, and validates. The lock is an ``flock`` on
``.<store name>.envreel-lock`` in the store's folder: the kernel drops it with the process, so a
killed recording never blocks the next one (its file stays, empty of meaning, and is reused).
Stores on object stores (s3://, ...) are not locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from envreel.schemas._store import lock_path

__all__ = ["StoreLock"]


class StoreLock:
    """The recording lock of the local store at ``path``, taken at once.

    Raises:
        FileExistsError: another recorder (this machine, any process) holds it.
    """

    def __init__(self, path: Path) -> None:
        self.path = lock_path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileExistsError, NotADirectoryError) as exc:
            raise FileExistsError(
                exc.errno,
                f"cannot record into {str(path)!r}: {exc.filename} is a file, not a folder",
            ) from None
        except OSError as exc:  # a read-only disk, a folder of someone else's: said now
            raise OSError(
                exc.errno, f"cannot record into {str(path)!r}: {exc.strerror} ({exc.filename})"
            ) from None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise FileExistsError(
                    f"{str(path)!r} is being recorded by another recorder (pid {holder}, this "
                    "machine): two recorders on one store would mix their frames; record into "
                    "another path, or stop the other run first"
                ) from None
            try:  # the holder before may have removed the file between our open and lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock. Idempotent."""
        if self._fd < 0:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1
