"""SIGTERM handled like Ctrl-C, so a scheduler's kill marks the run `interrupted` instead of losing it."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def terminate_as_interrupt():
    """Inside the block, SIGTERM raises KeyboardInterrupt (as SIGINT does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
