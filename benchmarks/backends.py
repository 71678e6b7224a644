"""Keras backends: `dlrun train` on JAX (and on TensorFlow) vs plain TensorFlow Keras, the Boston recipe.

Each round runs, as whole processes: dlrun with `--backend jax` twice, first with an empty JAX
compilation cache ("cold": every program compiled, as on a first run) then with the cache that run
filled ("warm": as on every later run of the same model shapes), the plain TensorFlow Keras script
(benchmarks/reference/boston_synthetic.py), and dlrun with `--backend tensorflow`; rounds repeat
(A B C A B C ...). Prints min/median/max wall times, the median per-round ratio plain / dlrun-jax, the
test MAE of each side, the load average before and after, and which backend `auto` picks for the
dense config and for the convnet configs.

    python benchmarks/backends.py [--rounds 3] [--no-tensorflow]

`--calibration` instead checks `dlrun calibrate` against whole-process times: for the Boston config and
the quickstart convnet, it runs `dlrun calibrate` (into an empty cache), then `dlrun train` on each of
TensorFlow and JAX in alternation (JAX with a compilation cache warmed by one untimed run, as every run
after a user's first), and prints what calibration picked next to the measured min/median/max walls.

    python benchmarks/backends.py --calibration [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import common

CONFIG = "benchmarks/boston_synthetic.yaml"
REFERENCE = "benchmarks/reference/boston_synthetic.py"
CONVNETS = ["configs/quickstart.yaml", "configs/cats_dogs.yaml", "configs/signs.yaml"]


def run_dlrun(backend: str, jax_cache: str = "off") -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as root:
        seconds, _ = common.run(
            [common.PYTHON, "-m", "dlrun", "train", CONFIG, "--backend", backend, "--set", f"output.runs_root={root}"],
            env={"KERAS_BACKEND": "", "DLRUN_JAX_CACHE": jax_cache},
        )
        (folder,) = Path(root).iterdir()
        record = json.loads((folder / "run.json").read_text())
    return seconds, {"fit_seconds": record["fit_seconds"], "test_mae": record["test_metrics"]["mae"], "backend": record["backend"]["name"]}


def run_reference() -> tuple[float, dict]:
    seconds, result = common.run([common.PYTHON, REFERENCE])
    return seconds, common.last_json_line(result.stdout)


def auto_choices() -> dict:
    """What `auto` picks for the benchmark's dense config and the convnet configs (in a fresh process)."""
    probe = (
        "import json, sys\nfrom dlrun import backend, config\n"
        "print(json.dumps({path: backend.choose(config.load(path)).record() for path in sys.argv[1:]}))"
    )
    paths = [CONFIG, *(path for path in CONVNETS if (common.ROOT / path).exists())]
    result = subprocess.run(
        [common.PYTHON, "-c", probe, *paths],
        capture_output=True,
        text=True,
        cwd=common.ROOT,
        env={**os.environ, "KERAS_BACKEND": ""},
        check=True,
    )
    return json.loads(result.stdout)


def calibration_check(rounds: int) -> None:
    """`dlrun calibrate`'s pick vs the whole-process wall times of `dlrun train` per backend."""
    results = {"load_average_before": os.getloadavg()}
    for config in (CONFIG, "configs/quickstart.yaml"):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as jax_cache:
            env = {"KERAS_BACKEND": "", "DLRUN_CACHE_DIR": cache, "DLRUN_JAX_CACHE": jax_cache, "DLRUN_CALIBRATE": "on"}
            seconds, result = common.run([common.PYTHON, "-m", "dlrun", "calibrate", config], env=env)
            print(result.stdout, flush=True)
            (stored,) = Path(cache, "calibration").glob("*.json")
            picked = [line for line in result.stdout.splitlines() if line.startswith("backend: auto picks")]
            walls: dict = {"tensorflow": [], "jax": []}
            with tempfile.TemporaryDirectory() as root:  # fills the JAX compilation cache, as a user's first run does
                common.run(
                    [common.PYTHON, "-m", "dlrun", "train", config, "--backend", "jax", "--set", f"output.runs_root={root}"], env=env
                )
            for index in range(rounds):
                for name in walls:
                    with tempfile.TemporaryDirectory() as root:
                        wall, _ = common.run(
                            [common.PYTHON, "-m", "dlrun", "train", config, "--backend", name, "--set", f"output.runs_root={root}"], env=env
                        )
                    walls[name].append(wall)
                print(
                    f"  {config} round {index + 1}/{rounds}: " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in walls.items()),
                    flush=True,
                )
            results[config] = {
                "calibrate_seconds": seconds,
                "picked": picked,
                "times": json.loads(stored.read_text())["times"],
                "wall": {name: common.summary(values) for name, values in walls.items()},
            }
            for name, values in results[config]["wall"].items():
                print(f"{config} {name}: wall min {values['min']:.2f} s, median {values['median']:.2f} s, max {values['max']:.2f} s")
    results["load_average_after"] = os.getloadavg()
    print(f"load average before {results['load_average_before'][0]:.2f}, after {results['load_average_after'][0]:.2f}")
    print(f"saved {common.save('calibration', results)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tensorflow", action="store_true", help="skip dlrun on TensorFlow (C)")
    parser.add_argument("--calibration", action="store_true", help="check dlrun calibrate's picks against measured walls")
    options = parser.parse_args()
    if options.calibration:
        calibration_check(options.rounds)
        return
    load_before = os.getloadavg()
    rows = []
    for index in range(options.rounds):
        row = {}
        with tempfile.TemporaryDirectory() as cache:
            row["jaxcold_wall"], cold_out = run_dlrun("jax", cache)
            row["jax_wall"], jax_out = run_dlrun("jax", cache)
        row["plain_wall"], plain_out = run_reference()
        row.update(
            jaxcold_fit=cold_out["fit_seconds"],
            jax_fit=jax_out["fit_seconds"],
            jax_mae=jax_out["test_mae"],
            plain_fit=plain_out["fit_seconds"],
            plain_mae=plain_out["test_mae"],
        )
        assert cold_out["test_mae"] == jax_out["test_mae"], "the compilation cache changed a number"
        if not options.no_tensorflow:
            row["tf_wall"], tf_out = run_dlrun("tensorflow")
            row.update(tf_fit=tf_out["fit_seconds"], tf_mae=tf_out["test_mae"])
        rows.append(row)
        print(f"  round {index + 1}/{options.rounds}: " + ", ".join(f"{key} {value:.3f}" for key, value in row.items()), flush=True)
    load_after = os.getloadavg()
    walls = {
        side: common.summary([row[f"{side}_wall"] for row in rows])
        for side in ("jaxcold", "jax", "plain", "tf")
        if f"{side}_wall" in rows[0]
    }
    results = {
        "rounds": rows,
        "wall": walls,
        "speedup_plain_over_jax_median": statistics.median(row["plain_wall"] / row["jax_wall"] for row in rows),
        "speedup_plain_over_jax_cold_median": statistics.median(row["plain_wall"] / row["jaxcold_wall"] for row in rows),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "auto": auto_choices(),
    }
    for side, values in walls.items():
        print(f"{side}: wall min {values['min']:.2f} s, median {values['median']:.2f} s, max {values['max']:.2f} s")
    print(
        f"plain TensorFlow / dlrun on JAX (median of per-round ratios): warm cache "
        f"{results['speedup_plain_over_jax_median']:.2f}x, cold cache {results['speedup_plain_over_jax_cold_median']:.2f}x; "
        f"test MAE jax {rows[0]['jax_mae']:.3f}, plain {rows[0]['plain_mae']:.3f}"
        + (f", dlrun tensorflow {rows[0]['tf_mae']:.3f}" if "tf_mae" in rows[0] else "")
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print("auto picks: " + json.dumps(results["auto"], indent=1))
    print(f"saved {common.save('backends', results)}")


if __name__ == "__main__":
    main()
