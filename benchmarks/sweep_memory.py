"""Memory over many sweep trials: 100 tiny trials on the pool executor, peak RSS at trial 10 vs trial 100.

The leak class of keras-tuner#395 (+1 GB every 20 trials): a worker that keeps every trial's model, or a
driver that keeps every trial's history. One whole `dlrun sweep` process (`--random 100`, `--workers 2`, a
4-16-1 MLP on 60 synthetic samples, 2 epochs, pruner none) is watched from outside: every 0.1 s this
script reads sweep.json's finished-trial count and the peak RSS (VmHWM, /proc/PID/status; psutil has no
peak RSS on Linux) of the sweep process and of each of its descendants (the pool's
workers, and multiprocessing's resource tracker). The peak after 10 finished trials is compared with the
peak once all have finished: the main process's first reading after the last trial (before the sweep
draws its plots, which import matplotlib), each worker's last reading before the pool closes (VmHWM
only grows). The acceptance: <= 5% growth for the main process and for every worker.

    python benchmarks/sweep_memory.py [--trials 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import common

CONFIG = """\
name: memory
seed: 0
data: {{name: synthetic, task: regression, num_samples: 60, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [16]}}
train: {{epochs: 2, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
"""


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident set size (VmHWM in /proc/PID/status) in MiB, or None once it is gone.
    (psutil, when installed, reports no peak RSS on Linux: /proc is read directly.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc's parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def finished(root: Path) -> int:
    try:
        (folder,) = [path for path in root.iterdir() if path.is_dir()]
        trials = json.loads((folder / "sweep.json").read_text())["trials"]
    except (ValueError, OSError):
        return 0
    return sum(trial["status"] in ("completed", "pruned", "failed") for trial in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlrun-sweep-memory-") as scratch:
        root = Path(scratch) / "runs"
        root.mkdir()
        config = Path(scratch) / "memory.yaml"
        config.write_text(CONFIG.format(root=json.dumps(str(root))))
        argv = [
            common.PYTHON,
            "-m",
            "dlrun",
            "sweep",
            str(config),
            "--random",
            str(options.trials),
            "--range",
            "compile.optimizer.learning_rate=1e-3:1e-1:log",
            "--pruner",
            "none",
            "--workers",
            str(options.workers),
        ]
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=common.ROOT, env={**os.environ})
        at_10: dict | None = None
        at_end: dict | None = None  # the first sample once every trial has finished (before the plots are drawn)
        last: dict = {}
        milestones: dict[int, dict] = {}  # the first sample at 10, 25, 50, 75% ... of the trials: the trend
        workers_last: dict[int, float] = {}  # each process's latest reading: the pool closes as the last trial ends
        count = 0
        while process.poll() is None:
            count = finished(root)
            sample = {
                "trials": count,
                "main": peak_rss_mib(process.pid),
                "children": {child: peak_rss_mib(child) for child in descendants(process.pid)},
            }
            if sample["main"] is not None:
                last = sample
            workers_last.update({pid: value for pid, value in sample["children"].items() if value is not None})
            if at_10 is None and count >= 10:
                at_10 = sample
            if at_end is None and count >= options.trials:
                at_end = sample
            for mark in (10, options.trials // 4, options.trials // 2, 3 * options.trials // 4):
                if mark not in milestones and count >= mark:
                    milestones[mark] = sample
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"dlrun sweep failed ({process.returncode}):\n{process.stderr.read()[-3000:]}")
        count = finished(root)
    assert at_10 is not None and at_end is not None and count == options.trials, (count, at_10)
    workers = sorted(pid for pid in at_10["children"] if pid in workers_last)
    rows = [("main", at_10["main"], at_end["main"])] + [(f"child {pid}", at_10["children"][pid], workers_last[pid]) for pid in workers]
    growth = {name: round(end / start - 1, 4) for name, start, end in rows if start and end}
    outcome = {
        "trials": options.trials,
        "workers": options.workers,
        "seconds": round(seconds, 1),
        "sampled_at_trials": [at_10["trials"], at_end["trials"]],
        "main_peak_at_exit_mib": round(last["main"], 1),  # with the sweep's plots (matplotlib) drawn
        "peak_rss_mib": {name: [round(start, 1), round(end, 1)] for name, start, end in rows if start and end},
        "growth": growth,
        "max_growth": max(growth.values()),
        "trend_mib": {
            mark: {
                "main": round(sample["main"], 1),
                **{f"child {pid}": round(value, 1) for pid, value in sample["children"].items() if value},
            }
            for mark, sample in sorted(milestones.items())
        },
    }
    print(f"saved {common.save('sweep_memory', outcome)}")
    print(
        f"{options.trials} trials on {options.workers} workers in {seconds:.0f} s; peak RSS after trial "
        f"{at_10['trials']} -> after trial {at_end['trials']}:"
    )
    for mark, sample in sorted(milestones.items()):
        print(f"  after trial {mark}: " + ", ".join(f"{name} {value:.1f}" for name, value in outcome["trend_mib"][mark].items()))
    for name, start, end in rows:
        if start and end:
            print(f"  {name}: {start:.1f} MiB -> {end:.1f} MiB ({end / start - 1:+.2%})")
    print(
        f"largest growth {outcome['max_growth']:+.2%} (acceptance <= +5%); the main process's peak at exit, "
        f"after drawing the sweep's plots: {last['main']:.1f} MiB"
    )


if __name__ == "__main__":
    main()
