"""`train.steps_per_execution: auto` vs 1 batch per call, side by side, on the notes' small models.

Each case trains the same config twice per round, alternating auto and 1 (whole `dlrun train` processes),
and reads `fit_seconds` from each run.json. It checks that both sides' history.json are byte-identical
(the promise: grouping batches changes no number) and prints the median, min and max of the per-round
ratios (auto / 1) of fit time, with the steps auto chose.

    python benchmarks/steps_per_execution.py [--rounds 5] [--case boston_mlp_jax ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import common
import runner_overhead

CASES = {
    # name: dlrun train arguments
    "boston_mlp_jax": ["configs/boston.yaml", "--set", f"data.path={runner_overhead.BOSTON}", "--set", "backend=jax"],
    "boston_mlp_tensorflow": ["configs/boston.yaml", "--set", f"data.path={runner_overhead.BOSTON}", "--set", "backend=tensorflow"],
    "quickstart_tensorflow": ["configs/quickstart.yaml", "--set", "backend=tensorflow"],
}


def train(arguments: list[str], steps: str) -> dict:
    with tempfile.TemporaryDirectory() as root:
        common.run(
            [
                common.PYTHON,
                "-m",
                "dlrun",
                "train",
                *arguments,
                "--set",
                f"train.steps_per_execution={steps}",
                "--set",
                f"output.runs_root={root}",
                "--set",
                "output.plots=false",
            ]
        )
        (folder,) = Path(root).iterdir()
        record = json.loads((folder / "run.json").read_text())
        return {
            "fit": record["fit_seconds"],
            "steps": record["steps_per_execution"]["steps"],
            "history": (folder / "history.json").read_text(),
        }


def measure(name: str, rounds: int) -> dict:
    rows = []
    for index in range(rounds):
        auto, one = train(CASES[name], "auto"), train(CASES[name], "1")
        if auto["history"] != one["history"]:
            raise SystemExit(f"{name}: history.json differs between steps_per_execution auto and 1")
        rows.append({"auto_fit": auto["fit"], "one_fit": one["fit"], "auto_steps": auto["steps"]})
        print(
            f"  {name} round {index + 1}/{rounds}: fit {auto['fit']:.2f}s (auto, {auto['steps']} steps per call) "
            f"vs {one['fit']:.2f}s (1); histories identical",
            flush=True,
        )
    ratios = [row["auto_fit"] / row["one_fit"] for row in rows]
    return {
        "rounds": rows,
        "ratio": common.summary(ratios),
        "ratio_median": statistics.median(ratios),
        "auto_fit": common.summary([row["auto_fit"] for row in rows]),
        "one_fit": common.summary([row["one_fit"] for row in rows]),
        "auto_steps": rows[0]["auto_steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    options = parser.parse_args()
    runner_overhead.boston_shaped_file()
    import os

    results = {"machine": common.machine(), "load_before": os.getloadavg()}
    for name in options.case or list(CASES):
        results[name] = result = measure(name, options.rounds)
        print(
            f"{name}: fit auto/1 ratio median {result['ratio_median']:.3f} (min {result['ratio']['min']:.3f}, "
            f"max {result['ratio']['max']:.3f}; {options.rounds} rounds; auto = {result['auto_steps']} steps per call)"
        )
    results["load_after"] = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {results['load_before']}, after {results['load_after']}")
    print(f"saved {common.save('steps_per_execution', results)}")


if __name__ == "__main__":
    main()
