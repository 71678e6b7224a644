"""Run folders keep working across releases: folders written before run.json and kfold.json carried a
format version (tests/fixtures/runs_v1, made by its make.py) still resume; today's folders record their
format and a fingerprint of their data, and `--resume` refuses other data."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dlrun import runs
from dlrun.runs import history
from dlrun.trials import kfold, sweep
from tests.conftest import invoke, run_folders

V1 = Path(__file__).resolve().parent / "fixtures" / "runs_v1"


def _copy(tmp_path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(V1 / "runs" / name, target)
    return target


def _straight(tmp_path, config_name: str, *arguments: str) -> Path:
    root = tmp_path / "straight"
    result = invoke(*arguments[:1], V1 / config_name, *arguments[1:], "--set", f"output.runs_root={json.dumps(str(root))}")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(root)
    return folder


@pytest.mark.slow
def test_a_v1_train_run_resumes_from_its_checkpoint_with_a_straight_runs_numbers(tmp_path):
    folder = _copy(tmp_path, "v1-train")
    record = json.loads((folder / "run.json").read_text())
    assert "format" not in record and record["status"] == "interrupted" and record["epochs_completed"] == 2
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 2 (state from checkpoints/last.npz)" in result.output
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["resumes"][0]["after_epoch"] == 2
    straight = _straight(tmp_path, "train.yaml", "train")
    assert history.load(folder / "history.json") == history.load(straight / "history.json")


@pytest.mark.slow
def test_a_v1_kfold_run_resumes_its_missing_folds_with_a_straight_runs_numbers(tmp_path):
    folder = _copy(tmp_path, "v1-kfold")
    state = json.loads((folder / "kfold.json").read_text())
    assert "format" not in state and [fold["status"] for fold in state["folds"]] == ["completed", "pending", "pending"]
    result = invoke("kfold", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "1 of 3 folds already completed" in result.output
    assert "resuming fold" not in result.output  # v1 folds kept no checkpoints: fold 2 starts again
    straight = _straight(tmp_path, "kfold.yaml", "kfold", "--k", "3")
    resumed, uninterrupted = (json.loads((path / "kfold.json").read_text()) for path in (folder, straight))
    for key in ("summary", "smoothed", "recommended_epochs", "final_test"):
        assert resumed[key] == uninterrupted[key], key
    for index in (1, 2, 3):
        assert history.load(folder / "folds" / str(index) / "history.json") == history.load(
            straight / "folds" / str(index) / "history.json"
        )


def _npz_config(tmp_path, command_epochs: int = 3) -> Path:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "data.npz", x_train=rng.normal(size=(40, 3)).astype("float32"), y_train=rng.normal(size=40).astype("float32"))
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: fp
        data: {{name: npz, path: {json.dumps(str(tmp_path / "data.npz"))}}}
        model: {{architecture: mlp, units: [4]}}
        train: {{epochs: {command_epochs}, batch_size: 8}}
        output: {{runs_root: {json.dumps(str(tmp_path / "runs"))}, plots: false}}
        """),
        encoding="utf-8",
    )
    return path


def _change_the_data(tmp_path) -> None:
    with np.load(tmp_path / "data.npz") as stored:
        arrays = dict(stored)
    arrays["x_train"] = arrays["x_train"] + 1.0
    np.savez(tmp_path / "data.npz", **arrays)


@pytest.mark.parametrize("command", [["train"], ["kfold", "--k", "2", "--no-final"]])
def test_runs_record_their_format_and_refuse_to_resume_on_other_data(tmp_path, command):
    config_path = _npz_config(tmp_path)
    assert invoke(command[0], config_path, *command[1:]).exit_code == 0
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    assert record["format"] == runs.FORMAT and len(record["data_fingerprint"]) == 16
    if command[0] == "kfold":
        state = json.loads((folder / "kfold.json").read_text())
        assert state["format"] == kfold.FORMAT
        state["status"] = "interrupted"  # as if stopped, so --resume would continue it
        (folder / "kfold.json").write_text(json.dumps(state))
    record["status"] = "interrupted"
    (folder / "run.json").write_text(json.dumps(record))
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    _change_the_data(tmp_path)
    result = invoke(command[0], "--resume", folder)
    assert result.exit_code == 2
    assert f"data: received other samples than {folder} was trained on" in result.stderr
    assert "expected the same data to continue it" in result.stderr
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before  # nothing touched


def test_sweep_json_records_its_format(tmp_path):
    config_path = _npz_config(tmp_path, command_epochs=1)
    assert invoke("sweep", config_path, "--grid", "train.batch_size=8").exit_code == 0
    (folder,) = run_folders(tmp_path / "runs")
    assert json.loads((folder / "sweep.json").read_text())["format"] == sweep.FORMAT
