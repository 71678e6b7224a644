"""Sweep trials repeated over seeds (`dlrun sweep --seeds N`, `search.seeds`): each trial point trained N times.

Such a trial is a `dlrun train --seeds N` group of the trial's config (`dlrun.trials.seeds`: seeds `seed`
... `seed + N - 1`, its folder, its resume), scored by the mean over its seeds of each seed's best value
of the metric (`dlrun.trials.search.mean_objective`); the pruner judges that mean after each seed (its step
is the seed's number, from 1). The spread over the seeds (mean +- std of every metric) is the group's own
(`dlrun.trials.spread.aggregate`), kept with the trial in `sweep.json` and shown by the sweep's table.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from dlrun import config as config_module, errors, runs
from dlrun.config import search as search_config
from dlrun.runs import history
from dlrun.trials import outcomes, search as search_engine, seeds, spread


def run_trial(payload: dict, emit: outcomes.Emit) -> dict:
    """Train one trial over `payload["seeds"]` seeds (an executor's worker; `payload` as
    `dlrun.trials.trial.run_trial`'s). A group that stopped part-way (`payload["run"]`) continues: completed
    seeds are kept, a seed killed mid-way continues from its checkpoint. Returns {"state", "run", "history"
    (the last completed seed's), "best" ({"epoch": None, "value": the mean}), "spread", and "pruned" ({"seed",
    "reason"}) when pruned}; a failure raises."""
    from rich import console as rich_console

    from dlrun import backend

    study = payload["study"]
    search = search_config.SearchConfig.model_validate(study["search"])
    reporter = search_engine.Reporter(study["url"], study["name"], study["trial_id"], search)
    quiet = rich_console.Console(file=io.StringIO(), width=120)  # the group's folder records everything
    started: dict = {}

    def watch(run: runs.Run, state: dict, child: dict | None) -> None:
        if child is None:
            started["run"] = run
            emit({"type": "started", "run": str(run.path), "after_epoch": None})
            return
        emit({"type": "note", "text": f"seed {child['seed']} ({child['index'] + 1} of {state['count']}) completed"})
        partial = search_engine.mean_objective(_histories(state), search.metric, search.direction)
        if partial is not None:
            reporter.part(child["index"] + 1, partial, "seed")  # raises TrialPruned: the group is recorded as pruned

    config = config_module.validate(payload["config"])
    backend.activate(config)  # quietly, on the trial's backend, before the trainer imports Keras
    previous = Path(payload["run"]) if payload.get("run") else None
    try:
        if previous is not None and (previous / seeds.FILE_NAME).is_file():
            seeds.resume(previous, quiet, command=payload["command"], watch=watch)
            return _result(previous, search)
        return _result(seeds.train(config, quiet, payload["seeds"], command=payload["command"], watch=watch).path, search)
    except errors.Interrupted:
        raise KeyboardInterrupt from None
    except errors.TrialPruned as pruned:
        return {**_result(started["run"].path, search), "state": "pruned", "pruned": pruned.record()}


def _histories(state: dict) -> list[dict]:
    """The histories of the group's completed seeds, in seed order."""
    return [history.load(Path(child["run"]) / history.FILE_NAME) for child in state["children"] if child["status"] == "completed"]


def _result(folder: Path, search: search_config.SearchConfig) -> dict:
    state = json.loads((folder / seeds.FILE_NAME).read_text(encoding="utf-8"))
    done = [child for child in state["children"] if child["status"] == "completed"]
    histories = _histories(state)
    score = search_engine.mean_objective(histories, search.metric, search.direction)
    return {
        "state": "completed",
        "run": str(folder),
        "history": histories[-1] if histories else history.empty(),
        "best": None if score is None else {"epoch": None, "value": score},
        "spread": spread.aggregate([child["metrics"] for child in done]),
    }


def check(search: search_config.SearchConfig, flags: bool) -> None:
    """Seeds and K-fold trials do not go together (each fold is trained with its own seed already); `flags`:
    either came from the command line (a usage error), else both from the section (a config error)."""
    if search.seeds > 1 and search.kfold is not None:
        error = errors.UsageError if flags else errors.ConfigError
        raise error(
            f"{'--seeds' if flags else 'search.seeds'}: received {search.seeds} with K-fold trials (kfold {search.kfold}); "
            "expected one of seeds or kfold (each fold is trained with its own seed already)"
        )
