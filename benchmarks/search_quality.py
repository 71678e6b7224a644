"""Search quality per time: the exhaustive grid vs TPE + ASHA over the same discrete space, whole `dlrun sweep` processes.

Issue 15's fixed space over `configs/quickstart.yaml` (digits convnet), `train.epochs: 20`, no callbacks
(early stopping off; no checkpoint file either): learning rate {1e-4, 3e-4, 1e-3, 3e-3, 1e-2} x batch size
{16, 32, 64} x dense units {32, 64} = 30 points. The grid trains all 30 (sampler grid, pruner none); TPE +
ASHA gets a 30-trial budget over the same choices (sampler tpe, pruner asha), once per sampler seed. For
each: the best val_loss (the best epoch of the best trial), the wall time, the share of trials pruned.
The acceptance: TPE + ASHA's best within 1% of the grid's in <= 0.5x its wall time (median over seeds).

`--warmup-epochs N`, `--reduction-factor F` (defaults WARMUP_EPOCHS and REDUCTION_FACTOR below): the TPE + ASHA sweeps'
`search.warmup_epochs` and `search.reduction_factor`; ASHA's first rung is epoch N + 1 (Optuna's
SuccessiveHalvingPruner, min_resource N + 1: rungs at N + 1, F(N + 1), ...). `--repeats reuse` (default) or
`train`: the sweeps' `search.repeats` (`train`, with `--reduction-factor 4`, is the setting of the first runs).
The grid's curves are written to `benchmarks/results/search_quality_curves.json` for `search_simulation.py`.

`--quick`: 6 epochs and the space lr {1e-3, 3e-3, 1e-2} x batch {32, 64} x units {32, 64} (12 points,
a 12-trial budget): the same comparison at a size a shared 2-core machine runs in a few minutes.

    python benchmarks/search_quality.py [--quick] [--seeds 3] [--warmup-epochs 2] [--reduction-factor 3] [--repeats reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import common
import search_simulation

FULL = {"epochs": 20, "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "batch_size": [16, 32, 64], "dense_units": [[32], [64]]}
# What benchmarks/search_simulation.py chose over the grid's recorded curves (BENCHMARKS.md has its table):
# ASHA's first rung at epoch 3 (warmup_epochs 2), reduction factor 3 (rungs at 3 and 9), repeated points reused.
# The first runs' setting: --warmup-epochs 1 --reduction-factor 4 --repeats train.
WARMUP_EPOCHS = 2
REDUCTION_FACTOR = 3
QUICK = {"epochs": 6, "learning_rate": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64], "dense_units": [[32], [64]]}

CONFIG = """\
extends: {base}
train:
  epochs: {epochs}
  callbacks: []
output: {{runs_root: {root}, plots: false, save_model: false}}
search:
  metric: val_loss
  sampler: {sampler}
  pruner: {pruner}
  warmup_epochs: {warmup_epochs}
  reduction_factor: {reduction_factor}
  repeats: {repeats}
  trials: {trials}
  seed: {seed}
  space:
    compile.optimizer.learning_rate: {{choice: {learning_rate}}}
    train.batch_size: {{choice: {batch_size}}}
    model.dense_units: {{choice: {dense_units}}}
"""


def sweep(space: dict, sampler: str, pruner: str, seed: int, folder: Path, setting: argparse.Namespace, watch: dict | None = None) -> dict:
    """One whole `dlrun sweep` process; its wall time, best val_loss, the share of trials pruned, the repeats
    reused, the load average around it, and how the trials of the point `watch` (the grid's best) ended."""
    points = len(space["learning_rate"]) * len(space["batch_size"]) * len(space["dense_units"])
    config = folder / f"{sampler}-{seed}.yaml"
    root = folder / f"{sampler}-{seed}"
    config.write_text(
        CONFIG.format(
            base=json.dumps(str(common.ROOT / "configs" / "quickstart.yaml")),
            root=json.dumps(str(root)),
            sampler=sampler,
            pruner=pruner,
            trials=points,
            seed=seed,
            warmup_epochs=setting.warmup_epochs,
            reduction_factor=setting.reduction_factor,
            repeats=setting.repeats,
            **{key: json.dumps(value) for key, value in space.items()},
        )
    )
    load_before = os.getloadavg()[0]
    seconds, _ = common.run([common.PYTHON, "-m", "dlrun", "sweep", str(config)])
    load_after = os.getloadavg()[0]
    (run,) = [path for path in root.iterdir() if path.is_dir()]
    state = json.loads((run / "sweep.json").read_text())
    if sampler == "grid":  # its curves, for benchmarks/search_simulation.py to replay
        search_simulation.record(run, common.RESULTS / f"search_quality_curves{'_quick' if space is QUICK else ''}.json")
    best = next(trial for trial in state["trials"] if trial["number"] == state["ranking"][0])
    trials = state["trials"]
    return {
        "sampler": sampler,
        "pruner": pruner,
        "seed": seed,
        "seconds": round(seconds, 1),
        "load_average": [round(load_before, 1), round(load_after, 1)],
        "trials": len(trials),
        "best_val_loss": best["best"]["value"],
        "best_overrides": best["overrides"],
        "pruned_share": sum(trial["status"] == "pruned" for trial in trials) / len(trials),
        "distinct_points": len({json.dumps(trial["overrides"], sort_keys=True) for trial in trials}),
        "repeats_reused": sum("repeat_of" in trial for trial in trials),
        "watched_point": [
            (f"repeat of trial {trial['repeat_of']}" if "repeat_of" in trial else trial["status"])
            + (f" at epoch {trial['pruned'].get('epoch')}" if trial.get("pruned") and "repeat_of" not in trial else "")
            for trial in trials
            if watch is not None and trial["overrides"] == watch
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 epochs, 12 points (see the module docstring)")
    parser.add_argument("--seeds", type=int, default=3, help="TPE + ASHA sampler seeds (the median is reported)")
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=WARMUP_EPOCHS,
        help=f"search.warmup_epochs of the TPE + ASHA sweeps: ASHA's first rung is the epoch after (default {WARMUP_EPOCHS})",
    )
    parser.add_argument(
        "--reduction-factor", type=int, default=REDUCTION_FACTOR, help=f"search.reduction_factor of ASHA (default {REDUCTION_FACTOR})"
    )
    parser.add_argument(
        "--repeats", choices=("reuse", "train"), default="reuse", help="search.repeats of the TPE sweeps (default reuse; train: as before)"
    )
    options = parser.parse_args()
    space = QUICK if options.quick else FULL
    with tempfile.TemporaryDirectory(prefix="dlrun-search-quality-") as scratch:
        folder = Path(scratch)
        grid = sweep(space, "grid", "none", 0, folder, options, watch={})
        print(json.dumps(grid), flush=True)
        tpe = []
        for seed in range(options.seeds):
            tpe.append(sweep(space, "tpe", "asha", seed, folder, options, watch=grid["best_overrides"]))
            print(json.dumps(tpe[-1]), flush=True)
    median = {key: statistics.median(result[key] for result in tpe) for key in ("seconds", "best_val_loss", "pruned_share")}
    outcome = {
        "quick": options.quick,
        "warmup_epochs": options.warmup_epochs,
        "reduction_factor": options.reduction_factor,
        "repeats": options.repeats,
        "space": space,
        "grid": grid,
        "tpe_asha": tpe,
        "tpe_asha_median": median,
        "time_ratio": round(median["seconds"] / grid["seconds"], 3),
        "best_gap": round(median["best_val_loss"] / grid["best_val_loss"] - 1, 4),
    }
    print(f"saved {common.save('search_quality', outcome)}")
    print(
        f"grid: best val_loss {grid['best_val_loss']:.4f} in {grid['seconds']:.0f} s ({grid['trials']} trials; "
        f"load {grid['load_average'][0]}-{grid['load_average'][1]})"
    )
    for result in tpe:
        print(
            f"tpe+asha seed {result['seed']}: best val_loss {result['best_val_loss']:.4f} in {result['seconds']:.0f} s, "
            f"{result['pruned_share']:.0%} pruned, {result['distinct_points']} distinct points, {result['repeats_reused']} repeats reused; "
            f"load {result['load_average'][0]}-{result['load_average'][1]}; the grid's best point: "
            f"{', '.join(result['watched_point']) or 'never tried'}"
        )
    print(f"median tpe+asha / grid: time {outcome['time_ratio']:.2f}x, best val_loss {outcome['best_gap']:+.2%}")


if __name__ == "__main__":
    main()
