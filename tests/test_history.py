import math

from dlrun.runs import history


def test_append_and_save_round_trip(tmp_path):
    run_history = history.empty()
    history.append(run_history, 1, {"loss": 1.0, "val_loss": 2.0})
    history.append(run_history, 2, {"loss": 0.5, "val_loss": math.nan, "learning_rate": 0.1})
    assert run_history == {"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [2.0, None], "learning_rate": [None, 0.1]}
    history.save(tmp_path / "h.json", run_history)
    assert history.load(tmp_path / "h.json") == run_history


def test_the_saver_writes_what_save_writes_every_epoch_and_removes_its_spare_at_close(tmp_path):
    """A fit's history.json, rewritten every epoch by `Saver` (each value encoded once, the file swapped in
    through a spare), holds exactly what `save` writes, including a key first seen late and non-finite values."""
    saver, run_history = history.Saver(tmp_path / "history.json"), history.empty()
    for epoch in range(1, 5):
        logs = {"loss": 1.0 / epoch, "val_loss": math.inf if epoch == 2 else 2.0 + epoch}
        if epoch >= 3:
            logs["learning_rate"] = 0.1 * epoch
        history.append(run_history, epoch, logs)
        saver(run_history)
        previous = (tmp_path / "expected.json").read_bytes() if epoch > 1 else None
        history.save(tmp_path / "expected.json", run_history)
        assert (tmp_path / "history.json").read_bytes() == (tmp_path / "expected.json").read_bytes()
    assert history.load(tmp_path / "history.json") == run_history
    assert (tmp_path / ".history.json.previous.tmp").read_bytes() == previous  # epoch 3's: the file it was swapped with
    saver.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["expected.json", "history.json"]


def test_the_saver_s_text_follows_a_history_replaced_by_another():
    """Values are encoded once per column list: a history whose columns are other lists (a truncated one, or
    one with a value changed) is encoded afresh, never from the texts of the lists before."""
    text, run_history = history.Text(), history.empty()
    for epoch in (1, 2, 3):
        history.append(run_history, epoch, {"loss": 1.0 / epoch})
    text(run_history)
    truncated = history.truncate(run_history, 2)
    assert text(truncated) == history.Text()(truncated)
    changed = {key: list(values) for key, values in run_history.items()}
    changed["loss"][0] = 9.0  # the same length, another list
    assert text(changed) == history.Text()(changed) and "9.0" in text(changed)


def test_best_epoch_direction_depends_on_the_metric():
    run_history = {"epoch": [1, 2, 3], "val_loss": [0.5, 0.3, 0.4], "val_accuracy": [0.7, 0.9, 0.8], "val_mae": [3, 2, 1]}
    assert history.best_epoch(run_history, "val_loss") == (2, 0.3)
    assert history.best_epoch(run_history, "val_accuracy") == (2, 0.9)
    assert history.best_epoch(run_history, "val_mae") == (3, 1)
    assert history.best_epoch(run_history, "val_auc") is None


def test_metric_names_put_loss_first():
    assert history.metric_names({"epoch": [], "accuracy": [], "loss": [], "val_loss": [], "val_accuracy": []}) == [
        "loss",
        "accuracy",
    ]


def test_best_epochs_name_each_validation_quantity_loss_first():
    run_history = {
        "epoch": [1, 2, 3],
        "loss": [1.0, 0.5, 0.4],
        "val_loss": [0.9, 0.6, 0.7],
        "accuracy": [0.5, 0.8, 0.9],
        "val_accuracy": [0.6, 0.8, 0.85],
    }
    assert history.best_epochs(run_history) == [("val_loss", 2, 0.6), ("val_accuracy", 3, 0.85)]
    assert history.describe_best(run_history) == "best val_loss at epoch 2 (0.6000); best val_accuracy at epoch 3 (0.8500)"
    assert history.describe_best({"epoch": [1], "loss": [1.0]}) == ""  # no validation values: nothing to name


def test_a_key_missing_from_later_logs_and_a_phase_first_seen_late_are_padded_with_none():
    run_history = history.empty()
    history.append(run_history, 1, {"loss": 1.0, "accuracy": 0.5})
    history.append(run_history, 2, {"loss": 0.5}, phase="fine_tune")
    assert run_history == {"epoch": [1, 2], "loss": [1.0, 0.5], "accuracy": [0.5, None], "phase": [None, "fine_tune"]}


def test_truncate_keeps_the_first_epochs_of_every_column():
    run_history = {"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.0], "phase": ["a", "a", "b"]}
    assert history.truncate(run_history, 2) == {"epoch": [1, 2], "loss": [3.0, 2.0], "phase": ["a", "a"]}
    assert run_history["epoch"] == [1, 2, 3]  # a copy


def test_save_is_durable_unless_asked_not_to_be(tmp_path, monkeypatch):
    import os

    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda handle: (flushed.append(handle), real_fsync(handle)))
    history.save(tmp_path / "h.json", history.empty())
    assert len(flushed) == 1
    history.save(tmp_path / "h.json", history.empty(), durable=False)
    assert len(flushed) == 1


def test_load_if_present_reads_the_file_or_gives_an_empty_history(tmp_path):
    assert history.load_if_present(tmp_path / "absent.json") == {"epoch": []}
    history.save(tmp_path / "h.json", {"epoch": [1], "loss": [0.5]})
    assert history.load_if_present(tmp_path / "h.json") == {"epoch": [1], "loss": [0.5]}


def test_load_names_the_file_and_what_is_wrong_with_it(tmp_path):
    import pytest

    from dlrun import errors

    expected = history._EXPECTED
    cases = {
        "missing.json": (None, "missing; expected the history of the epochs the run completed"),
        "empty.json": ("  \n", f"empty; {expected}"),
        "broken.json": ("{", f"not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); {expected}"),
        "list.json": ("[]", f"received a JSON array; {expected}"),
        "epochless.json": ('{"loss": []}', f"'epoch' is missing; {expected}"),
        "text-epochs.json": ('{"epoch": "1"}', f"'epoch' is a JSON string; {expected}"),
        "object-column.json": ('{"epoch": [1], "loss": {}}', f"'loss' is a JSON object; {expected}"),
        "short.json": ('{"epoch": [1, 2], "loss": [1]}', f"'loss' has 1 value(s) for 2 epochs; {expected}"),
        "boolean.json": ('{"epoch": [1], "loss": [true]}', f"'loss' holds true; {expected}"),
        "long-text.json": ('{"epoch": [1], "loss": ["' + "x" * 60 + '"]}', f"'loss' holds \"{'x' * 39}; {expected}"),
        "number-phase.json": ('{"epoch": [1], "phase": [2]}', f"'phase' holds 2; {expected}"),
    }
    for name, (text, message) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(errors.RunError) as raised:
            history.load(tmp_path / name)
        assert str(raised.value) == f"{tmp_path / name}: {message}", name
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(errors.RunError, match=r"folder.json: unreadable \(\[Errno 21\] Is a directory: .*\); expected a JSON history$"):
        history.load(tmp_path / "folder.json")
    assert history.check({"epoch": [1, 2], "phase": ["frozen", None], "loss": [1, None]}, "x")["phase"] == ["frozen", None]


def test_json_type_names_every_parsed_type():
    names = [history.json_type(value) for value in ({}, [], "x", True, None, 1, 1.5)]
    assert names == ["object", "array", "string", "boolean", "null", "number", "number"]


def test_lower_is_better_for_losses_and_errors_only():
    lower = ["loss", "val_loss", "reconstruction_loss", "val_mae", "mse", "val_rmse", "mape", "mean_squared_error"]
    higher = ["accuracy", "val_accuracy", "auc", "precision"]
    assert [history.lower_is_better(name) for name in lower] == [True] * len(lower)
    assert [history.lower_is_better(name) for name in higher] == [False] * len(higher)


def test_best_epoch_looks_at_val_loss_by_default():
    assert history.best_epoch({"epoch": [1, 2], "val_loss": [0.2, 0.1], "loss": [0.0, 0.5]}) == (2, 0.1)
