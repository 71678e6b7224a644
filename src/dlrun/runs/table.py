"""The table of runs under a folder (`dlrun runs`): read from run.json, history.json and metrics.json only.

Pure Python and Rich: listing runs never imports TensorFlow.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
from pathlib import Path

from dlrun import errors, runs, terminal
from dlrun.runs import history, tensorboard as tensorboard_logs

STALE_EPOCHS = 5  # a running run whose heartbeat is older than this many epochs' time has crashed...
STALE_FLOOR_S = 600  # ...but never sooner than this (saving, evaluating and the first epoch take time)
STALE_UNKNOWN_S = 3600  # the limit when no epoch has finished yet, so the epoch time is unknown
STATUSES = (*runs.STATUSES, "crashed", "damaged")  # damaged: a run file of the wrong shape
_BASELINES = {"accuracy": ("majority_class_accuracy", "majority"), "mae": ("mean_predictor_mae", "mean"), "mse": ("mean_predictor_mse", "mean")}


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
    """One row of the table for the run folder at `path`."""
    record = runs.Run.open(path).record
    started = parse_time(record.get("started_at"))
    status = effective_status(record, now)
    duration = record.get("duration_s")
    if duration is None and status == "running" and started is not None:
        duration = (now - started).total_seconds()
    run_history = history.load_if_present(path / history.FILE_NAME)
    metrics_payload = read_object(path / "metrics.json") or {}
    metric = primary_metric(record, run_history)
    return {
        "run": path.name,
        "name": record.get("name", ""),
        "kind": record.get("kind", "train"),
        "started_at": record.get("started_at", ""),
        "status": status,
        "duration_s": duration,
        "epochs": len(run_history.get("epoch", [])) or record.get("epochs_completed"),
        "best_validation": history.best_epoch(run_history, f"val_{metric}") if metric else None,
        "metric": metric,
        "test": metrics_payload.get("metrics", {}).get(metric) if metric else None,
        "baseline": baseline_for(metric, metrics_payload.get("baseline", {})),
        "tensorboard": tensorboard_logs.command(path),
    }


def primary_metric(record: dict, run_history: dict) -> str | None:
    """The metric a run is judged by: its first configured metric, else its loss."""
    configured = record.get("metrics") or [name for name in history.metric_names(run_history) if name != "loss"]
    if configured:
        return configured[0]
    return "loss" if "loss" in run_history or record.get("status") else None


def baseline_for(metric: str | None, reference: dict) -> tuple[str, float] | None:
    """(label, value) of the naive baseline that matches `metric`, when the run recorded it."""
    key, label = _BASELINES.get(metric, (None, None))
    if key in reference:
        return label, reference[key]
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
                rows.append({"run": path.name, "name": "", "kind": "", "started_at": "", "status": "damaged", "problem": problem})
    return sorted(rows, key=lambda row: (str(row["started_at"]), row["run"]), reverse=True)


def select(rows: list[dict], name: str | None = None, status: str | None = None) -> list[dict]:
    """Rows whose name contains `name` (or matches it as a glob) and whose status is `status`."""
    if status is not None and status not in STATUSES:
        raise errors.ConfigError(f"--status: received {status!r}; expected one of {', '.join(STATUSES)}")
    if name is not None:
        glob = any(character in name for character in "*?[")
        rows = [row for row in rows if (fnmatch.fnmatchcase(row["name"], name) if glob else name in row["name"])]
    if status is not None:
        rows = [row for row in rows if row["status"] == status]
    return rows


def table(rows: list[dict]):
    """The Rich table of `rows`."""
    from rich import table as rich_table

    styles = {"completed": "green", "failed": "red", "crashed": "red", "interrupted": "yellow", "running": "cyan", "pruned": "magenta"}
    view = rich_table.Table("started", "status", "duration", "epochs", "best validation", "test", "baseline")
    view.add_column("run", overflow="fold")
    for row in rows:
        best = row.get("best_validation")
        metric = row.get("metric")
        baseline = row.get("baseline")
        view.add_row(
            terminal.text(str(row["started_at"]).replace("T", " ")[:16]),
            f"[{styles.get(row['status'], 'default')}]{terminal.text(row['status'])}[/]",
            format_duration(row.get("duration_s")),
            "" if row.get("epochs") is None else str(row["epochs"]),
            terminal.text(f"val_{metric} {best[1]:.4f} @{best[0]}") if best else "",
            terminal.text(f"{metric} {row['test']:.4f}") if row.get("test") is not None else "",
            f"{baseline[0]} {baseline[1]:.4f}" if baseline else "",
            terminal.text(row["run"]),
        )
    return view


def show(root: str | Path, console, name: str | None = None, status: str | None = None, now=None) -> list[dict]:
    """Print the table of runs under `root` (filtered); return its rows."""
    rows = select(collect(root, now), name=name, status=status)
    if not rows:
        console.print(f"no runs under {terminal.text(root)}" + (" match the filters" if name or status else ""), highlight=False)
        return rows
    console.print(table(rows))
    for row in rows:
        if row.get("problem"):
            console.print(f"{row['run']}: damaged: {row['problem']}", highlight=False, soft_wrap=True, markup=False)
        if row.get("tensorboard"):
            console.print(f"{row['run']}: TensorBoard logs: {row['tensorboard']}", highlight=False, soft_wrap=True, markup=False)
    return rows


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


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
