"""The console dlrun's commands print to: Rich, but one that outlives a closed pipe.

Rich's default on a broken pipe (`dlrun train ... | head`) is `SystemExit(1)` from wherever it was
printing: in the middle of training, that would leave a run folder that says `running` forever. Here the
console goes quiet instead and the work goes on: the run folder still records everything.

Text that comes from data (class names, file and folder names, run files, config values) goes through
`text` before it reaches a string Rich reads as markup: shown as written, never as a style or a link.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from rich import console as rich_console, markup

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 (but tab and newline), DEL and C1: escape sequences


def text(value: Any) -> str:
    """`value` as text for a Rich markup string: control characters removed, markup escaped."""
    return markup.escape(_CONTROL.sub("", str(value)))


class _Console(rich_console.Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later writes (ours, Python's at exit) go nowhere, quietly


def console() -> rich_console.Console:
    """A Rich console on stdout for a command's progress and results."""
    return _Console(highlight=False)
