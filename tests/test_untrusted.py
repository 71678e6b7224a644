"""Untrusted files and broken disks: nothing from a file is executed, nothing is marked done that is not."""

from __future__ import annotations

import errno
import json
import pickle

import numpy as np

from dlrun import atomic, backend
from tests.conftest import CONFIGS, invoke, run_folders, tiny_config


class _Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_keras_file_with_a_lambda_layer_is_refused_not_run(trained_run, tmp_path):
    keras = backend.import_keras()
    marker = tmp_path / "lambda-ran"
    # A Lambda whose code would create the marker if it were ever deserialised and called.
    inputs = keras.Input((6,))
    marker_name = str(marker)
    outputs = keras.layers.Lambda(lambda x: (open(marker_name, "w").close(), x)[1])(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(outputs)
    hostile = keras.Model(inputs, outputs)
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("run.json", "config.yaml"):
        (folder / name).write_text((trained_run / name).read_text())
    hostile.save(folder / "model.keras")
    marker.unlink(missing_ok=True)  # saving traced the lambda once; only loading matters from here

    result = invoke("eval", folder)
    assert result.exit_code == 2
    assert "model.keras: refused to load: it contains code (a Lambda layer)" in result.stderr
    assert "Traceback" not in result.stderr
    result = invoke("visualize", "activations", "--run", folder, "--image", CONFIGS / "quickstart.yaml")
    assert result.exit_code == 2
    assert not marker.exists()
    assert not list(folder.glob("eval_*"))


def test_npz_with_a_pickled_payload_is_refused_not_run(tmp_path):
    marker = tmp_path / "pickle-ran"
    archive = tmp_path / "data.npz"
    payload = np.empty(2, dtype=object)
    payload[0] = _Payload(marker)
    np.savez(archive, x_train=payload, y_train=np.array([0, 1]))
    assert pickle.dumps(payload)  # the file really holds a pickle
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs")
    result = invoke("train", path, "--set", f"data={{name: npz, path: {json.dumps(str(archive))}}}")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr and str(archive) in result.stderr
    assert not marker.exists()
    assert run_folders(tmp_path / "runs") == []


def test_nan_in_the_input_data_is_reported_before_training(tmp_path):
    inputs = np.ones((20, 3), "float32")
    inputs[4, 1] = np.nan
    inputs[7, 0] = np.inf
    archive = tmp_path / "data.npz"
    np.savez(archive, x_train=inputs, y_train=np.arange(20) % 2)
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs")
    result = invoke("train", path, "--set", f"data={{name: npz, path: {json.dumps(str(archive))}}}")
    assert result.exit_code == 2
    assert "contain 2 NaN or infinite value(s), the first at index" in result.stderr
    assert run_folders(tmp_path / "runs") == []


def test_a_full_disk_fails_the_run_clearly_and_never_marks_it_completed(tmp_path, monkeypatch):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", epochs=3)
    original = atomic.write_bytes
    calls = {"history": 0}

    def fill_up(target, data, **options):
        if str(target).endswith("history.json"):
            calls["history"] += 1
            if calls["history"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return original(target, data, **options)

    monkeypatch.setattr(atomic, "write_bytes", fill_up)
    result = invoke("train", path)
    assert result.exit_code == 1
    assert "could not write the run's files: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert json.loads((folder / "history.json").read_text())["epoch"] == [1]  # the last good write is intact
    assert not (folder / "model.keras").exists()
