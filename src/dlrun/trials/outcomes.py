"""Outcomes: the event an executor sends for a task that failed, the state file of trials that stopped, and the
end of a run of trials; the types of the executors' tasks, workers and events."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from dlrun import errors

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun import runs

# The shapes every executor shares (dlrun.trials.executors' docstring tells the protocol):
Event = dict[str, Any]  # what a worker emits (an epoch's logs) or an executor sends (a task's outcome)
Emit = Callable[[Event], None]  # a worker's `emit(event)`
Worker = Callable[[Any, Emit], Any]  # `worker(payload, emit)`, a module-level function; returns the task's result
OnEvent = Callable[[Any, Event], None]  # `on_event(key, event)`, in the main process
Tasks = Iterable[tuple[Any, Any]]  # `(key, payload)` pairs: a list, or an iterator pulled when a worker is free


def failure(error: BaseException) -> dict:
    """The outcome event of a task that raised `error` (with its traceback when it was not a dlrun error)."""
    if isinstance(error, errors.DlrunError):
        return {"type": "failed", "error": str(error)}
    return {"type": "failed", "error": f"{type(error).__name__}: {error}", "traceback": "".join(traceback.format_exception(error))}


def mark_interrupted(run: runs.Run, file_name: str, state: dict, items: str) -> int:
    """Record in `state` (kfold.json's or sweep.json's, written to `file_name` in `run`) that the trials
    stopped; return how many of `state[items]` had completed (for the lifecycle's message)."""
    done = sum(item["status"] == "completed" for item in state[items])
    state["status"] = "interrupted"
    run.write_json(file_name, state)
    return done


def finish(run: runs.Run, failed: list[str], out_of: int, noun: str, continue_with: str, summary: dict, console: Console) -> None:
    """End a run of trials (a sweep, a seeds group): `failed` if any of them did (TrainingFailed, each failure
    listed, with `continue_with`, the command that continues), else `completed`; `summary` goes to run.json."""
    from dlrun import terminal

    if failed:
        message = f"{len(failed)} of {out_of} {noun}(s) failed ({'; '.join(failed)}); continue with: {continue_with}"
        run.finish("failed", error=message, **summary)
        raise errors.TrainingFailed(message)
    run.finish("completed", **summary)
    console.print(f"[green]completed[/green]: {terminal.text(run.path)}", highlight=False, soft_wrap=True)
