"""benchmarks/gpu.py on this CPU at tiny sizes: dlrun and the plain Keras script both train on JAX with
TensorFlow blocked from importing (as on the GPU machine, which has none), and the tables render."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_folders, subprocess_env
from tests.test_backends import needs_jax


def _gpu_module():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_blocker_stops_tensorflow():
    gpu = _gpu_module()
    result = subprocess.run(
        [sys.executable, "-c", gpu.NO_TENSORFLOW + "import tensorflow\n"], capture_output=True, text=True, timeout=60, env=subprocess_env()
    )
    assert result.returncode == 1
    assert "ImportError: benchmarks/gpu.py: tensorflow is blocked (the GPU machine has no TensorFlow)" in result.stderr


@needs_jax
@pytest.mark.slow
def test_dlrun_and_plain_keras_train_the_mlp_without_tensorflow(tmp_path):
    gpu = _gpu_module()
    data = gpu.write_data(tmp_path, {"images": 20, "image_test": 10})
    config = tmp_path / "mlp.yaml"
    config.write_text(gpu.MLP.format(path=json.dumps(str(data["mlp"])), epochs=2))
    root = tmp_path / "runs"
    env = subprocess_env(DLRUN_JAX_CACHE="off")
    result = subprocess.run(
        [sys.executable, "-c", gpu.DLRUN, "train", str(config), "--backend", "jax", "--set", f"output.runs_root={root}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = run_folders(root)
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["jit_compile"] is True
    plain = subprocess.run(
        [sys.executable, "-c", gpu.PLAIN, "mlp", str(data["mlp"]), "2", "16"], capture_output=True, text=True, timeout=300, env=env
    )
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert json.loads(plain.stdout.strip().splitlines()[-1])["fit_seconds"] > 0
    row = {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    table = gpu.tables({"kfold": {"sequential_s": row, "vectorized_s": row, "vectorized_over_sequential": row}})
    assert "| vectorized / sequential | 1 | 2 | 3 |" in table
