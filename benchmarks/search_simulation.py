"""Search quality per time, simulated offline: TPE with each candidate pruner replayed over a grid's real curves.

`benchmarks/search_quality.py` trains every trial, so one comparison costs half an hour on the 2-core
machine. This script answers "which pruner setting would meet issue 15's acceptance?" in seconds, from
the curves of one exhaustive grid run (`--record SWEEP_DIR` writes them to a JSON file, `--curves` reads
it; `benchmarks/results/search_curves.json` holds those of `configs/quickstart.yaml` over the issue's space).

Each trial asks dlrun's own sampler (`dlrun.trials.search.sampler` and `suggest`, re-seeded before every
ask exactly as `dlrun sweep` does) for a point, then replays that point's recorded val_loss epoch by
epoch: `trial.report` each epoch, stopped when the pruner says so (a trained point gives the same
curve every time: same seed, same config). A completed trial's value is its best epoch's, as dlrun
scores it; the best of a sweep is its best completed trial's. With `reuse`, a point already finished
is not replayed: the trial takes the earlier trial's outcome (completed with its value, or pruned),
reports no epochs, and costs only the sweep's own work between trials (dlrun's `search.repeats: reuse`).

Cost of a sweep = its fixed start (process, data, plots: the grid's wall minus its trials) + per trial
the measured start-up (the sweep's work between two trials plus a trial's run wall minus its fit time,
the grid's means) + the epochs trained times the grid's mean seconds per epoch (one for every point:
on a shared machine a point's own epoch time is mostly the load it met). The grid's cost, so computed,
is its wall (both are printed). The
verdict per candidate: the median over the sampler seeds of (best / grid's best - 1) and of (cost /
grid's cost); "meets" when the quality gap is <= 1% and the time ratio <= 0.5 for that median.

    python benchmarks/search_simulation.py --record /path/to/grid-sweep-folder   # writes the curves file
    python benchmarks/search_simulation.py [--curves FILE] [--seeds 3] [--trials 30]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
CURVES = ROOT / "benchmarks" / "results" / "search_curves.json"
METRIC = "val_loss"


def _seconds(start: str, end: str) -> float:
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def record(sweep_folder: Path, output: Path) -> dict:
    """The curves of a finished grid sweep (every trial completed, no pruning) as JSON, with its timings."""
    state = json.loads((sweep_folder / "sweep.json").read_text())
    sweep_run = json.loads((sweep_folder / "run.json").read_text())
    points = []
    for trial in state["trials"]:
        if trial["status"] != "completed":
            raise SystemExit(f"trial {trial['number']} is {trial['status']}: record a grid that trained every point (pruner none)")
        run = Path(trial["run"])
        history = json.loads((run / "history.json").read_text())
        meta = json.loads((run / "run.json").read_text())
        points.append(
            {
                "overrides": trial["overrides"],
                METRIC: history[METRIC],
                "run_seconds": meta["duration_s"],
                "started_at": meta["started_at"],
                "ended_at": meta["ended_at"],
                "fit_seconds": meta["fit_seconds"],
                "epochs": len(history["epoch"]),
                "backend": meta.get("backend", {}).get("name"),
            }
        )
    wall = _seconds(sweep_run["started_at"], sweep_run["ended_at"])
    ordered = sorted(points, key=lambda point: point["started_at"])
    gaps = [_seconds(before["ended_at"], after["started_at"]) for before, after in zip(ordered, ordered[1:])]
    curves = {
        "source": str(sweep_folder),
        "date": sweep_run["started_at"],
        "search": state["search"],
        "sweep_seconds": round(wall, 2),
        "between_trials_seconds": round(statistics.fmean(gaps), 3),  # the sweep's own work per trial (ask, tell, sweep.json)
        "before_and_after_trials_seconds": round(
            _seconds(sweep_run["started_at"], ordered[0]["started_at"]) + _seconds(ordered[-1]["ended_at"], sweep_run["ended_at"]), 2
        ),
        "points": points,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(curves, indent=1) + "\n")
    return curves


class Replay:
    """The recorded curves and the cost model (see the module docstring)."""

    def __init__(self, curves: dict) -> None:
        self.curves = curves
        self.points = {json.dumps(point["overrides"], sort_keys=True): point for point in curves["points"]}
        self.between = between = curves["between_trials_seconds"]
        points = curves["points"]
        self.start = between + statistics.fmean(point["run_seconds"] - point["fit_seconds"] for point in points)
        # one epoch time for every point (the mean): on a shared machine a point's own is mostly the load it met
        self.epoch = sum(point["fit_seconds"] for point in points) / sum(point["epochs"] for point in points)
        self.fixed = curves.get("before_and_after_trials_seconds")
        if self.fixed is None:  # a file recorded before that was kept: the grid's wall less its trials
            self.fixed = max(curves["sweep_seconds"] - sum(between + point["run_seconds"] for point in points), 0.0)
        self.grid_cost = self.fixed + sum(self.start + point["epochs"] * self.epoch for point in points)
        self.grid_best = min(min(point[METRIC]) for point in curves["points"])

    def epoch_seconds(self, point: dict) -> float:
        return self.epoch

    def run(self, make_pruner: Callable[[], object], seed: int, trials: int, reuse: bool) -> dict:
        """One simulated TPE sweep: its best value, cost, share pruned, distinct points and repeats reused."""
        import optuna

        from dlrun.config import search as search_config
        from dlrun.trials import search as search_engine

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search = search_config.SearchConfig.model_validate({**self.curves["search"], "sampler": "tpe", "seed": seed})
        study = optuna.create_study(direction="minimize", pruner=make_pruner())  # type: ignore[arg-type]
        finished: dict[str, tuple[str, float | None]] = {}
        cost, pruned, reused = self.fixed, 0, 0
        for asked in range(trials):
            study.sampler = search_engine.sampler(search, asked)
            trial = study.ask()
            key = json.dumps(search_engine.suggest(trial, search), sort_keys=True)
            if reuse and key in finished:
                state, value = finished[key]
                reused += 1
                cost += self.between  # asked and told, not trained
                if state == "pruned":
                    pruned += 1
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, value)
                continue
            point = self.points[key]
            cost += self.start
            for epoch, value in enumerate(point[METRIC], start=1):
                trial.report(value, epoch)
                cost += self.epoch_seconds(point)
                if trial.should_prune():
                    pruned += 1
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    finished.setdefault(key, ("pruned", None))
                    break
            else:
                study.tell(trial, min(point[METRIC]))
                finished[key] = ("completed", min(point[METRIC]))
        values = [trial.value for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
        best = min(values) if values else float("inf")
        return {
            "gap": best / self.grid_best - 1,
            "ratio": cost / self.grid_cost,
            "pruned": pruned / trials,
            "distinct": len({json.dumps(trial.params, sort_keys=True) for trial in study.trials}),
            "reused": reused,
        }


def candidates() -> dict[str, Callable[[], object]]:
    """Every pruner setting tried, by name (Optuna's own classes; steps are epochs counted from 1)."""
    import optuna

    pruners = optuna.pruners
    found: dict[str, Callable[[], object]] = {"none": pruners.NopPruner}
    for factor in (2, 3, 4):
        for first in range(1, 9):
            found[f"asha rf{factor} min{first}"] = lambda f=factor, m=first: pruners.SuccessiveHalvingPruner(
                min_resource=m, reduction_factor=f
            )
    for factor in (2, 3, 4):
        for first in (1, 2, 4):
            found[f"hyperband rf{factor} min{first}"] = lambda f=factor, m=first: pruners.HyperbandPruner(
                min_resource=m, max_resource=20, reduction_factor=f
            )
    for warmup in (2, 4, 6, 8, 10):
        found[f"median warmup{warmup}"] = lambda w=warmup: pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=w)
    for patience in (2, 4):
        for factor, first in ((4, 2), (3, 2), (2, 2)):
            found[f"patient{patience}(asha rf{factor} min{first})"] = lambda p=patience, f=factor, m=first: pruners.PatientPruner(
                pruners.SuccessiveHalvingPruner(min_resource=m, reduction_factor=f), patience=p
            )
        found[f"patient{patience}(median warmup2)"] = lambda p=patience: pruners.PatientPruner(
            pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2), patience=p
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="a finished grid sweep folder: write its curves to --curves and stop")
    parser.add_argument("--curves", type=Path, default=CURVES, help=f"the curves file (default {CURVES.relative_to(ROOT)})")
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds 0..N-1 (the median is judged)")
    parser.add_argument("--trials", type=int, default=30, help="the trial budget of each simulated sweep")
    parser.add_argument("--only", help="run only the candidates whose name contains this text")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    options = parser.parse_args()
    if options.record:
        curves = record(options.record, options.curves)
        print(f"wrote {len(curves['points'])} curves to {options.curves}")
        return
    replay = Replay(json.loads(options.curves.read_text()))
    print(
        f"grid: best {METRIC} {replay.grid_best:.4f}, cost {replay.grid_cost:.1f} s (wall {replay.curves['sweep_seconds']:.1f} s; "
        f"fixed {replay.fixed:.1f} s, trial start-up {replay.start:.2f} s, epoch {replay.epoch:.2f} s); "
        f"seeds 0..{options.seeds - 1}, {options.trials} trials"
    )
    print("| candidate | repeats | gap per seed | median gap | time per seed | median time | pruned | distinct | reused | meets |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for name, make in candidates().items():
        if options.only and options.only not in name:
            continue
        for reuse in (False, True):
            runs = [replay.run(make, seed, options.trials, reuse) for seed in range(options.seeds)]
            gap, ratio = statistics.median(run["gap"] for run in runs), statistics.median(run["ratio"] for run in runs)
            meets = gap <= 0.01 and ratio <= 0.5
            results.append({"candidate": name, "reuse": reuse, "runs": runs, "gap": gap, "ratio": ratio, "meets": meets})
            print(
                f"| {name} | {'reuse' if reuse else 'train'} | {' / '.join(format(run['gap'], '+.1%') for run in runs)} | {gap:+.1%} | "
                f"{' / '.join(format(run['ratio'], '.2f') for run in runs)} | {ratio:.2f}x | "
                f"{statistics.median(run['pruned'] for run in runs):.0%} | {statistics.median(run['distinct'] for run in runs):.0f} | "
                f"{statistics.median(run['reused'] for run in runs):.0f} | {'yes' if meets else 'no'} |",
                flush=True,
            )
    if options.json:
        options.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
