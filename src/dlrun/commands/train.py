"""`dlrun train CONFIG` and `dlrun train --resume RUN_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dlrun.commands import options

if TYPE_CHECKING:
    from rich.console import Console


def train(
    config_file: Path = typer.Argument(None, metavar="CONFIG", help="The YAML config file (optional with --resume).", show_default=False),
    set_items: list[str] = options.SET_OPTION,
    backend: str = options.BACKEND_OPTION,
    resume_dir: Path = typer.Option(
        None, "--resume", metavar="RUN_DIR", help="Continue an interrupted, failed or killed run from its last completed epoch."
    ),
    force: bool = typer.Option(False, "--force", help="With --resume: continue even if the config differs from the run's."),
    report: bool = typer.Option(False, "--report", help="Write RUN_DIR/report.html (see `dlrun report`) at the end."),
    track: str = typer.Option(
        None, "--track", metavar="mlflow", help="Also log the run to MLflow (needs dlrun's mlflow extra).", show_default=False
    ),
    tracking_uri: str = typer.Option(
        None, "--tracking-uri", metavar="URI", help="With --track mlflow: where to log (default sqlite:///mlflow.db).", show_default=False
    ),
    seeds: int = typer.Option(
        None,
        "--seeds",
        metavar="N",
        show_default=False,
        help="Train N times, with seeds seed, seed+1, ..., as runs of one group folder; report mean +- std. "
        "With --resume GROUP_DIR: continue the group's unfinished seeds.",
    ),
) -> None:
    """Train the model a config describes and write a run folder under output.runs_root."""
    from dlrun import config, errors, terminal
    from dlrun.runs import tracking
    from dlrun.training import resume

    console = terminal.console()
    tracking.check(track)
    command = [
        "dlrun",
        "train",
        *([str(config_file)] if config_file else []),
        *(f"--set={item}" for item in set_items),
        *([f"--backend={backend}"] if backend else []),
        *([f"--seeds={seeds}"] if seeds is not None else []),
    ]
    if seeds is not None or (resume_dir is not None and _is_group(resume_dir)):
        _train_seeds(console, config_file, set_items, backend, resume_dir, force, report, track, seeds, command)
        return
    if resume_dir is None:
        if config_file is None:
            raise errors.UsageError("CONFIG: received nothing; expected a config file (or --resume RUN_DIR)")
        _train(console, report, track, tracking_uri, config.load(config_file, set_items, backend), command=command)
        return
    command += ["--resume", str(resume_dir), *(["--force"] if force else [])]
    run, resolved = resume.prepare(resume_dir, config_file, set_items, force, backend)
    if run is None:
        console.print(f"{terminal.text(resume_dir)}: already completed; nothing to do", highlight=False, soft_wrap=True)
        return
    _train(console, report, track, tracking_uri, resolved, command=command, resume_run=run)


def _is_group(run_dir: Path) -> bool:
    from dlrun.trials import seeds as seeds_group

    return seeds_group.is_group(run_dir)


def _train_seeds(
    console: Console,
    config_file: Path | None,
    set_items: list[str],
    backend: str | None,
    resume_dir: Path | None,
    force: bool,
    report: bool,
    track: str | None,
    count: int | None,
    command: list[str],
) -> None:
    """`--seeds N`: a group of runs over N seeds (`dlrun.trials.seeds`), or `--resume` of such a group."""
    from dlrun import config, errors, runs, terminal
    from dlrun.trials import seeds as seeds_group

    if track:
        raise errors.UsageError("--track: received with --seeds; expected one of them (track the seeds' runs one by one)")
    if count is not None:
        seeds_group.check_count(count)
    if resume_dir is None:
        if config_file is None:
            raise errors.UsageError("CONFIG: received nothing; expected a config file (or --resume GROUP_DIR)")
        assert count is not None  # a new group comes from --seeds N (the other way in is --resume)
        loaded = config.load(config_file, set_items, backend)
        with runs.starting("dlrun train --resume {path}"):  # a Ctrl-C at any moment: exit 130, an honest status
            group = seeds_group.train(loaded, console, count, command=command)
    else:
        if config_file is not None or set_items or backend or force:
            raise errors.UsageError(
                f"--resume {resume_dir}: received a CONFIG, --set, --backend or --force with a seeds group; "
                "expected only the group folder (its stored config is used)"
            )
        if not seeds_group.is_group(resume_dir):
            raise errors.UsageError(
                f"--seeds: received {count} with --resume {resume_dir}, which is not a seeds group; "
                "expected a folder made by `dlrun train --seeds` (or no --seeds)"
            )
        with runs.starting("dlrun train --resume {path}", resume_dir):
            resumed = seeds_group.resume(resume_dir, console, count, command=[*command, f"--resume={resume_dir}"])
        if resumed is None:
            console.print(f"{terminal.text(resume_dir)}: already completed; nothing to do", highlight=False, soft_wrap=True)
            return
        group = resumed
    if report:
        from dlrun.runs import report as report_module

        console.print(f"report: {report_module.write([group.path])}", highlight=False, soft_wrap=True)


def _train(console: Console, report: bool, track: str | None, tracking_uri: str | None, resolved: Any, **options: Any) -> None:
    """trainer.train, then the report; the MLflow run (if any) is ended whatever happens."""
    from dlrun.runs import tracking
    from dlrun.training import trainer

    tracker = tracking.MlflowTracker(tracking_uri, console) if track else None
    try:
        run = trainer.train(resolved, console, tracker=tracker, **options)
        if report:
            from dlrun.runs import report as report_module

            console.print(f"report: {report_module.write([run.path])}", highlight=False, soft_wrap=True)
    finally:
        if tracker is not None:
            tracker.end()
