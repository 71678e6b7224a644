"""The outcome events an executor sends for each task: `done` with the worker's result, or `failed`."""

from __future__ import annotations

import traceback

from dlrun import errors


def failure(error: BaseException) -> dict:
    """The outcome event of a task that raised `error` (with its traceback when it was not a dlrun error)."""
    if isinstance(error, errors.DlrunError):
        return {"type": "failed", "error": str(error)}
    return {"type": "failed", "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error))}
