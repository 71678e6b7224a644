"""On a GPU with JAX (and no TensorFlow): dlrun on JAX vs plain Keras on JAX, vectorised K-fold vs sequential,
and `train.precision`, side by side.

Cases, each timed as whole processes that alternate (A B A B ...):

- runner: `dlrun train` vs a plain Keras script doing the same work (PLAIN below), both on JAX, for the
  notes' convnet (Conv32-Pool-Conv64-Pool-Conv64-Flatten-Dense64-Dense10, batch 64, rmsprop) on
  Fashion-MNIST-shaped data and the notes' Boston MLP (Dense 64-64-1, batch 16, 80 epochs) on
  Boston-shaped data; wall and fit seconds, ratios dlrun / plain per pair (the table of
  benchmarks/runner_overhead.py);
- kfold: the Boston MLP's `dlrun kfold --k 4 --no-final` with `--executor vectorized` vs `sequential`
  (the table of benchmarks/kfold_vectorized.py, without the pool);
- precision: the convnet's `dlrun train` at float32, mixed_bfloat16 and mixed_float16 (fit seconds).

The data is generated here (NumPy) and read by both sides from .npz files: the GPU machine has no
datasets and no network. Every process runs with TensorFlow blocked from importing (NO_TENSORFLOW), so a
run here on a CPU with TensorFlow installed proves the measured paths never need it. dlrun runs with
JAX's compilation cache off (`DLRUN_JAX_CACHE=off`), so both sides compile every program. Prints
Markdown tables (min / median / max) and writes benchmarks/results/gpu.json.

    python benchmarks/gpu.py [--quick] [--pairs 3] [--case runner --case kfold --case precision] [--budget-s 420] [--out DIR]

Rounds go outermost: one pair or round of every case, then the next, the JSON rewritten after every case, and with
`--budget-s` no new round starts once the seconds spent plus the last round's would pass it (the GPU machine's
time is short; benchmarks/gpu_bundle.py prints the command that runs this there).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# Prepended to every child process: TensorFlow (and its Keras) cannot be imported, Keras runs on JAX.
NO_TENSORFLOW = """\
import os, sys, importlib.abc
os.environ["KERAS_BACKEND"] = "jax"
class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"benchmarks/gpu.py: {name} is blocked (the GPU machine has no TensorFlow)")
sys.meta_path.insert(0, _NoTensorFlow())
"""
DLRUN = NO_TENSORFLOW + "from dlrun import cli\nsys.argv[0] = 'dlrun'\ncli.main()\n"

# Plain Keras on JAX: argv = kind (convnet | mlp), npz file, epochs, batch size; prints one JSON line.
PLAIN = (
    NO_TENSORFLOW
    + """\
import json, time
import keras, numpy as np
kind, path, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keras.utils.set_random_seed(42)
with np.load(path) as data:
    x_train, y_train, x_test, y_test = (data[key] for key in ("x_train", "y_train", "x_test", "y_test"))
if kind == "convnet":
    layers = [keras.Input(x_train.shape[1:]),
              keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
              keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2),
              keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.Flatten(),
              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    loss, metric = "sparse_categorical_crossentropy", "accuracy"
else:
    layers = [keras.Input(x_train.shape[1:]), keras.layers.Dense(64, activation="relu"),
              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)]
    loss, metric = "mse", "mae"
model = keras.Sequential(layers)
model.compile(optimizer="rmsprop", loss=loss, metrics=[metric])
started = time.perf_counter()
model.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=0)
fit_seconds = time.perf_counter() - started
test = model.evaluate(x_test, y_test, batch_size=batch, verbose=0, return_dict=True)
print(json.dumps({"fit_seconds": fit_seconds, "metric": float(test[metric]), "device": str(keras.distribution.list_devices()[0])}))
"""
)

CONVNET = """\
name: gpu_convnet
data: {{name: npz, path: {path}, validation_split: 0.0}}
model: {{architecture: convnet, filters: [32, 64, 64], pool_last: false, dense_units: [64]}}
compile: {{optimizer: rmsprop, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
train: {{epochs: {epochs}, batch_size: 64}}
output: {{plots: false}}
"""
MLP = """\
name: gpu_mlp
data: {{name: npz, path: {path}, validation_split: 0.0}}
model: {{architecture: mlp, units: [64, 64]}}
compile: {{optimizer: rmsprop, loss: mse, metrics: [mae]}}
train: {{epochs: {epochs}, batch_size: 16}}
output: {{plots: false}}
"""


def sizes(quick: bool) -> dict:
    """Samples and epochs per case: the notes' sizes, or tiny ones (`--quick`: a CPU check of the script)."""
    if quick:
        return {"images": 512, "image_test": 128, "convnet_epochs": 1, "mlp_epochs": 4, "kfold_epochs": 4}
    return {"images": 60_000, "image_test": 10_000, "convnet_epochs": 5, "mlp_epochs": 80, "kfold_epochs": 80}


def write_data(folder: Path, size: dict) -> dict:
    """Fashion-MNIST-shaped and Boston-shaped .npz files (learnable: the labels follow the inputs)."""
    rng = np.random.default_rng(0)
    count = size["images"] + size["image_test"]
    labels = rng.integers(0, 10, count)
    images = (rng.random((count, 28, 28, 1)) * 0.5 + labels[:, None, None, None] / 20).astype("float32")
    images_path = folder / "images.npz"
    np.savez(
        images_path,
        x_train=images[: size["images"]],
        y_train=labels[: size["images"]],
        x_test=images[size["images"] :],
        y_test=labels[size["images"] :],
    )
    features = rng.normal(size=(506, 13)).astype("float32")
    targets = (features @ rng.normal(size=13) + 22 + rng.normal(scale=3, size=506)).astype("float32")
    table_path = folder / "boston_shaped.npz"
    np.savez(table_path, x_train=features[:404], y_train=targets[:404], x_test=features[404:], y_test=targets[404:])
    return {"convnet": images_path, "mlp": table_path}


def run(argv: list[str], cwd: Path = ROOT) -> tuple[float, str]:
    """A whole process to completion: (wall seconds, stdout); fails loudly with its stderr."""
    # JAX's compilation cache off: dlrun would load programs a plain script compiles afresh (backends.py measures it)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), "DLRUN_JAX_CACHE": "off"}
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed ({result.returncode}): {' '.join(argv[2:])}\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def dlrun(*arguments: str) -> tuple[float, Path, str]:
    """`dlrun ARGUMENTS` in a fresh process, with a temporary runs root; (wall, run folder, stdout)."""
    root = Path(tempfile.mkdtemp(prefix="dlrun-gpu-bench-"))
    seconds, stdout = run([sys.executable, "-c", DLRUN, *arguments, "--set", f"output.runs_root={root}"])
    (folder,) = root.iterdir()
    return seconds, folder, stdout


def summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def runner(configs: dict, data: dict, size: dict, raw: dict, label: str) -> dict:
    """dlrun vs plain Keras, both on JAX, per model: one pair of whole processes added to `raw`; the summary."""
    for kind, epochs, batch in (("convnet", size["convnet_epochs"], 64), ("mlp", size["mlp_epochs"], 16)):
        dlrun_wall, folder, _ = dlrun("train", str(configs[kind]), "--backend", "jax")
        record = json.loads((folder / "run.json").read_text())
        plain_wall, stdout = run([sys.executable, "-c", PLAIN, kind, str(data[kind]), str(epochs), str(batch)])
        plain = json.loads(stdout.strip().splitlines()[-1])
        metric = "accuracy" if kind == "convnet" else "mae"
        raw.setdefault(kind, []).append(
            {
                "dlrun_wall": dlrun_wall,
                "plain_wall": plain_wall,
                "dlrun_fit": record["fit_seconds"],
                "plain_fit": plain["fit_seconds"],
                "dlrun_metric": record["test_metrics"][metric],
                "plain_metric": plain["metric"],
                "device": plain["device"],
                "jit_compile": record["jit_compile"],
            }
        )
        print(
            f"  runner {kind} pair {label}: wall {dlrun_wall:.2f} s vs {plain_wall:.2f} s, "
            f"fit {record['fit_seconds']:.2f} s vs {plain['fit_seconds']:.2f} s",
            flush=True,
        )
    results = {}
    for kind, rows in raw.items():
        results[kind] = {
            "pairs": rows,
            **{
                f"{side}_{what}": summary([row[f"{side}_{what}"] for row in rows])
                for side in ("dlrun", "plain")
                for what in ("wall", "fit")
            },
            "wall_ratio": summary([row["dlrun_wall"] / row["plain_wall"] for row in rows]),
            "fit_ratio": summary([row["dlrun_fit"] / row["plain_fit"] for row in rows]),
        }
    return results


def kfold(configs: dict, raw: dict, label: str) -> dict:
    """The Boston MLP's K=4 K-fold (no final refit): one round of vectorised vs sequential added to `raw`; the summary."""
    times: dict[str, list[float]] = raw.setdefault("times", {"sequential": [], "vectorized": []})
    executors: dict[str, str] = raw.setdefault("executors", {})
    for side in times:
        seconds, folder, _ = dlrun("kfold", str(configs["kfold"]), "--k", "4", "--no-final", "--backend", "jax", "--executor", side)
        state = json.loads((folder / "kfold.json").read_text())
        executors[side] = state.get("executor", {}).get("executor", "?")
        times[side].append(seconds)
        print(f"  kfold round {label} {side}: {seconds:.2f} s (executor {executors[side]})", flush=True)
    return {
        **{f"{side}_s": summary(values) for side, values in times.items()},
        "executors": executors,
        "vectorized_over_sequential": summary([v / s for v, s in zip(times["vectorized"], times["sequential"])]),
    }


def precision(configs: dict, raw: dict, label: str) -> dict:
    """The convnet's fit seconds at each train.precision: one round added to `raw`; the summary."""
    policies = ("float32", "mixed_bfloat16", "mixed_float16")
    fits: dict[str, list[float]] = raw.setdefault("fits", {policy: [] for policy in policies})
    for policy in policies:
        _seconds, folder, _ = dlrun("train", str(configs["convnet"]), "--backend", "jax", "--set", f"train.precision={policy}")
        record = json.loads((folder / "run.json").read_text())
        assert record["precision"]["policy"] == policy, record["precision"]
        fits[policy].append(record["fit_seconds"])
        print(f"  precision round {label} {policy}: fit {record['fit_seconds']:.2f} s", flush=True)
    return {
        **{f"{policy}_fit_s": summary(values) for policy, values in fits.items()},
        **{
            f"{policy}_over_float32": summary([value / base for value, base in zip(fits[policy], fits["float32"])])
            for policy in policies[1:]
        },
    }


def machine() -> dict:
    """The devices and versions, from a process that cannot import TensorFlow."""
    probe = NO_TENSORFLOW + (
        "import json, jax, keras, numpy\nprint(json.dumps({'jax': jax.__version__, 'keras': keras.__version__, "
        "'numpy': numpy.__version__, 'devices': [str(d) for d in jax.devices()], "
        "'device_kind': jax.devices()[0].device_kind}))"
    )
    _seconds, stdout = run([sys.executable, "-c", probe])
    return {
        "date": datetime.date.today().isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **json.loads(stdout.strip().splitlines()[-1]),
    }


def _row(name: str, values: dict, unit: str = " s") -> str:
    return f"| {name} | {values['min']:.3g}{unit} | {values['median']:.3g}{unit} | {values['max']:.3g}{unit} |"


def tables(results: dict) -> str:
    """The results as Markdown tables (min / median / max), as BENCHMARKS.md shows the CPU suite's."""
    lines = []
    header = ["| | min | median | max |", "|---|---|---|---|"]
    for kind, result in results.get("runner", {}).items():
        lines += [f"\nrunner overhead, {kind} (dlrun vs plain Keras, both on JAX; {len(result['pairs'])} pairs)\n", *header]
        lines += [_row(f"{side} {what}", result[f"{side}_{what}"]) for what in ("wall", "fit") for side in ("dlrun", "plain")]
        lines += [_row("wall ratio dlrun / plain", result["wall_ratio"], ""), _row("fit ratio dlrun / plain", result["fit_ratio"], "")]
    if "kfold" in results:
        result = results["kfold"]
        lines += [
            "\nK-fold, Boston MLP, K=4, --no-final (whole processes)\n",
            *header,
            _row("sequential", result["sequential_s"]),
            _row("vectorized", result["vectorized_s"]),
            _row("vectorized / sequential", result["vectorized_over_sequential"], ""),
        ]
    if "precision" in results:
        result = results["precision"]
        lines += ["\ntrain.precision, convnet fit seconds\n", *header]
        lines += [_row(key.removesuffix("_fit_s"), value) for key, value in result.items() if key.endswith("_fit_s")]
        lines += [_row(key.replace("_over_", " / "), value, "") for key, value in result.items() if "_over_" in key]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one pair/round: checks the script on a CPU")
    parser.add_argument("--pairs", type=int, default=3, help="pairs (runner) and rounds (kfold, precision)")
    parser.add_argument("--case", action="append", choices=["runner", "kfold", "precision"], help="default: all")
    parser.add_argument("--budget-s", type=float, help="start no round that would end past this many seconds (by the last round's)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the folder for gpu.json (gpu_quick.json with --quick)")
    options = parser.parse_args()
    started = time.perf_counter()
    # `timeout` stops this script with SIGTERM: exit through Python, so subprocess.run kills the child it waits on
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    size, pairs = sizes(options.quick), 1 if options.quick else options.pairs
    results: dict = {"machine": machine(), "quick": options.quick, "sizes": size, "rounds": 0}
    print(f"machine: {results['machine']}", flush=True)
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / ("gpu_quick.json" if options.quick else "gpu.json")
    cases = options.case or ["runner", "kfold", "precision"]
    raw: dict = {case: {} for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        data = write_data(Path(folder), size)
        configs = {"convnet": Path(folder) / "convnet.yaml", "mlp": Path(folder) / "mlp.yaml", "kfold": Path(folder) / "kfold.yaml"}
        configs["convnet"].write_text(CONVNET.format(path=json.dumps(str(data["convnet"])), epochs=size["convnet_epochs"]))
        configs["mlp"].write_text(MLP.format(path=json.dumps(str(data["mlp"])), epochs=size["mlp_epochs"]))
        configs["kfold"].write_text(MLP.format(path=json.dumps(str(data["mlp"])), epochs=size["kfold_epochs"]))
        for index in range(pairs):
            round_started = time.perf_counter()
            label = f"{index + 1}/{pairs}"
            for case in cases:  # the JSON after every case: what a timeout leaves is every case done
                if case == "runner":
                    results[case] = runner(configs, data, size, raw[case], label)
                elif case == "kfold":
                    results[case] = kfold(configs, raw[case], label)
                else:
                    results[case] = precision(configs, raw[case], label)
                results["rounds"] = index + (case == cases[-1])  # whole rounds
                path.write_text(json.dumps(results, indent=2) + "\n")
            now = time.perf_counter()
            if options.budget_s and index + 1 < pairs and now - started + (now - round_started) > options.budget_s:
                print(f"budget: {now - started:.0f} s spent, a round takes {now - round_started:.0f} s: stopping after {index + 1} rounds")
                break
    print(tables(results))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
