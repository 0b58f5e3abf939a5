"""The viewer's HTTP answers without a browser: what the page asked wrongly is a 400 that names
the value; a damaged store or a fault of the viewer's own is a 500 with its message (and its
traceback on the terminal), never passed off as the page's mistake."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from render_fixtures import make_store

from envreel.schemas import open_run
from envreel.tools.viewer import Viewer


def small_store(folder: Path) -> Path:
    return Path(make_store(folder / "run.zarr", num_envs=4, frames=16, shape=(16, 16)))


@pytest.fixture(scope="module")
def asked(tmp_path_factory):
    """One viewer for the questions that change nothing."""
    with Viewer(open_run(small_store(tmp_path_factory.mktemp("asked")))) as v:
        yield v


@pytest.fixture()
def store(tmp_path) -> Path:
    return small_store(tmp_path)


@pytest.fixture()
def viewer(store):
    with Viewer(open_run(store)) as v:
        yield v


def get(viewer: Viewer, path: str, **query: object) -> tuple[int, bytes]:
    url = viewer.url + path.lstrip("/")
    if query:
        url += "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def error(body: bytes) -> str:
    return json.loads(body)["error"]


@pytest.mark.parametrize(
    ("path", "query", "names"),
    [
        ("/api/frame", {"t": "x"}, "'x'"),
        ("/api/frame", {"t": 16}, "frame 16 is not in 0..15"),
        ("/api/frame", {"t": -1}, "frame -1"),
        ("/api/frame", {"layout": "{", "t": 0}, "not JSON"),
        ("/api/frame", {"layout": "[1]", "t": 0}, "JSON object"),
        ("/api/frame", {"layout": json.dumps({"columns": 0}), "t": 0}, "columns"),
        ("/api/layout", {"layout": json.dumps({"envs": [9]})}, "9"),
        ("/api/layout", {"layout": json.dumps({"colour": 1})}, "colour"),
        ("/api/strip", {"env": 7}, "env 7 is not in this run"),
        ("/api/strip", {}, "'env'"),
    ],
)
def test_what_the_page_asked_wrongly_is_a_400_naming_it(asked, path, query, names) -> None:
    status, body = get(asked, path, **query)
    assert status == 400, body
    assert names in error(body)


def test_a_fault_while_composing_is_a_500_with_its_message(viewer, monkeypatch, capsys) -> None:
    status, body = get(viewer, "/api/frame", t=0)
    assert status == 200 and body.startswith(b"\x89PNG")
    source = next(iter(viewer._plans.values()))

    def broken(t: int):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(source, "frame", broken)
    status, body = get(viewer, "/api/frame", t=1)
    assert status == 500
    assert error(body) == "ValueError: operands could not be broadcast together"
    assert "Traceback" in capsys.readouterr().err


def test_a_damaged_chunk_is_a_500_that_names_the_chunk(store, viewer) -> None:
    chunk = next(p for p in sorted((store / "env" / "frames").rglob("*")) if p.is_file())
    chunk.write_bytes(b"not zstd")
    status, body = get(viewer, "/api/frame", t=0)
    assert status == 500
    message = error(body)
    assert message.startswith("CorruptChunkError") and "env/frames" in message
