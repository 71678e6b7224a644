"""Seeded batches and training-state checkpoints: the pieces `dlrun train --resume` stands on."""

import numpy as np
import pytest

from dlrun import errors
from dlrun.training import batches, checkpoints


def orders(dataset):
    return [batch[1].numpy().tolist() for batch in dataset]


def test_each_epoch_order_depends_only_on_seed_and_epoch(keras):
    inputs = np.arange(10, dtype="float32")[:, None]
    targets = np.arange(10)
    full = orders(batches.seeded(inputs, targets, 4, seed=3, first_epoch=0, epochs=3))
    tail = orders(batches.seeded(inputs, targets, 4, seed=3, first_epoch=2, epochs=3))
    assert len(full) == 9 and tail == full[6:]
    assert sorted(sum(full[:3], [])) == list(range(10))  # every sample once per epoch
    assert full[:3] != full[3:6]  # reshuffled each epoch
    assert orders(batches.seeded(inputs, targets, 4, seed=4, first_epoch=0, epochs=1)) != full[:3]
    assert orders(batches.seeded(inputs, targets, 4, seed=3, first_epoch=0, epochs=1, shuffle=False))[0] == [0, 1, 2, 3]


def test_the_tf_data_batches_run_no_autotuning_thread(keras):
    """Deleting a tf.data iterator waits for its autotuning thread: 10-20 s at the end of about half of the
    5-epoch Fashion-MNIST fits measured (issue 17's bimodal fit time). The seeded batches switch it off."""
    from dlrun import backend

    if not backend.feeds_tf_data():
        pytest.skip(f"the seeded batches are a tf.data pipeline only on TensorFlow (this run: {backend.loaded()})")
    dataset = batches.seeded(np.zeros((10, 2), dtype="float32"), np.arange(10), 4, seed=3, first_epoch=0, epochs=2)
    assert dataset.options().autotune.enabled is False


def tiny_model(keras):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_state_round_trip_includes_optimizer_and_seed_state(keras, tmp_path):
    model = tiny_model(keras)
    model.fit(np.ones((8, 3)), np.ones(8), epochs=2, verbose=0)
    checkpoints.save(tmp_path, model, epochs_completed=2)
    fresh = tiny_model(keras)
    epochs, used = checkpoints.restore(tmp_path, fresh)
    assert (epochs, used) == (2, checkpoints.LATEST)
    for before, after in zip(model.variables + model.optimizer.variables, fresh.variables + fresh.optimizer.variables):
        np.testing.assert_array_equal(before.numpy(), after.numpy())


def test_corrupt_latest_falls_back_to_previous(keras, tmp_path):
    model = tiny_model(keras)
    checkpoints.save(tmp_path, model, epochs_completed=1)
    checkpoints.save(tmp_path, model, epochs_completed=2)
    (tmp_path / checkpoints.LATEST).write_bytes(b"not a zip file")
    assert checkpoints.restore(tmp_path, tiny_model(keras)) == (1, checkpoints.PREVIOUS)


def test_no_usable_checkpoint_is_a_clear_error(keras, tmp_path):
    with pytest.raises(errors.RunError, match="no usable training checkpoint"):
        checkpoints.restore(tmp_path, tiny_model(keras))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / checkpoints.LATEST).write_bytes(b"junk")
    with pytest.raises(errors.RunError, match="last.npz"):
        checkpoints.restore(tmp_path, tiny_model(keras))


def test_checkpoint_of_another_model_is_refused(keras, tmp_path):
    model = tiny_model(keras)
    checkpoints.save(tmp_path, model, epochs_completed=1)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(errors.RunError, match="model variables"):
        checkpoints.restore(tmp_path, other)


@pytest.mark.parametrize("damage", ["empty", "truncated", "one byte"])
def test_an_empty_or_truncated_latest_falls_back_to_previous(keras, tmp_path, damage):
    model = tiny_model(keras)
    checkpoints.save(tmp_path, model, epochs_completed=1)
    checkpoints.save(tmp_path, model, epochs_completed=2)
    latest = tmp_path / checkpoints.LATEST
    data = latest.read_bytes()
    latest.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "one byte": data[:1]}[damage])
    assert checkpoints.restore(tmp_path, tiny_model(keras)) == (1, checkpoints.PREVIOUS)


def test_neither_checkpoint_usable_names_both_files(keras, tmp_path):
    model = tiny_model(keras)
    checkpoints.save(tmp_path, model, epochs_completed=1)
    checkpoints.save(tmp_path, model, epochs_completed=2)
    (tmp_path / checkpoints.LATEST).write_bytes(b"")
    previous = tmp_path / checkpoints.PREVIOUS
    previous.write_bytes(previous.read_bytes()[:100])
    with pytest.raises(errors.RunError, match="no usable training checkpoint") as caught:
        checkpoints.restore(tmp_path, tiny_model(keras))
    assert "last.npz: empty file" in str(caught.value) and "previous.npz" in str(caught.value)
    assert (tmp_path / checkpoints.LATEST).exists() and previous.exists()  # nothing deleted


def test_exists_and_latest_bytes_look_at_last_then_previous(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    assert not checkpoints.exists(tmp_path) and checkpoints.latest_bytes(tmp_path) is None
    (tmp_path / checkpoints.PREVIOUS).write_bytes(b"previous")
    assert checkpoints.exists(tmp_path) and checkpoints.latest_bytes(tmp_path) == b"previous"
    (tmp_path / checkpoints.LATEST).write_bytes(b"last")
    assert checkpoints.exists(tmp_path) and checkpoints.latest_bytes(tmp_path) == b"last"
    (tmp_path / checkpoints.PREVIOUS).unlink()
    assert checkpoints.exists(tmp_path) and checkpoints.latest_bytes(tmp_path) == b"last"


def test_rotation_never_renames_over_a_file_and_a_kill_at_any_point_leaves_the_newest_state(keras, tmp_path, monkeypatch):
    """last.npz -> previous.npz after removing the old previous.npz (ext4 flushes a file renamed over another):
    killed after any step of the rotation, the newest complete state is still in one of the two files."""
    import os

    model = tiny_model(keras)
    checkpoints.save(tmp_path, model, epochs_completed=1)
    checkpoints.save(tmp_path, model, epochs_completed=2)
    real_replace, real_unlink = os.replace, os.unlink
    steps: list[str] = []

    def replace(source, target):
        assert not os.path.lexists(target), f"renamed over {target}"
        steps.append(f"replace {os.path.basename(target)}")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    checkpoints.save(tmp_path, model, epochs_completed=3)
    monkeypatch.undo()
    assert steps[0] == "replace previous.npz"
    assert checkpoints.restore(tmp_path, tiny_model(keras)) == (3, checkpoints.LATEST)
    for kill_after in ("unlink", "replace"):  # the steps before the new last.npz is written
        folder = tmp_path / kill_after
        checkpoints.save(folder, model, epochs_completed=1)
        checkpoints.save(folder, model, epochs_completed=2)

        class Killed(Exception):
            pass

        def unlink(path, *args, **kwargs):
            real_unlink(path, *args, **kwargs)
            if kill_after == "unlink":
                raise Killed

        def replace_then_kill(source, target):
            real_replace(source, target)
            raise Killed

        monkeypatch.setattr(os, "unlink", unlink)
        if kill_after == "replace":
            monkeypatch.setattr(os, "replace", replace_then_kill)
        with pytest.raises(Killed):
            checkpoints.save(folder, model, epochs_completed=3)
        monkeypatch.undo()
        expected = (2, checkpoints.LATEST) if kill_after == "unlink" else (2, checkpoints.PREVIOUS)
        assert checkpoints.restore(folder, tiny_model(keras)) == expected
