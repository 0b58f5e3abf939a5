"""The writer process: compression and zarr's Python code off the training process's GIL.

Measured on an H100 host (16 cores): with the writer as a thread of the training process, every
block append runs tens of milliseconds of zarr's Python code, which takes the GIL each time the
training loop releases it (every torch op does, and so does every synchronisation); the loop
waits to get it back. 64 envs × 128×128 every 5 ms step cost +23% loop time that way, with
``capture()`` itself at 0.33 ms median and 3.5 ms p99. In its own process the writer shares no
GIL with the training loop: on the same machine, +4.4% (10,000 steps; first capture excluded),
0.23 ms median and 0.43 ms p99.

How it works:

* The ring of block buffers is a file in /dev/shm mapped by both processes (and page-locked in
  the training process for CUDA copies); the file's name is removed once both have mapped it.
* The child is started with ``subprocess`` (``python -c``), not ``multiprocessing``: spawn would
  re-import the user's ``__main__`` (a training script without an ``if __name__ == "__main__"``
  guard would run again), fork is unsafe with CUDA and threads. It is started by the
  ``Recorder`` constructor, so its imports overlap with the user's setup; it creates the store
  at the first ``capture()`` (errors such as FileExistsError come back and are raised there).
* Messages are small pickles on two pipes: block index and length to the child, counters back.
  In the training process, a dispatcher thread waits for a block's CUDA event (a host wait that
  releases the GIL) and sends it; a receiver thread returns written buffers to the free list.
  Both are blocked nearly all the time.
* The child runs at nice +10 (``WRITER_NICE``): where the loop and the writer both want a
  core, the loop gets it and the ring absorbs the writer's delay. It compresses on one thread
  per core but one (``ENVREEL_WRITER_THREADS`` overrides it).
* The child ignores SIGINT (Ctrl-C reaches the whole process group; the training process
  decides when to close) and exits when its input pipe closes, so a killed training process
  leaves no writer behind and a store valid up to its last committed block.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any, cast

from ._writer import WriterCounts

__all__ = ["WriterProcess", "child_main"]

_BOOT = (
    "import sys, json, os; "
    "sys.path[:0] = json.loads(os.environ.pop('ENVREEL_WRITER_PATH', '[]')); "
    "from envreel.capture._process import child_main; "
    "child_main(int(sys.argv[1]), int(sys.argv[2]))"
)


WRITER_NICE = 10
"""Niceness added to the writer process (see ``child_main``)."""

STALL_WARN_S = 60.0
"""Seconds without a word from the writer process, while closing, before a warning."""


class WriterError(Exception):
    """An error raised in the writer process (its type and message, as text)."""


class WriterProcess:
    """The training process's handle on the writer process.

    It mirrors ``BlockSink``'s counters (a ``WriterCounts``, replaced whole by each reply) and
    error fields, so the ``Recorder`` treats it like the writer thread.
    """

    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        env["ENVREEL_WRITER_PATH"] = json.dumps([p for p in sys.path if isinstance(p, str)])
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._tx = Connection(to_child_w, readable=False)
        self._rx = Connection(from_child_r, writable=False)
        self._send_lock = threading.Lock()
        self.started = False
        self.finished = False
        self.ring: Any = None
        self.url = ""
        self.counts = WriterCounts()
        self.error: BaseException | None = None
        self.error_message: str | None = None
        self.close_error: BaseException | None = None
        self.pending_warning: str | None = None
        self.clips_done: list[dict[str, int]] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._last_heard = time.monotonic()

    @property
    def usable(self) -> bool:
        """Started-able: the child runs and has not been given a store yet."""
        return not self.started and self._proc.poll() is None

    @property
    def alive(self) -> bool:
        return (
            self._receiver is not None
            and self._receiver.is_alive()
            and self._dispatcher is not None
            and self._dispatcher.is_alive()
        )

    def start(
        self, *, ring: Any, dropped: Any, url: Any, config: dict[str, Any], timeout_s: float = 120
    ) -> None:
        """Have the child create the store and map the ring; raise what it raised.

        Args:
            ring: the ring (its memory shared, its ``path`` set).
            dropped: callable giving the caller's count of dropped frames.
            url: the store's url (for messages).
            config: everything ``child_main`` needs (picklable).
            timeout_s: how long to wait for the child to answer.
        """
        self.started = True
        self.ring = ring
        self.url = str(url)
        self._dropped = dropped
        try:
            self._tx.send(("start", config))
            if not self._rx.poll(timeout_s):
                raise TimeoutError(f"the envreel writer process did not answer in {timeout_s} s")
            reply = self._rx.recv()
        except (OSError, EOFError) as exc:
            self._abort()
            raise RuntimeError(
                f"the envreel writer process exited before creating the store (exit code "
                f"{self._proc.poll()}); its error is on stderr"
            ) from exc
        if reply[0] == "error":
            self._abort()
            raise _unpickle_error(reply[1])
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="envreel-writer-dispatch", daemon=True
        )
        self._receiver = threading.Thread(
            target=self._receive, name="envreel-writer-receive", daemon=True
        )
        self._dispatcher.start()
        self._receiver.start()

    def submit(self, index: int, length: int, clip_ended: bool = False) -> None:
        """Hand block ``index`` (its first ``length`` frames) to the writer process;
        ``clip_ended``: its last clip is whole."""
        self._queue.put((index, length, clip_ended))

    def clip_ended(self) -> None:
        """After the blocks queued so far: the last clip is whole."""
        self._queue.put(("clip_ended",))

    def finish(self, *, closing_error: str | None = None, timeout_s: float = 60) -> None:
        """Write what is queued, close the store, and wait for the child to exit.

        A child that answers nothing for ``STALL_WARN_S`` (a hung mount, a stopped process)
        gets a warning, once, and is waited for still; Ctrl-C then stops it (the blocks it has
        not written are lost) instead of leaving the interpreter waiting at exit.
        """
        if self.started and self._receiver is not None:
            self._queue.put(("close", closing_error))
            try:
                self._wait_for_close()
            except KeyboardInterrupt:
                self._proc.kill()
                self._died()
                raise
        elif not self.started:
            self._proc.terminate()  # it has created nothing and has nothing to write
        self._abort(timeout_s)

    def _wait_for_close(self) -> None:
        receiver = cast(threading.Thread, self._receiver)
        warned = False
        while receiver.is_alive():
            receiver.join(1.0)
            silent = time.monotonic() - self._last_heard
            if receiver.is_alive() and silent > STALL_WARN_S and not warned:
                warned = True
                warnings.warn(
                    f"envreel: the writer process of {self.url} has answered nothing for "
                    f"{silent:.0f} s while closing (a hung disk or mount?); still waiting: "
                    "Ctrl-C stops it, losing the blocks it has not written",
                    RuntimeWarning,
                    stacklevel=5,
                )
        cast(threading.Thread, self._dispatcher).join()

    def _abort(self, timeout_s: float = 10) -> None:
        """Tell a child that never got (or lost) its store to exit, and reap it."""
        self.finished = True
        try:
            with self._send_lock:
                self._tx.send(("exit",))
        except (OSError, ValueError):
            pass
        try:
            self._tx.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    # -- threads in the training process --------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item[0] == "close":
                    self._tx.send(("close", item[1], int(self._dropped())))
                    return
                if item[0] == "clip_ended":
                    self._tx.send(("clip_ended", int(self._dropped())))
                    continue
                index, length, clip_ended = item
                slots = self.ring.blocks[index]
                if slots.used_cuda:
                    slots.event.synchronize()  # releases the GIL while it waits
                    slots.used_cuda = False
                self._tx.send(("block", index, length, clip_ended, int(self._dropped())))
            except (OSError, ValueError, EOFError):
                self._died()
                return

    def _receive(self) -> None:
        while True:
            try:
                msg = self._rx.recv()
            except (OSError, EOFError):
                self._died()
                return
            self._last_heard = time.monotonic()
            self._update(msg[-1])
            if msg[0] == "block":
                self.ring.free.put(msg[1])
            elif msg[0] == "closed":
                return

    def _update(self, stats: dict[str, Any]) -> None:
        self.counts = WriterCounts(**stats["counts"])
        self.clips_done.extend(stats["clips_done"])
        if stats["error_message"] and self.error is None:
            self.error_message = stats["error_message"]
            self.error = WriterError(stats["error_message"])
        if stats["warning"]:  # after one not shown yet, if any
            pending = self.pending_warning
            self.pending_warning = (
                stats["warning"] if pending is None else f"{pending}\n{stats['warning']}"
            )
        if stats["close_error"]:
            self.close_error = WriterError(stats["close_error"])

    def _died(self) -> None:
        if self.error is None:
            try:
                code = self._proc.wait(2)  # the pipe closes a moment before the child is reaped
            except subprocess.TimeoutExpired:
                code = None
            self.error_message = "the writer process " + _how_it_ended(code)
            self.error = WriterError(self.error_message)


def _how_it_ended(code: int | None) -> str:
    """How a writer process ended, from its exit code (negative: the signal that killed it)."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the out-of-memory killer sends it)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited unexpectedly with code {code}; its error is on stderr"


def _pickle_error(exc: BaseException) -> bytes:
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:  # noqa: BLE001 - send what can be sent
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _unpickle_error(data: bytes) -> BaseException:
    try:
        exc = pickle.loads(data)
    except Exception as e:  # noqa: BLE001
        return RuntimeError(f"the envreel writer process failed (unreadable error: {e})")
    return exc if isinstance(exc, BaseException) else RuntimeError(str(exc))


def _stats(sink: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"counts": asdict(sink.counts)}
    sent = getattr(sink, "clips_sent", 0)
    out["clips_done"], sink.clips_sent = sink.clips_done[sent:], len(sink.clips_done)
    out["error_message"] = sink.error_message
    out["warning"], sink.pending_warning = sink.pending_warning, None
    ce = sink.close_error
    out["close_error"] = None if ce is None else f"{type(ce).__name__}: {ce}"
    return out


def child_main(rfd: int, wfd: int) -> None:
    """The writer process: create the store, then append the blocks it is told about."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # Below the training loop: where both want a core, the loop gets it, and the ring
        # absorbs the writer's delay (its threads, made later, inherit this).
        os.nice(WRITER_NICE)
    except OSError:
        pass
    rx = Connection(rfd, writable=False)
    tx = Connection(wfd, readable=False)
    try:
        msg = rx.recv()
    except (EOFError, OSError):
        return
    if msg[0] != "start":
        return
    cfg = msg[1]
    try:
        from envreel.schemas import RunSpec, create_run

        from ._cuda import HostMemory
        from ._writer import BlockSink, Ring, reset_defaults

        spec = RunSpec.from_dict(cfg["spec"])
        memory = HostMemory.attach(cfg["path"], cfg["nbytes"])
        ring = Ring(
            spec,
            num_blocks=cfg["num_blocks"],
            memory=lambda nbytes: memory,
            value_range=cfg["value_range"] is not None,
            rgba=cfg["rgba"],
            fresh=False,  # the caller's ring: set to its defaults there
        )
        writer = create_run(
            cfg["url"],
            spec,
            overwrite=cfg["overwrite"],
            storage_options=cfg["storage_options"],
            **cfg["statics"],
        )
    except BaseException as exc:  # noqa: BLE001 - reported to the training process
        with contextlib.suppress(OSError):  # it is gone (Ctrl-C while this started): be quiet
            tx.send(("error", _pickle_error(exc)))
        return
    tx.send(("ok",))
    sink = BlockSink(
        writer,
        on_error=cfg["on_error"],
        value_range=cfg["value_range"],
        autoreset=cfg["autoreset"],
    )
    while True:
        try:
            msg = rx.recv()
        except (EOFError, OSError):
            return  # the training process is gone: the store is valid up to its last block
        if msg[0] == "block":
            _, index, length, clip_ended, dropped = msg
            sink.dropped_by_caller = dropped
            arrays = ring.blocks[index].arrays
            sink.write(arrays, length, clip_ended)
            reset_defaults(arrays)  # before the caller can take the block again
            tx.send(("block", index, _stats(sink)))
        elif msg[0] == "clip_ended":
            sink.dropped_by_caller = msg[1]
            sink.end_clip()
            tx.send(("stats", _stats(sink)))
        elif msg[0] == "close":
            sink.dropped_by_caller = msg[2]
            sink.close(msg[1])
            tx.send(("closed", _stats(sink)))
            return
        else:
            return
