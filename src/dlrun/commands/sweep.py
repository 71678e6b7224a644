"""`dlrun sweep CONFIG --grid KEY=V1,V2 ...` and `dlrun sweep --resume SWEEP_DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def sweep(
    config_file: Path = typer.Argument(None, help="The YAML config file (omit with --resume).", show_default=False),
    grid: list[str] = typer.Option([], "--grid", metavar="KEY.PATH=V1,V2", help="Values to try for one key (repeatable; YAML values; every combination)."),
    random: int = typer.Option(None, "--random", metavar="N", help="Draw N trials (seeded by the config's seed) from --range and --grid.", show_default=False),
    ranges: list[str] = typer.Option([], "--range", metavar="KEY.PATH=LOW:HIGH[:log]", help="With --random: a range to draw one key from (repeatable)."),
    metric: str = typer.Option("val_loss", "--metric", help="Ranks the trials: its best value over each trial's epochs."),
    set_items: list[str] = options.SET_OPTION,
    resume: Path = typer.Option(None, "--resume", metavar="SWEEP_DIR", help="Continue an interrupted sweep: train only its unfinished trials.", show_default=False),
    workers: int = options.WORKERS_OPTION,
    executor: str = options.EXECUTOR_OPTION,
    address: str = options.ADDRESS_OPTION,
    cpus_per_trial: float = options.CPUS_PER_TRIAL_OPTION,
):
    """Train a config once per combination of values (grid or seeded random search) and rank the trials."""
    from dlrun import errors, runs, terminal
    from dlrun.trials import executors, sweep as sweep_module

    placement = executors.Placement.resolve(executor, workers, address, cpus_per_trial)
    console = terminal.console()
    if resume is not None:
        if config_file is not None or set_items or grid or ranges or random is not None:
            raise errors.ConfigError("--resume: received a CONFIG, --set, --grid, --range or --random too; expected only the sweep folder")
        with runs.starting("dlrun sweep --resume {path}", resume):  # a Ctrl-C at any moment: exit 130, an honest status
            sweep_module.resume(resume, console, placement, command=["dlrun", "sweep", f"--resume={resume}", *placement.words()])
        return
    if config_file is None:
        raise errors.ConfigError("CONFIG: received nothing; expected a YAML config file (or --resume SWEEP_DIR)")
    command = ["dlrun", "sweep", str(config_file), *(f"--grid={item}" for item in grid),
               *([f"--random={random}"] if random is not None else []), *(f"--range={item}" for item in ranges),
               f"--metric={metric}", *(f"--set={item}" for item in set_items), *placement.words()]
    with runs.starting("dlrun sweep --resume {path}"):
        sweep_module.sweep(config_file, set_items, grid, ranges, random, metric, console, placement, command=command)
