"""Untrusted files and broken disks: nothing from a file is executed, nothing is marked done that is not."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np

from dlrun import backend
from tests.conftest import invoke, run_folders, tiny_config


class _Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _copy_run_without_model(trained_run, folder):
    folder.mkdir()
    for name in ("run.json", "config.yaml"):
        (folder / name).write_text((trained_run / name).read_text())
    return folder


def _refused_by_eval_predict_and_visualize(folder, marker, reason, tmp_path):
    """eval, predict (on 6-feature rows) and visualize (on a real PNG) all exit 2 with "model.keras: refused
    to load: REASON", no traceback, the marker never made, no eval file written: exit 2 can only come from
    the model file."""
    from tests.conftest import tiny_png

    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((2, 6), dtype="float32"))
    image = tmp_path / "image.png"
    image.write_bytes(tiny_png())
    for args in (["eval", folder], ["predict", folder, rows], ["visualize", "activations", "--run", folder, "--image", image]):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{folder / 'model.keras'}: refused to load: {reason}" in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not list(folder.glob("eval_*")) and not (folder / "metrics.json").exists()


def test_keras_file_with_a_lambda_layer_is_refused_not_run(trained_run, tmp_path):
    keras = backend.import_keras()
    marker = tmp_path / "lambda-ran"
    # A Lambda whose code would create the marker if it were ever deserialised and called.
    inputs = keras.Input((6,))
    marker_name = str(marker)
    outputs = keras.layers.Lambda(lambda x: (open(marker_name, "w").close(), x)[1])(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(outputs)
    hostile = keras.Model(inputs, outputs)
    folder = _copy_run_without_model(trained_run, tmp_path / "run")
    hostile.save(folder / "model.keras")
    marker.unlink(missing_ok=True)  # saving traced the lambda once; only loading matters from here
    _refused_by_eval_predict_and_visualize(folder, marker, "it contains code (a Lambda layer)", tmp_path)


def test_keras_file_naming_an_unregistered_class_is_refused_not_imported(trained_run, tmp_path, monkeypatch):
    """A model.keras whose config names a layer `module`/`class_name` outside Keras and dlrun (here an importable
    module whose import would make the marker) is refused; the module is never imported."""
    import sys
    import zipfile

    marker = tmp_path / "module-imported"
    (tmp_path / "dlrun_hostile_layers.py").write_text(f"open({str(marker)!r}, 'w').close()\nHostile = object\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _copy_run_without_model(trained_run, tmp_path / "run")
    with zipfile.ZipFile(trained_run / "model.keras") as original, zipfile.ZipFile(folder / "model.keras", "w") as forged:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "config.json":
                model_config = json.loads(data)
                layer = next(layer for layer in model_config["config"]["layers"] if layer["class_name"] == "Dense")
                layer.update(module="dlrun_hostile_layers", class_name="Hostile", registered_name="Hostile")
                data = json.dumps(model_config).encode()
            forged.writestr(item, data)
    _refused_by_eval_predict_and_visualize(folder, marker, "it needs a class this installation does not know", tmp_path)
    assert "dlrun_hostile_layers" not in sys.modules


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
    """The disk fills up inside the real write of epoch 2's history.json (`atomic.write_bytes`, after its temp
    file is made, half the bytes written): the run fails with the reason, epoch 1's history.json is intact,
    the half-written temp file is removed, and nothing is marked completed."""
    from tests.conftest import disk_full_while_writing

    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", epochs=3)
    opened = disk_full_while_writing(monkeypatch, "history.json", on_write=2)
    result = invoke("train", path)
    assert result.exit_code == 1, result.output
    assert len(opened) == 2  # the failure came inside the second real write, after its temp file existed
    (folder,) = run_folders(tmp_path / "runs")
    assert result.stderr.startswith(f"error: could not write the run's files: No space left on device ({opened[1]})")
    assert "Traceback" not in result.stderr
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert json.loads((folder / "history.json").read_text())["epoch"] == [1]  # the last good write is intact
    assert not any(name.startswith(".history.json.") for name in os.listdir(folder))  # no temp file left
    assert not (folder / "model.keras").exists()


def test_a_checkpoint_holding_a_pickled_array_is_refused_never_unpickled(tmp_path, monkeypatch):
    """Checkpoints are read with allow_pickle=False: a checkpoints/last.npz holding a pickled object array is
    refused: with previous.npz pickled too `--resume` exits 2, with a good previous.npz it resumes from that; the pickle's
    code never runs."""
    from dlrun.training import checkpoints
    from tests.conftest import interrupt_after, write_resumable_config

    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        assert invoke("train", write_resumable_config(tmp_path)).exit_code == 130
    (folder,) = run_folders(tmp_path / "runs")
    marker = tmp_path / "pickle-ran"

    def plant_pickle(name):
        with np.load(folder / name, allow_pickle=False) as stored:
            arrays = dict(stored)
        payload = np.empty(1, dtype=object)
        payload[0] = _Payload(marker)
        arrays["model/0"] = payload
        np.savez(folder / name, **arrays)

    previous = (folder / checkpoints.PREVIOUS).read_bytes()
    plant_pickle(checkpoints.LATEST)
    plant_pickle(checkpoints.PREVIOUS)
    with zipfile.ZipFile(folder / checkpoints.LATEST) as archive:  # the file really holds a pickle
        assert b"pickle-ran" in archive.read("model/0.npy")
    result = invoke("train", "--resume", folder)
    assert not marker.exists()
    assert result.exit_code == 2, result.output
    assert "no usable training checkpoint to resume from" in result.stderr
    assert "Object arrays cannot be loaded when allow_pickle=False" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr

    (folder / checkpoints.PREVIOUS).write_bytes(previous)
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 2 (state from checkpoints/previous.npz)" in result.output
    assert not marker.exists()
