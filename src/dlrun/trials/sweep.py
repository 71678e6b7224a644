"""`dlrun sweep`: train one config many times with different values, and rank the trials.

`--grid key=v1,v2` (every combination of the grids) or `--random N` (N seeded draws: each `--range
key=low:high[:log]` sampled, each `--grid` key picked at random). Keys are `--set` paths, values YAML.
Every trial is checked against the schema before anything trains.

The sweep folder (`<runs_root>/<timestamp>_<name>-sweep/`) holds `run.json` (kind `sweep`), the base
`config.yaml`, `sweep.json` (the trials, their overrides, status, child run and best metric, and the
ranking) and `trials/`, where each trial is a normal `dlrun train` run folder. Trials run on the
executors K-fold uses (`dlrun.trials.executors`); `--resume SWEEP_DIR` keeps the completed trials, continues
a trial that stopped part-way from its run's last checkpoint, and starts the others.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

from dlrun import config as config_module, errors, runs, terminal
from dlrun.config import overrides, yaml_strict
from dlrun.runs import history
from dlrun.trials import executors, outcomes

FILE_NAME = "sweep.json"
FORMAT = 2  # sweep.json's layout; 2: trials record their run folder when they start, and continue it on --resume
TRIALS_FOLDER = "trials"


def parse_grid(items: list[str]) -> dict[str, list]:
    """`key=v1,v2,...` items as {key: [values]} (each value read as YAML)."""
    grid: dict[str, list] = {}
    for item in items:
        key, separator, raw = item.partition("=")
        key = key.strip()
        if not separator or not key or not raw.strip():
            raise errors.ConfigError(f"--grid {item!r}: received no KEY=V1,V2,...; expected for example --grid train.batch_size=16,64")
        if key in grid:
            raise errors.ConfigError(f"--grid {item!r}: received {key} a second time; expected each key once")
        try:
            values = yaml_strict.loads(f"[{raw}]", source=f"--grid {item!r}")
        except errors.ConfigError as error:
            raise errors.ConfigError(error.problems, source=f"--grid {item!r}") from None
        grid[key] = values
    return grid


def parse_ranges(items: list[str]) -> dict[str, dict]:
    """`key=low:high[:log]` items as {key: {"low", "high", "log"}}; integers on both ends draw integers."""
    ranges: dict[str, dict] = {}
    for item in items:
        key, separator, raw = item.partition("=")
        key, parts = key.strip(), raw.split(":")
        expected = "expected KEY=LOW:HIGH or KEY=LOW:HIGH:log, for example --range compile.optimizer.learning_rate=1e-5:1e-2:log"
        if not separator or not key or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise errors.ConfigError(f"--range {item!r}: received {raw!r}; {expected}")
        try:
            low, high = (yaml_strict.loads(part, source=f"--range {item!r}") for part in parts[:2])
        except errors.ConfigError:
            low = high = None
        if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in (low, high)):
            raise errors.ConfigError(f"--range {item!r}: received {raw!r}; {expected}")
        log = len(parts) == 3
        if not low < high:
            raise errors.ConfigError(f"--range {item!r}: received low {low} and high {high}; expected low < high")
        if log and low <= 0:
            raise errors.ConfigError(f"--range {item!r}: received low {low} with log; expected low > 0")
        if key in ranges:
            raise errors.ConfigError(f"--range {item!r}: received {key} a second time; expected each key once")
        ranges[key] = {"low": low, "high": high, "log": log}
    return ranges


def plan_trials(grid: dict, ranges: dict, random: int | None, seed: int) -> list[dict]:
    """Each trial's overrides ({key: value}): the grid's product, or `random` seeded draws."""
    import numpy as np

    if random is None:
        if ranges:
            raise errors.ConfigError("--range: received ranges without --random N; expected --random N to draw from them")
        if not grid:
            raise errors.ConfigError("--grid: received nothing; expected at least one --grid KEY=V1,V2 (or --random N with --range)")
        keys = list(grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]
    if random < 1:
        raise errors.ConfigError(f"--random: received {random}; expected a number of trials >= 1")
    if not grid and not ranges:
        raise errors.ConfigError("--random: received no --range or --grid; expected something to draw values from")
    overlap = sorted(set(grid) & set(ranges))
    if overlap:
        raise errors.ConfigError(f"--range {overlap[0]}: received the key in --grid too; expected it in one of them")
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(random):
        trial = {key: values[int(rng.integers(len(values)))] for key, values in grid.items()}
        for key, bounds in ranges.items():
            trial[key] = _draw(rng, **bounds)
        trials.append(trial)
    return trials


def _draw(rng, low, high, log: bool):
    if log:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    if isinstance(low, int) and isinstance(high, int):
        return min(high, max(low, int(round(value))))
    return float(f"{value:.4g}")  # readable in tables and folder listings


def set_items(trial: dict) -> list[str]:
    """A trial's overrides as `--set` items."""
    return [f"{key}={json.dumps(value)}" for key, value in trial.items()]


def trial_configs(base: dict, trials: list[dict], name: str, trials_root: Path) -> list[dict]:
    """Every trial's resolved config as plain data; a bad key or value raises ConfigError before anything trains."""
    resolved = []
    for index, trial in enumerate(trials, start=1):
        items = set_items(trial)
        source = f"trial {index} ({', '.join(items)})"
        data = overrides.apply(base, items)
        data["name"] = f"{name}-t{index:02d}"
        data.setdefault("output", {})["runs_root"] = str(trials_root)
        resolved.append(config_module.to_data(config_module.validate(data, source=source)))
    return resolved


def check_metric(metric: str, config) -> None:
    """The ranking metric must be something every trial records (when the dataset's task is known)."""
    task = getattr(config.data, "task", None)
    if task is None:
        return
    allowed = config_module.monitor_names(config, task)
    if metric not in allowed:
        raise errors.ConfigError(f"--metric: received {metric!r}; expected one of {', '.join(allowed)}")


def sweep(config_file, set_values: list[str], grid: list[str], ranges: list[str], random: int | None, metric: str,
          console, placement: executors.Placement, command: list[str] | None = None) -> runs.Run:
    """Plan, check and run a sweep (see the module docstring); return the sweep's run."""
    base = config_module.load(config_file, set_values)
    check_metric(metric, base)
    parsed_grid, parsed_ranges = parse_grid(grid), parse_ranges(ranges)
    trials = plan_trials(parsed_grid, parsed_ranges, random, base.seed)
    base_data = config_module.to_data(base)
    placeholder = Path(base.output.runs_root) / "sweep" / TRIALS_FOLDER
    trial_configs(base_data, trials, base.name, placeholder)  # every trial is valid before the folder exists

    run = runs.create(base.output.runs_root, f"{base.name}-sweep")  # marked interrupted by a Ctrl-C from here on
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(base))
    state = {
        "format": FORMAT,
        "config": str(config_file),
        "set": list(set_values),
        "grid": parsed_grid,
        "ranges": parsed_ranges,
        "random": random,
        "seed": base.seed,
        "metric": metric,
        "direction": "min" if history.lower_is_better(metric) else "max",
        "trials": [{"index": index, "overrides": trial, "status": "pending"} for index, trial in enumerate(trials, start=1)],
    }
    run.write_json(FILE_NAME, state)
    run.start(command, base.seed, runs.versions(), extra={"kind": "sweep", "trials": len(trials)})
    console.print(f"run folder: [bold]{terminal.text(run.path)}[/bold]\nsweep: {len(trials)} trials of {config_file}, ranked by {metric}",
                  highlight=False, soft_wrap=True)
    return _execute(run, state, base_data, base.name, console, placement)


def resume(sweep_dir, console, placement: executors.Placement, command: list[str] | None = None) -> runs.Run:
    """Continue an interrupted or failed sweep: only the trials not completed are trained (in new child runs)."""
    run = runs.Run.open_to_continue(sweep_dir)
    try:
        state = json.loads((run.path / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise errors.RunError(f"{run.path / FILE_NAME}: missing or unreadable; expected a folder made by `dlrun sweep`") from None
    if state.get("status") == "completed":
        raise errors.RunError(f"{run.path}: received a completed sweep; expected an interrupted or failed one")
    base = config_module.load(run.path / runs.CONFIG_FILE)
    done = sum(trial["status"] == "completed" for trial in state["trials"])
    run.resume(command, epochs_completed=0)
    console.print(f"run folder: [bold]{terminal.text(run.path)}[/bold]; {done} of {len(state['trials'])} trials already completed",
                  highlight=False, soft_wrap=True)
    return _execute(run, state, config_module.to_data(base), base.name, console, placement)


def run_trial(payload: dict, emit) -> dict:
    """One trial, here or in a worker: a `dlrun train` run of the trial's config, its epochs sent through `emit`.

    A trial whose run folder exists already (`payload["run"]`, a sweep continued with --resume)
    continues from that run's last checkpoint, as `dlrun train --resume` does; a completed one is kept.
    """
    from rich import console as rich_console

    from dlrun import backend

    config = config_module.validate(payload["config"])
    backend.activate(config)  # quietly, on the trial's backend, before the trainer imports Keras
    from dlrun.training import checkpoints, trainer

    quiet = rich_console.Console(file=io.StringIO(), width=120)  # the child run folder records everything
    previous = runs.Run.open_to_continue(payload["run"]) if payload.get("run") else None
    if previous is not None and not checkpoints.exists(previous.path):
        previous = None  # stopped before its first checkpoint: a new run
    try:
        child = trainer.train(
            config, quiet, command=payload["command"], resume_run=previous,
            on_start=lambda run: emit({"type": "started", "run": str(run.path),
                                       "after_epoch": run.record.get("epochs_completed") if previous else None}),
            on_epoch=lambda epoch, logs: emit({"type": "epoch", "epoch": epoch, "logs": logs}),
        )
    except errors.Interrupted:
        raise KeyboardInterrupt from None
    return {"run": str(child.path), "history": history.load(child.path / history.FILE_NAME)}


def rank(state: dict) -> list[dict]:
    """The completed trials, best first by `state['metric']` (its best value over each trial's epochs)."""
    scored = [trial for trial in state["trials"] if trial["status"] == "completed" and trial.get("best")]
    return sorted(scored, key=lambda trial: trial["best"]["value"], reverse=state["direction"] == "max")


def table(state: dict):
    """A Rich table of the trials, ranked (failed and unfinished trials last)."""
    from rich import table as rich_table

    metric = state["metric"]
    result = rich_table.Table(title=f"sweep ranked by {metric} ({'lower' if state['direction'] == 'min' else 'higher'} is better)")
    keys = list(state["trials"][0]["overrides"])
    short = [key.rsplit(".", 1)[-1] for key in keys]
    headers = short if len(set(short)) == len(short) else keys  # the last part of each key, when that is unambiguous
    for column in ("rank", "trial", *headers, f"best {metric}", "epoch", "status"):
        result.add_column(column, justify="left" if column == "status" else "right")
    ranked = rank(state)
    others = [trial for trial in state["trials"] if trial not in ranked]
    for position, trial in enumerate([*ranked, *others], start=1):
        best = trial.get("best") or {}
        result.add_row(
            str(position) if trial in ranked else "-",
            str(trial["index"]),
            *(terminal.text(json.dumps(value)) for value in trial["overrides"].values()),
            f"{best['value']:.4f}" if best else "-",
            str(best.get("epoch", "-")),
            terminal.text(trial["status"]),
        )
    return result


def _execute(run, state, base_data: dict, name: str, console, placement: executors.Placement) -> runs.Run:
    from dlrun.trials import progress as trial_progress

    trials_root = run.path / TRIALS_FOLDER
    configs = trial_configs(base_data, [trial["overrides"] for trial in state["trials"]], name, trials_root)
    todo = [trial for trial in state["trials"] if trial["status"] != "completed"]
    by_index = {trial["index"]: trial for trial in state["trials"]}
    state["executor"] = placement.record()
    tasks = [(trial["index"], {"config": configs[trial["index"] - 1], "run": trial.get("run"),
                                "command": ["dlrun", "train", f"(sweep {run.path.name}, trial {trial['index']})",
                                            *(f"--set={item}" for item in set_items(trial["overrides"]))]})
             for trial in todo]
    metric, failed = state["metric"], []

    def on_event(index, event):
        trial = by_index[index]
        label = f"trial {index}/{len(state['trials'])}"
        if event["type"] == "started":
            trial.update(run=event["run"])  # so --resume continues this run folder, not a new one
            run.write_json(FILE_NAME, state)
            if event["after_epoch"] is not None:
                progress.say(f"resuming trial {index} after epoch {event['after_epoch']} ({event['run']})")
        elif event["type"] == "epoch":
            value = event["logs"].get(metric)
            epochs = configs[index - 1]["train"]["epochs"]
            progress.epoch(index, label, event["epoch"], epochs, f"{metric} {value:.4f}" if value is not None else "")
            run.heartbeat(at_most_every=1.0, trial=index)
        elif event["type"] == "done":
            found = history.best_epoch(event["result"]["history"], metric)
            trial.update(status="completed", run=event["result"]["run"],
                         best={"epoch": found[0], "value": found[1]} if found else None)
            trial.pop("error", None)
            run.write_json(FILE_NAME, state)
            shown = f"best {metric} {found[1]:.4f} at epoch {found[0]}" if found else f"no {metric} recorded"
            progress.finish(index, f"{label} ({', '.join(set_items(trial['overrides']))}): {shown}")
        elif event["type"] == "failed":
            trial.update(status="failed", error=event["error"])
            run.write_json(FILE_NAME, state)
            failed.append(f"trial {index}: {event['error']}")
            progress.finish(index, f"[red]{label} failed[/red]: {event['error']}")

    def stopped() -> tuple[str, dict]:
        done = outcomes.mark_interrupted(run, FILE_NAME, state, "trials")
        return f"after {done} of {len(state['trials'])} trial(s)", {"trials_completed": done}

    with runs.recorded(run, "sweep", f"dlrun sweep --resume {run.path}", stopped):
        with trial_progress.TrialProgress(console) as progress:
            executors.run(tasks, run_trial, on_event, placement)
    state["ranking"] = [trial["index"] for trial in rank(state)]
    state["status"] = "failed" if failed else "completed"
    run.write_json(FILE_NAME, state)
    console.print(table(state))
    best = rank(state)[:1]
    summary = {"trials_completed": len(state["ranking"]), "metric": metric,
               "best_trial": {"index": best[0]["index"], "overrides": best[0]["overrides"], **best[0]["best"]} if best else None}
    if failed:
        message = f"{len(failed)} of {len(todo)} trial(s) failed ({'; '.join(failed)}); continue with: dlrun sweep --resume {run.path}"
        run.finish("failed", error=message, **summary)
        raise errors.TrainingFailed(message)
    run.finish("completed", **summary)
    console.print(f"[green]completed[/green]: {terminal.text(run.path)}", highlight=False, soft_wrap=True)
    return run
