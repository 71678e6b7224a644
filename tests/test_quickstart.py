"""The README's main job: the embedded digits convnet, through the real CLI in a subprocess."""

import json

import pytest

from tests.conftest import CONFIGS, run_cli, run_folders


@pytest.mark.slow
def test_quickstart_reaches_097_and_leaves_every_file(tmp_path):
    result = run_cli("train", CONFIGS / "quickstart.yaml", "--set", f"output.runs_root={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no TensorFlow log lines, no warnings
    (folder,) = run_folders(tmp_path)
    for name in (
        "config.yaml",
        "run.json",
        "history.json",
        "metrics.json",
        "model.keras",
        "checkpoints/best.keras",
        "plots/loss.png",
        "plots/accuracy.png",
    ):
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["metrics"]["accuracy"] >= 0.97
    assert metrics["metrics"]["accuracy"] > metrics["baseline"]["majority_class_accuracy"]
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert f"completed: {folder}" in result.stdout
