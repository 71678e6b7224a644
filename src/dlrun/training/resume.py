"""Deciding whether and how a run may be resumed (`dlrun train --resume RUN_DIR`), and on which backend a
run folder is continued or evaluated (`on_run_backend`: the one it trained on, unless `--backend` asks)."""

from __future__ import annotations

from pathlib import Path

from dlrun import backend as backend_module, config, errors, runs
from dlrun.config import schema
from dlrun.runs import history
from dlrun.training import checkpoints


def prepare(
    run_dir: Path, config_file: Path | None, set_items: list[str] | tuple[str, ...], force: bool, backend: str | None = None
) -> tuple[runs.Run | None, schema.Config]:
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
    if backend is None and wanted.backend == "auto":  # the run's resolved backend is what `auto` chose for it
        wanted = wanted.model_copy(update={"backend": stored.backend})
    changes = [
        change for change in differences(config.to_data(stored), config.to_data(wanted)) if backend is None or change[0] != "backend"
    ]  # --backend NAME is how a new backend is asked for
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
            "that optimizer's state): train a new run to use another",
            source=f"for --resume {run_dir}",
        )
    if run.record.get("status") == "completed":
        return None, wanted
    asked = backend if backend is not None else (wanted.backend if wanted.backend != stored.backend else None)
    wanted = on_run_backend(run, wanted, asked, f"dlrun train --resume {run_dir}")
    saved_history = run.path / history.FILE_NAME
    if saved_history.exists() or checkpoints.exists(run.path):
        history.load(saved_history)  # a missing, empty or damaged history.json: a RunError now, before Keras loads
    return run, wanted


def backend_used(run: runs.Run, stored: schema.Config) -> str | None:
    """The backend `run` trained on: run.json's record, else its config's (None: neither says, an old run)."""
    recorded = run.record.get("backend")
    name = recorded.get("name") if isinstance(recorded, dict) else None
    if name in backend_module.BACKENDS:
        return name
    return stored.backend if stored.backend != "auto" else None


def on_run_backend(run: runs.Run, stored: schema.Config, asked: str | None, command: str | None) -> schema.Config:
    """`stored` (the run's config) set to continue or evaluate `run` on the backend it trained on, or on
    `asked` (`--backend NAME`: any backend, `auto` included, the user's explicit choice).

    Numbers depend on the backend, so another one is never picked silently: when the run's backend cannot
    run here (not installed, or Keras already imported on another in this process), RunError (exit 2)
    names the run's backend, the one active here, and how to ask for it (`command` + `--backend NAME`).
    """
    if asked is not None:
        return stored.model_copy(update={"backend": asked})
    used = backend_used(run, stored)
    if used is None:
        return stored
    already = backend_module.loaded()
    if used in backend_module.installed() and already in (None, used):
        return stored.model_copy(update={"backend": used})
    active = already or backend_module.choose(stored.model_copy(update={"backend": "auto"})).name
    if already:
        why, remedy = f"Keras is already imported on {active} in this process", "run dlrun in a new process"
    else:
        why, remedy = f"{used} is not installed here", f"install it ({backend_module.INSTALL[used]})"
    ask = f", or ask for {active}: {command} --backend {active}" if command else ""
    raise errors.RunError(
        f"{run.path}: trained on the {used} backend, but the active backend is {active} ({why}); expected the run's "
        f"own backend, since numbers differ between backends: {remedy}{ask}"
    )


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


def backend_line(choice: backend_module.Choice, config: schema.Config, resume_run: runs.Run | None) -> str:
    """What `backend.said` prints; a resumed run on its own backend repeats why it was chosen."""
    earlier = (resume_run.record.get("backend") or {}) if resume_run is not None else {}
    if earlier.get("name") == choice.name and earlier.get("reason"):
        return f"backend: {choice.name} (the run's own: {earlier['reason']})"
    return backend_module.said(choice, config.backend)
