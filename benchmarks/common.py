"""Shared helpers for the benchmark scripts: timing whole processes, A/B alternation, machine facts."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PYTHON = sys.executable


def run(argv: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command to completion; return (wall seconds, completed process). Fails loudly on error."""
    started = time.perf_counter()
    # backend: auto keeps its fixed rule unless a benchmark asks for calibration: a first run's lazy
    # calibration (and a backend chosen by this machine's load at that moment) would move every number.
    settled = {"DLRUN_CALIBRATE": os.environ.get("DLRUN_CALIBRATE", "off")}
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={**os.environ, **settled, **(env or {})})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed ({result.returncode}): {' '.join(argv)}\n{result.stderr[-3000:]}")
    return seconds, result


def summary(values: list[float]) -> dict:
    """min / median / max of a list of numbers."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def machine() -> dict:
    """Cores, CPU model, date and versions, for BENCHMARKS.md."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = subprocess.run(
        [PYTHON, "-c", "import tensorflow, keras, numpy; print(tensorflow.__version__, keras.__version__, numpy.__version__)"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()
    return {
        "date": datetime.date.today().isoformat(),
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "tensorflow": versions[0] if versions else "?",
        "keras": versions[1] if len(versions) > 1 else "?",
        "numpy": versions[2] if len(versions) > 2 else "?",
    }


def save(name: str, payload: dict) -> Path:
    """Write benchmarks/results/<name>.json (ignored by git; BENCHMARKS.md holds the curated numbers)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def last_json_line(text: str) -> dict:
    """The last line of `text` that parses as a JSON object (reference scripts print their result so)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON result line in output:\n{text[-2000:]}")
