"""Benchmark: the chunk/shard layout and codec of ``env/frames``.

Writes the same render-like frames ([T, N, H, W, 3] uint8) with several layouts and codecs, one
time block per write as the recorder does, and reports compression ratio, write and read
throughput, the time to read 4 scattered envs out of N, and the number of objects on disk. The
numbers behind the defaults in ``schemas/FORMAT.md`` come from this script.

Usage:
    python -m envreel.tools.bench_store [--envs 64] [--size 128] [--frames 192] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
import zarr

from envreel.schemas._store import compressors
from envreel.tools.synthetic import SyntheticScene

LAYOUTS = [
    # name, time block, sharded?, codec, level
    ("shard(B,N) / chunk(B,1)", 32, True, "zstd", 3),
    ("shard(B,N) / chunk(B,1)", 32, True, "zstd", 1),
    ("shard(B,N) / chunk(B,1)", 32, True, "blosc-lz4", 5),
    ("shard(B,N) / chunk(B,1)", 16, True, "zstd", 3),
    ("shard(B,N) / chunk(B,1)", 64, True, "zstd", 3),
    ("chunk(B,1), no shards", 32, False, "zstd", 3),
    ("chunk(1,N), no shards", 1, False, "zstd", 3),
]


def _objects(path: str) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def run_layout(
    frames: np.ndarray,
    root: str,
    block: int,
    sharded: bool,
    codec: str,
    level: int,
    probe_envs: list[int],
) -> dict:
    t, n, h, w, _ = frames.shape
    path = os.path.join(root, "a.zarr")
    shutil.rmtree(path, ignore_errors=True)
    chunks = (block, 1, h, w, 3) if block > 1 else (1, n, h, w, 3)
    arr = zarr.create_array(
        path,
        shape=(0, n, h, w, 3),
        dtype="uint8",
        chunks=chunks,
        shards=(block, n, h, w, 3) if sharded else None,
        compressors=compressors(codec, level),
        fill_value=0,
    )
    step = max(block, 32)
    t0 = time.perf_counter()
    for s in range(0, t, step):
        e = min(t, s + step)
        arr.resize((e, n, h, w, 3))
        arr[s:e] = frames[s:e]
    write_s = time.perf_counter() - t0
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    arr = zarr.open_array(path, mode="r")
    t0 = time.perf_counter()
    back = arr[...]
    read_all_s = time.perf_counter() - t0
    assert np.array_equal(back, frames)
    del back
    t0 = time.perf_counter()
    for e in probe_envs:
        arr[:, e]
    per_env_s = time.perf_counter() - t0
    raw = frames.nbytes
    return {
        "layout": f"{'shard' if sharded else 'chunk'} B={block}",
        "time_block": block,
        "sharded": sharded,
        "codec": f"{codec} {level}",
        "ratio": round(raw / stored, 2),
        "write_MBps": round(raw / write_s / 1e6, 1),
        "read_all_MBps": round(raw / read_all_s / 1e6, 1),
        "read_4_envs_ms": round(per_env_s * 1e3, 1),
        "objects": _objects(path),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--size", type=int, default=128, help="frame height and width")
    p.add_argument("--frames", type=int, default=192)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = p.parse_args(argv)
    scene = SyntheticScene(a.envs, a.size, a.size, seed=1)
    frames = np.stack([scene.frame() for _ in range(a.frames)])
    probe = [3, a.envs // 3, a.envs // 2 + 1, a.envs - 2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, block, sharded, codec, level in LAYOUTS:
            rows.append(run_layout(frames, tmp, block, sharded, codec, level, probe))
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "zarr": zarr.__version__,
        "frames": list(frames.shape),
    }
    if a.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(f"# {meta}")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
