"""Type-check envreel's public modules with mypy: ``python -m envreel.tools.typecheck``.

The rooms (``capture/``, ``render/``, ``schemas/``, ``tools/``) sit beside the ``envreel/``
folder and become ``envreel.capture`` & co. only through pyproject's package-dir mapping, which
mypy does not read. So this script lays the package out as it is installed — a temporary folder
``envreel/`` of links to the checkout's files — and runs mypy there on :data:`PUBLIC`, the
modules a user imports. Messages name the checkout's paths. Exit status: mypy's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("capture", "render", "schemas", "tools")

# The modules a user imports (and what they re-export): their signatures are the API.
PUBLIC = (
    "envreel",
    "envreel.errors",
    "envreel._checks",
    "envreel._options",
    "envreel.schemas",
    "envreel.schemas.spec",
    "envreel.schemas.reader",
    "envreel.schemas.writer",
    "envreel.schemas.geometry",
    "envreel.schemas.validate",
    "envreel.schemas.pack",
    "envreel.schemas.ranks",
    "envreel.render",
    "envreel.render.layout",
    "envreel.render.api",
    "envreel.render.frames",
    "envreel.render.show",
    "envreel.render.loggers",
    "envreel.capture",
    "envreel.capture.recorder",
    "envreel.capture.isaaclab",
)


def _link_tree(dest: Path) -> Path:
    pkg = dest / "envreel"
    pkg.mkdir()
    for f in (ROOT / "envreel").glob("*.py"):
        (pkg / f.name).symlink_to(f)
    for room in ROOMS:
        (pkg / room).symlink_to(ROOT / room, target_is_directory=True)
    return pkg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to check (default: the public ones)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="envreel-mypy-") as tmp:
        _link_tree(Path(tmp))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
        for module in args.modules or PUBLIC:
            cmd += ["-m", module]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=_env(tmp))
        out = proc.stdout
        for room in ROOMS:  # envreel/render/api.py is render/api.py in the checkout
            out = out.replace(f"envreel/{room}/", f"{room}/")
        sys.stdout.write(out)
        sys.stderr.write(proc.stderr)
        return proc.returncode


def _env(tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MYPYPATH"] = tmp
    env.pop("PYTHONPATH", None)
    return env


if __name__ == "__main__":
    raise SystemExit(main())
