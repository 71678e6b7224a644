"""Ctrl-C and SIGTERM: never lost, never half-acted on.

SIGTERM is handled like Ctrl-C, so a scheduler's kill marks the run `interrupted` instead of losing it
(`terminate_as_interrupt`). While heavy libraries are imported (`deferred`), both signals are only
noted and raised as KeyboardInterrupt from dlrun's own code once the import returns: raised inside the
import, a KeyboardInterrupt can land in a library's garbage-collection callback (JAX's
`_xla_gc_callback`, which TensorFlow imports), which prints "Exception ignored" and drops it, so the
run trained on to `completed`; or it can leave a native library half initialised (SIGABRT, SIGSEGV).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import NoReturn

DEFERRED = (signal.SIGINT, signal.SIGTERM)
_noted: list[int] | None = None  # the signals noted by the outermost `deferred` block, while one is open


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises KeyboardInterrupt (as SIGINT does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred(raise_on_exit: bool = True) -> Iterator[list[int]]:
    """Inside the block SIGINT and SIGTERM only note that they came (a signal ignored before stays
    ignored); the previous handlers are restored on leaving it, and then, if one came, KeyboardInterrupt
    is raised (with `raise_on_exit=False`, the noted signals are yielded instead, for the caller to act
    on). Yields the list of signals noted so far. Nested blocks leave the noting to the outermost one;
    outside the main thread (where signals are never delivered) it does nothing.
    """
    global _noted
    if threading.current_thread() is not threading.main_thread() or _noted is not None:
        yield _noted if _noted is not None else []
        return
    noted: list[int] = []

    def _note(signum: int, frame: FrameType | None) -> None:
        noted.append(signum)

    previous = {}
    _noted = noted
    try:
        for signum in DEFERRED:
            handler = signal.getsignal(signum)
            if handler not in (signal.SIG_IGN, None):  # None: a handler set outside Python, left alone
                previous[signum] = signal.signal(signum, _note)
        yield noted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _noted = None
    if noted and raise_on_exit:
        raise KeyboardInterrupt(f"signal {signal.Signals(noted[0]).name}")
