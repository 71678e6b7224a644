"""The one run lifecycle of `train`, `kfold` and `sweep`: start-up (`starting`, `create`) and how the work ends (`recorded`).

    with runs.starting("dlrun kfold --resume {path}"):    # import Keras, load and check the data
        run = runs.create(runs_root, name)               # the run folder, then its first files
        with runs.recorded(run, "K-fold", ...):          # the work
            ...
        run.finish("completed")

A Ctrl-C (or SIGTERM) at any moment ends the command with `errors.Interrupted` (exit 130) and an honest
status: before the run folder exists, none is made; once it is made (or a --resume has changed it), it is
marked `interrupted`, never left `running` or without a status.
"""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from dlrun import errors, signals
from dlrun.runs.folder import RUN_FILE, Run

INTERRUPTED = "interrupted by the user (Ctrl-C or SIGTERM)"
UNFINISHED = ("created", "running")  # the statuses an interrupted start-up must not leave behind
_open = threading.local()  # .starts: the `starting` blocks open in this thread, innermost last


def create(runs_root: str | Path, name: str) -> Run:
    """`Run.create` for train, kfold and sweep: a signal is held until the innermost `starting` block knows
    the new folder, so an interrupt marks it `interrupted` instead of leaving it without a status."""
    with signals.deferred():
        run = Run.create(runs_root, name)
        starts = getattr(_open, "starts", [])
        if starts:
            starts[-1]["run"] = run
    return run


@contextlib.contextmanager
def starting(continue_with: str, resume_path: str | Path | None = None) -> Iterator[None]:
    """The start-up of a command that makes a run folder, and everything after it (see the module docstring).

    Inside the block SIGTERM acts as Ctrl-C. An interrupt that `recorded` does not handle raises
    `errors.Interrupted`: before `create` it says no run folder was made (for a --resume of `resume_path`,
    that it was not changed, unless this process had marked it running again); after, the run is marked
    `interrupted` and the message says how to continue (`continue_with`, a command with `{path}` for the
    run folder).
    """
    start: dict = {"run": None}
    starts = _open.__dict__.setdefault("starts", [])
    starts.append(start)
    try:
        with signals.terminate_as_interrupt():
            yield
    except KeyboardInterrupt:
        raise _interrupted(start["run"] or _resumed_here(resume_path), continue_with, resume_path) from None
    finally:
        starts.remove(start)


def _interrupted(run: Run | None, continue_with: str, resume_path: str | Path | None) -> errors.Interrupted:
    """What an interrupt outside `recorded` means for `run` (the one made or marked running again here, if
    any); an unfinished run is marked `interrupted` first."""
    if run is None:
        if resume_path is None:
            return errors.Interrupted("interrupted while starting: no run folder was created, nothing was written")
        return errors.Interrupted(
            f"interrupted while starting: {resume_path} was not changed (continue with: {continue_with.format(path=resume_path)})"
        )
    status = run.record.get("status")
    if status not in UNFINISHED:
        return errors.Interrupted(f"interrupted after {run.path} ended {status}; it is kept as it is")
    run.finish_if_possible("interrupted", error=INTERRUPTED)
    if status == "created":
        return errors.Interrupted(
            f"interrupted while starting: {run.path} was made but not started; it is marked interrupted (start a new run)"
        )
    return errors.Interrupted(
        f"interrupted; what was written so far is in {run.path} (continue with: {continue_with.format(path=run.path)})"
    )


def _resumed_here(resume_path: str | Path | None) -> Run | None:
    """The run at `resume_path` if this process has marked it running again (`Run.resume`) and it has not
    ended since, else None."""
    if resume_path is None:
        return None
    try:
        run = Run.open(resume_path)
    except errors.DlrunError:
        return None
    return run if run.record.get("pid") == os.getpid() and run.record.get("status") in UNFINISHED else None


@contextlib.contextmanager
def recorded(run: Run, what: str, continue_with: str, stopped: Callable[[], tuple[str, dict]] = lambda: ("", {})) -> Iterator[None]:
    """Record in run.json how the block ends: the one lifecycle of `train`, `kfold` and `sweep`.

    Inside the block SIGTERM acts as Ctrl-C. An interrupt marks the run `interrupted` and raises
    `errors.Interrupted` saying how to continue (`continue_with`, a command); a dlrun error marks it
    `failed` with its message (a sweep's pruner stopping a trial marks it `pruned`; a worker's traceback when the error carries one); a failed write
    (a full disk) and any other exception mark it `failed` with the error and the traceback, raised again
    as `errors.TrainingFailed`. `stopped()` returns what was done so far, as a phrase for the message
    ("after 2 completed fold(s)") and fields for run.json. A completed run is the caller's to finish.
    """
    try:
        with signals.terminate_as_interrupt():
            yield
    except KeyboardInterrupt:
        said, fields = stopped()
        run.finish("interrupted", error=INTERRUPTED, **fields)
        raise errors.Interrupted(
            f"interrupted{' ' + said if said else ''}; what was written so far is in {run.path} (continue with: {continue_with})"
        ) from None
    except errors.TrialPruned as pruned:  # an honest outcome of its own, not a failure
        run.finish("pruned", pruned=pruned.record())
        raise
    except errors.DlrunError as error:
        found = getattr(error, "traceback", None)  # a worker's own traceback, when it failed unexpectedly
        run.finish_if_possible("failed", error=str(error), **({"traceback": found} if found else {}))
        raise
    except OSError as error:  # a full disk or a vanished folder while writing the run's files
        message = f"could not write the run's files: {error.strerror or error} ({error.filename or run.path})"
        run.finish_if_possible("failed", error=message, traceback=traceback.format_exc())
        raise errors.TrainingFailed(message) from None
    except Exception as error:  # any other failure is recorded before it propagates
        run.finish_if_possible("failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        raise errors.TrainingFailed(f"{what} failed: {type(error).__name__}: {error} (see {run.path / RUN_FILE})") from error
