"""Settings for the whole test session."""

from __future__ import annotations

import signal


def pytest_configure(config) -> None:
    """Let the children that the tests interrupt see Ctrl-C.

    A command started with ``&`` by a non-interactive shell (``.ci/run &``, ``nohup pytest &``)
    starts with SIGINT ignored, and a child inherits an ignored signal through ``exec``: a
    Python child then never installs its KeyboardInterrupt handler, and the tests that send
    SIGINT to an ``envreel`` command would see it run on and exit 0. A signal with a handler
    is reset to its default in the child, so one here is enough for every child.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
