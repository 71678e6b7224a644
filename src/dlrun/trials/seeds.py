"""`dlrun train CONFIG --seeds N`: one config trained N times, with seeds `seed`, `seed+1`, ..., as a group.

Each seed is a normal `dlrun train` run of the one training function (`dlrun.training.trainer.train`),
its config the group's with only `seed`, `name` (`<name>-s<seed>`) and `output.runs_root` changed. The
group folder (`<runs_root>/<timestamp>_<name>-seeds/`) holds `run.json` (kind `seeds`), the base
`config.yaml`, `seeds.json` (each seed's status, run folder and final metrics, and the spread over them:
`dlrun.trials.spread`) and `runs/`, the seeds' run folders. `dlrun train --resume GROUP_DIR` keeps the
completed seeds, continues a seed that stopped part-way from its last checkpoint (`dlrun train
--resume` of its run folder) and trains the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dlrun import config as config_module, errors, runs, terminal
from dlrun.config import schema
from dlrun.trials import outcomes, spread

if TYPE_CHECKING:
    from rich.console import Console

FILE_NAME = "seeds.json"
KIND = "seeds"
FORMAT = 1
CHILDREN_FOLDER = "runs"


def check_count(count: int) -> None:
    if count < 1:
        raise errors.UsageError(f"--seeds: received {count}; expected a number of seeds >= 1")


def child_config(base: schema.Config, index: int, children_root: str | Path) -> schema.Config:
    """The config of the group's seed number `index` (from 0): the base's, with `seed + index`."""
    data = config_module.to_data(base)
    seed = base.seed + index
    data.update(seed=seed, name=f"{base.name}-s{seed}")
    data["output"]["runs_root"] = str(children_root)
    return config_module.validate(data, source=f"for --seeds (seed {seed})")


def is_group(run_dir: str | Path) -> bool:
    """Whether `run_dir` is a seeds group's folder (its run.json says kind `seeds`)."""
    try:
        return runs.Run.open(run_dir).record.get("kind") == KIND
    except errors.RunError:
        return False


def train(
    config: schema.Config, console: Console, count: int, command: list[str] | None = None, watch: Callable[..., None] | None = None
) -> runs.Run:
    """Train `config` `count` times (see the module docstring); return the completed group's run.

    `watch(run, state, child)`, when given, is called once the group has started (child None) and after each
    seed completes; a sweep trial trained over seeds reports through it, and may stop the group by raising
    `errors.TrialPruned`."""
    check_count(count)
    for index in range(count):  # every seed's config is valid before the folder exists
        child_config(config, index, Path(config.output.runs_root) / "seeds" / CHILDREN_FOLDER)
    run = runs.create(config.output.runs_root, f"{config.name}-seeds")  # marked interrupted by a Ctrl-C from here on
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
    state: dict = {
        "format": FORMAT,
        "count": count,
        "children": [{"index": index, "seed": config.seed + index, "status": "pending"} for index in range(count)],
    }
    run.write_json(FILE_NAME, state)
    run.start(command, config.seed, runs.versions(), extra={"kind": KIND, "seeds": [child["seed"] for child in state["children"]]})
    console.print(
        f"seeds group: [bold]{terminal.text(run.path)}[/bold]; {count} runs of {terminal.text(config.name)}, "
        f"seeds {config.seed}..{config.seed + count - 1}",
        highlight=False,
        soft_wrap=True,
    )
    return _execute(run, state, config, console, watch)


def resume(
    group_dir: str | Path,
    console: Console,
    count: int | None = None,
    command: list[str] | None = None,
    watch: Callable[..., None] | None = None,
) -> runs.Run | None:
    """Continue a seeds group that stopped; None (and nothing done) when it had completed."""
    run = runs.Run.open_to_continue(group_dir)
    try:
        state = json.loads((run.path / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise errors.RunError(f"{run.path / FILE_NAME}: missing or unreadable; expected a group made by `dlrun train --seeds`") from None
    if count is not None and count != state["count"]:
        raise errors.UsageError(
            f"--seeds: received {count} with --resume {group_dir}; expected the group's own {state['count']} (or no --seeds)"
        )
    if run.record.get("status") == "completed":
        return None
    config = config_module.load(run.path / runs.CONFIG_FILE)
    done = sum(child["status"] == "completed" for child in state["children"])
    run.resume(command, epochs_completed=0)
    console.print(
        f"seeds group: [bold]{terminal.text(run.path)}[/bold]; {done} of {state['count']} seeds already completed",
        highlight=False,
        soft_wrap=True,
    )
    return _execute(run, state, config, console, watch)


def _execute(run: runs.Run, state: dict, config: schema.Config, console: Console, watch: Callable[..., None] | None = None) -> runs.Run:
    children_root = run.path / CHILDREN_FOLDER
    failed = []

    def stopped() -> tuple[str, dict]:
        done = outcomes.mark_interrupted(run, FILE_NAME, state, "children")
        return f"after {done} of {state['count']} seed(s)", {"seeds_completed": done}

    def started(child: dict, child_run: runs.Run) -> None:
        child.update(status="running", run=str(child_run.path))  # so --resume continues this run folder
        run.write_json(FILE_NAME, state)

    with runs.recorded(run, "seeds", f"dlrun train --resume {run.path}", stopped):
        if watch is not None:
            watch(run, state, None)
        for child in state["children"]:
            if child["status"] == "completed":
                continue
            console.rule(f"seed {child['seed']} ({child['index'] + 1} of {state['count']})")
            try:
                child_path = _train_child(run, child, config, children_root, console, started)
            except errors.Interrupted:
                child["status"] = "interrupted"
                raise KeyboardInterrupt from None
            except errors.DlrunError as error:
                child.update(status="failed", error=str(error))
                run.write_json(FILE_NAME, state)
                if "run" not in child:
                    raise  # it failed before its run folder existed: every seed would fail the same way
                failed.append(f"seed {child['seed']}: {error}")
                continue
            child.update(status="completed", run=str(child_path), metrics=spread.run_metrics(child_path))
            child.pop("error", None)
            run.write_json(FILE_NAME, state)
            if watch is not None:
                watch(run, state, child)
    return _finish(run, state, failed, console)


def _train_child(
    run: runs.Run, child: dict, config: schema.Config, children_root: Path, console: Console, started: Callable[[dict, runs.Run], None]
) -> Path:
    """Train one seed, or continue its run folder (a group continued with --resume); return its folder."""
    from dlrun.training import resume, trainer

    def on_start(child_run: runs.Run) -> None:
        started(child, child_run)

    command = ["dlrun", "train", f"(seeds {run.path.name}, seed {child['seed']})"]
    path = child.get("run")
    if not path or not (Path(path) / runs.RUN_FILE).is_file():  # not started, or killed before its run.json
        return trainer.train(child_config(config, child["index"], children_root), console, command=command, on_start=on_start).path
    previous, resolved = resume.prepare(Path(path), None, [], False)  # the one resume: its stored config, its checkpoint
    if previous is None:
        return Path(path)  # it had completed; the group stopped before recording it
    return trainer.train(resolved, console, command=command, resume_run=previous, on_start=on_start).path


def _finish(run: runs.Run, state: dict, failed: list[str], console: Console) -> runs.Run:
    completed = [child for child in state["children"] if child["status"] == "completed"]
    state["aggregate"] = spread.aggregate([child["metrics"] for child in completed])
    state["status"] = "failed" if failed else "completed"
    run.write_json(FILE_NAME, state)
    metric_names = runs.Run.open(completed[0]["run"]).record.get("metrics") if completed else None
    summary = {"seeds_completed": len(completed), "aggregate": state["aggregate"], "metrics": metric_names}
    for child in state["children"]:
        test = (child.get("metrics") or {}).get("test") or {}
        shown = ", ".join(f"{name} {value:.4f}" for name, value in test.items()) or child.get("error", "")
        console.print(
            f"seed {child['seed']}: {child['status']}{': ' + shown if shown else ''}", highlight=False, soft_wrap=True, markup=False
        )
    outcomes.finish(run, failed, state["count"], "seed", f"dlrun train --resume {run.path}", summary, console)
    for line in spread.lines(state["aggregate"]):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    return run
