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
        dict(
            columns=4,
            scale=0.5,
            global_view="right",
            markers=True,
            stop=150,
            stride=3,
            fps=10,
            label=None,
        ),
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
            label="{env} score={score:.2f}",
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
            render(store, layout, out / name, overwrite=True)
        else:
            _frame(store, layout, int(frame), out / name)
        print(out / name, (out / name).stat().st_size, "bytes")
    contact_sheet(
        store, out / "sheet.png", Layout(envs="0-3", scale=0.5), num_times=8, overwrite=True
    )
    print(out / "sheet.png")
    _viewer_screenshot(store, out / "viewer.png")
    return 0


def _viewer_screenshot(store: Path, out: Path) -> None:
    """``envreel view``'s page on the demo store at frame 60, in headless Chromium (skipped with
    a note where Playwright or Chromium is missing)."""
    import shutil

    from envreel.schemas import open_run
    from envreel.tools.viewer import Viewer

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print(f"{out}: skipped (needs playwright and Chromium)")
        return
    with Viewer(open_run(store), name=store.name) as viewer, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(viewer.url)
        page.wait_for_function("document.getElementById('frame').complete")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out))
        browser.close()
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    sys.exit(main())
