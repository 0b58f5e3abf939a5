"""Regenerate the pictures in README.md and docs/ from a demo store.

Usage:
    python -m envreel.tools.readme_images [--store envreel-demo/run.zarr] [--out docs]

Runs ``envreel demo`` (16 envs × 200 steps) first when the store does not exist. Every picture is
one frame (PNG) or a short GIF rendered with the layout shown next to it in the README.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from envreel.render import Layout, contact_sheet, render

# name -> (layout fields, frame to keep, or "gif")
PICTURES: dict[str, tuple[dict, object]] = {
    "demo.gif": (
        dict(envs="0-7", columns=4, scale=0.5, stop=150, stride=3, fps=10, label=None),
        "gif",
    ),
    "grid.png": (
        dict(columns=4, global_view="right", markers=True, label="{env} r={reward:.2f}"),
        60,
    ),
    "top4.png": (
        dict(
            top_k=4,
            score="reward",
            score_stat="mean",
            order="descending",
            columns=4,
            label="{env} mean r={reward:.2f}",
        ),
        100,
    ),
    "inset.png": (
        dict(envs="0-7", columns=4, global_view="inset", markers=True, inset_fraction=0.45),
        120,
    ),
    "episodes.png": (
        dict(envs="0-7", columns=4, episode=1, label="{env} ep{episode} t={episode_step}"),
        40,
    ),
    "failures.png": (
        dict(
            only="terminated",
            columns=4,
            label="{env} ep{episode}",
            border=3,
            border_hold=10,
            page_size=8,
        ),
        30,
    ),
}


def _frame(store: Path, layout: Layout, index: int, out: Path) -> None:
    """Frame ``index`` of the whole rendering (filters and episode mode see the whole run)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        render(store, layout, str(folder) + "/")
        frames = sorted(folder.glob("*.png"))
        Image.open(frames[min(index, len(frames) - 1)]).save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", default="envreel-demo/run.zarr")
    p.add_argument("--out", default="docs")
    a = p.parse_args(argv)
    store, out = Path(a.store), Path(a.out)
    if not store.exists():
        from envreel.tools.demo import run_demo

        run_demo(store.parent, num_envs=16, steps=200)
    out.mkdir(parents=True, exist_ok=True)
    for name, (fields, frame) in PICTURES.items():
        layout = Layout(**fields)
        if frame == "gif":
            render(store, layout, out / name)
        else:
            _frame(store, layout, int(frame), out / name)
        print(out / name, (out / name).stat().st_size, "bytes")
    contact_sheet(store, out / "sheet.png", Layout(envs="0-3", scale=0.5), num_times=8)
    print(out / "sheet.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
