"""`dlrun sweep CONFIG [--grid KEY=V1,V2 ...]`, `dlrun sweep --resume SWEEP_DIR`, `dlrun sweep --join SWEEP_DIR_OR_URL`
and `dlrun sweep dashboard SWEEP_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dlrun.commands import help_text, options


class Group(help_text.Group):
    """`dlrun sweep` is a command (`dlrun sweep CONFIG --grid ...`) with sub-commands beside it (`dlrun sweep
    dashboard SWEEP_DIR`): a first word that names a sub-command runs it; anything else is the sweep's own."""

    allow_extra_args = False  # `dlrun sweep a.yaml b.yaml`: "unexpected extra argument", as for any command
    allow_interspersed_args = True  # options after CONFIG, as for any command

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            super().parse_args(ctx, [])  # the sweep's own parameters keep their defaults; the callback sees the sub-command
            ctx._protected_args, ctx.args = args[:1], args[1:]
            return ctx.args
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return super().collect_usage_pieces(ctx)[:-1]  # `dlrun sweep [OPTIONS] [CONFIG]`; the sub-commands are listed below

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        if ctx.command is not self:  # a sub-command's usage line: `dlrun sweep dashboard ...`, not `dlrun sweep [CONFIG] dashboard`
            return [param for param in params if param.param_type_name != "argument"]
        return params


def sweep(
    ctx: typer.Context,
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
    """Search a config's values with Optuna (the config's search: section, or --grid / --random), train each trial, and rank them.

    `dlrun sweep dashboard SWEEP_DIR` serves a sweep's study in optuna-dashboard.
    """
    if ctx.invoked_subcommand is not None:  # `dlrun sweep dashboard ...`: the sub-command does the work
        return
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


def dashboard(
    sweep_dir: Path = typer.Argument(..., metavar="SWEEP_DIR", help="The sweep's folder (it holds sweep.json).", show_default=False),
    port: int = typer.Option(8080, "--port", metavar="N", help="The port to serve on (0: any free port; the address is printed)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="The address to listen on: 127.0.0.1 is this machine only; 0.0.0.0 is every network interface."
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the address; do not open it in a browser."),
) -> None:
    """Serve a sweep's Optuna study in optuna-dashboard (history, importances, every trial's curves) until Ctrl-C.

    The study is the one the sweep recorded in sweep.json: its study.db or study.journal, or its --storage URL (PostgreSQL), so a running sweep can be watched live. Needs optuna-dashboard: dlrun's dashboard extra, or pip install optuna-dashboard.
    """
    from dlrun import terminal
    from dlrun.trials import sweep_dashboard

    sweep_dashboard.serve(sweep_dir, terminal.console(), host=host, port=port, browser=not no_browser)
