"""The explicit training loop (`train.loop: custom`) against `model.fit`.

Tolerance: both loops get the same seeded batches (`dlrun.training.batches.seeded`, as the trainer passes
them), start from the same weights (built after the same seed) and draw the same dropout masks
(Keras' per-layer seed generator advances once per training call in both). Both run the same float32
ops as TensorFlow graphs with op determinism on, so on CPU the numbers come out identical; the tests
allow a relative 1e-6 (a few float32 ulps) in case a TensorFlow version fuses or reorders an op in
one graph and not the other.
"""

import json

import numpy as np
import pytest

from dlrun import backend, errors
from dlrun.training import batches, loop
from tests.conftest import CONFIGS, assert_same_run, interrupt_after, invoke, run_folders, write_resumable_config

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1)  # 3 classes
    return x[:44], y[:44], x[44:], y[44:]  # 44 = 2 full batches of 16 and a partial one of 12


def _model(keras, seed=5):
    """Dropout and an L2 penalty, so both `training=True` and `model.losses` must be handled alike."""
    backend.seed_everything(seed)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _train(keras, arrays, custom: bool, shuffle=False, seed=5, callbacks=None, epochs=3, as_arrays=False):
    """Train as the trainer does: seeded batches + steps_per_epoch (or, `as_arrays`, plain arrays)."""
    x, y, validation_x, validation_y = arrays
    model = _model(keras)
    fit = (lambda **arguments: loop.fit(model, seed=seed, **arguments)) if custom else model.fit
    if as_arrays:
        training = {"x": x, "y": y, "shuffle": shuffle}
    else:
        training = {
            "x": batches.seeded(x, y, 16, seed, 0, epochs, shuffle=shuffle),
            "steps_per_epoch": batches.steps_per_epoch(len(x), 16),
            "shuffle": False,
        }
    result = fit(
        **training, batch_size=16, epochs=epochs, validation_data=(validation_x, validation_y), callbacks=callbacks or [], verbose=0
    )
    return result.history, model


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
def test_custom_loop_matches_fit_epoch_by_epoch(keras, arrays, shuffle):
    fitted, fit_model = _train(keras, arrays, custom=False, shuffle=shuffle)
    looped, loop_model = _train(keras, arrays, custom=True, shuffle=shuffle)
    assert sorted(looped) == sorted(fitted) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key in fitted:
        np.testing.assert_allclose(looped[key], fitted[key], rtol=TOLERANCE, err_msg=key)
    assert len(fitted["loss"]) == 3 and fitted["loss"][0] != fitted["loss"][-1]  # it did train
    for looped_weights, fitted_weights in zip(loop_model.get_weights(), fit_model.get_weights()):
        np.testing.assert_allclose(looped_weights, fitted_weights, rtol=TOLERANCE, atol=1e-7)


def test_loss_includes_the_regularisation_penalty(keras, arrays):
    """The reported loss is cross-entropy plus the L2 penalty, as with fit: evaluate without dropout agrees."""
    _, model = _train(keras, arrays, custom=True, epochs=1)
    x, y = arrays[2], arrays[3]
    by_loop = loop.evaluate(model, (x, y), batch_size=16)
    by_keras = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert by_loop == pytest.approx(by_keras, rel=TOLERANCE)
    penalty = float(sum(float(loss) for loss in model.losses))
    assert penalty > 0
    cross_entropy = float(np.mean(keras.losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0))))
    assert by_loop["loss"] == pytest.approx(cross_entropy + penalty, rel=1e-5)


@pytest.mark.slow
def test_given_arrays_the_loop_batches_them_as_the_trainer_does(keras, arrays):
    from_dataset, _ = _train(keras, arrays, custom=True, shuffle=True, seed=11, epochs=2)
    from_arrays, _ = _train(keras, arrays, custom=True, shuffle=True, seed=11, epochs=2, as_arrays=True)
    other_seed, _ = _train(keras, arrays, custom=True, shuffle=True, seed=12, epochs=2, as_arrays=True)
    assert from_arrays == from_dataset
    assert from_arrays["loss"] != other_seed["loss"]


def _stopper(keras, epoch, batch=None):
    """A callback that stops training at the end of `epoch` (or of its batch `batch`)."""

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, index, logs=None):
            self.epoch = index

        def on_train_batch_end(self, index, logs=None):
            if batch is not None and self.epoch == epoch and index == batch:
                self.model.stop_training = True

        def on_epoch_end(self, index, logs=None):
            if batch is None and index == epoch:
                self.model.stop_training = True

    return Stop()


@pytest.mark.slow
@pytest.mark.parametrize("batch", [None, 0], ids=["at-epoch-end", "mid-epoch"])
def test_stop_training_ends_both_loops_alike(keras, arrays, batch):
    fitted, _ = _train(keras, arrays, custom=False, callbacks=[_stopper(keras, 1, batch)], epochs=5)
    looped, _ = _train(keras, arrays, custom=True, callbacks=[_stopper(keras, 1, batch)], epochs=5)
    assert len(looped["loss"]) == len(fitted["loss"]) == 2
    np.testing.assert_allclose(looped["loss"], fitted["loss"], rtol=TOLERANCE)


def test_other_training_data_is_refused(keras):
    with pytest.raises(
        errors.ConfigError, match=r"train.loop: received 'custom' with training data of type list; expected arrays or a tf.data.Dataset"
    ):
        loop.fit(_model(keras), x=[[1.0] * 8], epochs=1)


@pytest.mark.slow
@pytest.mark.parametrize("smoke", ["mlp_multiclass", "mlp_regression"])
def test_cli_runs_give_the_same_history_json_with_either_loop(tmp_path, smoke):
    """Through `dlrun train`: RunRecorder, progress, early stopping, checkpoint and reduce-LR all see the same logs."""
    histories = {}
    for name in ("fit", "custom"):
        root = tmp_path / name
        result = invoke("train", CONFIGS / "smoke" / f"{smoke}.yaml", "--set", f"train.loop={name}", "--set", f"output.runs_root={root}")
        assert result.exit_code == 0, result.output
        assert "epoch 2/2  loss " in result.output
        (folder,) = run_folders(root)
        histories[name] = json.loads((folder / "history.json").read_text())
        assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert sorted(histories["custom"]) == sorted(histories["fit"])
    for key, values in histories["fit"].items():
        np.testing.assert_allclose(histories["custom"][key], values, rtol=TOLERANCE, err_msg=key)


@pytest.mark.slow
def test_custom_loop_interrupted_and_resumed_matches_a_straight_fit_run(tmp_path, monkeypatch):
    straight_root, resumed_root = tmp_path / "straight", tmp_path / "resumed"
    straight_root.mkdir(), resumed_root.mkdir()
    assert invoke("train", write_resumable_config(straight_root)).exit_code == 0
    (straight,) = run_folders(straight_root / "runs")
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        assert invoke("train", write_resumable_config(resumed_root), "--set", "train.loop=custom").exit_code == 130
    (folder,) = run_folders(resumed_root / "runs")
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 3" in result.output
    assert_same_run(folder, straight)
