"""Encoders: mp4 through ffmpeg (raw frames piped in), GIF and PNG frames through Pillow.

Every writer writes to a hidden temporary name next to the output and renames it into place when
``close()`` succeeds; ``abort()`` (or a failure) removes it, so an output either exists whole or
not at all.
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from envreel._files import give_default_mode
from envreel._options import check_options, option
from envreel.errors import RenderError

__all__ = [
    "find_ffmpeg",
    "write_png",
    "write_whole",
    "Mp4Writer",
    "GifWriter",
    "PngFolderWriter",
    "open_writer",
    "output_kind",
    "check_output",
    "safe_filename",
    "safe_join",
    "X264_PRESETS",
    "EncodeOptions",
]

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
SUFFIXES = {".mp4": "mp4", ".gif": "gif", "": "png"}
_F_SETPIPE_SZ = 1031  # Linux fcntl: bigger pipe, fewer context switches per 3 MB frame


# ------------------------------------------------------------------------------------------------
# output paths
# ------------------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, *, max_length: int = 120) -> str:
    """``name`` made safe as one file name: letters, digits, ``.``, ``_`` and ``-`` only, no
    leading dot, no path separators, never empty, ``.`` or ``..``."""
    text = _UNSAFE.sub("_", str(name)).lstrip(".")[:max_length]
    return text if text.strip("._-") else "unnamed"


def safe_join(folder: str | Path, name: str) -> Path:
    """``folder / safe_filename(name)``, checked to stay inside ``folder``.

    Raises:
        ValueError: the result would leave ``folder`` (cannot happen after sanitising; kept as a
            second line of defence).
    """
    base = Path(folder).resolve()
    path = (base / safe_filename(name)).resolve()
    if path.parent != base:
        raise ValueError(f"output name {name!r} escapes the output folder {str(base)!r}")
    return path


def output_kind(out: str | os.PathLike) -> str:
    """ "mp4", "gif" or "png" (a folder of PNG frames) from the output path.

    Raises:
        ValueError: an unsupported suffix.
    """
    p = Path(out)
    kind = SUFFIXES.get(p.suffix.lower())
    if kind is None and p.is_dir():
        kind = "png"
    if kind is None:
        raise ValueError(
            f"output {str(out)!r}: unknown suffix {p.suffix!r}; expected .mp4, .gif, or a folder "
            "path without a suffix for PNG frames (contact_sheet() writes a .png)"
        )
    return kind


def _probe_writable(folder: Path, what: str) -> None:
    if not folder.exists():
        raise ValueError(f"{what} {str(folder)!r} does not exist; create it first")
    if not folder.is_dir():
        raise ValueError(f"{what} {str(folder)!r} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".envreel-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {str(folder)!r} is not writable: {exc.strerror or exc}") from None


FRAME_FILE = re.compile(r"frame_\d{6}\.png")
"""Names of the files of a folder of PNG frames."""


def some_names(names: list[str], most: int = 4) -> str:
    """``a, b, c, d and 3 more``: a few names of a list, for a message."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def check_output(out: str | os.PathLike, kind: str, *, overwrite: bool = False) -> Path:
    """Check, before anything is written, that ``out`` can be written as ``kind``: a file that
    exists is replaced only with ``overwrite``; a PNG folder may exist empty, or with
    ``overwrite`` hold an earlier render's frames (``frame_000000.png``, ...) and nothing else.

    Raises:
        ValueError: the folder is missing or not writable, or the output is a folder where a
            file is expected (or the other way round).
        FileExistsError: the output exists and ``overwrite`` is False, or a PNG folder holds
            other files than frames (which nothing replaces).
    """
    p = Path(out)
    if kind == "png":
        _probe_writable(p.parent.resolve(), "output folder")
        if p.exists() and not p.is_dir():
            raise ValueError(
                f"PNG output folder {str(p)!r} is a file; give a folder name (or a file name "
                "ending in .mp4 or .gif)"
            )
        found = sorted(e.name for e in p.iterdir()) if p.exists() else []
        others = [n for n in found if not (FRAME_FILE.fullmatch(n) and (p / n).is_file())]
        if others:
            raise FileExistsError(
                f"PNG output folder {str(p)!r} holds files that are not frames of an earlier "
                f"render ({some_names(others)}); choose a new folder (overwrite replaces only "
                "frame_NNNNNN.png files)"
            )
        if found and not overwrite:
            raise FileExistsError(
                f"PNG output folder {str(p)!r} holds an earlier render's frames "
                f"({some_names(found)}); pass overwrite=True (--overwrite) to replace them"
            )
        return p
    _probe_writable(p.parent.resolve(), "output folder")
    if p.is_dir():
        raise ValueError(f"output {str(p)!r} is a folder; give a file name ending in .{kind}")
    if p.exists() and not overwrite:
        raise FileExistsError(
            f"output {str(p)!r} exists; pass overwrite=True (--overwrite) to replace it"
        )
    return p


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.stem}.envreel-partial-{os.getpid()}{path.suffix}")


# ------------------------------------------------------------------------------------------------
# ffmpeg
# ------------------------------------------------------------------------------------------------
def find_ffmpeg() -> str:
    """The ffmpeg executable: ``ffmpeg`` on PATH, else imageio-ffmpeg's bundled binary.

    Raises:
        RenderError: neither exists (the message says how to install one).
    """
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise RenderError(
            "mp4 output needs ffmpeg, and none was found on PATH or in imageio-ffmpeg "
            f"({type(exc).__name__}: {exc}); install one with `pip install imageio-ffmpeg` "
            "(bundles ffmpeg) or your system's package (`apt install ffmpeg`, "
            "`brew install ffmpeg`)"
        ) from None


def _ffmpeg_python():
    try:
        import ffmpeg
    except ImportError:
        raise RenderError(
            "mp4 output needs ffmpeg-python; install it with `pip install ffmpeg-python`"
        ) from None
    return ffmpeg


def _fps_text(fps: float) -> str:
    f = Fraction(fps).limit_denominator(1001)
    return f"{f.numerator}/{f.denominator}"


def _tail(path_or_bytes, limit: int = 1500) -> str:
    text = path_or_bytes.decode("utf-8", "replace") if isinstance(path_or_bytes, bytes) else ""
    text = text.strip()
    return text[-limit:] if text else "(ffmpeg printed nothing)"


class Mp4Writer:
    """H.264 mp4 through ffmpeg; frames are piped raw (rgb24) into its stdin.

    Args:
        path: output file (.mp4).
        width, height: frame size; both even (yuv420p).
        fps: frames per second.
        crf: x264 constant rate factor, 0 (lossless) .. 51. Defaults to 23.
        preset: x264 preset, ``X264_PRESETS``. Defaults to "veryfast".
        threads: encoder threads (``-threads``). Defaults to None (ffmpeg decides).
        ffmpeg: ffmpeg executable. Defaults to None (``find_ffmpeg()``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: float,
        crf: int = 23,
        preset: str = "veryfast",
        threads: int | None = None,
        ffmpeg: str | None = None,
    ):
        if width % 2 or height % 2:
            raise ValueError(f"H.264 (yuv420p) needs even width and height, got {width}×{height}")
        check_encoder_options(crf=crf, preset=preset, threads=threads)
        self.path = Path(path)
        self.shape = (height, width, 3)
        self.frames = 0
        self._tmp = _partial(self.path)
        ff = _ffmpeg_python()
        stream = ff.input(
            "pipe:",
            format="rawvideo",
            pix_fmt="rgb24",
            s=f"{width}x{height}",
            framerate=_fps_text(fps),
        )
        opts = {
            "vcodec": "libx264",
            "pix_fmt": "yuv420p",
            "crf": int(crf),
            "preset": preset,
            "f": "mp4",
        }
        if threads:
            opts["threads"] = int(threads)
        stream = ff.output(stream, str(self._tmp), **opts)
        stream = stream.global_args("-hide_banner", "-loglevel", "error", "-nostats")
        self.args = ff.compile(stream.overwrite_output(), cmd=ffmpeg or find_ffmpeg())
        self._err = tempfile.TemporaryFile(prefix="envreel-ffmpeg-")
        try:
            self._proc = subprocess.Popen(
                self.args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err
            )
        except OSError as exc:
            self._err.close()
            raise RenderError(f"cannot start ffmpeg {self.args[0]!r}: {exc}") from None
        try:
            import fcntl

            fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass

    def _stderr(self) -> str:
        self._err.seek(0)
        return _tail(self._err.read())

    def write(self, frame: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 frame."""
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {self.shape} uint8, got {frame.shape} {frame.dtype}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, OSError, ValueError):
            rc = self._proc.wait()
            msg = self._stderr()
            self.abort()
            raise RenderError(f"ffmpeg stopped (exit code {rc}) while encoding: {msg}") from None
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it into place. Raises RenderError when ffmpeg failed."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        rc = self._proc.wait()
        if rc != 0:
            msg = self._stderr()
            self.abort()
            raise RenderError(f"ffmpeg failed (exit code {rc}) writing {str(self.path)!r}: {msg}")
        self._err.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        try:
            self._proc.stdin.close()
        except (OSError, ValueError):
            pass
        self._err.close()
        self._tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class EncodeOptions:
    """The encoder options of ``render`` and ``render_envs``, declared once (the CLI reads them)."""

    crf: int = option(
        23,
        "H.264 quality for .mp4: 0 (lossless) .. 51, lower is better and larger",
        minimum=0,
        maximum=51,
    )
    preset: str = option("veryfast", "libx264 speed preset for .mp4", choices=X264_PRESETS)
    threads: int | None = option(
        None, "encoder threads (None: ffmpeg decides)", kind="int", minimum=0, maximum=256
    )

    def __post_init__(self) -> None:
        check_options(self)


def check_encoder_options(*, crf: int, preset: str, threads: int | None) -> None:
    """Raise ValueError for a bad crf, preset or thread count."""
    try:
        EncodeOptions(crf=crf, preset=preset, threads=threads)
    except TypeError as exc:  # a float crf is a bad value here, as it always was
        raise ValueError(str(exc)) from None


# ------------------------------------------------------------------------------------------------
# GIF
# ------------------------------------------------------------------------------------------------
GIF_MAX_THREADS = 4
"""Most GIF encoder threads chosen by default (``threads=None``)."""


_MMAP_THRESHOLD_MAX = 32 << 20
"""glibc's cap on its dynamic mmap threshold (64-bit)."""
_heap_primed = 0


def _keep_frees_in_heap(nbytes: int) -> None:
    """Let glibc keep freed blocks of up to ``nbytes`` for reuse instead of unmapping them.

    glibc serves a malloc above its mmap threshold (128 KiB in a new process) with a fresh mmap
    and unmaps it on free. Pillow's quantiser mallocs ~8 bytes per pixel for every frame (a pixel
    copy and an index map), so each 512² GIF frame faulted ~1.7 MB of fresh pages in: ~430 page
    faults and 0.3-1 ms of CPU per frame, measured, 5-13% of the render's frames/s. glibc raises
    the threshold to the size of a mapped block when one is freed (up to 32 MiB), the state a
    process reaches once it frees any big array; freeing one block of ``nbytes`` does that now.
    A no-op where the C library is not glibc.
    """
    global _heap_primed
    nbytes = min(int(nbytes), _MMAP_THRESHOLD_MAX)
    if nbytes <= _heap_primed:
        return
    _heap_primed = nbytes
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return
    malloc, free = libc.malloc, libc.free
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    block = malloc(nbytes)
    if block:
        free(block)


def _scratch_file():
    """An unbuffered file for one worker's encoded frame: in memory where the OS allows."""
    if hasattr(os, "memfd_create"):
        try:
            return open(os.memfd_create("envreel-gif"), "w+b", buffering=0)  # noqa: SIM115
        except OSError:
            pass
    return tempfile.TemporaryFile(prefix="envreel-gif-", buffering=0)


class GifWriter:
    """An animated GIF written frame by frame (memory does not grow with the frame count).

    Each frame is quantised on its own with Pillow's fast octree quantiser (no dithering) and
    written with a local palette. GIF delays are whole hundredths of a second; the delays carry
    the rounding error forward so the total duration matches ``fps``.

    Frames with their own palettes are independent: with ``threads`` > 1 they are quantised and
    LZW-encoded in worker threads (Pillow releases the GIL for both) and written in order. At
    most ``2 * threads`` frames are in flight (4 bytes a pixel each), so ``write`` blocks while
    the workers are behind. The file's bytes do not depend on ``threads``.

    Args:
        path: output file (.gif).
        width, height: frame size.
        fps: frames per second (browsers play at most 50).
        loop: times to loop, 0 forever. Defaults to 0.
        threads: frames encoded at once; 1 encodes in the calling thread; 0 or None: one per
            CPU, at most ``GIF_MAX_THREADS``. Defaults to None.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: float,
        loop: int = 0,
        threads: int | None = None,
    ):
        from PIL import GifImagePlugin, Image

        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 0
        ):
            raise ValueError(f"threads must be an int >= 0 or None, got {threads!r}")
        self._Image = Image
        # Pillow's own per-frame writer (what Image.save uses) LZW-encodes straight into a file
        # descriptor with the GIL released; getdata(), its public form, encodes into memory
        # holding the GIL (~2 ms a 512² frame), stalling the render's reader thread meanwhile.
        self._write_frame = getattr(GifImagePlugin, "_write_frame_data", None)
        self._getdata = GifImagePlugin.getdata
        self.path = Path(path)
        self.shape = (height, width, 3)
        self.frames = 0
        self.threads = threads or min(GIF_MAX_THREADS, os.cpu_count() or 1)
        _keep_frees_in_heap(8 * width * height + (1 << 20))  # the quantiser's per-frame mallocs
        self.max_in_flight = 2 * self.threads if self.threads > 1 else 0
        self._tmp = _partial(self.path)
        self._cs = 100.0 / fps
        self._time = 0.0
        self._shown_cs = 0  # hundredths of a second given to the frames so far
        self._frames_out = 0  # frames in the file so far
        self._pending: deque[Future] = deque()
        self._pool: ThreadPoolExecutor | None = None
        self._scratch: queue.SimpleQueue = queue.SimpleQueue()
        self._scratch_files: list = []
        self._fp = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        head = b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little")
        head += b"\x00\x00\x00"  # no global palette; every frame has its own
        head += b"!\xff\x0bNETSCAPE2.0\x03\x01" + int(loop).to_bytes(2, "little") + b"\x00"
        self._fp.write(head)
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="envreel-gif")

    def _encode(self, image, delay: int, fp) -> None:
        """Quantise ``image`` and write it as one GIF frame (header, palette, LZW) to ``fp``."""
        Image = self._Image
        im = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        params = {"include_color_table": True, "duration": delay * 10}
        if self._write_frame is not None:
            self._write_frame(fp, im, (0, 0), params)
        else:  # a Pillow without it: the same bytes, encoded holding the GIL
            for part in self._getdata(im, **params):
                fp.write(part)

    def _encode_bytes(self, image, delay: int) -> bytes:
        """``_encode`` in a worker thread, into a scratch file of its own: the frame's bytes."""
        try:
            fp = self._scratch.get_nowait()
        except queue.Empty:  # at most one per worker: a worker puts its file back when done
            fp = _scratch_file()
            self._scratch_files.append(fp)
        try:
            fp.seek(0)
            self._encode(image, delay, fp)
            return os.pread(fp.fileno(), fp.tell(), 0)
        finally:
            self._scratch.put(fp)

    def _failed(self, exc: Exception) -> RenderError:
        index = self._frames_out
        self.abort()
        return RenderError(
            f"GIF encoding failed at frame {index} of {str(self.path)!r}: "
            f"{type(exc).__name__}: {exc}"
        )

    def _drain(self, keep: int) -> None:
        """Write finished frames in order until at most ``keep`` are in flight."""
        pending = self._pending
        while pending and (len(pending) > keep or pending[0].done()):
            try:
                data = pending[0].result()
            except Exception as exc:  # noqa: BLE001 - a worker's error, raised here
                raise self._failed(exc) from exc
            pending.popleft()
            self._fp.write(data)
            self._frames_out += 1

    def write(self, frame: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 frame (copied before this returns).

        Raises:
            ValueError: a frame of another shape or dtype.
            RenderError: encoding this or an earlier frame failed (the partial file is removed).
        """
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {self.shape} uint8, got {frame.shape} {frame.dtype}")
        image = self._Image.fromarray(frame)  # a copy: the caller may reuse its buffer
        self._time += self._cs
        delay = max(1, round(self._time) - self._shown_cs)
        self._shown_cs += delay
        if self._pool is None:
            try:
                self._encode(image, delay, self._fp)
            except Exception as exc:  # noqa: BLE001
                raise self._failed(exc) from exc
            self._frames_out += 1
        else:
            self._drain(self.max_in_flight - 1)
            self._pending.append(self._pool.submit(self._encode_bytes, image, delay))
        self.frames += 1

    def close(self) -> Path:
        """Write the frames still in flight, finish the file and move it into place.

        Raises:
            RenderError: encoding a frame failed (the partial file is removed).
        """
        self._drain(0)
        self._shutdown()
        self._fp.write(b";")
        self._fp.close()
        os.replace(self._tmp, self.path)
        return self.path

    def _shutdown(self) -> None:
        for f in self._pending:
            f.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # a frame in hand finishes within milliseconds
        for fp in self._scratch_files:
            fp.close()
        self._scratch_files.clear()

    def abort(self) -> None:
        """Stop the workers and remove the partial file."""
        self._shutdown()
        self._fp.close()
        self._tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------
# PNG frames
# ------------------------------------------------------------------------------------------------
class PngFolderWriter:
    """A folder of ``frame_000000.png``, ... (lossless), created when ``close()`` succeeds.

    Args:
        path: the folder; it must not exist, or be empty, or hold only an earlier render's
            frames (``check_output`` with ``overwrite``), which ``close()`` removes.
        compress_level: zlib level 0..9 (1 is fast). Defaults to 1.
    """

    def __init__(self, path: str | Path, *, width: int, height: int, compress_level: int = 1):
        self.path = Path(path)
        self.shape = (height, width, 3)
        self.frames = 0
        self.compress_level = compress_level
        self._tmp = Path(
            tempfile.mkdtemp(
                prefix=f".{safe_filename(self.path.name)}.envreel-partial-", dir=self.path.parent
            )
        )
        # an empty folder that is replaced keeps its mode; a new one gets mkdir's
        give_default_mode(self._tmp, like=self.path)

    def write(self, frame: np.ndarray) -> None:
        from PIL import Image

        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {self.shape} uint8, got {frame.shape} {frame.dtype}")
        Image.fromarray(frame).save(
            self._tmp / f"frame_{self.frames:06d}.png", compress_level=self.compress_level
        )
        self.frames += 1

    def close(self) -> Path:
        if self.path.exists():
            # checked before rendering started: empty, or an earlier render's frames only
            for f in self.path.iterdir():
                if FRAME_FILE.fullmatch(f.name):
                    f.unlink()
            self.path.rmdir()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def write_whole(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write a file as every writer writes: ``write(tmp)`` fills a hidden temporary name next
    to ``path``, which is renamed into place when it returns, so an error or an interrupt
    leaves neither a partial file nor the temporary one (and an existing ``path`` stays as it
    was).

    Returns:
        ``path``.
    """
    path = Path(path)
    tmp = _partial(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write one (H, W, 3) uint8 image as a PNG through ``write_whole``; returns ``path``."""
    from PIL import Image

    return write_whole(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def open_writer(
    kind: str,
    path: Path,
    *,
    width: int,
    height: int,
    fps: float,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int | None = None,
):
    """A writer for ``kind`` ("mp4", "gif", "png") with ``write(frame)``, ``close()``,
    ``abort()``."""
    if kind == "mp4":
        return Mp4Writer(
            path, width=width, height=height, fps=fps, crf=crf, preset=preset, threads=threads
        )
    if kind == "gif":
        return GifWriter(path, width=width, height=height, fps=fps, threads=threads)
    if kind == "png":
        return PngFolderWriter(path, width=width, height=height)
    raise ValueError(f"unknown output kind {kind!r}")
