"""`dlrun train --track mlflow`: params, per-epoch metrics, test metrics and artifacts in a SQLite store,
read back with MlflowClient; without MLflow, exit 2 with the install command; an MLflow failure never
loses the run."""

from __future__ import annotations

import json
import sys

import pytest

from dlrun import config as config_module
from dlrun.runs import compare as comparison, tracking
from tests.conftest import invoke, run_folders, tiny_config


def test_without_mlflow_exit_2_with_the_install_command_and_no_run_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError, as when it is not installed
    root = tmp_path / "runs"
    result = invoke("train", tiny_config(tmp_path / "tiny.yaml", root), "--track", "mlflow")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "--track mlflow: MLflow is not installed; expected it installed: pip install 'dlrun[mlflow]'" in result.stderr
    assert not root.exists()


def test_unknown_tracker_exits_2(tmp_path):
    root = tmp_path / "runs"
    result = invoke("train", tiny_config(tmp_path / "tiny.yaml", root), "--track", "wandb")
    assert result.exit_code == 2, result.output
    assert "--track: received 'wandb'; expected one of mlflow" in result.stderr
    assert not root.exists()


@pytest.mark.slow
def test_logs_to_sqlite_and_reads_back(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'dlrun[mlflow]')")
    monkeypatch.chdir(tmp_path)  # MLflow puts the artifacts of a SQLite store under ./mlruns
    root, uri = tmp_path / "runs", f"sqlite:///{tmp_path / 'mlflow.db'}"
    config_path = tiny_config(tmp_path / "tiny.yaml", root, epochs=3)
    result = invoke("train", config_path, "--track", "mlflow", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    (run,) = run_folders(root)
    record = json.loads((run / "run.json").read_text())
    run_history = json.loads((run / "history.json").read_text())
    assert record["status"] == "completed" and record["mlflow"]["tracking_uri"] == uri
    assert f"MLflow: logged run {record['mlflow']['run_id']} to {uri}" in result.stdout

    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(record["mlflow"]["run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.name
    assert client.get_experiment(logged.info.experiment_id).name == "tiny"
    expected_params = {
        key: tracking._param(value)
        for key, value in comparison.flatten(config_module.to_data(config_module.load(run / "config.yaml"))).items()
    }
    assert logged.data.params == expected_params  # the run's own config: `backend: auto` resolved
    assert logged.data.params["backend"] == json.loads((run / "run.json").read_text())["backend"]["name"]
    assert logged.data.params["train.epochs"] == "3" and logged.data.params["data.name"] == "synthetic"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        points = client.get_metric_history(logged.info.run_id, key)
        assert [point.step for point in points] == [1, 2, 3]
        assert [point.value for point in points] == pytest.approx(run_history[key], rel=1e-6)
    for key, value in record["test_metrics"].items():
        assert logged.data.metrics[f"test_{key}"] == pytest.approx(value, rel=1e-6)
    artifacts = {item.path for item in client.list_artifacts(logged.info.run_id)}
    assert {"run.json", "config.yaml", "history.json", "metrics.json", "model.keras", "plots"} <= artifacts


@pytest.mark.slow
def test_an_mlflow_failure_keeps_the_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'dlrun[mlflow]')")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where the store's folder should be")
    root, uri = tmp_path / "runs", f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"
    result = invoke("train", tiny_config(tmp_path / "tiny.yaml", root), "--track", "mlflow", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    (run,) = run_folders(root)
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
    assert f"warning: MLflow ({uri}): could not log the run and its params (" in result.stdout
    assert "The run folder is complete." in result.stdout


@pytest.mark.slow
def test_a_failure_in_the_middle_ends_the_mlflow_run_failed(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'dlrun[mlflow]')")
    monkeypatch.chdir(tmp_path)
    original = mlflow.MlflowClient.log_batch

    def log_batch(self, run_id, metrics=(), params=(), tags=(), **options):
        if metrics:
            raise RuntimeError("database is locked")
        return original(self, run_id, metrics=metrics, params=params, tags=tags, **options)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", log_batch)
    root, uri = tmp_path / "runs", f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = invoke("train", tiny_config(tmp_path / "tiny.yaml", root), "--track", "mlflow", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    (run,) = run_folders(root)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed"
    assert "could not log the metrics of epoch 1 (RuntimeError: database is locked)" in result.stdout
    logged = mlflow.MlflowClient(tracking_uri=uri).get_run(record["mlflow"]["run_id"])
    assert logged.info.status == "FAILED" and logged.data.params["train.epochs"] == "2"
