"""torchrun: this process's place in a multi-GPU job, and the store each rank writes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Ranks", "read_ranks", "rank_url"]

_RANK_SUFFIX = "_rank{rank}"


@dataclass(frozen=True)
class Ranks:
    """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` of this process (0, 1, 0 without torchrun)."""

    rank: int
    world_size: int
    local_rank: int


def _env_int(name: str, default: int, environ: Any) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={raw!r} must be an integer (torchrun sets it)"
        ) from None
    if value < 0:
        raise ValueError(f"environment variable {name}={raw!r} must be >= 0")
    return value


def read_ranks(environ: Any = None) -> Ranks:
    """This process's place in a torchrun job, from ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``."""
    environ = os.environ if environ is None else environ
    world_size = _env_int("WORLD_SIZE", 1, environ)
    rank = _env_int("RANK", 0, environ)
    local_rank = _env_int("LOCAL_RANK", 0, environ)
    if world_size < 1:
        raise ValueError(f"environment variable WORLD_SIZE={world_size} must be >= 1")
    if rank >= world_size:
        raise ValueError(f"environment variable RANK={rank} must be below WORLD_SIZE={world_size}")
    return Ranks(rank, world_size, local_rank)


def rank_url(url: str | os.PathLike, rank: int) -> str | Path:
    """``url`` with ``_rank<r>`` inserted before the suffix of its last component."""
    suffix = _RANK_SUFFIX.format(rank=rank)
    if isinstance(url, os.PathLike):
        path = Path(url)
        return path.with_name(path.stem + suffix + path.suffix)
    if not isinstance(url, str):
        raise TypeError(
            "recording every rank (RecorderCfg.all_ranks) needs a path or URL to derive one "
            f"store per rank from, got {type(url).__name__}"
        )
    head, sep, query = url.partition("?")
    scheme, _, path = head.rpartition("://")
    match = re.fullmatch(r"(.*/)?([^/]+?)(\.[^./]+)?", path.rstrip("/"))
    if match is None:
        raise ValueError(f"cannot derive a per-rank store name from url {url!r}")
    prefix, stem, ext = match.group(1) or "", match.group(2), match.group(3) or ""
    scheme = scheme + "://" if scheme else ""
    return scheme + prefix + stem + suffix + ext + sep + query
