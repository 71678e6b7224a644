"""Runner overhead: `dlrun train` vs a plain hand-written Keras script doing the same work.

Both are timed as whole processes, alternating A B A B; the training time (`model.fit` alone) is
read from each side's own report (run.json `fit_seconds` / the script's JSON line). Prints the median
of the per-pair ratios (dlrun / plain) for wall time and for fit time, and the test metric of each side.

    python benchmarks/runner_overhead.py [--pairs 5] [--case quickstart ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import common

CASES = {
    # name: (dlrun config and overrides, reference script, metric key in metrics.json, key in the script's output)
    "quickstart": (["configs/quickstart.yaml"], "benchmarks/reference/quickstart.py", "accuracy", "test_accuracy"),
}


def run_dlrun(config_args: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as root:
        seconds, _ = common.run(
            [common.PYTHON, "-m", "dlrun", "train", *config_args, "--set", f"output.runs_root={root}"]
        )
        (folder,) = Path(root).iterdir()
        record = json.loads((folder / "run.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    return seconds, {"fit_seconds": record["fit_seconds"], "metrics": metrics}


def run_reference(script: str) -> tuple[float, dict]:
    seconds, result = common.run([common.PYTHON, script])
    return seconds, common.last_json_line(result.stdout)


def measure(name: str, pairs: int) -> dict:
    config_args, script, metric, reference_metric = CASES[name]
    rows = []
    for index in range(pairs):
        dlrun_wall, dlrun_out = run_dlrun(config_args)
        plain_wall, plain_out = run_reference(script)
        rows.append({
            "dlrun_wall": dlrun_wall, "plain_wall": plain_wall,
            "dlrun_fit": dlrun_out["fit_seconds"], "plain_fit": plain_out["fit_seconds"],
            "dlrun_metric": dlrun_out["metrics"][metric], "plain_metric": plain_out[reference_metric],
        })
        print(f"  {name} pair {index + 1}/{pairs}: wall {dlrun_wall:.2f}s vs {plain_wall:.2f}s, "
              f"fit {dlrun_out['fit_seconds']:.2f}s vs {plain_out['fit_seconds']:.2f}s", flush=True)
    return {
        "pairs": rows,
        "wall_ratio_median": statistics.median(row["dlrun_wall"] / row["plain_wall"] for row in rows),
        "fit_ratio_median": statistics.median(row["dlrun_fit"] / row["plain_fit"] for row in rows),
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
    for name in options.case or list(CASES):
        results[name] = result = measure(name, options.pairs)
        print(f"{name}: fit ratio {result['fit_ratio_median']:.3f}, wall ratio {result['wall_ratio_median']:.3f} "
              f"(median of {options.pairs} pairs); test metric dlrun {result['dlrun_metric']:.4f} "
              f"vs plain {result['plain_metric']:.4f}")
    print(f"saved {common.save('runner_overhead', results)}")


if __name__ == "__main__":
    main()
