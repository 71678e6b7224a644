"""K-fold on a pool of worker processes vs sequential: the Boston-shaped case, whole `dlrun kfold` processes.

Boston-shaped data: the `synthetic` regression dataset with 506 samples x 13 features, 102 of them held
out as test, so K-fold splits 404 samples (as the notes' Boston housing). Dense 64-64-1, rmsprop, mse,
mae; K=4 folds x 80 epochs, batch 16, `--no-final` (the final refit is the same sequential work on both
sides). The sides alternate (A B A B ...); each run's per-fold numbers are checked to be identical.

    python benchmarks/kfold_workers.py [--runs 3] [--workers 2] [--executor ray] [--backend jax]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import common

CONFIG = """\
name: boston_shaped
seed: 0
backend: tensorflow  # the issue's reference facts are TensorFlow's; benchmarks/backends.py compares backends
data: {name: synthetic, task: regression, num_samples: 506, input_shape: [13], noise: 0.5, test_split: 0.2, validation_split: 0.0}
model: {architecture: mlp, units: [64, 64]}
compile: {optimizer: rmsprop, loss: mse, metrics: [mae]}
train: {epochs: 80, batch_size: 16}
output: {plots: false, save_model: false}
"""


def run_kfold(config: Path, options: list[str]) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as root:
        seconds, _ = common.run(
            [common.PYTHON, "-m", "dlrun", "kfold", str(config), "--k", "4", "--no-final", "--set", f"output.runs_root={root}", *options]
        )
        (folder,) = Path(root).iterdir()
        state = json.loads((folder / "kfold.json").read_text())
    assert state["samples"] == 404, state["samples"]
    return seconds, [(fold["last"], fold["best"]) for fold in state["folds"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", default="pool", help="pool or ray (ray: --cpus-per-trial 1 on a local Ray)")
    parser.add_argument("--backend", default="tensorflow", help="the Keras backend of both sides (the issue's facts: tensorflow)")
    arguments = parser.parse_args()
    other = ["--workers", str(arguments.workers)] if arguments.executor == "pool" else ["--executor", "ray"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "boston_shaped.yaml"
        config.write_text(CONFIG.replace("backend: tensorflow", f"backend: {arguments.backend}"))
        sequential, parallel, reference = [], [], None
        for _ in range(arguments.runs):
            for side, times in ((["--workers", "1"], sequential), (other, parallel)):
                seconds, numbers = run_kfold(config, side)
                reference = reference or numbers
                if numbers != reference:
                    raise SystemExit(f"per-fold numbers differ with {side}: {numbers} vs {reference}")
                times.append(seconds)
                print(f"{' '.join(side)}: {seconds:.1f} s", flush=True)
    ratios = [b / a for a, b in zip(sequential, parallel)]
    payload = {
        "machine": common.machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "case": "K=4 x 80 epochs, batch 16, 404 x 13 synthetic regression, Dense 64-64-1, --no-final",
        "backend": arguments.backend,
        "sequential_s": common.summary(sequential),
        f"{' '.join(other)}_s": common.summary(parallel),
        "ratio_median_of_pairs": sorted(ratios)[len(ratios) // 2],
        "per_fold_numbers_identical": True,
    }
    print(json.dumps(payload, indent=2))
    common.save(f"kfold_workers_{arguments.executor}_{arguments.backend}", payload)


if __name__ == "__main__":
    main()
