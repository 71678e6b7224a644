"""Runs side by side (`dlrun runs compare`): the config keys that differ, the metrics, overlaid curves."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import errors, runs, terminal
from dlrun.config import yaml_strict
from dlrun.runs import history, table as runs_table

if TYPE_CHECKING:
    from rich.console import Console

MISSING = "-"


def flatten(data: Any, prefix: str = "") -> dict[str, object]:
    """`{"a": {"b": [1, {"c": 2}]}}` -> `{"a.b.0": 1, "a.b.1.c": 2}` (empty mappings and lists kept as values)."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(data, dict) and data:
        items = data.items()
    elif isinstance(data, list) and data:
        items = enumerate(data)
    else:
        return {prefix: data} if prefix else {}
    flat: dict[str, object] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(configs: list[dict]) -> dict[str, list]:
    """The flattened keys whose values are not the same in every config (absent keys count as different)."""
    flat = [flatten(config) for config in configs]
    keys = list(dict.fromkeys(key for one in flat for key in one))
    found = {}
    for key in keys:
        values = [one.get(key, MISSING) for one in flat]
        if any(value != values[0] for value in values[1:]):
            found[key] = values
    return found


def load(run_dir: str | Path) -> dict:
    """What a run folder says about itself: the record, the stored config, history and test metrics."""
    run = runs.Run.open(run_dir)
    config_path = run.path / runs.CONFIG_FILE
    try:
        config = yaml_strict.loads(config_path.read_text(encoding="utf-8"), source=str(config_path)) or {}
    except OSError:
        raise errors.RunError(f"{config_path}: unreadable; expected the config the run stored") from None
    return {
        "path": run.path,
        "config": config,
        "history": history.load_if_present(run.path / history.FILE_NAME),
        "metrics": runs_table.read_object(run.path / "metrics.json") or {},
        "row": runs_table.summarize(run.path, runs.utc_now()),
    }


def labels_for(paths: list[Path]) -> list[str]:
    """Folder names, or full paths where two folder names are equal."""
    names = [path.name for path in paths]
    return [name if names.count(name) == 1 else str(path) for name, path in zip(names, paths)]


def metric_rows(loaded: list[dict]) -> dict[str, list[str]]:
    """Row label -> one cell per run: status, epochs, best validation per metric, test metrics, baselines.
    A seeds group's cells are its mean +- std over its runs (`runs_table.spread_text`)."""
    rows = {"status": [item["row"]["status"] for item in loaded], "epochs": [str(item["row"]["epochs"] or MISSING) for item in loaded]}
    names = list(
        dict.fromkeys(
            [
                *(name for item in loaded for name in history.metric_names(item["history"])),
                *(name.removeprefix("val_") for item in loaded for name in _spread(item, "validation")),
            ]
        )
    )
    for name in names:
        cells = []
        for item in loaded:
            best = history.best_epoch(item["history"], f"val_{name}")
            group = _spread(item, "validation").get(f"val_{name}")
            cells.append(runs_table.spread_text(group) if group else f"{best[1]:.4f} @{best[0]}" if best else MISSING)
        rows[f"best val_{name}"] = cells
    for section, prefix in (("metrics", "test "), ("baseline", "baseline ")):
        keys = list(
            dict.fromkeys(
                key
                for item in loaded
                for key in [*item["metrics"].get(section, {}), *(_spread(item, "test") if section == "metrics" else {})]
            )
        )
        for key in keys:
            cells = []
            for item in loaded:
                value = item["metrics"].get(section, {}).get(key)
                group = _spread(item, "test").get(key) if section == "metrics" else None
                cells.append(
                    runs_table.spread_text(group)
                    if group
                    else f"{value:.4f}"
                    if isinstance(value, float)
                    else (MISSING if value is None else str(value))
                )
            rows[prefix + key] = cells
    return rows


def _spread(item: dict, section: str) -> dict:
    """A seeds group's {metric: spread} of `section` (test or validation); empty for a single run."""
    return (item["row"].get("spread") or {}).get(section) or {}


def show(run_dirs: Sequence[str | Path], console: Console, plot: str | Path | None = None) -> dict:
    """Print the config differences and the metrics of two or more runs; optionally write the overlay PNG."""
    if len(run_dirs) < 2:
        raise errors.UsageError(f"RUN_DIR: received {len(run_dirs)} run folder(s); expected two or more to compare")
    if plot is not None:  # refused before the tables are printed, not after them
        target = Path(plot)
        if not target.parent.is_dir():
            raise errors.UsageError(f"--plot: received {str(plot)!r}; expected a file in an existing folder")
        runs.check_writable(target.parent, "--plot", target)
    loaded = [load(path) for path in run_dirs]
    labels = [terminal.text(label) for label in labels_for([item["path"] for item in loaded])]
    from rich import table as rich_table

    changed = differences([item["config"] for item in loaded])
    if changed:
        config_table = rich_table.Table("config key", *labels, title="config differences")
        for key, values in changed.items():
            config_table.add_row(terminal.text(key), *(terminal.text(_cell(value)) for value in values))
        console.print(config_table)
    else:
        console.print("the configs are identical", highlight=False)
    rows = metric_rows(loaded)
    metrics_table = rich_table.Table("", *labels, title="metrics")
    for key, cells in rows.items():
        metrics_table.add_row(terminal.text(key), *(terminal.text(cell) for cell in cells))
    console.print(metrics_table)
    if plot is not None:
        from dlrun.runs import plots

        try:
            plots.compare_curves({label: item["history"] for label, item in zip(labels, loaded)}, target)
        except OSError as error:
            raise runs.write_failed("--plot", target, error) from None
        console.print(f"wrote {terminal.text(target)}", highlight=False, soft_wrap=True)
    return {"differences": changed, "metrics": rows}


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
