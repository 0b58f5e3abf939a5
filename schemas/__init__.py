"""envreel.schemas: the run store format, the one contract between capture and render.

A run store is a zarr v3 group; ``FORMAT.md`` beside this file documents every attribute and array.
This package writes (``create_run`` / ``RunWriter``), reads (``open_run`` / ``Run``) and checks
(``validate``) stores. It imports numpy and zarr only: never torch, capture or render.

Example:
    >>> from envreel.schemas import RunSpec, Block, create_run, open_run
    >>> w = create_run("memory://ex.zarr", RunSpec(num_envs=2, env_frame_shape=(8, 8), fps=30))
    >>> w.append(Block.empty(w.spec, 4)); w.close()
    >>> open_run("memory://ex.zarr").num_frames
    4
"""

from envreel.errors import CorruptChunkError, EnvreelError, RecorderError, StoreFormatError

from ._format import FORMAT_NAME, FORMAT_VERSION
from .pack import pack_run
from .reader import Cameras, Clip, Run, open_run
from .spec import CODECS, RunSpec
from .validate import Problem, validate
from .writer import Block, RunWriter, create_run

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RunSpec",
    "CODECS",
    "Block",
    "RunWriter",
    "create_run",
    "Run",
    "Clip",
    "Cameras",
    "open_run",
    "pack_run",
    "validate",
    "Problem",
    "EnvreelError",
    "StoreFormatError",
    "CorruptChunkError",
    "RecorderError",
]
