"""The spread of repeated runs: each run's final metrics, and their mean, std, min and max per metric.

One function aggregates (`aggregate`): `dlrun train --seeds` uses it over its seeds, and any other
repeat of one config (a sweep point trained over several seeds) can use it the same way. The std is
the population std (numpy's default, as `dlrun kfold` reports over folds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlrun.runs import history, table as runs_table

SECTIONS = ("test", "validation")  # test: metrics.json's metrics; validation: each val_ value's best epoch


def run_metrics(run_path: str | Path) -> dict[str, dict[str, float]]:
    """A completed run's final numbers: {"test": {metric: value}, "validation": {val_metric: best value}}."""
    run_path = Path(run_path)
    payload = runs_table.read_object(run_path / "metrics.json") or {}
    run_history = history.load_if_present(run_path / history.FILE_NAME)
    validation = {}
    for key in run_history:
        best = history.best_epoch(run_history, key) if key.startswith("val_") else None
        if best is not None:
            validation[key] = best[1]
    test = {name: value for name, value in (payload.get("metrics") or {}).items() if _is_number(value)}
    return {"test": test, "validation": validation}


def aggregate(results: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, dict]]:
    """{section: {metric: {"mean", "std", "min", "max", "n"}}} over `results` (each like `run_metrics`'s);
    a metric counts the runs that recorded it (`n`)."""
    import numpy as np

    found: dict[str, dict[str, dict]] = {}
    for section in SECTIONS:
        names = list(dict.fromkeys(name for result in results for name in result.get(section, {})))
        for name in names:
            values = np.array([result[section][name] for result in results if _is_number(result.get(section, {}).get(name))], dtype=float)
            found.setdefault(section, {})[name] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "min": float(values.min()),
                "max": float(values.max()),
                "n": int(values.size),
            }
    return found


def lines(spread: dict[str, dict[str, dict]]) -> list[str]:
    """`test mae 2.4100 +- 0.1800 (n=3)` lines (and `best val_mae ...`), one per metric."""
    said = {"test": "test", "validation": "best"}
    return [
        f"{said[section]} {name} {runs_table.spread_text(values)}"
        for section in SECTIONS
        for name, values in spread.get(section, {}).items()
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
