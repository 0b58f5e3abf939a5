"""The wheel a user installs: it carries every package and the files they read at run time (the
viewer's page, the store format's description), and an installed copy, not the source tree,
serves the viewer's page. The tests otherwise run from an editable install, which reads the
source tree and would hide a file the wheel leaves out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the tree, so that setuptools' build/ and egg-info folders stay out
    # of the checkout (a stale build/lib would leak into later wheels).
    src = tmp_path_factory.mktemp("src") / "envreel"
    skip = (".git", ".whl", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*skip, "envreel-demo", "out"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "would be ignored" not in done.stderr, done.stderr[-3000:]
    (found,) = out.glob("envreel-*.whl")
    return found


def _shipped() -> list[str]:
    """What the wheel must hold, from the source tree: each package's ``__init__.py`` (the
    package folders are installed under ``envreel/``), every file of the viewer's page and the
    store format's description."""
    names = ["envreel/__init__.py"]
    for room in ("schemas", "capture", "render", "tools"):
        for init in sorted((ROOT / room).rglob("__init__.py")):
            names.append(f"envreel/{init.relative_to(ROOT).as_posix()}")
    for page in sorted((ROOT / "tools" / "viewer_static").iterdir()):
        if page.is_file():
            names.append(f"envreel/tools/viewer_static/{page.name}")
    names += [f"envreel/schemas/{doc.name}" for doc in sorted((ROOT / "schemas").glob("*.md"))]
    return names


def test_the_wheel_carries_every_package_and_the_files_read_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in _shipped() if n not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert not any(n.startswith(("tests/", "docs/")) for n in names), "tests or docs in the wheel"


def test_an_installed_wheel_serves_the_viewer_page_from_itself(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
        timeout=300,
    )
    code = (
        "import envreel, envreel.tools.viewer as v;"
        "print(envreel.__file__);"
        "print(len(v._static('index.html')), len(v._static('viewer.js')))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where, sizes = done.stdout.split("\n")[:2]
    assert Path(where).is_relative_to(target), f"envreel came from {where}, not the wheel"
    expected = [
        (ROOT / "tools" / "viewer_static" / n).stat().st_size for n in ("index.html", "viewer.js")
    ]
    assert [int(s) for s in sizes.split()] == expected
