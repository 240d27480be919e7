"""SIGINT/SIGTERM during a replay: finish what is safe to finish, then stop.

The first signal only raises a flag. The replay's loops look at it between frames (never
inside a bag write), close the output bag with what was made, and write a summary marked
partial that says how far the run got. A second signal aborts at once (KeyboardInterrupt).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager


class Interrupted(KeyboardInterrupt):
    """The replay was asked to stop; raised by :meth:`StopFlag.check` between frames."""


class StopFlag:
    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def check(self) -> None:
        if self.signal_name is not None:
            raise Interrupted(f"interrupted by {self.signal_name}")


@contextmanager
def stop_on_signals():
    """A :class:`StopFlag` that SIGINT and SIGTERM raise while the block runs (main thread only;
    elsewhere the flag is never raised and signals keep their handlers)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_signal(signum, _frame):
        if flag.signal_name is not None:
            raise KeyboardInterrupt
        flag.signal_name = signal.Signals(signum).name
        # os.write, not print: the handler may run while the main thread is inside a write to
        # stderr, and the buffered stream refuses a reentrant call.
        os.write(
            2,
            f"\nivif replay: {flag.signal_name} received: closing the output bag and writing a partial report "
            "(send it again to abort at once)\n".encode(),
        )

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
