"""`dlrun train --resume`: interrupted and killed runs continue to the same numbers as a straight run."""

from __future__ import annotations

import json

import pytest

from dlrun.training import checkpoints
from tests.conftest import (
    VGG16_MODEL,
    assert_same_run,
    checkpoint_epochs,
    interrupt_after,
    invoke,
    record_trained_epochs,
    run_folders,
    sigkill_when,
    write_pretrained_config,
    write_resumable_config,
)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("straight")
    result = invoke("train", write_resumable_config(tmp_path))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    return folder


def test_interrupt_then_resume_matches_a_straight_run(tmp_path, monkeypatch, straight):
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        result = invoke("train", write_resumable_config(tmp_path))
    assert result.exit_code == 130
    (folder,) = run_folders(tmp_path / "runs")
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    assert f"dlrun train --resume {folder}" in result.stderr
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 3" in result.output
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["resumes"][0]["previous"]["status"] == "interrupted"
    assert_same_run(folder, straight)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_epoch(tmp_path, monkeypatch, straight):
    with monkeypatch.context() as patch:
        interrupt_after(patch, 4)
        assert invoke("train", write_resumable_config(tmp_path)).exit_code == 130
    (folder,) = run_folders(tmp_path / "runs")
    (folder / checkpoints.LATEST).write_bytes(b"\x00" * 100)
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 3 (state from checkpoints/previous.npz)" in result.output
    assert_same_run(folder, straight)


def test_resuming_a_completed_run_does_nothing(straight):
    before = (straight / "run.json").read_text()
    result = invoke("train", "--resume", straight)
    assert result.exit_code == 0
    assert "already completed; nothing to do" in result.output
    assert (straight / "run.json").read_text() == before


def test_changed_config_is_refused_with_the_differences_unless_forced(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        assert invoke("train", write_resumable_config(tmp_path)).exit_code == 130
    (folder,) = run_folders(tmp_path / "runs")
    result = invoke("train", "--resume", folder, "--set", "compile.optimizer.learning_rate=0.5", "--set", "train.batch_size=8")
    assert result.exit_code == 2
    assert "compile.optimizer.learning_rate: run has 0.001, now 0.5" in result.stderr
    assert "train.batch_size: run has 16, now 8" in result.stderr
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    result = invoke("train", "--resume", folder, "--set", "train.epochs=4", "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "history.json").read_text())["epoch"] == [1, 2, 3, 4]
    assert "epochs: 4" in (folder / "config.yaml").read_text()


def test_resume_on_a_folder_that_is_not_a_run(tmp_path):
    result = invoke("train", "--resume", tmp_path)
    assert result.exit_code == 2
    assert "not a dlrun run folder (no run.json)" in result.stderr


def test_train_without_config_or_resume():
    result = invoke("train")
    assert result.exit_code == 2
    assert "CONFIG: received nothing; expected a config file (or --resume RUN_DIR)" in result.stderr


@pytest.mark.slow
def test_sigkill_then_resume_matches_a_straight_run(tmp_path, monkeypatch):
    """A real kill -9 mid-run: run.json still says running; --resume says "resuming after epoch E" with E read
    from the killed run's checkpoint, trains only epochs E+1.., and ends with the straight run's numbers."""
    samples = 12000  # about half a second per epoch: room to kill mid-run
    (tmp_path / "straight").mkdir()
    assert invoke("train", write_resumable_config(tmp_path / "straight", samples=samples)).exit_code == 0
    (straight,) = run_folders(tmp_path / "straight" / "runs")
    config_path = write_resumable_config(tmp_path, samples=samples)

    def has_epoch_2():
        folders = run_folders(tmp_path / "runs")
        return bool(folders) and (checkpoint_epochs(folders[0]) or 0) >= 2

    sigkill_when(["train", config_path], has_epoch_2)
    (folder,) = run_folders(tmp_path / "runs")
    killed_after = checkpoint_epochs(folder)
    assert 2 <= killed_after < 6, f"the kill landed after epoch {killed_after}, not inside the run"
    assert json.loads((folder / "run.json").read_text())["status"] == "running"  # nothing ran after the kill
    listing = invoke("runs", tmp_path / "runs")
    assert listing.exit_code == 0 and "crashed" in listing.output
    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert f"resuming after epoch {killed_after} (state from checkpoints/last.npz)" in result.output
    assert epochs_seen == [(folder.name, epoch) for epoch in range(killed_after + 1, 7)]
    record = json.loads((folder / "run.json").read_text())
    (entry,) = record["resumes"]
    assert record["status"] == "completed" and entry["previous"]["status"] == "running" and entry["after_epoch"] == killed_after
    assert_same_run(folder, straight)


@pytest.mark.slow
def test_resume_inside_a_fine_tuning_phase_matches_a_straight_run(tmp_path, monkeypatch):
    """Interrupted in phase 2 (block layers unfrozen, its own optimizer): resuming re-enters that phase."""
    model = VGG16_MODEL + ", mode: end_to_end, fine_tune: {top_layers: 2, epochs: 2}}"
    (tmp_path / "a").mkdir()
    assert invoke("train", write_pretrained_config(tmp_path / "a" / "c.yaml", tmp_path / "a" / "runs", model)).exit_code == 0
    (straight,) = run_folders(tmp_path / "a" / "runs")
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        assert invoke("train", write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", model)).exit_code == 130
    (folder,) = run_folders(tmp_path / "runs")
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "phase 2/2 fine_tune: epochs 4-4" in result.output
    resumed = json.loads((folder / "history.json").read_text())
    assert resumed["phase"] == ["frozen", "frozen", "fine_tune", "fine_tune"]
    assert_same_run(folder, straight, epochs=4)  # every history value and weight, exactly
