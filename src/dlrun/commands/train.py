"""`dlrun train CONFIG` and `dlrun train --resume RUN_DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def train(
    config_file: Path = typer.Argument(None, help="The YAML config file (optional with --resume).", show_default=False),
    set_items: list[str] = options.SET_OPTION,
    backend: str = options.BACKEND_OPTION,
    resume_dir: Path = typer.Option(
        None, "--resume", metavar="RUN_DIR", help="Continue an interrupted, failed or killed run from its last completed epoch."
    ),
    force: bool = typer.Option(False, "--force", help="With --resume: continue even if the config differs from the run's."),
):
    """Train the model a config describes and write a run folder under output.runs_root."""
    from rich import console as rich_console

    from dlrun import continuation, errors, config, trainer

    console = rich_console.Console(highlight=False)
    set_items = options.with_backend(set_items, backend)
    command = ["dlrun", "train", *([str(config_file)] if config_file else []), *(f"--set={item}" for item in set_items)]
    if resume_dir is None:
        if config_file is None:
            raise errors.ConfigError("CONFIG: received nothing; expected a config file (or --resume RUN_DIR)")
        trainer.train(config.load(config_file, set_items), console, command=command)
        return
    command += ["--resume", str(resume_dir), *(["--force"] if force else [])]
    run, resolved = continuation.prepare(resume_dir, config_file, set_items, force)
    if run is None:
        console.print(f"{resume_dir}: already completed; nothing to do", highlight=False, soft_wrap=True)
        return
    trainer.train(resolved, console, command=command, resume_run=run)
