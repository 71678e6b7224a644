"""`dlrun kfold CONFIG --k K`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def kfold(
    config_file: Path = typer.Argument(None, metavar="CONFIG", help="The YAML config file (omit with --resume).", show_default=False),
    k: int = typer.Option(4, "--k", help="Number of folds."),
    repeats: int = typer.Option(1, "--repeats", help="Iterated K-fold: repeat P times, each with its own shuffle (P x K fits)."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Shuffle (seeded) before splitting into folds."),
    final: bool = typer.Option(True, "--final/--no-final", help="Retrain on all the data for the recommended epochs and evaluate on test."),
    monitor: str = typer.Option(
        None, "--monitor", help="Validation value that picks the epoch count (default: val_ of the first metric).", show_default=False
    ),
    smoothing: float = typer.Option(0.9, "--smoothing", help="Exponential moving average factor for the mean validation curve."),
    keep_early_stopping: bool = typer.Option(
        False,
        "--keep-early-stopping",
        help="Keep train.callbacks' early_stopping in the folds (by default each fold runs its whole curve, so the mean curve can pick the epoch count).",
    ),
    set_items: list[str] = options.SET_OPTION,
    backend: str = options.BACKEND_OPTION,
    resume: Path = typer.Option(
        None, "--resume", help="Continue an interrupted K-fold run folder: train only its missing folds.", show_default=False
    ),
    workers: int = options.WORKERS_OPTION,
    executor: str = options.EXECUTOR_OPTION,
    address: str = options.ADDRESS_OPTION,
    cpus_per_trial: float = options.CPUS_PER_TRIAL_OPTION,
) -> None:
    """K-fold validation on the training data: per-fold and mean curves, the recommended epoch count, a final test score."""
    from dlrun import config, errors, runs, terminal
    from dlrun.trials import executors, kfold as kfold_protocol, kfold_plan

    placement = executors.Placement.resolve(executor, workers, address, cpus_per_trial)
    if resume is not None:
        if config_file is not None or set_items:
            raise errors.UsageError(
                "--resume: received a CONFIG or --set too; expected only the run folder "
                "(its stored config is used; --backend NAME continues it on another backend)"
            )
        with runs.starting("dlrun kfold --resume {path}", resume):  # a Ctrl-C at any moment: exit 130, an honest status
            kfold_protocol.resume(
                resume,
                terminal.console(),
                placement=placement,
                backend_name=backend,
                command=["dlrun", "kfold", f"--resume={resume}", *([f"--backend={backend}"] if backend else []), *placement.words()],
            )
        return
    if config_file is None:
        raise errors.UsageError("CONFIG: received nothing; expected a YAML config file (or --resume RUN_DIR)")
    kfold_plan.check_options(k, repeats, shuffle, smoothing)
    loaded = config.load(config_file, set_items, backend)
    command = [
        "dlrun",
        "kfold",
        str(config_file),
        f"--k={k}",
        f"--repeats={repeats}",
        "--shuffle" if shuffle else "--no-shuffle",
        "--final" if final else "--no-final",
        *([f"--monitor={monitor}"] if monitor else []),
        f"--smoothing={smoothing}",
        *(["--keep-early-stopping"] if keep_early_stopping else []),
        *(f"--set={item}" for item in set_items),
        *([f"--backend={backend}"] if backend else []),
        *placement.words(),
    ]
    with runs.starting("dlrun kfold --resume {path}"):
        kfold_protocol.kfold(
            loaded,
            terminal.console(),
            k=k,
            repeats=repeats,
            shuffle=shuffle,
            final=final,
            monitor=monitor,
            smoothing=smoothing,
            command=command,
            keep_early_stopping=keep_early_stopping,
            placement=placement,
        )
