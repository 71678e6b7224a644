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


def _epochs_in(path):
    with np.load(path, allow_pickle=False) as stored:
        return int(stored["epochs_completed"])


def test_rotation_writes_over_previous_then_swaps_it_with_last_creating_and_renaming_nothing(keras, tmp_path, monkeypatch):
    """A checkpoint is written over previous.npz, which then swaps names with last.npz (renameat2): no file is
    created, removed or renamed over another (ext4 flushes a file renamed over another, 1-3 ms a write here)."""
    import os

    model = tiny_model(keras)
    checkpoints.save(tmp_path, model, epochs_completed=1)
    checkpoints.save(tmp_path, model, epochs_completed=2)
    folder = tmp_path / "checkpoints"
    inodes = {name: (folder / name).stat().st_ino for name in ("last.npz", "previous.npz")}

    def refused(*args, **kwargs):
        raise AssertionError(f"a file was created, removed or renamed: {args}")

    for name in ("replace", "rename", "unlink"):
        monkeypatch.setattr(os, name, refused)
    monkeypatch.setattr(checkpoints.atomic.tempfile, "mkstemp", refused)
    checkpoints.save(tmp_path, model, epochs_completed=3)
    monkeypatch.undo()
    assert (_epochs_in(folder / "last.npz"), _epochs_in(folder / "previous.npz")) == (3, 2)
    # the file that held previous.npz (epoch 1) now is last.npz; the old last.npz (epoch 2) is previous.npz
    assert (folder / "last.npz").stat().st_ino == inodes["previous.npz"]
    assert (folder / "previous.npz").stat().st_ino == inodes["last.npz"]
    assert sorted(os.listdir(folder)) == ["last.npz", "previous.npz"]
    assert checkpoints.restore(tmp_path, tiny_model(keras)) == (3, checkpoints.LATEST)


def test_a_kill_while_the_new_checkpoint_is_written_leaves_last_as_it_was(keras, tmp_path, monkeypatch):
    """Killed halfway through writing the new state over previous.npz: last.npz still holds the newest complete
    state, and a resume uses it."""
    import os

    model = tiny_model(keras)
    for epochs in (1, 2):
        checkpoints.save(tmp_path, model, epochs_completed=epochs)
    real_write = os.write

    class Killed(Exception):
        pass

    def write_half_then_die(descriptor, data):
        real_write(descriptor, bytes(data[: len(data) // 2]))
        raise Killed

    monkeypatch.setattr(os, "write", write_half_then_die)
    with pytest.raises(Killed):
        checkpoints.save(tmp_path, model, epochs_completed=3)
    monkeypatch.undo()
    assert _epochs_in(tmp_path / checkpoints.LATEST) == 2
    assert checkpoints.restore(tmp_path, tiny_model(keras)) == (2, checkpoints.LATEST)


def test_where_files_cannot_be_swapped_rotation_removes_previous_first_and_a_kill_at_any_step_leaves_the_newest(
    keras, tmp_path, monkeypatch
):
    """Without renameat2: previous.npz is removed, last.npz becomes it, then the new last.npz is written; never
    a rename over a file, and killed after any step the newest complete state is in one of the two files."""
    import os

    monkeypatch.setattr(checkpoints.atomic, "_RENAMEAT2", False)  # not Linux, an old C library
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
    monkeypatch.setattr(os, "replace", real_replace)
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
        monkeypatch.setattr(os, "unlink", real_unlink)
        monkeypatch.setattr(os, "replace", real_replace)
        expected = (2, checkpoints.LATEST) if kill_after == "unlink" else (2, checkpoints.PREVIOUS)
        assert checkpoints.restore(folder, tiny_model(keras)) == expected


def test_checkpoint_files_are_the_npz_numpy_writes_read_back_exactly(tmp_path):
    """`npz_bytes` builds the .npz that `np.savez` writes (without zipfile): every dtype, shape and layout a
    checkpoint may hold reads back equal through np.load, and the zip's checksums hold."""
    import io
    import zipfile

    arrays = {
        "epochs_completed": np.array(3),
        "model/0": np.random.default_rng(0).random((13, 64), dtype="float32"),
        "model/1": np.arange(5, dtype="uint32"),
        "model/2": np.asfortranarray(np.random.default_rng(1).random((3, 4))),
        "model/3": np.random.default_rng(2).random((4, 5))[:, ::2],
        "optimizer/0": np.array(7, dtype="int64"),
        "optimizer/1": np.zeros((0, 3), dtype="float16"),
        "optimizer/2": np.array([True, False]),
    }
    data = checkpoints.npz_bytes(arrays)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted(arrays)
        for name, array in arrays.items():
            assert (stored[name].dtype, stored[name].shape) == (array.dtype, array.shape) and np.array_equal(stored[name], array), name
    savez = io.BytesIO()
    np.savez(savez, **arrays)
    assert [(info.filename, info.file_size) for info in zipfile.ZipFile(io.BytesIO(data)).infolist()] == [
        (info.filename, info.file_size) for info in zipfile.ZipFile(savez).infolist()
    ]  # the same members, each the same .npy bytes' length
