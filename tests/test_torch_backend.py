"""The PyTorch backend (`backend: torch`): runs repeat exactly, resume, K-fold on worker processes, multi-hot.

Like the JAX tests in tests/test_backends.py, every torch run happens in a fresh process (Keras cannot
switch backend inside one); each test is skipped, with the reason printed, when PyTorch is not installed
(`pip install 'dlrun[torch]'`; .ci/run installs the CPU wheel when the machine has it).
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dlrun import backend
from tests.conftest import (
    RESUME_SCRIPT,
    TINY_REGRESSION,
    assert_resumed_after_epoch_2,
    review_tokens,
    run_folders,
    subprocess_env,
    train_in_fresh_process,
)

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (pip install 'dlrun[torch]'); torch-backend tests skipped")
DROPOUT = ("--set", "model.dropout=0.2")  # a seed generator in the model: its state must repeat and resume


@needs_torch
@pytest.mark.slow
def test_torch_runs_repeat_exactly_without_tensorflow(tmp_path):
    first = train_in_fresh_process(tmp_path, "first", "--backend", "torch", *DROPOUT)
    second = train_in_fresh_process(tmp_path, "second", "--backend", "torch", *DROPOUT)
    assert first["backend"] == {"name": "torch", "reason": "backend: torch was asked for in the config"}
    assert "torch" in first["versions"] and "tensorflow" not in first["versions"]  # NumPy batches, no tf.data
    assert first["history"] == second["history"]
    assert first["test_metrics"] == second["test_metrics"]
    assert np.isfinite(first["test_metrics"]["loss"])


@needs_torch
@pytest.mark.slow
def test_resume_on_torch_matches_a_straight_run(tmp_path):
    path = tmp_path / "resume.yaml"
    text = TINY_REGRESSION.format(root=json.dumps(str(tmp_path / "runs"))) + "backend: torch\n"
    path.write_text(text.replace("units: [8]}", "units: [8], dropout: 0.2}"))
    result = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(path)], capture_output=True, text=True, timeout=300, env=subprocess_env()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["backend"] == "torch"
    assert_resumed_after_epoch_2(outcome)


# dlrun's CLI, saying at exit whether this process imported TensorFlow
TELLS_TENSORFLOW = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules))\n"
    "sys.argv[0] = 'dlrun'\nfrom dlrun import cli\ncli.main()\n"
)


@needs_torch
@pytest.mark.slow
def test_kfold_on_torch_workers_gives_the_sequential_numbers(tmp_path):
    path = tmp_path / "kfold.yaml"
    path.write_text(TINY_REGRESSION.format(root=json.dumps(str(tmp_path / "runs"))) + "backend: torch\n")
    states = {}
    for name, extra in (("sequential", []), ("pool", ["--workers", "2"])):
        command = [
            sys.executable,
            "-c",
            TELLS_TENSORFLOW,
            "kfold",
            str(path),
            "--k",
            "2",
            "--set",
            f"output.runs_root={tmp_path / name}",
            *extra,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=subprocess_env())
        assert result.returncode == 0, result.stderr[-3000:]
        (folder,) = run_folders(tmp_path / name)
        states[name] = json.loads((folder / "kfold.json").read_text())
        # the final refit runs in this process, after a module-level `import keras`: still no TensorFlow
        assert result.stdout.strip().splitlines()[-1] == "tensorflow imported: False", name
    assert states["pool"]["executor"]["workers"] == 2 and states["sequential"]["executor"]["executor"] == "sequential"
    for sequential, pooled in zip(states["sequential"]["folds"], states["pool"]["folds"], strict=True):
        assert sequential["last"] == pooled["last"]
    assert states["sequential"]["final_test"] == states["pool"]["final_test"]


TORCH_MULTI_HOT = textwrap.dedent("""\
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import keras, numpy as np
    from dlrun.models import multi_hot
    def refuse(*args, **kwargs):
        raise AssertionError("keras.ops.scatter on torch adds one index at a time in Python")
    keras.ops.scatter = refuse
    tokens = np.load(sys.argv[1])
    np.save(sys.argv[2], keras.ops.convert_to_numpy(multi_hot.MultiHot(10000)(tokens)))
    model = keras.Sequential([keras.Input((tokens.shape[1],), dtype="int32"), multi_hot.MultiHot(10000), keras.layers.Dense(1)])
    print(model.predict(tokens, verbose=0).shape)
""")


@needs_torch
def test_multi_hot_on_torch_matches_without_keras_scatter(tmp_path):
    keras = backend.import_keras()
    tokens = review_tokens()
    np.save(tmp_path / "tokens.npy", tokens)
    result = subprocess.run(
        [sys.executable, "-c", TORCH_MULTI_HOT, str(tmp_path / "tokens.npy"), str(tmp_path / "out.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "(48, 1)"
    expected = np.array(keras.layers.CategoryEncoding(10_000, output_mode="multi_hot")(tokens))
    expected[:, 0] = 0  # the padding column
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
