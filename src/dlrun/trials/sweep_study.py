"""Running a sweep's study: ask trials as workers free up, train them, tell the study how each ended.

`drive` is shared by the process that owns the sweep (`dlrun sweep`, `--resume`: it writes `sweep.json`,
the plots and the sweep's run.json) and by joined ones (`--join`: they only train trials). Trials are
asked under a file lock in the sweep folder, so all of them together never ask more than `trials`.
The study is the record of every trial; per trial it keeps, as user attributes, the config values
tried (`overrides`), the asking process (`worker`), the child run folder (`run`), and the outcome
(`best`, `epochs`, `pruned`, `error`).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dlrun import config as config_module, errors, runs, terminal
from dlrun.config import overrides, search as search_config
from dlrun.trials import executors, outcomes, search as search_engine, spread, sweep_results

if TYPE_CHECKING:
    import optuna
    from rich.console import Console

    from dlrun.trials import progress as trial_progress

TRIALS_FOLDER = "trials"
ASK_LOCK = ".study.lock"  # flock'ed while a process counts the study's trials and asks for one more
_QUIET_START_SECONDS = 600  # a trial of another host that has made no run folder after this is taken for dead
_WAIT_SECONDS = 1.0  # how often the owner looks at trials that joined workers are still training


def set_items(values: dict) -> list[str]:
    """A trial's config values as `--set` items."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def shown(values: dict) -> str:
    """A trial's config values for people: `learning_rate=0.0004634, units=[4]` (4 significant digits)."""
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={sweep_results.value_text(value)}" for key, value in values.items())


def drive(
    run: runs.Run,
    state: dict,
    study: optuna.Study,
    base_data: dict,
    console: Console,
    placement: executors.Placement,
    owner: bool,
    resuming: bool = False,
) -> runs.Run:
    """Ask, train and tell trials until the study holds `state['trials_total']`; the owner then waits for the
    trials joined workers are training, ranks them, and finishes the sweep's run (see the module docstring)."""
    import optuna

    from dlrun.trials import progress as trial_progress, trial as trial_module

    search = search_config.SearchConfig.model_validate(state["search"])
    if owner:
        state["executor"] = placement.record()
    total, metric = state["trials_total"], search.metric
    handles: dict[int, optuna.Trial] = {}  # number -> optuna.trial.Trial, to set attributes while it runs
    epochs: dict[int, int] = {}  # number -> epochs trained so far
    planned: dict[int, int] = {}  # number -> the epochs its config trains
    in_a_row: list[str] = []  # the errors of the trials that failed since the last one that did not
    failed: list[str] = []
    mine: list[int] = []
    unsaved: list[bool] = []  # [True]: the study has changed since sweep.json was written (`save_soon`)

    def task(trial: optuna.Trial, values: dict, previous_run: str | None) -> tuple[int, dict]:
        data = overrides.apply(base_data, set_items(values))
        data["name"] = f"{base_data['name']}-t{trial.number:03d}"
        data.setdefault("output", {})["runs_root"] = str(run.path / TRIALS_FOLDER)
        config = config_module.to_data(config_module.validate(data, source=f"trial {trial.number} ({', '.join(set_items(values))})"))
        planned[trial.number] = config["train"]["epochs"]
        command = ["dlrun", "train", f"(sweep {run.path.name}, trial {trial.number})", *(f"--set={item}" for item in set_items(values))]
        study_address = {"url": state["storage"], "name": state["study"], "trial_id": trial._trial_id, "search": state["search"]}
        return trial.number, {
            "config": config,
            "run": previous_run,
            "command": command,
            "study": study_address,
            "kfold": search.kfold,
            "seeds": search.seeds,
        }

    def tasks() -> Iterator[tuple[int, dict]]:
        if resuming:
            for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if not _alive(frozen):  # its process died: continue it from its run's last checkpoint
                    handles[frozen.number] = optuna.trial.Trial(study, frozen._trial_id)
                    handles[frozen.number].set_user_attr("worker", _worker())
                    mine.append(frozen.number)
                    yield task(handles[frozen.number], frozen.user_attrs.get("overrides", {}), frozen.user_attrs.get("run"))
        while len(in_a_row) < state["max_failures"]:
            with _ask_lock(run.path):
                asked = len(study.get_trials(deepcopy=False))
                if asked >= total:
                    return
                study.sampler = search_engine.sampler(search, asked)
                trial = study.ask()
                values = search_engine.suggest(trial, search)
                trial.set_user_attr("overrides", values)
                trial.set_user_attr("worker", _worker())
            handles[trial.number] = trial
            mine.append(trial.number)
            earlier = search_engine.finished_with(study, values) if search.repeats == "reuse" else None
            if earlier is not None:  # the same config again: same seed, same numbers; not trained twice
                repeat(trial, earlier)
                continue
            try:
                next_task = task(trial, values, None)
            except errors.ConfigError as error:  # a combination of values the config refuses
                fail(trial.number, str(error))
                continue
            yield next_task

    def repeat(trial: optuna.Trial, earlier: optuna.trial.FrozenTrial) -> None:
        attrs = earlier.user_attrs
        trial.set_user_attr("repeat_of", earlier.number)
        trial.set_user_attr("epochs", 0)  # trained none itself
        for key in ("best", "spread", "pruned"):
            if attrs.get(key) is not None:
                trial.set_user_attr(key, attrs[key])
        label = f"trial {trial.number}/{total} ({shown(attrs.get('overrides', {}))}): repeat of trial {earlier.number}, not trained again"
        if earlier.state == optuna.trial.TrialState.PRUNED:
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
            outcome = (
                f"pruned too (it was pruned after {sweep_results.pruned_at(attrs['pruned'])})" if attrs.get("pruned") else "pruned too"
            )
        else:
            study.tell(trial.number, earlier.value)
            outcome = f"its best {metric} {earlier.value:.4f}" + (f" at epoch {attrs['best']['epoch']}" if attrs.get("best") else "")
        in_a_row.clear()
        save()
        progress.say(f"{label}: {outcome}")

    def save() -> None:
        if owner:
            sweep_results.write(run, state, study)

    def fail(number: int, error: str) -> None:
        handles[number].set_user_attr("error", error)
        handles[number].set_user_attr("epochs", epochs.get(number, 0))
        study.tell(number, state=optuna.trial.TrialState.FAIL)
        in_a_row.append(f"trial {number}: {error}")
        failed.append(in_a_row[-1])
        save()

    def save_soon() -> None:
        """sweep.json rewritten at the next epoch of any trial, or at the end: trials that start or end together
        (a vectorized batch) cost one rewrite, not one each (a rewrite reads every trial from the study: 0.1-0.2 s
        with 32 trials running)."""
        unsaved[:] = [True]

    def save_if_unsaved() -> None:
        if unsaved:
            unsaved.clear()
            save()

    def on_event(number: int, event: outcomes.Event) -> None:
        label = f"trial {number}/{total}"
        if event["type"] == "started":
            handles[number].set_user_attr("run", event["run"])  # so --resume continues this run folder, not a new one
            save_soon()
            if event["after_epoch"] is not None:
                progress.say(f"resuming trial {number} after epoch {event['after_epoch']} ({event['run']})")
        elif event["type"] == "note":
            progress.say(f"trial {number}: {event['text']}")
        elif event["type"] == "epoch":
            epochs[number] = event["epoch"]
            value = event["logs"].get(metric)
            if "fold" in event:  # a cross-validated trial
                label = f"{label} fold {event['fold']}/{search.kfold}"
            progress.epoch(
                number,
                label,
                event["epoch"],
                planned[number] if number in planned else event["epoch"],
                f"{metric} {value:.4f}" if value is not None else "",
            )
            if owner:
                run.heartbeat(at_most_every=1.0, trial=number)
            save_if_unsaved()
        elif event["type"] == "done":
            result, handle = event["result"], handles[number]
            best = _score(result, metric, search.direction)
            values = handle.user_attrs.get("overrides", {})
            handle.set_user_attr("run", result["run"])
            handle.set_user_attr("epochs", len(result["history"]["epoch"]))
            handle.set_user_attr("best", {"epoch": best[0], "value": best[1]} if best else None)
            if "spread" in result:  # a trial over seeds: mean +- std of every metric over them
                handle.set_user_attr("spread", result["spread"])
            if result["state"] == "pruned":
                handle.set_user_attr("pruned", result["pruned"])
                study.tell(number, state=optuna.trial.TrialState.PRUNED)
                outcome = f"[magenta]pruned[/magenta] after {sweep_results.pruned_at(result['pruned'])}: {result['pruned']['reason']}"
            elif best is None:
                progress.finish(number, f"[red]{label} failed[/red]: no {metric} recorded")
                fail(number, f"no {metric} recorded")
                return
            else:
                study.tell(number, best[1])
                outcome = (
                    f"best {metric} {best[1]:.4f} at epoch {best[0]}"
                    if not search.kfold
                    else f"mean best {metric} over {search.kfold} folds {best[1]:.4f}; recommended epochs {best[0]}"
                )
                if "spread" in result:
                    outcome = "; ".join(spread.lines(result["spread"]))
            in_a_row.clear()
            save_soon()
            progress.finish(number, f"{label} ({shown(values)}): {outcome}")
        elif event["type"] == "failed":
            progress.finish(number, f"[red]{label} failed[/red]: {event['error']}")
            fail(number, event["error"])

    def stopped() -> tuple[str, dict]:
        save()
        done = outcomes.mark_interrupted(run, sweep_results.FILE_NAME, state, "trials")
        return f"after {done} of {total} trial(s)", {"trials_completed": done}

    lifecycle = runs.recorded(run, "sweep", f"dlrun sweep --resume {run.path}", stopped) if owner else _joined(run)
    with lifecycle:
        with trial_progress.TrialProgress(console) as progress:
            if placement.executor in ("vectorized", "auto"):  # a batch of trials at a time as one JAX program
                from dlrun.trials import sweep_vectorized

                sweep_vectorized.run(tasks(), on_event, progress.say, placement, search, record=state.get("executor"))
            else:
                executors.run(tasks(), trial_module.run_trial, on_event, placement)
            save_if_unsaved()
            if owner:
                _wait_for_joined(study, progress)
    if not owner:
        console.print(
            f"this worker trained trial(s) {', '.join(map(str, mine)) or 'none'}; the sweep's own process "
            f"ranks them in {terminal.text(run.path)}",
            highlight=False,
            soft_wrap=True,
        )
        return run
    return _finish(run, state, study, console, in_a_row, failed)


def _refit(run: runs.Run, state: dict, study: optuna.Study, best: dict, console: Console) -> dict:
    """`--final`: the best cross-validated trial refit and evaluated on test, recorded in sweep.json (a
    failure is the sweep's: `--resume` refits again)."""
    from dlrun.trials import sweep_kfold

    with runs.recorded(run, "sweep", f"dlrun sweep --resume {run.path}"):
        state["final_test"] = {"trial": best["number"], **sweep_kfold.refit(best["run"], console)}
    sweep_results.write(run, state, study)
    return state["final_test"]


def _score(result: dict, metric: str, direction: str) -> tuple[int, float] | None:
    """A finished trial's (epoch, value): a cross-validated trial's mean fold score at its recommended epoch
    count, or the best epoch of a trial's own history."""
    if "best" in result:
        return None if result["best"] is None else (result["best"]["epoch"], result["best"]["value"])
    return search_engine.objective(result["history"], metric, direction)


@contextlib.contextmanager
def _ask_lock(folder: Path) -> Iterator[None]:
    """Only one process at a time counts the study's trials and asks for one more: never more than `trials`."""
    handle = os.open(folder / ASK_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _held(folder: str | Path) -> bool:
    """Whether a live process holds the run folder's lock (it is training that trial now)."""
    try:
        handle = os.open(Path(folder) / runs.folder.LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(handle)


def _alive(frozen: optuna.trial.FrozenTrial) -> bool:
    """Whether a RUNNING trial is still being trained by some process (else it is left for `--resume`).

    A worker on this host counts while its process lives: between the end of a trial's run (its folder's
    lock released) and the worker telling the study, the trial is neither held nor finished."""
    worker = frozen.user_attrs.get("worker") or {}
    here = worker.get("host") == socket.gethostname() and worker.get("pid") != os.getpid()
    if here and runs.process_state({"host_name": worker["host"], "pid": worker.get("pid")}) == "alive":
        return True
    if frozen.user_attrs.get("run"):
        return _held(frozen.user_attrs["run"])
    if here:
        return False
    started = frozen.datetime_start or datetime.datetime.now()
    return (datetime.datetime.now() - started).total_seconds() < _QUIET_START_SECONDS


@contextlib.contextmanager
def _joined(run: runs.Run) -> Iterator[None]:
    """A joined worker's lifecycle: the sweep's run.json is its owner's; Ctrl-C or SIGTERM leaves this
    worker's trials running in the study, for the owner (or a later --resume) to continue."""
    from dlrun import signals

    try:
        with signals.terminate_as_interrupt():
            yield
    except KeyboardInterrupt:
        raise errors.Interrupted(
            f"interrupted; the trials this worker was training are continued by dlrun sweep --resume {run.path} once the sweep has stopped"
        ) from None


def _worker() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _wait_for_joined(study: optuna.Study, progress: trial_progress.TrialProgress) -> None:
    """Wait while joined workers (other processes or hosts) still train trials of the study."""
    import optuna

    said = None
    while True:
        running = [
            frozen.number for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)) if _alive(frozen)
        ]
        if not running:
            return
        if running != said:
            progress.say(f"waiting for trial(s) {', '.join(map(str, running))}, trained by joined workers")
            said = running
        time.sleep(_WAIT_SECONDS)


def _finish(run: runs.Run, state: dict, study: optuna.Study, console: Console, in_a_row: list[str], failed: list[str]) -> runs.Run:
    """Rank the trials, write sweep.json and the plots, print the table, and record how the sweep ended."""
    sweep_results.write(run, state, study)
    try:
        plots = sweep_results.plot(study, run.path, len(state["search"]["space"]))
    except Exception as error:  # a plot is a view of the results, never a reason to lose them
        plots = []
        console.print(
            f"[yellow]warning[/yellow]: the sweep's plots were not drawn ({type(error).__name__}: {terminal.text(str(error))})",
            highlight=False,
            soft_wrap=True,
        )
    console.print(sweep_results.table(state))
    ranked = sweep_results.rank(state)
    left = [trial["number"] for trial in state["trials"] if trial["status"] == "running"]
    counts = {status: sum(trial["status"] == status for trial in state["trials"]) for status in ("completed", "pruned", "failed")}
    summary = {
        "trials_completed": counts["completed"],
        "trials_pruned": counts["pruned"],
        "trials_failed": counts["failed"],
        "trials_repeated": sum("repeat_of" in trial for trial in state["trials"]),  # counted in completed or pruned too
        "metric": state["search"]["metric"],
        "plots": plots,
        "best_trial": {"number": ranked[0]["number"], "overrides": ranked[0]["overrides"], **ranked[0]["best"]} if ranked else None,
    }
    problem = None
    if len(in_a_row) >= state["max_failures"]:
        problem = f"stopped after {len(in_a_row)} trials failed in a row (--max-failures {state['max_failures']}): " + "; ".join(in_a_row)
    elif left:
        problem = f"trial(s) {', '.join(map(str, left))} were left running by a worker that stopped"
    if problem is not None:
        state["status"] = "failed"
        sweep_results.write(run, state, study)
        message = f"{problem}; continue with: dlrun sweep --resume {run.path}"
        run.finish("failed", error=message, **summary)
        raise errors.TrainingFailed(message)
    if state.get("final") and ranked:
        summary["final"] = _refit(run, state, study, ranked[0], console)
    if failed:
        console.print(
            f"[yellow]warning[/yellow]: {len(failed)} trial(s) failed ({terminal.text('; '.join(failed))})", highlight=False, soft_wrap=True
        )
    state["status"] = "completed"
    sweep_results.write(run, state, study)
    run.finish("completed", **summary)
    console.print(f"[green]completed[/green]: {terminal.text(run.path)}", highlight=False, soft_wrap=True)
    return run
