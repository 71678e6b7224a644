"""`benchmarks/run_all.py`: it runs every benchmark script, and `--skip-slow` leaves out the slow ones (nothing is measured here)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"common.py", "run_all.py", "gpu_bundle.py"}  # imported by the scripts, or (gpu_bundle.py) carries gpu.py to a GPU machine


def suite():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    return run_all


def test_every_benchmark_script_is_in_the_suite():
    run_all = suite()
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - HELPERS
    assert scripts == set(run_all.SUITE)
    assert run_all.SLOW <= set(run_all.SUITE)


def test_skip_slow_leaves_the_slow_scripts_out():
    run_all = suite()
    slow = [script for script in run_all.SUITE if script in run_all.SLOW]  # in the suite's order
    only = [word for script in slow for word in ("--only", script)]
    # its own process group: were a slow script started after all, it is stopped with the suite
    process = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--skip-slow", *only],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == [f"== {script}: slow, skipped (--skip-slow)" for script in slow]
