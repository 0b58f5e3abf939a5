"""``envreel view``: a local web viewer for a run store (on disk, zipped, or at a URL).

The page (``tools/viewer_static``) scrubs and plays time, picks, sorts and filters envs, changes
columns and the global view's place live, shows one env's reward and episode ends in a strip,
opens an env alone, and shows the ``envreel render`` command of what it shows. It composes
nothing itself: every picture is composed here by ``envreel.render``'s own pipeline
(:class:`envreel.render.FrameSource`, the random-access side of ``frames()``), for the one
frame shown, so the page fetches only what it shows and looks exactly like a render.

The server binds 127.0.0.1 unless told otherwise and serves only this run.

Example:
    >>> viewer = Viewer(open_run("envreel-demo/run.zarr"))  # doctest: +SKIP
    >>> viewer.start(); viewer.url                           # doctest: +SKIP
    'http://127.0.0.1:41837/'
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import traceback
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from envreel.schemas import Run
from envreel.tools.serve import LocalServer, bind

__all__ = ["Viewer"]

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
    "/viewer.css": ("viewer.css", "text/css; charset=utf-8"),
}
_STRIP_POINTS = 2000  # the strip is a few hundred pixels wide: more points show nothing more
_PLANS = 16  # layouts kept planned (the page goes back and forth between a few)


class _BadRequestError(ValueError):
    """What the page asked for is not in this run or not a layout: answered with a 400."""


def _int(query: dict[str, str], key: str, default: str | None = None) -> int:
    text = query.get(key, default)
    if text is None:
        raise _BadRequestError(f"missing {key!r}")
    try:
        return int(text)
    except ValueError:
        raise _BadRequestError(f"{key} must be an integer, got {text!r}") from None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        viewer = self.server.viewer
        try:
            if parts.path in _STATIC:
                name, kind = _STATIC[parts.path]
                self._send(HTTPStatus.OK, kind, _static(name))
            elif parts.path == "/api/run":
                self._json(viewer.run_facts())
            elif parts.path == "/api/layout":
                self._json(viewer.plan_facts(query.get("layout", "{}")))
            elif parts.path == "/api/frame":
                png = viewer.frame_png(query.get("layout", "{}"), _int(query, "t", "0"))
                self._send(HTTPStatus.OK, "image/png", png)
            elif parts.path == "/api/strip":
                self._json(viewer.strip(_int(query, "env")))
            else:
                self._json({"error": f"no such page: {parts.path}"}, HTTPStatus.NOT_FOUND)
        except _BadRequestError as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except Exception as exc:  # noqa: BLE001 - the page shows it; the terminal gets the trace
            # a damaged store (EnvreelError) or a fault of the viewer's own: not the page's doing
            traceback.print_exc(file=sys.stderr)
            self._json({"error": f"{type(exc).__name__}: {exc}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def _json(self, doc: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, "application/json", json.dumps(doc).encode())

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def _static(name: str) -> bytes:
    return resources.files("envreel.tools").joinpath("viewer_static", name).read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    viewer: Viewer


class Viewer(LocalServer):
    """The viewer's server for one run (see the module doc).

    Args:
        run: the open run (a :class:`~envreel.schemas.Run`, also several ranks as one).
        name: what the page calls the run. Defaults to the run's URL.
        host: address to bind. Defaults to "127.0.0.1" (this machine only).
        port: port; 0 picks a free one. Defaults to 0.
    """

    _thread_name = "envreel-view"

    def __init__(
        self, run: Run, *, name: str | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        from envreel.render import FrameSource

        self.run = run
        self.name = name or str(run.url)
        self._source_type = FrameSource
        self._plans: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # one composition at a time: frames share buffers
        httpd = bind(_Server, host, port, _Handler)
        httpd.viewer = self
        super().__init__(httpd)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    # -- what the page asks for -----------------------------------------------------------------

    def run_facts(self) -> dict[str, Any]:
        run = self.run
        scores = ["reward", *run.scalar_names]
        return {
            "name": self.name,
            "num_envs": run.num_envs,
            "env_ids": list(run.env_ids),
            "num_frames": run.num_frames,
            "fps": run.fps,
            "scores": scores,
            "has_global": run.has_global,
            "frame_shape": list(run.env_frame_shape),
            "clips": len(run.clips),
        }

    def _source(self, layout_json: str) -> Any:
        """The planned layout (cached per layout text)."""
        with self._lock:
            source = self._plans.get(layout_json)
            if source is not None:
                self._plans.move_to_end(layout_json)
                return source
        try:
            layout = json.loads(layout_json)
        except json.JSONDecodeError as exc:
            raise _BadRequestError(f"layout is not JSON: {exc}") from None
        if not isinstance(layout, dict):
            raise _BadRequestError(
                f"layout must be a JSON object of Layout fields, got {layout_json!r}"
            )
        try:
            source = self._source_type(self.run, layout)
        except (ValueError, TypeError) as exc:  # Layout's and the plan's checks of the fields
            raise _BadRequestError(str(exc)) from None
        with self._lock:
            self._plans[layout_json] = source
            while len(self._plans) > _PLANS:
                self._plans.popitem(last=False)[1].close()
        return source

    def plan_facts(self, layout_json: str) -> dict[str, Any]:
        source = self._source(layout_json)
        return {
            "frames": source.num_frames,
            "fps": source.fps,
            "size": list(source.size),
            "envs": list(source.envs),
            "tiles": [t._asdict() for t in source.tiles(0)],
            "store_frames": [int(f) for f in source.store_frames],
            "command": source.command(self.name, "out.mp4"),
            "warnings": list(source.warnings),
        }

    def frame_png(self, layout_json: str, t: int) -> bytes:
        source = self._source(layout_json)
        try:
            source.check_frame(t)
        except ValueError as exc:
            raise _BadRequestError(str(exc)) from None
        with self._lock:
            image = source.frame(t)
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def strip(self, env: int) -> dict[str, Any]:
        """One env's reward (downsampled) and its episode ends (store frames)."""
        run = self.run
        index = {g: i for i, g in enumerate(run.env_ids)}
        if env not in index:
            raise _BadRequestError(f"env {env} is not in this run")
        i = index[env]
        reward = run.scalar("reward", env_ids=[i])[:, 0].astype(np.float64)
        term = run.scalar("terminated", env_ids=[i])[:, 0].astype(bool)
        trunc = run.scalar("truncated", env_ids=[i])[:, 0].astype(bool)
        n = len(reward)
        step = max(1, math.ceil(n / _STRIP_POINTS))
        points = [None if not math.isfinite(v) else round(float(v), 5) for v in reward[::step]]
        scale = (len(points) - 1) / max(1, n - 1)
        ends = [[round(f * scale), "terminated"] for f in np.flatnonzero(term)]
        ends += [[round(f * scale), "truncated"] for f in np.flatnonzero(trunc & ~term)]
        return {"env": env, "reward": points, "ends": sorted(ends)}
