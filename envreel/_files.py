"""Files made under a temporary name and renamed into place get the mode a plain ``open`` gives.

``tempfile.mkstemp`` and ``mkdtemp`` make their file (0600) and folder (0700) private whatever the
umask: right for scratch space, wrong for an output renamed into place (a zip to send, a folder
of PNGs), which teammates on a shared disk could then not read. This module imports nothing
beyond the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["umask", "give_default_mode"]


def umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux), else by
    setting it and putting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_mode(path: str | os.PathLike, *, like: str | os.PathLike | None = None) -> None:
    """Sets ``path`` to the mode ``open`` or ``mkdir`` would have given it (0666 or 0777 less the
    umask), or to the mode of ``like`` when that exists (a folder being replaced keeps its
    mode)."""
    path = Path(path)
    if like is not None and os.path.exists(like):
        mode = os.stat(like).st_mode & 0o7777
    else:
        mode = (0o777 if path.is_dir() else 0o666) & ~umask()
    os.chmod(path, mode)
