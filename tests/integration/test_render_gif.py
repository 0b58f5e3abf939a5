"""The GIF writer's worker threads and the render's prefetch start: same bytes, bounded, clean."""

from __future__ import annotations

import platform
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import GifImagePlugin, Image
from render_fixtures import env_frame, make_store

from envreel.errors import RenderError
from envreel.render import Layout, render
from envreel.render._encode import GifWriter

H, W, T = 48, 64, 24
FPS = 30.0


def frames(n: int = T) -> list[np.ndarray]:
    """Distinct frames with many colours (each frame gets its own palette)."""
    return [np.concatenate([env_frame(t % 5, t, H, W // 2)] * 2, axis=1) for t in range(n)]


def write_gif(path, images, **kw) -> bytes:
    w = GifWriter(path, width=W, height=H, fps=FPS, **kw)
    for f in images:
        w.write(f)
    w.close()
    return path.read_bytes()


def pillow_gif(images) -> bytes:
    """The file the serial writer made before it had threads: Pillow's getdata() per frame."""
    head = b"GIF89a" + W.to_bytes(2, "little") + H.to_bytes(2, "little") + b"\x00\x00\x00"
    head += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    parts, shown = [head], 0
    for t, f in enumerate(images):
        delay = max(1, round((t + 1) * 100 / FPS) - shown)
        shown += delay
        im = Image.fromarray(f).quantize(
            256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
        parts += GifImagePlugin.getdata(im, include_color_table=True, duration=delay * 10)
    return b"".join(parts) + b";"


def gif_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("envreel-gif")]


@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_gif_is_byte_for_byte_the_serial_one(tmp_path, threads):
    images = frames()
    serial = write_gif(tmp_path / "serial.gif", images, threads=1)
    assert serial == pillow_gif(images)
    # one buffer reused for every frame, overwritten as soon as write() returns
    buf = np.empty_like(images[0])
    w = GifWriter(tmp_path / "threaded.gif", width=W, height=H, fps=FPS, threads=threads)
    for f in images:
        buf[...] = f
        w.write(buf)
        buf[...] = 0
    w.close()
    assert (tmp_path / "threaded.gif").read_bytes() == serial
    with Image.open(tmp_path / "threaded.gif") as im:
        assert im.n_frames == T
        im.seek(T - 1)
        got = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(got - images[-1]).mean() < 4
    assert not gif_threads()  # close() stopped the workers


def test_in_flight_frames_are_bounded_and_write_blocks(tmp_path):
    w = GifWriter(tmp_path / "b.gif", width=W, height=H, fps=FPS, threads=2)
    assert w.max_in_flight == 4
    gate, encode = threading.Event(), w._encode

    def held(image, delay, fp):
        gate.wait(30)
        encode(image, delay, fp)

    w._encode = held
    images = frames(12)
    done = []

    def feed():
        for f in images:
            w.write(f)
            done.append(1)

    feeder = threading.Thread(target=feed)
    feeder.start()
    deadline = time.monotonic() + 10
    while len(done) < w.max_in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(done) == w.max_in_flight  # the next write waits for the oldest frame
    assert len(w._pending) == w.max_in_flight
    gate.set()
    feeder.join(30)
    assert not feeder.is_alive() and len(done) == 12
    w.close()
    with Image.open(tmp_path / "b.gif") as im:
        assert im.n_frames == 12


def test_worker_failure_is_a_clear_error_and_leaves_no_file(tmp_path):
    w = GifWriter(tmp_path / "f.gif", width=W, height=H, fps=FPS, threads=2)
    images, encode = frames(), w._encode

    def failing(image, delay, fp):
        if np.array_equal(np.asarray(image), images[3]):
            raise OSError("disk on fire")
        encode(image, delay, fp)

    w._encode = failing
    with pytest.raises(RenderError, match=r"frame 3 of .*f\.gif.*OSError: disk on fire"):
        for f in images:
            w.write(f)
        w.close()
    assert list(tmp_path.iterdir()) == []
    assert not gif_threads()


def test_serial_failure_is_the_same_error(tmp_path):
    w = GifWriter(tmp_path / "s.gif", width=W, height=H, fps=FPS, threads=1)

    def failing(image, delay, fp):
        raise MemoryError("no room")

    w._encode = failing
    with pytest.raises(RenderError, match=r"frame 0 of .*MemoryError: no room"):
        w.write(frames(1)[0])
    assert list(tmp_path.iterdir()) == []


def test_abort_stops_the_workers_and_removes_the_partial_file(tmp_path):
    w = GifWriter(tmp_path / "a.gif", width=W, height=H, fps=FPS, threads=2)
    for f in frames(6):
        w.write(f)
    w.abort()
    w.abort()  # twice is harmless (render aborts after a writer that aborted itself)
    assert list(tmp_path.iterdir()) == []
    assert not gif_threads()


def test_bad_threads_are_refused(tmp_path):
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be an int >= 0 or None"):
            GifWriter(tmp_path / "x.gif", width=W, height=H, fps=FPS, threads=bad)
    w = GifWriter(tmp_path / "x.gif", width=W, height=H, fps=FPS, threads=0)
    assert w.threads >= 1  # one per CPU
    w.abort()


# ---- through render() --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(
        tmp_path_factory.mktemp("gif") / "run.zarr",
        num_envs=4,
        frames=40,
        shape=(32, 48),
        block_frames=8,
    )


def test_render_gif_does_not_depend_on_threads(store, tmp_path):
    lay = Layout(columns=2, label="{env} s{step}")
    outs = [render(store, lay, tmp_path / f"t{n}.gif", threads=n).path for n in (1, 2, 4)]
    data = [p.read_bytes() for p in outs]
    assert data[0] == data[1] == data[2]
    with Image.open(outs[0]) as im:
        assert im.n_frames == 40


def test_render_gif_worker_failure_raises_and_cleans_up(store, tmp_path, monkeypatch):
    encode = GifWriter._encode
    seen = []

    def failing(self, image, delay, fp):
        seen.append(1)
        if len(seen) == 10:
            raise RuntimeError("quantiser broke")
        encode(self, image, delay, fp)

    monkeypatch.setattr(GifWriter, "_encode", failing)
    with pytest.raises(RenderError, match=r"at frame \d+ of .*v\.gif.*RuntimeError: quantiser"):
        render(store, Layout(columns=2), tmp_path / "v.gif", threads=2)
    assert list(tmp_path.iterdir()) == []
    assert not gif_threads()
    assert not [t for t in threading.enumerate() if t.name == "envreel-prefetch"]


def test_prefetch_stops_when_the_writer_cannot_open(store, tmp_path, monkeypatch):
    import envreel.render.api as api

    def broken(*args, **kwargs):
        raise RenderError("encoder would not start")

    monkeypatch.setattr(api, "open_writer", broken)
    with pytest.raises(RenderError, match="would not start"):
        render(store, Layout(columns=2), tmp_path / "v.gif")
    assert not [t for t in threading.enumerate() if t.name == "envreel-prefetch"]
    assert list(tmp_path.iterdir()) == []


_FAULTS_SCRIPT = """
import resource, sys
import numpy as np
from envreel.render._encode import GifWriter
side, threads = 512, int(sys.argv[2])
frames = []
for t in range(6):  # built a row at a time: no big temporary freed (that would hide the faults)
    f = np.empty((side, side, 3), np.uint8)
    row = (np.arange(side * 3, dtype=np.int32).reshape(side, 3) * (t + 3)).astype(np.uint8)
    for y in range(side):
        f[y] = row + np.uint8(y % 256)
    frames.append(f)
w = GifWriter(sys.argv[1], width=side, height=side, fps=30, threads=threads)
for f in frames * 2:  # the workers' heaps grow once
    w.write(f)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for f in frames * 8:
    w.write(f)
w.close()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (len(frames) * 8))
"""


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)
@pytest.mark.parametrize("threads", [1, 2])
def test_gif_frames_do_not_page_fault_fresh_memory_in(tmp_path, threads):
    """Pillow's quantiser mallocs ~8 bytes a pixel per frame; in a fresh process glibc maps and
    unmaps that every frame (~250-450 page faults a 512² frame) unless the writer keeps it."""
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_SCRIPT, str(tmp_path / "f.gif"), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    per_frame = float(out.stdout.split()[-1])
    assert per_frame < 100, f"{per_frame:.0f} page faults per 512² frame"
