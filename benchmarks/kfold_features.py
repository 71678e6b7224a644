"""K-fold of a pretrained base: a fold's epoch on cached features vs end to end, whole `dlrun kfold` processes.

Folds now train through `trainer.Training`, so a `pretrained` model in `mode: features` runs its frozen
base once over each fold's split (the feature cache) and trains only the head on every epoch. Before,
K-fold ran the frozen base on every batch of every epoch: what `mode: end_to_end` does. This measures
both on the same folds, head and batches.

Case: synthetic binary images (256 x 64x64x3, no test split), VGG16 with random weights (`weights: null`,
nothing downloads), head Dense 256 - Dropout 0.5 - Dense 1, rmsprop 2e-5, batch 32, K=4 x 5 epochs,
`--no-final`, TensorFlow. Each round runs four processes (A last instead of first every other round):
A `--set model.mode=end_to_end`; B features with an empty cache (cold: every fold runs the base over its
split); C features again on B's cache (warm: the base never runs); D as C with 4x the epochs.

What is measured: a fold's epoch = the fold's `seconds` in kfold.json / its epochs. `seconds` is the fit
alone (every epoch with validation and the per-epoch checkpoint; the first epoch's tracing included);
building the model and the feature extraction happen before it and are not in it. The head's steady
epoch, without its first epoch's tracing = (D's fold seconds - C's) / (3 x epochs), fold by fold. The
extraction per fold = (B's wall - C's wall) / K. The per-fold validation numbers of A, B and C are
compared (the same training, so they should agree).

    PYTHONPATH=src python benchmarks/kfold_features.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import common

CONFIG = """\
name: kfold_features
seed: 0
backend: tensorflow
data: {{name: synthetic, task: binary, num_samples: {samples}, input_shape: [{size}, {size}, 3], noise: 0.5, test_split: 0.0, validation_split: 0.0}}
model: {{architecture: pretrained, base: vgg16, weights: null, dense_units: [256], dropout: 0.5, mode: features}}
compile: {{optimizer: {{name: rmsprop, learning_rate: 2.0e-5}}, loss: binary_crossentropy, metrics: [accuracy]}}
train: {{epochs: {epochs}, batch_size: 32}}
output: {{plots: false, save_model: false}}
"""


def run_kfold(config: Path, k: int, runs_root: Path, options: list[str]) -> dict:
    """One whole `dlrun kfold` process: its wall time, each fold's seconds per epoch, its numbers, the load."""
    load_before = os.getloadavg()[0]
    wall, _ = common.run(
        [
            common.PYTHON,
            "-m",
            "dlrun",
            "kfold",
            str(config),
            "--k",
            str(k),
            "--no-final",
            "--set",
            f"output.runs_root={runs_root}",
            *options,
        ]
    )
    (folder,) = runs_root.iterdir()
    folds = json.loads((folder / "kfold.json").read_text())["folds"]
    return {
        "wall_s": round(wall, 2),
        "fold_seconds": [fold["seconds"] for fold in folds],
        "fold_epoch_s": [round(fold["seconds"] / fold["epochs"], 4) for fold in folds],
        "last": [fold["last"] for fold in folds],
        "load_average": [load_before, os.getloadavg()[0]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four runs")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1 round, 128 images of 32x32, K=2 x 3 epochs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.samples, args.size, args.k, args.epochs = 1, 128, 32, 2, 3
    load_before = os.getloadavg()
    rounds = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        config = folder / "kfold_features.yaml"
        config.write_text(CONFIG.format(samples=args.samples, size=args.size, epochs=args.epochs))
        for index in range(args.rounds):
            cache = folder / f"cache{index}"
            sides = [
                ("end_to_end", ["--set", "model.mode=end_to_end"]),
                ("features_cold", ["--set", f"model.cache_dir={cache}"]),
                ("features_warm", ["--set", f"model.cache_dir={cache}"]),
                ("features_long", ["--set", f"model.cache_dir={cache}", "--set", f"train.epochs={4 * args.epochs}"]),
            ]
            runs = {}
            for name, options in sides if index % 2 == 0 else sides[1:] + sides[:1]:
                runs[name] = run_kfold(config, args.k, folder / f"runs_{index}_{name}", options)
                print(
                    f"round {index + 1} {name}: wall {runs[name]['wall_s']:.1f} s, fold s/epoch "
                    f"{runs[name]['fold_epoch_s']}, load {runs[name]['load_average']}",
                    flush=True,
                )
            end_to_end = statistics.median(runs["end_to_end"]["fold_epoch_s"])
            features = statistics.median(runs["features_cold"]["fold_epoch_s"] + runs["features_warm"]["fold_epoch_s"])
            extraction = (runs["features_cold"]["wall_s"] - runs["features_warm"]["wall_s"]) / args.k
            fold_end_to_end = statistics.median(runs["end_to_end"]["fold_seconds"])
            fold_features = statistics.median(runs["features_cold"]["fold_seconds"])
            steady = statistics.median(
                (long - short) / (3 * args.epochs)
                for long, short in zip(runs["features_long"]["fold_seconds"], runs["features_warm"]["fold_seconds"])
            )
            rounds.append(
                {
                    "runs": runs,
                    "epoch_ratio": round(end_to_end / features, 1),
                    "features_steady_epoch_s": round(steady, 4),
                    "steady_epoch_ratio": round(end_to_end / steady, 1),
                    "extraction_per_fold_s": round(extraction, 2),
                    "fold_ratio_with_extraction": round(fold_end_to_end / (fold_features + extraction), 2),
                    "same_fold_numbers": runs["end_to_end"]["last"] == runs["features_cold"]["last"] == runs["features_warm"]["last"],
                }
            )
            print(
                f"round {index + 1}: epoch ratio {rounds[-1]['epoch_ratio']}x (steady {rounds[-1]['steady_epoch_ratio']}x), "
                f"extraction per fold {extraction:.2f} s, fold with extraction {rounds[-1]['fold_ratio_with_extraction']}x",
                flush=True,
            )

    def values(side: str, key: str = "fold_epoch_s") -> list[float]:
        return [value for item in rounds for value in item["runs"][side][key]]

    payload = {
        "case": f"K={args.k} x {args.epochs} epochs, {args.samples} synthetic {args.size}x{args.size}x3 images, VGG16 "
        "weights null, head Dense 256-Dropout 0.5-Dense 1, rmsprop 2e-5, batch 32, --no-final, TensorFlow",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "fold_epoch_s": {side: common.summary(values(side)) for side in ("end_to_end", "features_cold", "features_warm")},
        "features_steady_epoch_s": common.summary([item["features_steady_epoch_s"] for item in rounds]),
        "wall_s": {
            side: common.summary([item["runs"][side]["wall_s"] for item in rounds])
            for side in ("end_to_end", "features_cold", "features_warm", "features_long")
        },
        "extraction_per_fold_s": common.summary([item["extraction_per_fold_s"] for item in rounds]),
        "epoch_ratio": common.summary([item["epoch_ratio"] for item in rounds]),
        "steady_epoch_ratio": common.summary([item["steady_epoch_ratio"] for item in rounds]),
        "fold_ratio_with_extraction": common.summary([item["fold_ratio_with_extraction"] for item in rounds]),
        "same_fold_numbers": all(item["same_fold_numbers"] for item in rounds),
        "rounds": rounds,
    }
    print(json.dumps({key: value for key, value in payload.items() if key != "rounds"}, indent=2))
    common.save("kfold_features", payload)


if __name__ == "__main__":
    main()
