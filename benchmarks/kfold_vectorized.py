"""K-fold as one JAX program (`--executor vectorized`) vs sequential vs a pool of 2 workers, side by side.

The notes' Boston MLP on Boston-shaped data (benchmarks/kfold_workers.py: 404 samples x 13 features in the
folds, Dense 64-64-1, rmsprop, mse, mae, batch 16, 80 epochs), K=4, optionally `--repeats P` (P x K fits),
`--no-final` (the refit is the same sequential work on every side), on JAX. Whole `dlrun kfold` processes;
the sides alternate in every round (sequential, pool, vectorized, ...). Each run's per-fold histories are
checked against the round's sequential run: the pool's identical, the vectorized run's first 3 epochs to
1e-5 (else it stops); whether every vectorized history is identical to the sequential one (it is meant to
be: docs/vectorized.md), the largest relative difference at the last epoch and both recommended epoch
counts are reported.
Ratios are per round (side / sequential): min, median, max. The acceptance case of issue 17 (20 fits: 4 folds
x 5 repeats, the final validation MAE of every fold within 1e-4 relative of the sequential run's, the same
recommended epoch count) is `--repeats 5 --sides sequential,vectorized`; `final_val_mae_largest_relative_difference`
reports the first.

    nice python benchmarks/kfold_vectorized.py [--rounds 3] [--repeats 1] [--sides sequential,pool,vectorized]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

import common

CONFIG = """\
name: boston_shaped
seed: 0
backend: jax
data: {name: synthetic, task: regression, num_samples: 506, input_shape: [13], noise: 0.5, test_split: 0.2, validation_split: 0.0}
model: {architecture: mlp, units: [64, 64]}
compile: {optimizer: rmsprop, loss: mse, metrics: [mae]}
train: {epochs: 80, batch_size: 16}
output: {plots: false, save_model: false}
"""
SIDES = {"sequential": ["--executor", "sequential"], "pool": ["--workers", "2"], "vectorized": ["--executor", "vectorized"]}


def run_kfold(config: Path, options: list[str], repeats: int) -> tuple[float, list[dict], float, int]:
    """One whole `dlrun kfold` process: (wall seconds, every fold's history, the folds' training seconds,
    the recommended epochs). Training seconds: the sum of the folds' own times one by one; the largest of
    them for the other sides (vectorized folds share one clock; the pool's run two at a time)."""
    with tempfile.TemporaryDirectory() as root:
        seconds, _ = common.run(
            [
                common.PYTHON,
                "-m",
                "dlrun",
                "kfold",
                str(config),
                "--k",
                "4",
                "--repeats",
                str(repeats),
                "--no-final",
                "--set",
                f"output.runs_root={root}",
                *options,
            ]
        )
        (folder,) = Path(root).iterdir()
        state = json.loads((folder / "kfold.json").read_text())
        histories = [json.loads((folder / "folds" / str(fold["index"]) / "history.json").read_text()) for fold in state["folds"]]
    assert state["samples"] == 404, state["samples"]
    fold_seconds = [fold["seconds"] for fold in state["folds"]]
    training = sum(fold_seconds) if state["executor"]["executor"] == "sequential" else max(fold_seconds)
    return seconds, histories, training, state["recommended_epochs"]


def largest_difference(found: list[dict], expected: list[dict], epochs: slice) -> float:
    """The largest relative difference of any logged value in `epochs` between two runs' folds."""
    worst = 0.0
    for one, other in zip(found, expected):
        for key in other:
            a, b = np.array(one[key][epochs], dtype=float), np.array(other[key][epochs], dtype=float)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three sides, alternating")
    parser.add_argument("--repeats", type=int, default=1, help="dlrun kfold --repeats (P x 4 fits)")
    parser.add_argument("--sides", default=",".join(SIDES), help="which sides to run (sequential first)")
    arguments = parser.parse_args()
    sides = {side: SIDES[side] for side in arguments.sides.split(",")}
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {side: [] for side in sides}
    fold_seconds: dict[str, list[float]] = {side: [] for side in sides}
    first, last, final_mae, recommended, identical = [], [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "boston_shaped.yaml"
        config.write_text(CONFIG)
        for _ in range(arguments.rounds):
            reference, reference_epochs = None, None
            for side, options in sides.items():
                seconds, histories, training, epochs = run_kfold(config, options, arguments.repeats)
                if reference is None:
                    reference, reference_epochs = histories, epochs
                elif side == "pool" and histories != reference:
                    raise SystemExit("the pool's per-fold histories differ from the sequential run's")
                elif side == "vectorized":
                    first.append(largest_difference(histories, reference, slice(0, 3)))
                    last.append(largest_difference(histories, reference, slice(-1, None)))
                    final_mae.append(
                        largest_difference(
                            [{"val_mae": history["val_mae"]} for history in histories],
                            [{"val_mae": history["val_mae"]} for history in reference],
                            slice(-1, None),
                        )
                    )
                    recommended.append({"sequential": reference_epochs, "vectorized": epochs})
                    identical.append(histories == reference)
                    if first[-1] > 1e-5:
                        raise SystemExit(f"vectorized differs from sequential by {first[-1]:.2g} (relative) > 1e-5 in the first 3 epochs")
                times[side].append(seconds)
                fold_seconds[side].append(training)
                print(f"{side}: {seconds:.1f} s (training {training:.1f} s)", flush=True)
    payload = {
        "machine": common.machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "case": f"K=4 x {arguments.repeats} repeat(s) x 80 epochs, batch 16, 404 x 13 synthetic regression, Dense 64-64-1, --no-final, JAX",
        **{f"{side}_s": common.summary(values) for side, values in times.items()},
        **{f"{side}_training_s": common.summary(values) for side, values in fold_seconds.items()},
        **{
            f"{side}_over_sequential": common.summary([value / base for value, base in zip(times[side], times["sequential"])])
            for side in sides
            if side != "sequential"
        },
        "vectorized_largest_relative_difference_epochs_1_3": max(first),
        "vectorized_largest_relative_difference_last_epoch": max(last),
        "final_val_mae_largest_relative_difference": max(final_mae),
        "recommended_epochs": recommended,
        "vectorized_histories_identical": identical,
    }
    print(json.dumps(payload, indent=2))
    common.save(f"kfold_vectorized_repeats{arguments.repeats}", payload)


if __name__ == "__main__":
    main()
