"""`train.distribute: data_parallel`: Keras' DataParallel on JAX over forced host devices and over two
local processes (as two hosts), against one device; choosing JAX for it; its config errors; resume.

JAX runs happen in fresh processes (the suite's own process runs on TensorFlow) with
`XLA_FLAGS=--xla_force_host_platform_device_count=2`, which makes the CPU two JAX devices. Each run
records the shape of every batch Keras hands JAX and of each device's shard of it (SHAPES_PROBE).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dlrun import backend, config as config_module, errors
from dlrun.training import batches, distribution
from tests.conftest import RESUME_SCRIPT, assert_resumed_after_epoch_2, run_folders, subprocess_env
from tests.test_backends import HAS_JAX, needs_jax

# 100 samples: 64 train, 16 validation, 20 test; batch 16: every batch (the test split's last one of 4
# included) halves evenly over two devices.
CONFIG = """\
name: spread
seed: 5
data: {{name: synthetic, task: regression, num_samples: 100, input_shape: [6]}}
model: {{architecture: mlp, units: [8]}}
train: {{epochs: 3, batch_size: 16, distribute: {distribute}}}
output: {{runs_root: {root}, plots: false}}
"""
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}

# Runs the CLI (argv: train CONFIG ...) after wrapping the function through which Keras' JAX trainer
# places each batch on the devices; writes [global shape, sorted shard shapes on this process's
# devices] per input array to $SHAPES_FILE at exit.
SHAPES_PROBE = textwrap.dedent("""\
    import atexit, json, os
    os.environ["KERAS_BACKEND"] = "jax"
    from keras.src.backend import distribution_lib
    original, seen = distribution_lib.distribute_data_input, []
    def recording(batch, layout, batch_dim_name):
        placed = original(batch, layout, batch_dim_name)
        seen.append([list(placed.shape), sorted(list(shard.data.shape) for shard in placed.addressable_shards)])
        return placed
    distribution_lib.distribute_data_input = recording
    atexit.register(lambda: open(os.environ["SHAPES_FILE"], "w").write(json.dumps(seen)))
    from dlrun import cli
    cli.main()
""")


def _write(tmp_path: Path, name: str, distribute: str) -> tuple[Path, Path]:
    root = tmp_path / name
    path = tmp_path / f"{name}.yaml"
    path.write_text(CONFIG.format(distribute=distribute, root=json.dumps(str(root))))
    return path, root


def _train(tmp_path: Path, name: str, distribute: str, *arguments: str, env: dict | None = None) -> dict:
    path, root = _write(tmp_path, name, distribute)
    shapes = tmp_path / f"{name}.shapes.json"
    result = subprocess.run(
        [sys.executable, "-c", SHAPES_PROBE, "train", str(path), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(SHAPES_FILE=str(shapes), **(env or {})),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = run_folders(root)
    return {
        "record": json.loads((folder / "run.json").read_text()),
        "shapes": json.loads(shapes.read_text()),
        "history": json.loads((folder / "history.json").read_text()),
    }


def _assert_same_numbers(history: dict, reference: dict) -> None:
    assert history["epoch"] == reference["epoch"] == [1, 2, 3]
    for key in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(history[key], reference[key], rtol=1e-5, err_msg=key)


# --- the shares of a global batch --------------------------------------------------------------------


def test_each_process_feeds_its_slice_of_every_global_batch_in_order(monkeypatch):
    monkeypatch.setattr(backend, "feeds_tf_data", lambda: False)  # the NumPy batches JAX gets
    inputs, targets = np.arange(20).reshape(10, 2), np.arange(10)
    whole = list(batches.seeded(inputs, targets, 4, seed=3, first_epoch=0, epochs=2))
    parts = [list(batches.seeded(inputs, targets, 4, 3, 0, 2, share=distribution.Share(index, 2))) for index in (0, 1)]
    assert [len(x) for x, _y in parts[0]] == [2, 2, 1, 2, 2, 1]  # batches of 4, 4, 2: halves
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *parts):
        np.testing.assert_array_equal(np.concatenate([x0, x1]), x)  # process 0's rows, then process 1's
        np.testing.assert_array_equal(np.concatenate([y0, y1]), y)


def test_validation_rows_are_cut_batch_by_batch():
    share = distribution.Share(1, 2)
    np.testing.assert_array_equal(share.local_order(np.arange(10), 4), [2, 3, 6, 7, 9])
    assert distribution.SINGLE.local_order(np.arange(5), 4).tolist() == [0, 1, 2, 3, 4]


# --- choosing JAX, and the config errors ------------------------------------------------------------


def _config(**train) -> object:
    return config_module.validate(
        {"data": {"name": "synthetic", "num_samples": 40}, "model": "mlp", "train": {"distribute": "data_parallel", **train}}
    )


def test_auto_picks_jax_for_data_parallel_whatever_keras_backend_says():
    choice = backend.choose(_config(), available=["tensorflow", "jax"], already=None, environment="tensorflow")
    assert choice == backend.Choice("jax", "auto: train.distribute: data_parallel needs JAX")


def test_data_parallel_without_jax_or_on_another_loaded_backend_is_refused():
    with pytest.raises(errors.ConfigError) as caught:
        backend.choose(_config(), available=["tensorflow"], already=None, environment=None)
    assert (
        "train.distribute: received 'data_parallel', which needs JAX, not installed here; expected JAX installed (pip install 'dlrun[jax]')"
        in str(caught.value)
    )
    with pytest.raises(errors.ConfigError) as caught:
        backend.choose(_config(), available=["tensorflow", "jax"], already="tensorflow", environment=None)
    assert (
        "train.distribute: received 'data_parallel', which needs JAX; Keras was already imported in this process with the 'tensorflow' backend"
        in str(caught.value)
    )


class _Data:
    """A stand-in dataset: split sizes, arrays for every split."""

    def __init__(self, train: int, validation: int, test: int) -> None:
        self.sizes = {"train": train, "validation": validation, "test": test}

    def size(self, name: str) -> int:
        return self.sizes[name]

    def split(self, name: str) -> tuple:
        return (np.zeros((self.sizes[name], 1)), np.zeros(self.sizes[name]))


@pytest.mark.parametrize(
    "batch_size, sizes, message",
    [
        (
            15,
            (64, 16, 20),
            "train.batch_size: received 15 with 2 data-parallel devices; expected a multiple of 2 (each device gets an equal part of each batch)",
        ),
        (
            16,
            (64, 16, 21),
            "train.batch_size: received 16 with 2 data-parallel devices and a test split of 21 samples, "
            "whose last batch of 5 does not split evenly; expected a batch size that leaves a last batch "
            "divisible by 2 (or none)",
        ),
    ],
)
def test_batches_that_do_not_split_evenly_are_a_config_error(monkeypatch, batch_size, sizes, message):
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(jax, "device_count", lambda: 2)
    with pytest.raises(errors.ConfigError) as caught:
        distribution.check_batches(_config(batch_size=batch_size), _Data(*sizes), distribution.SINGLE)
    assert str(caught.value) == f"invalid config: {message}"
    distribution.check_batches(_config(batch_size=16), _Data(64, 16, 20), distribution.SINGLE)  # even: no error


def test_only_process_0_keeps_a_run_folder_and_no_process_resumes(tmp_path):
    import io

    from rich.console import Console

    config = _config()
    assert distribution.runs_root(config, distribution.Share(0, 2), False, Console(file=io.StringIO())) is config
    console = Console(file=io.StringIO(), width=300)
    other = distribution.runs_root(config, distribution.Share(1, 2), False, console)
    scratch = Path(other.output.runs_root)
    assert scratch.is_dir() and scratch != Path(config.output.runs_root)
    assert "process 1 of 2: process 0 writes the run folder; this one trains in a temporary folder" in console.file.getvalue()
    distribution.remove_scratch(other, distribution.Share(1, 2))
    assert not scratch.exists()
    for index in (0, 1):
        with pytest.raises(errors.ConfigError) as caught:
            distribution.runs_root(config, distribution.Share(index, 2), True, console)
        assert "train.distribute: received 'data_parallel' across processes with --resume; expected one process" in str(caught.value)


# --- training: two devices, two processes, resume ------------------------------------------------------


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    """The reference: the same config without distribution, on JAX (one CPU device)."""
    if not HAS_JAX:
        pytest.skip(needs_jax.kwargs["reason"])
    return _train(tmp_path_factory.mktemp("one"), "one", "none", "--backend", "jax")


@needs_jax
@pytest.mark.slow
def test_data_parallel_on_two_devices_halves_each_batch_and_matches_one_device(tmp_path, one_device):
    outcome = _train(tmp_path, "two", "data_parallel", env=TWO_DEVICES)
    record = outcome["record"]
    assert record["status"] == "completed" and record["backend"]["name"] == "jax"
    assert record["distribution"] == {
        "kind": "data_parallel",
        "devices": 2,
        "local_devices": 2,
        "processes": 1,
        "device_kind": "cpu",
        "per_device_batch": 8,
    }
    train_batches = [shards for shape, shards in outcome["shapes"] if shape == [16, 6]]
    assert len(train_batches) >= 3 * 4  # 4 global batches of 16 per epoch (more: validation, test)
    assert all(shards == [[8, 6], [8, 6]] for shards in train_batches)  # each device: 8 of the 16 rows
    assert all(shards == [[shape[0] // 2, *shape[1:]]] * 2 for shape, shards in outcome["shapes"])
    _assert_same_numbers(outcome["history"], one_device["history"])
    np.testing.assert_allclose(record["test_metrics"]["mae"], one_device["record"]["test_metrics"]["mae"], rtol=1e-5)
    assert one_device["shapes"] == [] and "distribution" not in one_device["record"]  # the probe saw no mesh there


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_jax
@pytest.mark.slow
def test_data_parallel_across_two_processes_one_run_folder_same_numbers(tmp_path, one_device):
    path, root = _write(tmp_path, "hosts", "data_parallel")
    cluster = {distribution.JOB_ADDRESSES: f"127.0.0.1:{_free_port()}", distribution.NUM_PROCESSES: "2"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SHAPES_PROBE, "train", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(SHAPES_FILE=str(tmp_path / f"shapes{index}.json"), **{distribution.PROCESS_ID: str(index)}, **cluster),
        )
        for index in (0, 1)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    (folder,) = run_folders(root)  # process 0's; process 1 trained in a temporary folder, since deleted
    scratch = [line.split(": ", 1)[1] for line in outputs[1][0].splitlines() if line.startswith("completed: ")]
    assert len(scratch) == 1 and not Path(scratch[0]).exists() and not Path(scratch[0]).is_relative_to(root)
    assert "process 1 of 2: process 0 writes the run folder" in outputs[1][0]
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["distribution"]["processes"] == 2 and record["distribution"]["devices"] == 2
    assert record["distribution"]["per_device_batch"] == 8
    for index in (0, 1):  # each process places its half of each global batch of 16 on its one device
        shapes = json.loads((tmp_path / f"shapes{index}.json").read_text())
        assert max(shape[0] for shape, _shards in shapes) == 16  # the global batch: 2 x 8 rows, never 2 x 16
        assert sum(shape == [16, 6] for shape, _shards in shapes) >= 3 * 4  # 4 training batches an epoch, and validation
        assert all(shards == [[shape[0] // 2, *shape[1:]]] for shape, shards in shapes)
    _assert_same_numbers(json.loads((folder / "history.json").read_text()), one_device["history"])
    np.testing.assert_allclose(record["test_metrics"]["mae"], one_device["record"]["test_metrics"]["mae"], rtol=1e-5)
    assert (folder / "model.keras").is_file() and (folder / "metrics.json").is_file()


@needs_jax
@pytest.mark.slow
def test_a_data_parallel_mixed_precision_run_resumes_to_the_straight_runs_numbers(tmp_path):
    path, root = _write(tmp_path, "resumed", "data_parallel")
    path.write_text(path.read_text().replace("distribute: data_parallel", "distribute: data_parallel, precision: mixed_bfloat16"))
    result = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(path)], capture_output=True, text=True, timeout=300, env=subprocess_env(**TWO_DEVICES)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["backend"] == "jax"
    assert_resumed_after_epoch_2(outcome)
    records = [json.loads((folder / "run.json").read_text()) for folder in run_folders(root)]
    assert {record["precision"]["policy"] for record in records} == {"mixed_bfloat16"}
    assert {record["distribution"]["devices"] for record in records} == {2}
