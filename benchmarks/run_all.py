"""Run the whole benchmark suite, one script after another; `--quick` shrinks every script to minutes.

    python benchmarks/run_all.py [--quick] [--skip-slow] [--only SCRIPT ...]      (or: make bench)

`--skip-slow` leaves out the scripts marked slow below (each takes more than about five minutes on the
2-core build machine even in its quick form: whole sweeps and K-fold runs); the rest finish in minutes.

Each script also runs alone and prints its own ratio; results go to benchmarks/results/*.json and the
curated numbers (with machine, date and versions) to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script: (arguments for a full run, arguments for --quick)
SUITE = {
    "startup.py": ([], ["--repeats", "3"]),
    "runner_overhead.py": ([], ["--pairs", "2", "--case", "quickstart"]),
    "imdb_memory.py": ([], ["--reviews", "5000", "--epochs", "1"]),
    "image_pipeline.py": ([], ["--images", "96", "--image-size", "64"]),
    "feature_cache.py": ([], ["--quick"]),
    "kfold_workers.py": ([], ["--runs", "1"]),
    "kfold_features.py": ([], ["--quick"]),
    "backends.py": ([], ["--rounds", "1"]),
    "steps_per_execution.py": ([], ["--rounds", "1"]),
    "kfold_vectorized.py": ([], ["--rounds", "1"]),
    "sweep_memory.py": ([], ["--trials", "40"]),
    "search_quality.py": ([], ["--quick"]),  # the full run (30 points, 20 epochs): 20-30 minutes on the shared build machine
    "search_simulation.py": ([], ["--seeds", "1", "--only", "asha rf3 min3"]),  # replays recorded curves: no training, about 40 s
    "sweep_vectorized.py": ([], ["--rounds", "1", "--epochs", "5"]),
    "gpu.py": (["--pairs", "2"], ["--quick"]),  # meant for a GPU machine with JAX; --quick checks it on a CPU
}
SLOW = {
    "kfold_workers.py",
    "kfold_vectorized.py",
    "sweep_memory.py",
    "search_quality.py",
    "sweep_vectorized.py",
    "gpu.py",
}  # left out by --skip-slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--only", action="append", choices=sorted(SUITE), help="run only these scripts")
    parser.add_argument("--skip-slow", action="store_true", help=f"leave out {', '.join(sorted(SLOW))}")
    options = parser.parse_args()
    failures = []
    for script, (full, quick) in SUITE.items():
        if options.only and script not in options.only:
            continue
        if options.skip_slow and script in SLOW:
            print(f"== {script}: slow, skipped (--skip-slow)")
            continue
        if not (HERE / script).exists():
            print(f"== {script}: not present, skipped")
            continue
        arguments = quick if options.quick else full
        print(f"== {script} {' '.join(arguments)}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / script), *arguments], cwd=HERE.parent)
        print(f"== {script}: exit {result.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failures.append(script)
    if failures:
        raise SystemExit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
