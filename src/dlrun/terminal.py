"""The console dlrun's commands print to: Rich, but one that outlives a closed pipe.

Rich's default on a broken pipe (`dlrun train ... | head`) is `SystemExit(1)` from wherever it was
printing: in the middle of training, that would leave a run folder that says `running` forever. Here the
console goes quiet instead and the work goes on: the run folder still records everything.
"""

from __future__ import annotations

import os
import sys

from rich import console as rich_console


class _Console(rich_console.Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later writes (ours, Python's at exit) go nowhere, quietly


def console() -> rich_console.Console:
    """A Rich console on stdout for a command's progress and results."""
    return _Console(highlight=False)
