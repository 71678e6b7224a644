"""What a sweep leaves for people: `sweep.json` (every trial, from the study), the ranked table, and plots.

Each trial in `sweep.json` has its Optuna `number`, its `overrides` (the config values tried), `status`
(`running`, `completed`, `pruned` or `failed`), its child `run` folder, `best` ({epoch, value} of the
metric over its epochs; a cross-validated trial's: {the recommended epoch count, the mean over its
folds of each fold's best value}), `epochs` trained, and for a pruned trial `pruned` ({epoch, reason};
a cross-validated one: {fold, reason}), for a failed one `error`. A trial that drew the values of a
finished one (`search.repeats: reuse`) has `repeat_of` (that trial's number), its `status`, `best` and
`pruned`, and `epochs` 0: it trained nothing; the ranking and the table's ranks hold it once, as that trial.
With `--final`, `final` holds the best trial's refit: its test metrics next to the baseline's. The study is
the record; `sweep.json` is rewritten from it, atomically.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import atomic, terminal
from dlrun.runs import table as runs_table

if TYPE_CHECKING:
    import optuna
    from rich.table import Table

    from dlrun import runs

FILE_NAME = "sweep.json"
FORMAT = 3  # sweep.json's layout; 3: trials are an Optuna study's, numbered as Optuna numbers them
PLOTS_FOLDER = "plots"
_STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def trials(study: optuna.Study) -> list[dict]:
    """The study's trials as `sweep.json` lists them (see the module docstring)."""
    found = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number):
        attrs = trial.user_attrs
        entry = {
            "number": trial.number,
            "overrides": attrs.get("overrides", trial.params),
            "status": _STATES.get(trial.state.name, trial.state.name.lower()),
        }
        for key in ("repeat_of", "run", "best", "spread", "epochs", "pruned", "error"):
            if attrs.get(key) is not None:
                entry[key] = attrs[key]
        found.append(entry)
    return found


def write(run: runs.Run, state: dict, study: optuna.Study) -> None:
    """Rewrite `sweep.json` in the sweep folder `run` with `state` and the study's trials."""
    state["trials"] = trials(study)
    state["ranking"] = [trial["number"] for trial in rank(state)]
    run.write_json(FILE_NAME, state)


def rank(state: dict) -> list[dict]:
    """The completed trials, best first (a pruned or failed trial is never the best; a repeat is ranked once,
    as the trial it repeats)."""
    scored = [trial for trial in state["trials"] if trial["status"] == "completed" and trial.get("best") and "repeat_of" not in trial]
    return sorted(scored, key=lambda trial: trial["best"]["value"], reverse=state["search"]["direction"] == "maximize")


def table(state: dict) -> Table:
    """A Rich table of the trials: the completed ones ranked best first, then pruned, failed and unfinished ones."""
    from rich import table as rich_table

    metric, direction = state["search"]["metric"], state["search"]["direction"]
    result = rich_table.Table(title=f"sweep ranked by {metric} ({'lower' if direction == 'minimize' else 'higher'} is better)")
    keys = list(state["search"]["space"])
    short = [key.rsplit(".", 1)[-1] for key in keys]
    headers = short if len(set(short)) == len(short) else keys  # the last part of each key, when that is unambiguous
    scored = (f"best {metric}", "epoch")
    if state["search"].get("kfold"):
        scored = (f"mean best {metric}", "recommended epochs")
    elif state["search"].get("seeds", 1) > 1:
        scored = (f"best {metric} over {state['search']['seeds']} seeds", "epoch")
    for column in ("rank", "trial", *headers, *scored, "status"):
        result.add_column(column, justify="left" if column == "status" else "right")
    ranked = rank(state)
    others = [trial for trial in state["trials"] if trial not in ranked]
    for position, trial in enumerate([*ranked, *others], start=1):
        best = trial.get("best") or {}
        result.add_row(
            str(position) if trial in ranked else "-",
            str(trial["number"]),
            *(terminal.text(value_text(trial["overrides"].get(key))) for key in keys),
            _spread_value(trial, metric) or (f"{best['value']:.4f}" if best else "-"),
            str(best["epoch"]) if best.get("epoch") is not None else "-",
            terminal.text(describe(trial)),
        )
    return result


def _spread_value(trial: dict, metric: str) -> str | None:
    """A trial over seeds: `0.4100 +- 0.0200 (n=2)`, the mean and std of the metric's best value over its seeds."""
    found = ((trial.get("spread") or {}).get("validation") or {}).get(metric)
    return None if found is None else runs_table.spread_text(found)


def value_text(value: Any) -> str:
    """A config value as the table shows it: floats to 4 significant digits, the rest as JSON."""
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def describe(trial: dict) -> str:
    """`completed`, `pruned at epoch 3`, `failed at epoch 2`, `running`, `repeat of trial 4` (`repeat of trial 4,
    pruned at epoch 2`)."""
    if "repeat_of" in trial:
        pruned = f", pruned {'at' if 'epoch' in trial['pruned'] else 'after'} {pruned_at(trial['pruned'])}" if trial.get("pruned") else ""
        return f"repeat of trial {trial['repeat_of']}{pruned if trial['status'] == 'pruned' else ''}"
    if trial["status"] == "pruned" and trial.get("pruned"):
        return f"pruned {'at' if 'epoch' in trial['pruned'] else 'after'} {pruned_at(trial['pruned'])}"
    if trial["status"] == "failed" and trial.get("run"):  # it trained: where it stopped (a NaN's epoch)
        return f"failed at epoch {trial.get('epochs', 0) + 1}"
    return trial["status"]


def pruned_at(pruned: dict) -> str:
    """`epoch 3`; `fold 2` or `seed 2` for a trial pruned between its folds or seeds."""
    step = next((key for key in ("fold", "seed") if key in pruned), "epoch")
    return f"{step} {pruned[step]}"


def plot(study: optuna.Study, folder: Path, parameters: int) -> list[str]:
    """Optuna's matplotlib plots of the study as PNGs in `folder/plots` (each written atomically); returns
    the names written. Parameter importances need 2+ parameters and 3+ completed trials."""
    import optuna
    from matplotlib import pyplot

    completed = [trial for trial in study.get_trials(deepcopy=False) if trial.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return []
    plots: dict[str, Callable[..., Any]] = {
        "optimization_history": optuna.visualization.matplotlib.plot_optimization_history,
        "parallel_coordinate": optuna.visualization.matplotlib.plot_parallel_coordinate,
        "intermediate_values": optuna.visualization.matplotlib.plot_intermediate_values,
    }
    if parameters >= 2 and len(completed) >= 3:
        plots["param_importances"] = optuna.visualization.matplotlib.plot_param_importances
    written = []
    (folder / PLOTS_FOLDER).mkdir(exist_ok=True)
    for name, draw in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = draw(study)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        atomic.write_with(folder / PLOTS_FOLDER / f"{name}.png", lambda path: figure.savefig(path, format="png", dpi=100))
        pyplot.close(figure)
        written.append(f"{name}.png")
    return written
