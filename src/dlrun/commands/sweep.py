"""`dlrun sweep CONFIG [--grid KEY=V1,V2 ...]`, `dlrun sweep --resume SWEEP_DIR` and `dlrun sweep --join SWEEP_DIR_OR_URL`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def sweep(
    config_file: Path = typer.Argument(
        None, metavar="CONFIG", help="The YAML config file (omit with --resume or --join).", show_default=False
    ),
    grid: list[str] = typer.Option(
        [],
        "--grid",
        metavar="KEY.PATH=V1,V2",
        help="Values to try for one key (repeatable; YAML values): a choice in the search space; only grids: every combination.",
    ),
    random: int = typer.Option(
        None, "--random", metavar="N", help="N trials of the random sampler over --range and --grid.", show_default=False
    ),
    ranges: list[str] = typer.Option(
        [],
        "--range",
        metavar="KEY.PATH=LOW:HIGH[:log]",
        help="With --random: a range to draw one key from (repeatable).",
        show_default=False,
    ),
    trials: int = typer.Option(None, "--trials", metavar="N", help="Trials in all (overrides search.trials).", show_default=False),
    sampler: str = typer.Option(None, "--sampler", help="tpe, random, grid or cmaes (overrides search.sampler).", show_default=False),
    pruner: str = typer.Option(None, "--pruner", help="median, asha, hyperband or none (overrides search.pruner).", show_default=False),
    metric: str = typer.Option(
        None,
        "--metric",
        help="The objective: its best value over each trial's epochs (overrides search.metric; default val_loss).",
        show_default=False,
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        help="Where the study is kept: sqlite (study.db in the sweep folder), journal (study.journal there), or a SQLAlchemy URL such as postgresql+psycopg2://USER@HOST/DB",
        show_default=False,
    ),
    max_failures: int = typer.Option(3, "--max-failures", metavar="N", help="Stop after N trials failed in a row."),
    kfold: int = typer.Option(
        None,
        "--kfold",
        metavar="K",
        help="Score each trial by its mean over K folds, as dlrun kfold trains them (overrides search.kfold).",
        show_default=False,
    ),
    seeds: int = typer.Option(
        None,
        "--seeds",
        metavar="N",
        help="Train each trial point N times (seeds seed..seed+N-1) and score it by the mean (overrides search.seeds).",
        show_default=False,
    ),
    final: bool = typer.Option(
        False, "--final", help="With K-fold trials: refit the best trial on the whole training split and evaluate it on test."
    ),
    set_items: list[str] = options.SET_OPTION,
    resume: Path = typer.Option(
        None,
        "--resume",
        metavar="SWEEP_DIR",
        help="Continue a stopped sweep: finished trials are kept, a killed one continues from its checkpoint.",
        show_default=False,
    ),
    join: str = typer.Option(
        None,
        "--join",
        metavar="SWEEP_DIR_OR_URL",
        help="Add this process's workers to a running sweep (its folder, or its storage URL).",
        show_default=False,
    ),
    workers: int = options.WORKERS_OPTION,
    executor: str = options.EXECUTOR_OPTION,
    address: str = options.ADDRESS_OPTION,
    cpus_per_trial: float = options.CPUS_PER_TRIAL_OPTION,
    batch: int = typer.Option(
        None,
        "--batch",
        metavar="N",
        help="With --executor vectorized or auto: trials asked and trained together as one JAX program (default 32).",
        show_default=False,
    ),
) -> None:
    """Search a config's values with Optuna (the config's search: section, or --grid / --random), train each trial, and rank them."""
    from dlrun import errors, runs, terminal
    from dlrun.trials import executors, sweep as sweep_module

    placement = executors.Placement.resolve(executor, workers, address, cpus_per_trial, batch)
    console = terminal.console()
    planning = [config_file, set_items, grid, ranges, random, trials, sampler, pruner, metric, storage, kfold, seeds, final or None]
    if resume is not None or join is not None:
        option = "--resume" if resume is not None else "--join"
        if (resume is not None and join is not None) or any(item not in (None, []) for item in planning):
            raise errors.UsageError(
                f"{option}: received a CONFIG or a search option too; expected only the sweep "
                "(and --max-failures, --workers, --executor, --batch)"
            )
        if resume is not None:
            command = ["dlrun", "sweep", f"--resume={resume}", f"--max-failures={max_failures}", *placement.words()]
            with runs.starting("dlrun sweep --resume {path}", resume):  # a Ctrl-C at any moment: exit 130, an honest status
                sweep_module.resume(resume, console, placement, command=command, max_failures=max_failures)
        else:
            sweep_module.join(join, console, placement)
        return
    if config_file is None:
        raise errors.UsageError("CONFIG: received nothing; expected a YAML config file (or --resume SWEEP_DIR, or --join SWEEP_DIR)")
    chosen = sweep_module.Options(
        tuple(grid), tuple(ranges), random, trials, sampler, pruner, metric, storage, max_failures, kfold, final, seeds
    )
    command = [
        "dlrun",
        "sweep",
        str(config_file),
        *(f"--grid={item}" for item in grid),
        *([f"--random={random}"] if random is not None else []),
        *(f"--range={item}" for item in ranges),
        *(
            f"--{name}={value}"
            for name, value in (
                ("trials", trials),
                ("sampler", sampler),
                ("pruner", pruner),
                ("metric", metric),
                ("storage", storage),
                ("kfold", kfold),
                ("seeds", seeds),
            )
            if value is not None
        ),
        *(["--final"] if final else []),
        f"--max-failures={max_failures}",
        *(f"--set={item}" for item in set_items),
        *placement.words(),
    ]
    with runs.starting("dlrun sweep --resume {path}"):
        sweep_module.sweep(config_file, set_items, chosen, console, placement, command=command)
