"""A run is reproducible from its own folder: `backend: auto` is stored resolved, and `--resume` / `eval`
never continue a run on another backend than it trained on unless `--backend NAME` asks for it.

The suite runs on TensorFlow (tests/conftest.py), so "the other backend" is simulated by editing a run
copy's recorded backend to jax: in this process Keras is already imported on TensorFlow, and in a fresh
process JAX is hidden (as if not installed).
"""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from dlrun import backend, runs
from tests.conftest import CONFIGS, invoke, subprocess_env

HIDE_JAX = "import sys\nsys.modules['jax'] = None\nsys.argv[0] = 'dlrun'\nfrom dlrun import cli\ncli.main()\n"


@pytest.fixture
def run_copy(trained_run, tmp_path, keras):
    """A private copy of the shared run (trained under `backend: auto`); Keras is imported on TensorFlow."""
    return shutil.copytree(trained_run, tmp_path / trained_run.name)


def _record_backend(folder, name: str, config_backend: str | None = None, status: str | None = None) -> None:
    """Make `folder` look trained on `name` (run.json; config.yaml too unless `config_backend` says otherwise)."""
    record = json.loads((folder / "run.json").read_text())
    record["backend"] = {"name": name, "reason": f"auto: as if {name} had trained it"}
    if status is not None:
        record["status"] = status
    (folder / "run.json").write_text(json.dumps(record))
    stored = yaml.safe_load((folder / "config.yaml").read_text())
    stored["backend"] = config_backend or name
    (folder / "config.yaml").write_text(yaml.safe_dump(stored))


def _snapshot(folder) -> dict:
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_run_made_under_auto_stores_the_resolved_backend_and_why(trained_run):
    assert "backend:" not in (CONFIGS / "smoke" / "mlp_multiclass.yaml").read_text()  # so `auto`, the default
    stored = yaml.safe_load((trained_run / "config.yaml").read_text())
    record = json.loads((trained_run / "run.json").read_text())
    assert stored["backend"] == "tensorflow" == record["backend"]["name"]
    assert record["backend"]["reason"] == "auto: KERAS_BACKEND=tensorflow is set in the environment"


def test_every_run_says_how_to_pin_its_backend():
    choice = backend.Choice("jax", "auto: a dense (mlp) model, fastest on JAX: 2.5x TensorFlow on CPU, BENCHMARKS.md")
    assert backend.said(choice, "auto") == (
        "backend: jax (auto: a dense (mlp) model, fastest on JAX: 2.5x TensorFlow on CPU, BENCHMARKS.md; pin with --set backend=jax)"
    )
    pinned = backend.Choice("jax", "backend: jax was asked for in the config")
    assert backend.said(pinned, "jax") == "backend: jax (backend: jax was asked for in the config)"


def test_the_train_command_prints_the_pin_line(tmp_path, keras):
    root = tmp_path / "runs"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data: {{name: synthetic, num_samples: 40}}\nmodel: mlp\ntrain: {{epochs: 1}}\noutput: {{runs_root: {json.dumps(str(root))}}}\n"
    )
    result = invoke("train", config)
    assert result.exit_code == 0, result.output
    assert (
        "backend: tensorflow (auto: KERAS_BACKEND=tensorflow is set in the environment; pin with --set backend=tensorflow)"
    ) in result.output


@pytest.mark.parametrize("config_backend", ["jax", "auto"])  # auto: a run folder written before the backend was pinned
def test_eval_on_another_backend_is_refused_with_exit_2_and_writes_nothing(run_copy, config_backend):
    _record_backend(run_copy, "jax", config_backend)
    before = _snapshot(run_copy)
    result = invoke("eval", run_copy)
    assert result.exit_code == 2, result.output
    assert (
        f"error: {run_copy}: trained on the jax backend, but the active backend is tensorflow (Keras is already "
        f"imported on tensorflow in this process); expected the run's own backend"
    ) in result.stderr
    assert f"or ask for tensorflow: dlrun eval {run_copy} --backend tensorflow" in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(run_copy) == before


def test_eval_on_another_backend_is_accepted_when_asked_and_says_so(run_copy):
    _record_backend(run_copy, "jax")
    result = invoke("eval", run_copy, "--backend", "tensorflow")
    assert result.exit_code == 0, result.output
    evaluated = json.loads((run_copy / "eval_test.json").read_text())
    assert evaluated["backend"] == "tensorflow" and "--backend=tensorflow" in evaluated["command"]


def test_eval_rejects_an_unknown_backend_name(run_copy):
    result = invoke("eval", run_copy, "--backend", "theano")
    assert result.exit_code == 2
    assert "--backend: received 'theano'; expected one of auto, tensorflow, jax, torch" in result.stderr


def test_eval_on_the_runs_own_backend_needs_no_option(run_copy):
    result = invoke("eval", run_copy)
    assert result.exit_code == 0, result.output
    assert json.loads((run_copy / "eval_test.json").read_text())["backend"] == "tensorflow"


@pytest.mark.parametrize("config_backend", ["jax", "auto"])
def test_resume_on_another_backend_is_refused_with_exit_2_and_changes_nothing(run_copy, config_backend):
    _record_backend(run_copy, "jax", config_backend, status="interrupted")
    before = _snapshot(run_copy)
    result = invoke("train", "--resume", run_copy)
    assert result.exit_code == 2, result.output
    assert f"error: {run_copy}: trained on the jax backend, but the active backend is tensorflow" in result.stderr
    assert f"or ask for tensorflow: dlrun train --resume {run_copy} --backend tensorflow" in result.stderr
    assert _snapshot(run_copy) == before


def test_resume_on_another_backend_is_accepted_with_backend_and_recorded(run_copy):
    _record_backend(run_copy, "jax", status="interrupted")
    result = invoke("train", "--resume", run_copy, "--backend", "tensorflow")  # no --force needed: --backend is the ask
    assert result.exit_code == 0, result.output
    record = json.loads((run_copy / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["backend"]["name"] == "tensorflow" and record["backend"]["switched_from"] == "jax"
    assert yaml.safe_load((run_copy / "config.yaml").read_text())["backend"] == "tensorflow"


def test_resume_with_the_original_auto_config_file_is_no_config_change(run_copy):
    record = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    root = yaml.safe_load((run_copy / "config.yaml").read_text())["output"]["runs_root"]
    result = invoke(
        "train",
        "--resume",
        run_copy,
        CONFIGS / "smoke" / "mlp_multiclass.yaml",  # says nothing: auto
        "--set",
        f"output.runs_root={root}",
    )
    assert result.exit_code == 0, result.output
    assert "backend: tensorflow (the run's own: auto: KERAS_BACKEND=tensorflow is set in the environment)" in result.output


def test_in_a_fresh_process_without_the_runs_backend_eval_says_it_is_not_installed(run_copy):
    _record_backend(run_copy, "jax")
    result = subprocess.run(
        [sys.executable, "-c", HIDE_JAX, "eval", str(run_copy)], capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert result.returncode == 2, result.stderr
    assert (
        f"trained on the jax backend, but the active backend is tensorflow (jax is not installed here); expected "
        f"the run's own backend, since numbers differ between backends: install it (pip install 'dlrun[jax]'), "
        f"or ask for tensorflow: dlrun eval {run_copy} --backend tensorflow"
    ) in result.stderr
    assert not (run_copy / "eval_test.json").exists()


def _kfold_run(tmp_path, backend_name: str):
    """A hand-made interrupted K-fold run folder that says it trained on `backend_name`."""
    folder = tmp_path / "kf"
    folder.mkdir()
    (folder / "config.yaml").write_text(
        f"name: kf\nbackend: {backend_name}\ndata: {{name: synthetic, num_samples: 40}}\n"
        f"model: mlp\noutput: {{runs_root: {json.dumps(str(tmp_path))}}}\n"
    )
    (folder / "run.json").write_text(
        json.dumps(
            {
                "name": "kf",
                "status": "interrupted",
                "kind": "kfold",
                "started_at": "2026-01-02T10:00:00Z",
                "backend": {"name": backend_name},
            }
        )
    )
    (folder / "kfold.json").write_text(json.dumps({"status": "running", "folds": []}))
    return folder


def test_kfold_resume_on_another_backend_is_refused_and_names_the_option(tmp_path, keras):
    folder = _kfold_run(tmp_path, "jax")
    before = _snapshot(folder)
    result = invoke("kfold", "--resume", folder)
    assert result.exit_code == 2, result.output
    assert "trained on the jax backend, but the active backend is tensorflow" in result.stderr
    assert f"or ask for tensorflow: dlrun kfold --resume {folder} --backend tensorflow" in result.stderr
    assert {path: data for path, data in _snapshot(folder).items() if path.name != ".lock"} == before
    other = invoke("kfold", "--resume", folder, "--set", "seed=2")
    assert other.exit_code == 2 and "--resume: received a CONFIG or --set too; expected only the run folder" in other.stderr


def test_a_sweep_trial_continues_only_on_the_backend_it_started_on(tmp_path, keras):
    from dlrun import config as config_module, errors
    from dlrun.trials import trial as sweep_trial

    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "run.json").write_text(json.dumps({"name": "t", "status": "interrupted", "backend": {"name": "jax"}}))
    (trial / "checkpoints").mkdir()
    (trial / "checkpoints" / "last.npz").write_bytes(b"state")
    config = config_module.to_data(config_module.validate({"data": {"name": "synthetic"}, "model": "mlp"}))
    try:
        with pytest.raises(errors.RunError) as caught:
            sweep_trial.run_trial({"config": config, "run": str(trial), "command": ["dlrun", "sweep"]}, lambda event: None)
    finally:
        runs.release_locks()  # the trial's folder lock, taken as a worker would
    assert str(caught.value) == (
        f"{trial}: trained on the jax backend, but the active backend is tensorflow (Keras is "
        f"already imported on tensorflow in this process); expected the run's own backend, "
        f"since numbers differ between backends: run dlrun in a new process"
    )
