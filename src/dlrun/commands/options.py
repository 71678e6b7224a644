"""Options shared by several commands."""

from __future__ import annotations

import typer

CONFIG_ARGUMENT = typer.Argument(..., metavar="CONFIG", help="The YAML config file.", show_default=False)
SET_OPTION = typer.Option(
    [],
    "--set",
    "-s",
    metavar="KEY.PATH=VALUE",
    help="Override one config value (repeatable; VALUE is YAML), e.g. --set train.epochs=3.",
)

BACKEND_OPTION = typer.Option(
    None,
    "--backend",
    metavar="NAME",
    help="The Keras backend: tensorflow, jax, torch or auto (replaces the config's `backend`).",
    show_default=False,
)

# Where independent trials (K-fold folds, sweep trials) run: see dlrun.trials.executors.
WORKERS_OPTION = typer.Option(
    1,
    "--workers",
    help="Run trials in a pool of N worker processes (each limits TensorFlow's threads); with --executor vectorized "
    "or auto, only those that cannot train as one JAX program.",
)
EXECUTOR_OPTION = typer.Option(
    None,
    "--executor",
    metavar="sequential|pool|ray|vectorized|auto",
    help="Where trials run: in this process, a local process pool (implied by --workers > 1), Ray Tune, "
    "(on JAX) vectorized: the folds or a batch of trials as one JAX program, or auto: vectorized where it applies, "
    "else sequential (or the pool, with --workers N).",
    show_default=False,
)
ADDRESS_OPTION = typer.Option(
    None,
    "--address",
    metavar="auto|ray://HOST:PORT",
    help="With --executor ray: the Ray cluster (default: a local one).",
    show_default=False,
)
CPUS_PER_TRIAL_OPTION = typer.Option(1.0, "--cpus-per-trial", help="With --executor ray: CPUs Ray reserves for each trial.")
