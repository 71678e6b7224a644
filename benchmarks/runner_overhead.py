"""Runner overhead: `dlrun train` vs a plain hand-written Keras script doing the same work.

Both are timed as whole processes, alternating A B A B; the training time (`model.fit` alone) is
read from each side's own report (run.json `fit_seconds` / the script's JSON line). Prints the median
of the per-pair ratios (dlrun / plain) for wall time and for fit time, and the test metric of each side.

    python benchmarks/runner_overhead.py [--pairs 5] [--case quickstart ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import common

FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist (real data, offline)
BOSTON = common.RESULTS / "boston_housing.npz"  # Boston-shaped generated data in Keras' format (see below)

CASES = {
    # name: (dlrun arguments, reference script arguments, metric key in metrics.json, key in the script's output)
    "quickstart": (["configs/quickstart.yaml"], ["benchmarks/reference/quickstart.py"], "accuracy", "test_accuracy"),
    "fashion_mnist_1_epoch": (
        ["configs/fashion_mnist.yaml", "--set", f"data.path={FASHION}", "--set", "train.epochs=1"],
        ["benchmarks/reference/fashion_mnist_convnet.py", FASHION, "1"],
        "accuracy",
        "test_accuracy",
    ),
    # Issue 17's bimodal fit time showed only over several epochs (the 1-epoch case hid it): every pair counts.
    "fashion_mnist_5_epochs": (
        ["configs/fashion_mnist.yaml", "--set", f"data.path={FASHION}"],
        ["benchmarks/reference/fashion_mnist_convnet.py", FASHION, "5"],
        "accuracy",
        "test_accuracy",
    ),
    "boston_mlp": (
        ["configs/boston.yaml", "--set", f"data.path={BOSTON}"],
        ["benchmarks/reference/boston_mlp.py", str(BOSTON)],
        "mae",
        "test_mae",
    ),
}


def boston_shaped_file() -> None:
    """506 x 13 generated regression data saved as Keras' boston_housing.npz (the real file is a download)."""
    import numpy as np

    if BOSTON.exists():
        return
    rng = np.random.default_rng(0)
    x = rng.normal(size=(506, 13)) * rng.uniform(1, 100, size=13) + rng.uniform(0, 50, size=13)
    y = (x @ rng.normal(size=13) / 50 + 22 + rng.normal(scale=3, size=506)).astype("float64")
    BOSTON.parent.mkdir(parents=True, exist_ok=True)
    np.savez(BOSTON, x=x, y=y)


def cpu_ticks() -> list[int]:
    """The machine's CPU time counters (/proc/stat's first line: user nice system idle iowait irq softirq steal ...)."""
    try:
        return [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return []


def machine_share(before: list[int], after: list[int]) -> dict:
    """Over one run: the share of the machine's CPU time stolen by the hypervisor and the share busy (not idle),
    which tell a machine-level stall (steal, other jobs) from a slow mode of the process itself."""
    if len(before) < 8 or len(after) < 8:
        return {}
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8]) or 1
    return {"steal": delta[7] / total, "busy": 1 - (delta[3] + delta[4]) / total, "load": os.getloadavg()[0]}


def run_dlrun(config_args: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as root:
        # backend pinned to TensorFlow: this compares runners on the same engine (benchmarks/backends.py compares engines)
        seconds, _ = common.run(
            [common.PYTHON, "-m", "dlrun", "train", *config_args, "--set", f"output.runs_root={root}", "--set", "backend=tensorflow"]
        )
        (folder,) = Path(root).iterdir()
        record = json.loads((folder / "run.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    # where the fit's time went (run.json): before the first epoch, each epoch's own; the rest is around them
    epochs = record["epoch_seconds"]
    timing = {"epoch_seconds": epochs, "before": record["fit_before_first_epoch_seconds"], "outside": record["fit_seconds"] - sum(epochs)}
    return seconds, {"fit_seconds": record["fit_seconds"], "metrics": metrics, **timing}


def run_reference(script_args: list[str]) -> tuple[float, dict]:
    seconds, result = common.run([common.PYTHON, *script_args])
    return seconds, common.last_json_line(result.stdout)


def measure(name: str, pairs: int) -> dict:
    config_args, script, metric, reference_metric = CASES[name]
    rows = []
    for index in range(pairs):
        ticks = cpu_ticks()
        dlrun_wall, dlrun_out = run_dlrun(config_args)
        middle = cpu_ticks()
        plain_wall, plain_out = run_reference(script)
        dlrun_machine, plain_machine = machine_share(ticks, middle), machine_share(middle, cpu_ticks())
        rows.append(
            {
                "dlrun_wall": dlrun_wall,
                "plain_wall": plain_wall,
                "dlrun_fit": dlrun_out["fit_seconds"],
                "plain_fit": plain_out["fit_seconds"],
                "dlrun_metric": dlrun_out["metrics"][metric],
                "plain_metric": plain_out[reference_metric],
                "dlrun_epoch_seconds": dlrun_out["epoch_seconds"],
                "dlrun_before_first_epoch": dlrun_out["before"],
                "dlrun_outside_epochs": dlrun_out["outside"],
                "plain_epoch_seconds": plain_out.get("epoch_seconds"),
                "plain_before_first_epoch": plain_out.get("fit_before_first_epoch_seconds"),
                "dlrun_machine": dlrun_machine,
                "plain_machine": plain_machine,
            }
        )
        print(
            f"  {name} pair {index + 1}/{pairs}: wall {dlrun_wall:.2f}s vs {plain_wall:.2f}s, "
            f"fit {dlrun_out['fit_seconds']:.2f}s vs {plain_out['fit_seconds']:.2f}s; "
            f"dlrun epochs {' '.join(f'{value:.1f}' for value in dlrun_out['epoch_seconds'])}s, "
            f"{dlrun_out['outside']:.1f}s outside them ({dlrun_out['before']:.1f}s before the first); "
            f"plain: {plain_out['fit_seconds'] - sum(plain_out.get('epoch_seconds', [])):.1f}s outside its epochs; "
            f"steal {dlrun_machine.get('steal', 0):.1%} / {plain_machine.get('steal', 0):.1%}, "
            f"busy {dlrun_machine.get('busy', 0):.0%} / {plain_machine.get('busy', 0):.0%}",
            flush=True,
        )
    return {
        "pairs": rows,
        "wall_ratio_median": statistics.median(row["dlrun_wall"] / row["plain_wall"] for row in rows),
        "fit_ratio_median": statistics.median(row["dlrun_fit"] / row["plain_fit"] for row in rows),
        "wall_ratio_max": max(row["dlrun_wall"] / row["plain_wall"] for row in rows),  # the worst pair, not only the median
        "dlrun_wall": common.summary([row["dlrun_wall"] for row in rows]),
        "plain_wall": common.summary([row["plain_wall"] for row in rows]),
        "dlrun_fit": common.summary([row["dlrun_fit"] for row in rows]),
        "plain_fit": common.summary([row["plain_fit"] for row in rows]),
        "dlrun_metric": rows[0]["dlrun_metric"],
        "plain_metric": rows[0]["plain_metric"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    options = parser.parse_args()
    results = {}
    boston_shaped_file()
    for name in options.case or list(CASES):
        results[name] = result = measure(name, options.pairs)
        print(
            f"{name}: fit ratio {result['fit_ratio_median']:.3f}, wall ratio {result['wall_ratio_median']:.3f} "
            f"(median of {options.pairs} pairs; worst pair {result['wall_ratio_max']:.3f}); test metric dlrun {result['dlrun_metric']:.4f} "
            f"vs plain {result['plain_metric']:.4f}"
        )
    print(f"saved {common.save('runner_overhead', results)}")


if __name__ == "__main__":
    main()
