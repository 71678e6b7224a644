"""Deciding whether and how a run may be resumed (`dlrun train --resume RUN_DIR`)."""

from __future__ import annotations

from pathlib import Path

from dlrun import config, errors, runs
from dlrun.config import schema
from dlrun.runs import history
from dlrun.training import checkpoints


def prepare(run_dir: Path, config_file: Path | None, set_items, force: bool,
            backend: str | None = None) -> tuple[runs.Run | None, schema.Config]:
    """The run to continue and the config to continue it with; `(None, config)` when it already completed.

    The config is the run's stored one; a config file, `--set` items or `backend` that change it are refused,
    with every difference listed, unless `force`. Even forced, another optimizer is refused: the checkpoint
    holds the state of the one the run trained with (a new learning rate is applied after the restore).
    The run folder is locked first (`Run.open_to_continue`): a run another process is using is refused.
    """
    run = runs.Run.open_to_continue(run_dir)
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
    if stored.compile.optimizer.name != wanted.compile.optimizer.name:
        raise errors.ConfigError(
            f"compile.optimizer.name: the run trained with {stored.compile.optimizer.name!r}, now "
            f"{wanted.compile.optimizer.name!r}; expected the same optimizer to continue it (its checkpoint holds "
            "that optimizer's state): train a new run to use another", source=f"for --resume {run_dir}",
        )
    if run.record.get("status") == "completed":
        return None, wanted
    saved_history = run.path / history.FILE_NAME
    if saved_history.exists() or checkpoints.exists(run.path):
        history.load(saved_history)  # a missing, empty or damaged history.json: a RunError now, before Keras loads
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
