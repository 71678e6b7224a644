"""`dlrun calibrate CONFIG`: time the config's model on each installed backend, print and store the times."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def calibrate(
    config_file: Path = options.CONFIG_ARGUMENT,
    set_items: list[str] = options.SET_OPTION,
    backends: str = typer.Option(
        None,
        "--backends",
        metavar="NAME,NAME",
        show_default=False,
        help="Time only these backends (default: every installed backend that can run the config).",
    ),
) -> None:
    """Time the config's model on each installed Keras backend and store the times for `backend: auto`.

    Each backend runs in a fresh process: Keras is imported, the model built, a few batches fitted to compile it, then more batches timed. `backend: auto` picks the backend whose estimate for the whole run (start-up and steps) is smallest; `dlrun train` measures the same lazily, once per model, machine and versions. Set DLRUN_CALIBRATE=off to keep auto's fixed rule instead.
    """
    from rich.table import Table

    from dlrun import config, errors, terminal
    from dlrun.training import calibration

    console = terminal.console()
    loaded = config.load(config_file, set_items)
    runnable = calibration.candidates(loaded)
    chosen = runnable
    if backends is not None:
        chosen = [name.strip() for name in backends.split(",") if name.strip()]
        wrong = [name for name in chosen if name not in runnable]
        if wrong or not chosen:
            raise errors.UsageError(
                f"--backends: received {backends!r}; expected a comma-separated list of backends "
                f"installed here that can run this config: {', '.join(runnable) or 'none'}"
            )
    why_not = calibration.not_applicable(loaded.model_copy(update={"backend": "auto"}), command=True)
    if why_not is not None and backends is None:
        console.print(f"nothing to calibrate: {why_not}; backend: auto uses its fixed rule", highlight=False, soft_wrap=True)
        return
    console.print(f"calibrating {terminal.text(loaded.name)} on {', '.join(chosen)} (a fresh process each)...", highlight=False)
    result = calibration.measure(loaded, chosen, console)
    table = Table("backend", "import s", "build s", "first fit s", "ms/step", "estimated run s", box=None)
    ranked = result.ranked(loaded.train.epochs, loaded.train.batch_size)
    warm = []
    for measurement, estimate in ranked:
        build, first = f"{measurement.build_seconds:.2f}", f"{measurement.first_step_seconds:.2f}"
        if measurement.warm_build_seconds is not None and measurement.warm_first_step_seconds is not None:
            warm.append(f"{measurement.backend}: build {build} s, first fit {first} s on the run that compiled")
            build, first = f"{measurement.warm_build_seconds:.2f}*", f"{measurement.warm_first_step_seconds:.2f}*"
        table.add_row(
            measurement.backend, f"{measurement.import_seconds:.2f}", build, first, f"{measurement.step_ms:.3g}", f"{estimate:.1f}"
        )
    for measurement in result.measurements:
        if measurement.error:
            table.add_row(measurement.backend, "-", "-", "-", "-", terminal.text(measurement.error))
    console.print(table)
    if warm:
        console.print(
            f"* with the compilation cache this calibration filled, as every later run ({'; '.join(warm)})", highlight=False, soft_wrap=True
        )
    choice = result.choice(loaded)
    if choice is None:
        raise errors.TrainingFailed(f"calibration timed no backend ({', '.join(chosen)}); backend: auto keeps its fixed rule")
    console.print(f"backend: auto picks {choice.name} ({choice.reason})", highlight=False, soft_wrap=True)
    if loaded.backend != "auto":
        console.print(f"note: the config sets backend: {loaded.backend}, which never calibrates", highlight=False, soft_wrap=True)
    stored = f"stored in {terminal.text(result.path)}" if result.path else "not stored (a backend timed out)"
    console.print(f"{stored}; measured in {result.seconds:.1f} s", highlight=False, soft_wrap=True)
