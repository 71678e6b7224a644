"""`dlrun sweep`: search a config's values with Optuna, train each trial, rank them; resume and join.

What is searched comes from the config's `search:` section (`dlrun.config.search`), or from the
shorthand flags: `--grid key=v1,v2` (choice values; the grid sampler when only grids are given) and
`--random N --range key=low:high[:log]` (N trials of the random sampler). `--trials`, `--sampler`,
`--pruner` and `--metric` override the section. Every value is checked against the schema before the
sweep folder exists.

The sweep folder (`<runs_root>/<timestamp>_<name>-sweep/`) holds `run.json` (kind `sweep`), the base
`config.yaml`, the study (`study.db`, see `dlrun.trials.search`), `sweep.json` and `plots/`
(`dlrun.trials.sweep_results`) and `trials/`, where each trial is a normal `dlrun train` run folder.
Trials are asked from the study as workers free up (`dlrun.trials.executors`) and trained by
`dlrun.trials.trial.run_trial`. `--resume SWEEP_DIR` keeps the finished trials, continues a trial that
was running when the sweep died from its run's last checkpoint, and asks new ones until there are
`trials` in all; `--join` adds a worker process (here or on another host) to a running sweep.
`--max-failures N` stops asking after N trials failed in a row.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import config as config_module, errors, runs, terminal
from dlrun.config import search as search_config, yaml_strict
from dlrun.trials import executors, search as search_engine, sweep_results, sweep_seeds, sweep_study

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema

FILE_NAME = sweep_results.FILE_NAME
FORMAT = sweep_results.FORMAT


@dataclasses.dataclass(frozen=True)
class Options:
    """The search options of the command line; each given one overrides the config's `search:` section."""

    grid: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    random: int | None = None
    trials: int | None = None
    sampler: str | None = None
    pruner: str | None = None
    metric: str | None = None
    storage: str | None = None
    max_failures: int = 3
    kfold: int | None = None  # K: cross-validated trials (overrides search.kfold)
    final: bool = False  # refit the best cross-validated trial on the whole training split, evaluate on test
    seeds: int | None = None  # N: each trial point trained N times (overrides search.seeds)


def parse_grid(items: list[str]) -> dict[str, list]:
    """`key=v1,v2,...` items as {key: [values]} (each value read as YAML)."""
    grid: dict[str, list] = {}
    for item in items:
        key, separator, raw = item.partition("=")
        key = key.strip()
        if not separator or not key or not raw.strip():
            raise errors.UsageError(f"--grid {item!r}: received no KEY=V1,V2,...; expected for example --grid train.batch_size=16,64")
        if key in grid:
            raise errors.UsageError(f"--grid {item!r}: received {key} a second time; expected each key once")
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
            raise errors.UsageError(f"--range {item!r}: received {raw!r}; {expected}")
        try:
            low, high = (yaml_strict.loads(part, source=f"--range {item!r}") for part in parts[:2])
        except errors.ConfigError:
            low = high = None
        if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in (low, high)):
            raise errors.UsageError(f"--range {item!r}: received {raw!r}; {expected}")
        log = len(parts) == 3
        if not low < high:
            raise errors.UsageError(f"--range {item!r}: received low {low} and high {high}; expected low < high")
        if log and low <= 0:
            raise errors.UsageError(f"--range {item!r}: received low {low} with log; expected low > 0")
        if key in ranges:
            raise errors.UsageError(f"--range {item!r}: received {key} a second time; expected each key once")
        ranges[key] = {"low": low, "high": high, "log": log}
    return ranges


def plan(base: schema.Config, options: Options) -> search_config.SearchConfig:
    """The resolved search: the config's `search:` section with the command line's options applied."""
    grid, ranges = parse_grid(list(options.grid)), parse_ranges(list(options.ranges))
    if ranges and options.random is None:
        raise errors.UsageError("--range: received ranges without --random N; expected --random N to draw from them")
    if options.random is not None and options.random < 1:
        raise errors.UsageError(f"--random: received {options.random}; expected a number of trials >= 1")
    if options.random is not None and not grid and not ranges:
        raise errors.UsageError("--random: received no --range or --grid; expected something to draw values from")
    overlap = sorted(set(grid) & set(ranges))
    if overlap:
        raise errors.UsageError(f"--range {overlap[0]}: received the key in --grid too; expected it in one of them")
    for option, value, allowed in (
        ("--sampler", options.sampler, search_config.SAMPLERS),
        ("--pruner", options.pruner, search_config.PRUNERS),
    ):
        if value is not None and value not in allowed:
            raise errors.UsageError(f"{option}: received {value!r}; expected one of {', '.join(allowed)}")
    if options.trials is not None and options.trials < 1:
        raise errors.UsageError(f"--trials: received {options.trials}; expected a number of trials >= 1")
    if options.kfold is not None and options.kfold < 2:
        raise errors.UsageError(f"--kfold: received {options.kfold}; expected a number of folds >= 2")
    if options.seeds is not None and options.seeds < 1:
        raise errors.UsageError(f"--seeds: received {options.seeds}; expected a number of seeds >= 1")
    section = base.search.model_dump(mode="json") if base.search is not None else {}
    if grid or ranges:
        space: dict[str, dict[str, Any]] = {key: {"choice": values} for key, values in grid.items()}
        for key, bounds in ranges.items():
            kind = "int" if all(isinstance(bound, int) for bound in (bounds["low"], bounds["high"])) else "float"
            space[key] = {kind: [bounds["low"], bounds["high"]], **({"log": True} if bounds["log"] else {})}
        section.update(space=space, sampler="random" if options.random is not None else "grid", trials=options.random)
    elif base.search is None:
        raise errors.UsageError(
            "--grid: received nothing; expected at least one --grid KEY=V1,V2 "
            "(or --random N with --range, or a search: section in the config)"
        )
    if options.metric is not None:
        section.update(metric=options.metric, direction="auto")
    section.update(
        {name: getattr(options, name) for name in ("trials", "sampler", "pruner", "kfold", "seeds") if getattr(options, name) is not None}
    )
    search = config_module.validate({**config_module.to_data(base), "search": section}).search
    if search is None:  # the section was given just above
        raise ValueError("Received a config without its search section; expected the one just given")
    option = "--metric" if options.metric is not None else "search.metric"
    _check_metric(search.metric, base, option, validating=True if search.kfold is not None else None)
    if search.kfold is not None and not search.metric.startswith("val_"):
        error = errors.UsageError if option.startswith("--") else errors.ConfigError
        raise error(
            f"{option}: received {search.metric!r} with K-fold trials; expected a validation metric (val_...), which every fold records"
        )
    sweep_seeds.check(search, flags=options.seeds is not None or options.kfold is not None)
    if options.final and search.kfold is None:
        raise errors.UsageError("--final: received without K-fold trials; expected --kfold K (or search.kfold) to refit the best one")
    return search


def _check_metric(metric: str, config: schema.Config, option: str, validating: bool | None = None) -> None:
    """The objective must be something every trial records (when the dataset's task is known); K-fold
    trials (`validating`) always have validation data: their folds."""
    task = getattr(config.data, "task", None)
    if task is None:
        return
    allowed = config_module.monitor_names(config, task, validating)
    if metric not in allowed:
        error = errors.UsageError if option.startswith("--") else errors.ConfigError  # a flag's value, or the config's
        raise error(f"{option}: received {metric!r}; expected one of {', '.join(allowed)}")


def _without_search(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "search"}


def sweep(
    config_file: str | Path,
    set_values: list[str],
    options: Options,
    console: Console,
    placement: executors.Placement,
    command: list[str] | None = None,
) -> runs.Run:
    """Plan, check and run a sweep (see the module docstring); return the sweep's run."""
    base = config_module.load(config_file, set_values)
    search = plan(base, options)
    base_data = _without_search(config_module.to_data(base))
    search_engine.check_space(base_data, search)  # every value is valid before the folder exists
    if options.max_failures < 1:
        raise errors.UsageError(f"--max-failures: received {options.max_failures}; expected a number of failed trials >= 1")
    if options.storage not in (None, "sqlite", "journal"):
        search_engine.open_storage(search_engine.storage_url(options.storage, Path(".")))  # reachable before the folder exists

    from dlrun import backend
    from dlrun.training import calibration

    # `backend: auto` resolved once, as dlrun train resolves it (calibrated for the base config's model), and
    # stored: every trial, worker and joined host trains on that backend, and the sweep's config.yaml says which.
    choice = calibration.choose(base, console)
    base_data["backend"] = choice.name
    run = runs.create(base.output.runs_root, f"{base.name}-sweep")  # marked interrupted by a Ctrl-C from here on
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config_module.validate({**base_data, "search": search.model_dump(mode="json")})))
    url = search_engine.storage_url(options.storage, run.path)
    study = search_engine.open_study(url, run.path.name, search, create=True)
    study.set_user_attr("sweep_dir", str(run.path.resolve()))
    total = search_engine.trial_count(search)
    state = {
        "format": sweep_results.FORMAT,
        "config": str(config_file),
        "set": list(set_values),
        "search": search.model_dump(mode="json"),
        "trials_total": total,
        "storage": url,
        "study": run.path.name,
        "max_failures": options.max_failures,
        "final": options.final,
        "status": "running",
        "trials": [],
    }
    sweep_results.write(run, state, study)
    run.start(command, base.seed, runs.versions(), extra={"kind": "sweep", "trials": total, "backend": choice.record()})
    console.print(
        f"run folder: [bold]{terminal.text(run.path)}[/bold]\nsweep: {total} trials of {config_file} "
        f"(sampler {search.sampler}, pruner {search.pruner}), ranked by {search.metric}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(backend.said(choice, base.backend), highlight=False, soft_wrap=True)  # every trial's backend
    if search.kfold is not None:  # the K-fold rule, said once
        from dlrun.trials import sweep_kfold

        for line in sweep_kfold.said(base, search.kfold, search.metric):
            console.print(f"note: {line}", highlight=False, soft_wrap=True)
    return sweep_study.drive(run, state, study, base_data, console, placement, owner=True)


def _load_state(folder: Path) -> dict:
    try:
        state = json.loads((folder / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise errors.RunError(f"{folder / FILE_NAME}: missing or unreadable; expected a folder made by `dlrun sweep`") from None
    if state.get("format") != sweep_results.FORMAT:
        raise errors.RunError(
            f"{folder / FILE_NAME}: received format {state.get('format')}; expected {sweep_results.FORMAT} "
            "(a sweep made by an older dlrun cannot be continued)"
        )
    return state


def resume(
    sweep_dir: str | Path,
    console: Console,
    placement: executors.Placement,
    command: list[str] | None = None,
    max_failures: int | None = None,
) -> runs.Run:
    """Continue an interrupted or failed sweep (see the module docstring)."""
    run = runs.Run.open_to_continue(sweep_dir)
    state = _load_state(run.path)
    if state.get("status") == "completed":
        raise errors.RunError(f"{run.path}: received a completed sweep; expected an interrupted or failed one")
    search = search_config.SearchConfig.model_validate(state["search"])
    study = search_engine.open_study(state["storage"], state["study"], search)
    state["max_failures"] = max_failures or state["max_failures"]
    base = config_module.load(run.path / runs.CONFIG_FILE)
    finished = sweep_results.trials(study)
    counts = {status: sum(trial["status"] == status for trial in finished) for status in ("completed", "pruned", "failed")}
    run.resume(command, epochs_completed=0)
    state["status"] = "running"
    extra = ", ".join(f"{count} {status}" for status, count in counts.items() if count and status != "completed")
    console.print(
        f"run folder: [bold]{terminal.text(run.path)}[/bold]; {counts['completed']} of {state['trials_total']} "
        f"trials already completed{f' ({extra})' if extra else ''}",
        highlight=False,
        soft_wrap=True,
    )
    return sweep_study.drive(run, state, study, _without_search(config_module.to_data(base)), console, placement, owner=True, resuming=True)


def join(target: str, console: Console, placement: executors.Placement) -> runs.Run:
    """Add this process's workers to a running sweep (its folder, or its storage URL when it holds one study)."""
    if "://" in str(target):
        names = search_engine.study_names(str(target))
        if len(names) != 1:
            raise errors.RunError(
                f"--join: {target} holds {len(names)} studies ({', '.join(names) or 'none'}); expected one (or join by the sweep folder)"
            )
        import optuna

        study = optuna.load_study(study_name=names[0], storage=search_engine.open_storage(str(target)))
        folder = Path(study.user_attrs.get("sweep_dir", ""))
    else:
        folder = Path(target)
    run = runs.Run.open(folder)
    state = _load_state(run.path)
    if run.record.get("status") != "running":
        raise errors.RunError(
            f"--join: {run.path} is {run.record.get('status')}; expected a running sweep "
            f"(continue a stopped one with: dlrun sweep --resume {run.path})"
        )
    search = search_config.SearchConfig.model_validate(state["search"])
    study = search_engine.open_study(state["storage"], state["study"], search)
    base = config_module.load(run.path / runs.CONFIG_FILE)
    console.print(
        f"joined the sweep {terminal.text(run.path)} ({len(study.get_trials(deepcopy=False))} of "
        f"{state['trials_total']} trials asked so far)",
        highlight=False,
        soft_wrap=True,
    )
    return sweep_study.drive(run, state, study, _without_search(config_module.to_data(base)), console, placement, owner=False)
