"""Deciding whether and how a run may be resumed (`dlrun train --resume RUN_DIR`)."""

from __future__ import annotations

from pathlib import Path

from dlrun import config, errors, runs
from dlrun.config import schema
from dlrun.runs import history


def prepare(run_dir: Path, config_file: Path | None, set_items, force: bool,
            backend: str | None = None) -> tuple[runs.Run | None, schema.Config]:
    """The run to continue and the config to continue it with; `(None, config)` when it already completed.

    The config is the run's stored one; a config file, `--set` items or `backend` that change it are refused,
    with every difference listed, unless `force`.
    """
    run = runs.Run.open(run_dir)
    stored_path = run.path / runs.CONFIG_FILE
    if not stored_path.is_file():
        raise errors.RunError(f"{run_dir}: has no {runs.CONFIG_FILE}; expected a run folder written by dlrun train")
    stored = config.load(stored_path)
    wanted = config.load(config_file if config_file else stored_path, set_items, backend)
    changes = differences(config.to_data(stored), config.to_data(wanted))
    if changes and not force:
        raise errors.ConfigError(
            [f"{path}: run has {before}, now {after}" for path, before, after in changes]
            + ["expected the run's own config; pass --force to resume with these changes"],
            source=f"for --resume {run_dir}",
        )
    status = run.record.get("status")
    if status == "completed":
        return None, wanted
    saved_history = run.path / history.FILE_NAME
    if saved_history.exists() or any((run.path / "checkpoints" / name).exists() for name in ("last.npz", "previous.npz")):
        history.load(saved_history)  # a missing, empty or damaged history.json: a RunError now, before Keras loads
    if run.is_alive_elsewhere() and not force:
        raise errors.RunError(
            f"{run_dir}: is still running (process {run.record.get('pid')}); expected a stopped run "
            "(pass --force if that process is not training it)"
        )
    return run, wanted


def differences(before: dict, after: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted path, old value, new value) for every leaf that differs between two config dicts."""
    found = []
    for key in list(dict.fromkeys([*before, *after])):
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found.extend(differences(old, new, f"{path}."))
        elif old != new:
            found.append((path, old, new))
    return found
