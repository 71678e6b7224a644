"""The table of runs under a folder (`dlrun runs`): read from run.json, history.json and metrics.json only.

Pure Python and Rich: listing runs never imports TensorFlow.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import errors, runs, terminal
from dlrun.runs import history, tensorboard as tensorboard_logs

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

STALE_EPOCHS = 5  # a running run whose heartbeat is older than this many epochs' time has crashed...
STALE_FLOOR_S = 600  # ...but never sooner than this (saving, evaluating and the first epoch take time)
STALE_UNKNOWN_S = 3600  # the limit when no epoch has finished yet, so the epoch time is unknown
STATUSES = (*runs.STATUSES, "crashed", "damaged")  # damaged: a run file of the wrong shape
# The keys of a row (and of each object `dlrun runs --json` prints), documented in docs/cli-output.md.
KEYS = (
    "run",
    "path",
    "name",
    "kind",
    "status",
    "started_at",
    "duration_s",
    "epochs",
    "best",
    "test",
    "baseline",
    "tensorboard",
    "problem",
    "spread",
)
_BASELINES = {
    "accuracy": ("majority_class_accuracy", "majority"),
    "mae": ("mean_predictor_mae", "mean"),
    "mse": ("mean_predictor_mse", "mean"),
}


def parse_time(text: str | None) -> datetime.datetime | None:
    """A run.json timestamp (`2026-01-02T03:04:05Z`) as an aware datetime, or None."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def effective_status(record: dict, now: datetime.datetime) -> str:
    """The recorded status, except that a `running` run whose heartbeat stopped long ago is `crashed`."""
    status = record.get("status", "unknown")
    if status != "running":
        return status
    process = runs.process_state(record)
    if process != "unknown":  # started on this host: its pid says whether it still runs
        return "running" if process == "alive" else "crashed"
    started, heartbeat = parse_time(record.get("started_at")), parse_time(record.get("heartbeat_at"))
    if heartbeat is None:
        return status
    epochs = record.get("epochs_completed") or 0
    if epochs and started is not None:
        epoch_seconds = (heartbeat - started).total_seconds() / epochs
        limit = max(STALE_FLOOR_S, STALE_EPOCHS * epoch_seconds)
    else:
        limit = STALE_UNKNOWN_S
    return "crashed" if (now - heartbeat).total_seconds() > limit else status


def summarize(path: Path, now: datetime.datetime) -> dict:
    """One row of the table for the run folder at `path`: the keys of `KEYS` (see docs/cli-output.md)."""
    record = runs.Run.open(path).record
    started = parse_time(record.get("started_at"))
    status = effective_status(record, now)
    duration = record.get("duration_s")
    if duration is None and status == "running" and started is not None:
        duration = (now - started).total_seconds()
    run_history = history.load_if_present(path / history.FILE_NAME)
    metrics_payload = read_object(path / "metrics.json") or {}
    metric = primary_metric(record, run_history)
    spread = (read_object(path / "seeds.json") or {}).get("aggregate") if record.get("kind") == "seeds" else None
    best = history.best_epoch(run_history, f"val_{metric}") if metric else None
    test = metrics_payload.get("metrics", {}).get(metric) if metric else None
    row = {
        "run": path.name,
        "path": str(path),
        "name": record.get("name", ""),
        "kind": record.get("kind", "train"),
        "status": status,
        "started_at": record.get("started_at", ""),
        "duration_s": duration,
        "epochs": len(run_history.get("epoch", [])) or record.get("epochs_completed"),
        "best": {"monitor": f"val_{metric}", "epoch": best[0], "value": best[1]} if best else None,
        "test": {"metric": metric, "value": test} if test is not None else None,
        "baseline": baseline_for(metric, metrics_payload.get("baseline", {})),
        "tensorboard": tensorboard_logs.command(path),
        "problem": None,
    }
    if spread and metric:  # a seeds group: mean +- std over its runs, not one run's numbers
        row["spread"] = {**spread, "metric": metric}  # seeds.json's aggregate: {"validation"|"test": {name: spread}}
    if row["kind"] == "kfold":
        _kfold_best(path, row)
    elif row["kind"] == "sweep":
        _sweep_best(path, record, row, now)
    return row


def _kfold_best(path: Path, row: dict) -> None:
    """A K-fold run's best: where the mean validation curve of its monitor was best, over how many folds."""
    state = read_object(path / "kfold.json") or {}
    found = state.get("mean_best")
    if isinstance(found, dict) and state.get("monitor"):
        done = [fold for fold in state.get("folds", []) if isinstance(fold, dict) and fold.get("status") == "completed"]
        row["best"] = {"monitor": state["monitor"], "epoch": found.get("epoch"), "value": found.get("value"), "mean_of_folds": len(done)}


def _sweep_best(path: Path, record: dict, row: dict, now: datetime.datetime) -> None:
    """A sweep's best trial (run.json's `best_trial`, or the best finished so far in sweep.json); its epochs,
    test score and baseline come from the trial's own run folder (a trial over seeds: its spread too). Trials are numbered by `number` (Optuna's,
    sweep.json format 3) or `index` (earlier formats)."""
    state = read_object(path / "sweep.json") or {}
    search = state["search"] if isinstance(state.get("search"), dict) else {}
    metric = record.get("metric") or state.get("metric") or search.get("metric")
    trials = [trial for trial in state.get("trials", []) if isinstance(trial, dict)]
    best = record.get("best_trial")
    if not isinstance(best, dict):
        finished = [trial for trial in trials if trial.get("status") == "completed" and isinstance(trial.get("best"), dict)]
        if not finished or not metric:
            row.update(best=None, test=None, baseline=None, epochs=None)
            return
        direction = state.get("direction") or search.get("direction")
        higher = direction in ("max", "maximize") if direction else not history.lower_is_better(metric)
        chosen = (max if higher else min)(finished, key=lambda trial: trial["best"]["value"])
        best = {"number": _trial_number(chosen), **chosen["best"]}
    row["best"] = {"monitor": metric, "epoch": best.get("epoch"), "value": best.get("value"), "trial": _trial_number(best)}
    row.update(test=None, baseline=None, epochs=None)
    folder = next((trial.get("run") for trial in trials if _trial_number(trial) == _trial_number(best)), None)
    if folder:
        trial_path = Path(folder) if Path(folder).is_dir() else path / "trials" / Path(folder).name  # a sweep folder that moved
        try:
            trial_row = summarize(trial_path, now)
        except (errors.RunError, AttributeError, TypeError, ValueError, KeyError):  # the trial's folder is gone or damaged
            return
        row.update(test=trial_row["test"], baseline=trial_row["baseline"], epochs=trial_row["epochs"])
        if trial_row.get("spread"):  # a sweep over seeds: its best point's mean +- std over them, not one seed's numbers
            row["spread"] = trial_row["spread"]


def _trial_number(trial: dict) -> int | None:
    return trial.get("number", trial.get("index"))


def primary_metric(record: dict, run_history: dict) -> str | None:
    """The metric a run is judged by: its first configured metric, else its loss."""
    configured = record.get("metrics") or [name for name in history.metric_names(run_history) if name != "loss"]
    if configured:
        return configured[0]
    return "loss" if "loss" in run_history or record.get("status") else None


def baseline_for(metric: str | None, reference: dict) -> dict | None:
    """`{"name", "label", "value"}` of the naive baseline that matches `metric`, when the run recorded it."""
    key, label = _BASELINES.get(metric or "") or (None, None)
    if key in reference:
        return {"name": key, "label": label, "value": reference[key]}
    return None


def collect(root: str | Path, now: datetime.datetime | None = None) -> list[dict]:
    """A row for every run folder directly under `root`, newest first."""
    root = Path(root)
    if not root.is_dir():
        raise errors.RunError(f"{root}: no such folder; expected a folder of runs (output.runs_root)")
    now = now or runs.utc_now()
    rows = []
    for path in root.iterdir():
        if path.is_dir() and (path / runs.RUN_FILE).is_file():
            try:
                rows.append(summarize(path, now))
            except (errors.RunError, AttributeError, TypeError, ValueError, KeyError) as error:  # one bad folder hides no other
                problem = str(error) if isinstance(error, errors.RunError) else f"{path}: {type(error).__name__}: {error}"
                rows.append(
                    {
                        **dict.fromkeys(KEYS),
                        "run": path.name,
                        "path": str(path),
                        "name": "",
                        "kind": "",
                        "started_at": "",
                        "status": "damaged",
                        "problem": problem,
                    }
                )
    return sorted(rows, key=lambda row: (str(row["started_at"]), row["run"]), reverse=True)


def check_status(status: str | None) -> None:
    """A UsageError unless `status` (the --status filter) is one a run can have."""
    if status is not None and status not in STATUSES:
        raise errors.UsageError(f"--status: received {status!r}; expected one of {', '.join(STATUSES)}")


def select(rows: list[dict], name: str | None = None, status: str | None = None) -> list[dict]:
    """Rows whose name contains `name` (or matches it as a glob) and whose status is `status`."""
    check_status(status)
    if name is not None:
        glob = any(character in name for character in "*?[")
        rows = [row for row in rows if (fnmatch.fnmatchcase(row["name"], name) if glob else name in row["name"])]
    if status is not None:
        rows = [row for row in rows if row["status"] == status]
    return rows


def cells(row: dict) -> dict[str, str]:
    """The row's cells as plain text, by column header (the terminal table and the HTML report share them)."""
    best, test, baseline = row.get("best"), row.get("test"), row.get("baseline")
    best_text = ""
    if best and best.get("value") is not None:
        best_text = f"{best['monitor']} {best['value']:.4g} at {best['epoch']}"
        if best.get("trial") is not None:
            best_text += f" (trial {best['trial']})"
        elif best.get("mean_of_folds"):
            best_text += f" (mean of {best['mean_of_folds']} folds)"
    spread = row.get("spread")
    if spread:  # a seeds group: its runs' mean +- std of the primary metric
        metric = spread["metric"]
        validation, test_spread = (spread.get("validation") or {}).get(f"val_{metric}"), (spread.get("test") or {}).get(metric)
        best_text = f"val_{metric} {spread_text(validation)}" if validation else ""
        if validation and best and best.get("trial") is not None:  # a sweep over seeds: its best trial's spread
            best_text += f" (trial {best['trial']})"
    return {
        "run": str(row["run"]),
        "status": str(row["status"]),
        "started": str(row.get("started_at") or "").replace("T", " ")[:16],
        "duration": format_duration(row.get("duration_s")),
        "epochs": "" if row.get("epochs") is None else str(row["epochs"]),
        "best validation": best_text,
        "test": (f"{metric} {spread_text(test_spread)}" if test_spread else "")
        if spread
        else f"{test['metric']} {test['value']:.4g}"
        if test
        else "",
        "baseline": f"{baseline['label']} {baseline['value']:.4g}" if baseline else "",
    }


# Every column in the order shown; a narrow table keeps the first of PRIORITY that fit its width (--wide: all).
COLUMNS = ("run", "status", "started", "duration", "epochs", "best validation", "test", "baseline")
PRIORITY = ("run", "status", "test", "best validation", "epochs", "duration", "baseline", "started")


def table(rows: list[dict], width: int | None = None) -> Table:
    """The Rich table of `rows`: one line per run; with `width`, only the columns that fit in it."""
    from rich import table as rich_table

    styles = {
        "completed": "green",
        "failed": "red",
        "crashed": "red",
        "interrupted": "yellow",
        "running": "cyan",
        "damaged": "red",
        "pruned": "magenta",
    }
    texts = [cells(row) for row in rows]
    shown = list(COLUMNS)
    if width is not None:

        def needed(columns: list[str]) -> int:  # each column as wide as its widest cell, two spaces between columns
            return sum(max(len(column), *(len(text[column]) for text in texts)) for column in columns) + 2 * (len(columns) - 1)

        kept = list(PRIORITY[:2])
        for column in PRIORITY[2:]:
            if needed([*kept, column]) <= width:
                kept.append(column)
        shown = [column for column in COLUMNS if column in kept]
    # No borders (like `docker ps`): two spaces between columns, which `needed` counts, and a pipe gets plain text.
    view = rich_table.Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for column in shown:
        view.add_column(column, no_wrap=True, overflow="ellipsis")
    for row, text in zip(rows, texts):
        values = {column: terminal.text(value) for column, value in text.items()}
        values["status"] = f"[{styles.get(row['status'], 'default')}]{values['status']}[/]"
        view.add_row(*(values[column] for column in shown))
    return view


def show(
    root: str | Path,
    console: Console,
    name: str | None = None,
    status: str | None = None,
    now: datetime.datetime | None = None,
    wide: bool = False,
) -> list[dict]:
    """Print the table of runs under `root` (filtered): the columns that fit the console, or all with `wide`."""
    check_status(status)
    rows = select(collect(root, now), name=name, status=status)
    if not rows:
        console.print(f"no runs under {terminal.text(root)}" + (" match the filters" if name or status else ""), highlight=False)
        return rows
    view = table(rows, width=None if wide else console.width)
    if wide:  # as wide as it needs, even past the terminal's edge: one line per run, nothing cut
        from rich import measure

        width = console.width
        console.width = max(width, measure.Measurement.get(console, console.options.update_width(100_000), view).maximum)
        try:
            console.print(view)
        finally:
            console.width = width
    else:
        console.print(view)
    for row in rows:
        if row.get("problem"):
            console.print(f"{row['run']}: damaged: {row['problem']}", highlight=False, soft_wrap=True, markup=False)
        if row.get("tensorboard"):
            console.print(f"{row['run']}: TensorBoard logs: {row['tensorboard']}", highlight=False, soft_wrap=True, markup=False)
    return rows


def spread_text(spread: dict) -> str:
    """`2.4100 +- 0.1800 (n=3)`: the mean and std of a metric over repeated runs (a seeds group)."""
    return f"{spread['mean']:.4f} +- {spread['std']:.4f} (n={spread['n']})"


def to_json(rows: list[dict]) -> str:
    """`rows` as a JSON list of objects with the keys of `KEYS` (non-finite numbers as null), for scripts."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        return value

    return json.dumps([{key: finite(row.get(key)) for key in KEYS} for row in rows], indent=2)


def format_duration(seconds: float | None) -> str:
    """`12.3s`, `4m 05s` or `2h 03m`."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, remainder = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {remainder:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def read_object(path: Path) -> dict | None:
    """A run's JSON file (metrics.json, ...): None when absent or not JSON (yet); a `RunError` when it holds
    another JSON type than an object."""
    data = _read(path)
    if data is not None and not isinstance(data, dict):
        raise errors.RunError(f"{path}: received a JSON {history.json_type(data)}; expected an object")
    return data


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
