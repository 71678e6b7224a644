"""A sweep's trials as one JAX program (`dlrun sweep --executor vectorized`) vs one after the other.

The acceptance case of issue 17: a 32-trial learning-rate x seed grid (8 learning rates x 4 seeds) of an MLP
on scikit-learn's digits (`data.name: digits`, `architecture: mlp`, Dense 64-10, adam, 20 epochs, batch
32), pruner off, on JAX. Whole `dlrun sweep` processes, the two sides alternating in every round. Each
vectorized run's ranking is compared with the round's sequential run: the top 5 trials (by their
learning rate and seed) must be the same, in the same order; the largest relative difference of any
trial's best val_loss is reported. Ratios are per round (vectorized / sequential): min, median, max.

    nice python benchmarks/sweep_vectorized.py [--rounds 3] [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import common

CONFIG = """\
name: digits_mlp
seed: 0
backend: jax
data: {{name: digits}}
model: {{architecture: mlp, units: [64]}}
compile: {{optimizer: {{name: adam, learning_rate: 0.001}}}}
train: {{epochs: {epochs}, batch_size: 32}}
output: {{plots: false, save_model: false}}
"""
GRID = [
    "--grid",
    "compile.optimizer.learning_rate=0.0003,0.0005,0.001,0.002,0.003,0.005,0.01,0.02",
    "--grid",
    "seed=1,2,3,4",
    "--pruner",
    "none",
]
SIDES = {"sequential": ["--executor", "sequential"], "vectorized": ["--executor", "vectorized", "--batch", "32"]}


def run_sweep(config: Path, options: list[str]) -> tuple[float, list[tuple], dict]:
    """One whole `dlrun sweep` process: (wall seconds, the ranking as (learning rate, seed, best val_loss), its executor record)."""
    with tempfile.TemporaryDirectory() as root:
        seconds, _ = common.run([common.PYTHON, "-m", "dlrun", "sweep", str(config), *GRID, "--set", f"output.runs_root={root}", *options])
        (folder,) = Path(root).iterdir()
        state = json.loads((folder / "sweep.json").read_text())
    ranked = sorted((trial for trial in state["trials"] if trial["status"] == "completed"), key=lambda trial: trial["best"]["value"])
    assert len(ranked) == 32, [trial["status"] for trial in state["trials"]]
    ranking = [
        (trial["overrides"]["compile.optimizer.learning_rate"], trial["overrides"]["seed"], trial["best"]["value"]) for trial in ranked
    ]
    return seconds, ranking, state.get("executor", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the two sides, alternating")
    parser.add_argument("--epochs", type=int, default=20, help="train.epochs of every trial")
    arguments = parser.parse_args()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    same_top5, differences = [], []
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "digits_mlp.yaml"
        config.write_text(CONFIG.format(epochs=arguments.epochs))
        for _ in range(arguments.rounds):
            reference: list[tuple] = []
            for side, options in SIDES.items():
                seconds, ranking, executor = run_sweep(config, options)
                if side == "sequential":
                    reference = ranking
                else:
                    if executor.get("chosen") != "vectorized":
                        raise SystemExit(f"the vectorized side did not vectorize: {executor}")
                    same_top5.append([item[:2] for item in ranking[:5]] == [item[:2] for item in reference[:5]])
                    best = {item[:2]: item[2] for item in reference}
                    differences.append(
                        max(abs(value - best[key]) / abs(best[key]) for *key_parts, value in ranking for key in [tuple(key_parts)])
                    )
                times[side].append(seconds)
                print(f"{side}: {seconds:.1f} s; top 5 {[item[:2] for item in ranking[:5]]}", flush=True)
    payload = {
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "case": f"32 trials (8 learning rates x 4 seeds), digits MLP 64-10, adam, {arguments.epochs} epochs, batch 32, JAX",
        **{f"{side}_s": common.summary(values) for side, values in times.items()},
        "vectorized_over_sequential": common.summary([value / base for value, base in zip(times["vectorized"], times["sequential"])]),
        "same_top5_every_round": all(same_top5),
        "largest_relative_difference_best_val_loss": max(differences),
    }
    print(json.dumps(payload, indent=2))
    common.save("sweep_vectorized", payload)


if __name__ == "__main__":
    main()
