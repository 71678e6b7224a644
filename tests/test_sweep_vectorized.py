"""`dlrun sweep --executor vectorized` (and `auto`): a batch of trials that differ only in learning rate and
seed trains as one JAX program, each trial with the numbers, files and outcome the sequential executor gives
it (to 1e-5); a NaN trial fails alone, a pruned one stops alone, a killed sweep resumes to the same numbers,
and what cannot train together falls back with one line.

The suite runs on TensorFlow, so the JAX sweeps run in fresh processes (`_sweep_on_jax`, as in
tests/test_kfold_vectorized.py)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from dlrun.config import search as search_config
from dlrun.trials import executors, sweep_vectorized
from tests.conftest import ROOT, checkpoint_epochs, invoke, run_folders, script_result, sigkill_when

# 40 samples: 8 test, 32 pooled, 20% of those for validation: with batches of 8, 4 steps per epoch, the
# last of 2 samples. Dropout on: each copy draws its own masks from its seed.
CONFIG = """\
name: vsw
seed: 3
backend: {backend}
data: {{name: synthetic, task: multiclass, num_samples: 40, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [6], dropout: 0.25}}
compile: {{optimizer: {{name: adam, learning_rate: 0.01}}}}
train: {{epochs: {epochs}, batch_size: 8}}
output: {{runs_root: {root}, plots: false, save_model: false}}
"""
GRID = ["--grid", "compile.optimizer.learning_rate=0.01,0.05", "--grid", "seed=1,2", "--pruner", "none"]

# Runs `dlrun ARGS` in this fresh process on JAX. PRUNE_TRIAL: the pruner stops the trial of learning rate
# 0.01 and seed 1 after epoch 2.
SCRIPT = """\
import json, os, sys
from typer.testing import CliRunner
os.environ["KERAS_BACKEND"] = "jax"  # tests.conftest pins TensorFlow for the suite's own process
from dlrun import cli, errors
from dlrun.trials import search

if os.environ.get("PRUNE_TRIAL"):
    original = search.Reporter.epoch

    def epoch(self, number, logs, last=False):
        if self.trial.user_attrs["overrides"] == {"compile.optimizer.learning_rate": 0.01, "seed": 1} and number == 2:
            raise errors.TrialPruned(number, "injected")
        return original(self, number, logs, last=last)

    search.Reporter.epoch = epoch
if os.environ.get("INTERRUPT_EVALUATION"):  # Ctrl-C while the finished trials are evaluated together
    from dlrun.trials import stacked

    def interrupted(copies):
        raise KeyboardInterrupt

    stacked.evaluate_together = interrupted
from dlrun.training import evaluation

report, evaluated_together = evaluation.report, []

def recorded_report(*args, evaluated=None, **kwargs):  # which trials' metrics came from evaluate_together
    evaluated_together.append(evaluated is not None)
    return report(*args, evaluated=evaluated, **kwargs)

evaluation.report = recorded_report
result = CliRunner().invoke(cli.app, sys.argv[1:])
print("RESULT " + json.dumps({"exit": result.exit_code, "output": result.output, "evaluated_together": evaluated_together}))
"""


def _write(tmp_path, name: str, epochs: int = 3, backend: str = "jax"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(CONFIG.format(epochs=epochs, backend=backend, root=json.dumps(str(tmp_path / name))))
    return path


def _sweep_on_jax(*args, env: dict | None = None) -> dict:
    return script_result(SCRIPT, "sweep", *args, env=env)


def _trials(sweep_folder) -> dict[tuple, dict]:
    """Each trial by (learning rate, seed): its sweep.json entry, run.json and history."""
    state = json.loads((sweep_folder / "sweep.json").read_text())
    found = {}
    for trial in state["trials"]:
        key = (trial["overrides"]["compile.optimizer.learning_rate"], trial["overrides"]["seed"])
        run = trial["run"]
        history = json.loads((ROOT / run / "history.json").read_text()) if (ROOT / run / "history.json").exists() else None
        found[key] = {**trial, "record": json.loads((ROOT / run / "run.json").read_text()), "history": history}
    return found


def _assert_close(found: dict, expected: dict) -> None:
    assert found.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(np.array(found[key], dtype=float), np.array(expected[key], dtype=float), rtol=1e-5, err_msg=key)


# --- what can train together, known before anything trains -------------------------------------------------


@pytest.mark.parametrize(
    ("section", "reason"),
    [
        ({"space": {"compile.optimizer.learning_rate": {"float": [1e-4, 1e-2], "log": True}, "seed": {"choice": [1, 2]}}}, None),
        (
            {"space": {"model.dropout": {"choice": [0.1, 0.2]}, "seed": {"choice": [1, 2]}}},
            "search.space: model.dropout; only compile.optimizer.learning_rate and seed train together",
        ),
        (
            {"space": {"train.batch_size": {"choice": [8, 16]}}},
            "search.space: train.batch_size; only compile.optimizer.learning_rate and seed train together",
        ),
        ({"space": {"seed": {"choice": [1, 2]}}, "kfold": 3, "metric": "val_loss"}, "search.kfold: 3 (cross-validated trials)"),
        ({"space": {"seed": {"choice": [1, 2]}}, "seeds": 2}, "search.seeds: 2 (trials over seeds)"),
    ],
    ids=["learning-rate-and-seed", "dropout", "batch-size", "kfold", "seeds"],
)
def test_which_searched_keys_train_together(section, reason):
    assert sweep_vectorized.search_reason(search_config.SearchConfig.model_validate(section)) == reason


def test_the_executor_line_says_what_was_chosen_and_why():
    assert executors.vectorized_said(None, "folds", auto=True) == "executor: vectorized (the folds as one JAX program)"
    assert (
        executors.vectorized_said("train.loop: custom", "folds", auto=True)
        == "executor: sequential (vectorized does not apply: train.loop: custom)"
    )
    assert executors.vectorized_said(None, "folds", auto=False) is None  # kfold's own line says it
    assert (
        executors.vectorized_said("train.loop: custom", "trials", auto=False)
        == "vectorized: not applicable (train.loop: custom), running trials one by one"
    )
    # with --workers N, what cannot train together runs on a pool of N processes, and the line says so
    assert (
        executors.vectorized_said(None, "folds", auto=True, workers=2)
        == "executor: vectorized (the folds as one JAX program; the 2 workers are not used)"
    )
    assert (
        executors.vectorized_said("train.loop: custom", "folds", auto=True, workers=2)
        == "executor: a pool of 2 worker processes (vectorized does not apply: train.loop: custom)"
    )
    assert (
        executors.vectorized_said("train.loop: custom", "trials", auto=False, workers=3)
        == "vectorized: not applicable (train.loop: custom), running trials on a pool of 3 worker processes"
    )
    assert executors.Placement.resolve("auto", workers=2).fallback() == executors.Placement("pool", 2)
    assert executors.Placement.resolve("vectorized").fallback() == executors.Placement()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--executor", "vectorized", "--batch", "0"], "--batch: received 0; expected a number of trials >= 1"),
        (["--batch", "4"], "--batch: received 4 with --executor sequential; expected --executor vectorized or auto"),
        (["--executor", "pool", "--workers", "2", "--batch", "4"], "--batch: received 4 with --executor pool; expected"),
        (
            ["--executor", "sequential", "--workers", "2"],
            "--workers: received 2 with --executor sequential; expected 1 (or --executor pool)",
        ),
    ],
    ids=["batch<1", "batch-without-vectorized", "batch-with-pool", "sequential-with-workers"],
)
def test_bad_batch_options_exit_2_without_a_sweep_folder(tmp_path, options, message):
    result = invoke("sweep", _write(tmp_path, "bad"), *GRID, *options)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "bad").exists()


def test_trials_started_together_load_each_data_section_and_seed_once():
    from dlrun import config as config_module, data

    def section(samples: int = 40):
        return config_module.validate(
            {
                "name": "d",
                "model": {"architecture": "mlp"},
                "data": {"name": "synthetic", "task": "multiclass", "num_samples": samples, "input_shape": [4]},
            }
        ).data

    assert data.load(section(), 1) is not data.load(section(), 1)  # outside: every trial loads its own
    with data.shared():
        first = data.load(section(), 1)
        assert data.load(section(), 1) is first
        other_seed, other_section = data.load(section(), 2), data.load(section(50), 1)
        assert other_seed is not first and other_section is not first
        assert not np.array_equal(other_seed.split("test")[1], first.split("test")[1])  # a seed's own split
        assert other_section.size("train") != first.size("train")
        with data.shared():  # a batch inside a batch shares the outer one's
            assert data.load(section(), 1) is first
    assert data.load(section(), 1) is not first


# --- real sweeps ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "chosen", "where"), [(1, "sequential", "sequential"), (2, "pool", "a pool of 2 worker processes")])
def test_auto_on_tensorflow_trains_without_vectorizing_and_says_why(tmp_path, workers, chosen, where):
    """Where vectorized does not apply, auto trains the trials one by one in this process, or on a pool of
    --workers processes."""
    path = _write(tmp_path, "tf", epochs=1, backend="tensorflow")
    result = invoke("sweep", path, "--grid", "seed=1,2", "--executor", "auto", "--workers", str(workers))
    assert result.exit_code == 0, result.output
    line = f"executor: {where} (vectorized does not apply: backend: tensorflow; it needs jax)"
    assert result.output.count(line) == 1, result.output
    (folder,) = run_folders(tmp_path / "tf")
    state = json.loads((folder / "sweep.json").read_text())
    assert state["executor"] == {
        "executor": "auto",
        "workers": workers,
        "cpus_per_trial": 1.0,
        "chosen": chosen,
        "reason": "backend: tensorflow; it needs jax",
    }
    assert [trial["status"] for trial in state["trials"]] == ["completed", "completed"]
    pids = {json.loads((ROOT / trial["run"] / "run.json").read_text())["pid"] for trial in state["trials"]}
    assert (os.getpid() in pids) == (workers == 1)  # in this process, or in the pool's


@pytest.mark.slow
def test_every_trial_has_its_sequential_numbers_to_1e_5(tmp_path):
    outcomes = {}
    for executor in ("sequential", "auto"):
        outcome = _sweep_on_jax(_write(tmp_path, executor), *GRID, "--executor", executor)
        assert outcome["exit"] == 0, outcome["output"]
        outcomes[executor] = outcome
    assert outcomes["auto"]["output"].count("executor: vectorized (the trials, up to 32 at a time, as one JAX program)") == 1
    # the vectorized trials' test metrics come from the one program that evaluated them together
    assert (outcomes["auto"]["evaluated_together"], outcomes["sequential"]["evaluated_together"]) == ([True] * 4, [False] * 4)
    (sequential,), (together,) = run_folders(tmp_path / "sequential"), run_folders(tmp_path / "auto")
    state = json.loads((together / "sweep.json").read_text())
    assert state["executor"]["chosen"] == "vectorized" and state["executor"]["batch"] == 32
    expected, found = _trials(sequential), _trials(together)
    assert sorted(found) == [(0.01, 1), (0.01, 2), (0.05, 1), (0.05, 2)]
    import optuna

    storage = optuna.storages.RDBStorage(state["storage"])
    studied = {trial.number: trial.intermediate_values for trial in optuna.load_study(study_name=state["study"], storage=storage).trials}
    for key, trial in found.items():
        assert trial["status"] == "completed" and trial["record"]["status"] == "completed"
        assert len(trial["history"]["epoch"]) == 3
        _assert_close(trial["history"], expected[key]["history"])
        np.testing.assert_allclose(trial["best"]["value"], expected[key]["best"]["value"], rtol=1e-5)
        _assert_close(trial["record"]["test_metrics"], expected[key]["record"]["test_metrics"])  # evaluated as it trains
        # its own copy's predictions (evaluated together with the other trials'): the same confusion matrix
        metrics, expected_metrics = (json.loads((ROOT / item["run"] / "metrics.json").read_text()) for item in (trial, expected[key]))
        assert metrics["confusion_matrix"] == expected_metrics["confusion_matrix"]
        assert studied[trial["number"]] == dict(zip(trial["history"]["epoch"], trial["history"]["val_loss"]))  # every epoch reported
    # the seeds made different trials (not one copy four times)
    assert found[(0.01, 1)]["history"]["loss"] != found[(0.01, 2)]["history"]["loss"]


@pytest.mark.slow
def test_a_trial_that_goes_nan_fails_alone_and_a_pruned_one_stops_alone(tmp_path):
    grid = ["--grid", "compile.optimizer.learning_rate=0.01,1e30", "--grid", "seed=1,2", "--pruner", "none"]
    expected_outcome = _sweep_on_jax(_write(tmp_path, "sequential"), *grid, "--executor", "sequential", env={"PRUNE_TRIAL": "1"})
    outcome = _sweep_on_jax(_write(tmp_path, "nan"), *grid, "--executor", "vectorized", "--batch", "4", env={"PRUNE_TRIAL": "1"})
    assert outcome["exit"] == expected_outcome["exit"] == 0, outcome["output"]  # a sweep ranks the trials that completed
    (folder,), (sequential,) = run_folders(tmp_path / "nan"), run_folders(tmp_path / "sequential")
    found, expected = _trials(folder), _trials(sequential)
    pruned = [(0.01, 1)]
    for key, trial in found.items():
        if key[0] == 1e30:  # its loss became NaN (or infinite) in epoch 1: failed, as sequentially, nothing kept
            assert trial["status"] == expected[key]["status"] == "failed" and trial["record"]["status"] == "failed"
            # the batch named alone (sequential fits may name a block of train.steps_per_execution batches)
            assert re.fullmatch(
                r"training stopped: loss became (nan|inf|-inf) at epoch 1, batch \d+; "
                r"no epoch completed: no state was kept",
                trial["error"],
            ), trial["error"]
            assert not (ROOT / trial["run"] / "history.json").exists() or not trial["history"]["epoch"]
        elif key in pruned:  # stopped after epoch 2: its state stays as it was then
            assert trial["status"] == "pruned" and trial["record"]["status"] == "pruned"
            assert trial["record"]["pruned"] == {"epoch": 2, "reason": "injected"}
            assert len(trial["history"]["epoch"]) == 2 and checkpoint_epochs(ROOT / trial["run"]) == 2
            _assert_close(trial["history"], expected[key]["history"])
        else:  # the other trains on, with the numbers it has alone
            assert trial["status"] == "completed" and len(trial["history"]["epoch"]) == 3
            _assert_close(trial["history"], expected[key]["history"])


@pytest.mark.slow
def test_a_killed_vectorized_sweep_resumes_to_the_same_numbers(tmp_path):
    epochs = 40  # a few ms each: the kill lands well inside the run
    killed, straight = _write(tmp_path, "killed", epochs=epochs), _write(tmp_path, "straight", epochs=epochs)
    options = [*GRID, "--executor", "vectorized", "--batch", "4"]

    def a_trial_has_epoch_5():
        sweeps = run_folders(tmp_path / "killed")
        trials = run_folders(sweeps[0] / "trials") if sweeps else []
        return any((checkpoint_epochs(trial) or 0) >= 5 for trial in trials)

    sigkill_when(["sweep", killed, *options], a_trial_has_epoch_5)
    (folder,) = run_folders(tmp_path / "killed")
    # each trial's last checkpoint (or, killed between rotating last.npz to previous.npz and writing the new one,
    # its previous one: what --resume falls back to); a copy may be one ahead
    after = {trial.name: checkpoint_epochs(trial) or _previous_checkpoint_epochs(trial) for trial in run_folders(folder / "trials")}
    assert len(after) == 4 and all(1 <= (epoch or 0) < epochs for epoch in after.values()), after
    outcome = _sweep_on_jax("--resume", folder, "--executor", "vectorized", "--batch", "4")
    assert outcome["exit"] == 0, outcome["output"]
    assert outcome["output"].count("resuming trial") == 4
    straight_outcome = _sweep_on_jax(straight, *options)
    assert straight_outcome["exit"] == 0, straight_outcome["output"]
    found, expected = _trials(folder), _trials(run_folders(tmp_path / "straight")[0])
    assert sorted(found) == sorted(expected)
    for key, trial in found.items():
        assert trial["status"] == "completed" and len(trial["history"]["epoch"]) == epochs
        _assert_close(trial["history"], expected[key]["history"])


@pytest.mark.slow
def test_ctrl_c_while_finished_trials_are_evaluated_leaves_them_for_resume(tmp_path):
    """The trials that trained all their epochs end together after one evaluation: a Ctrl-C there marks each
    of their runs interrupted (none left running), and --resume ends them from their last checkpoints with
    an uninterrupted sweep's numbers."""
    options = [*GRID, "--executor", "vectorized", "--batch", "4"]
    outcome = _sweep_on_jax(_write(tmp_path, "stopped"), *options, env={"INTERRUPT_EVALUATION": "1"})
    assert outcome["exit"] == 130, outcome["output"]
    (folder,) = run_folders(tmp_path / "stopped")
    trials = run_folders(folder / "trials")
    assert len(trials) == 4
    assert [json.loads((trial / "run.json").read_text())["status"] for trial in trials] == ["interrupted"] * 4
    assert all(checkpoint_epochs(trial) == 3 for trial in trials)
    resumed = _sweep_on_jax("--resume", folder, "--executor", "vectorized", "--batch", "4")
    assert resumed["exit"] == 0, resumed["output"]
    straight = _sweep_on_jax(_write(tmp_path, "straight"), *options)
    assert straight["exit"] == 0, straight["output"]
    found, expected = _trials(folder), _trials(run_folders(tmp_path / "straight")[0])
    for key, trial in found.items():
        assert trial["status"] == "completed" and trial["record"]["status"] == "completed"
        _assert_close(trial["history"], expected[key]["history"])
        _assert_close(trial["record"]["test_metrics"], expected[key]["record"]["test_metrics"])


def _previous_checkpoint_epochs(trial) -> int | None:
    try:
        with np.load(trial / "checkpoints" / "previous.npz", allow_pickle=False) as stored:
            return int(stored["epochs_completed"])
    except OSError:
        return None


# Builds two trials' models (argv: a JSON list of [seed, num_samples]), trains each a different number of
# epochs, and prints each one's `model.evaluate` and `model.predict` on its test split next to what
# `stacked.evaluate_together` gives for all of them.
EVALUATE = """\
import io, json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
from rich import console as rich_console
from dlrun import config as config_module
from dlrun.training import evaluation, trainer
from dlrun.trials import stacked

console = rich_console.Console(file=io.StringIO())
copies, alone = [], []
for index, (seed, samples) in enumerate(json.loads(sys.argv[1])):
    config = config_module.validate({
        "name": "ev", "seed": seed, "backend": "jax",
        "data": {"name": "synthetic", "task": "multiclass", "num_samples": samples, "input_shape": [4], "noise": 0.3},
        "model": {"architecture": "mlp", "units": [6]}, "train": {"epochs": 1, "batch_size": 4},
    })
    training = trainer.Training(config, trainer.load(config, console), console)
    x, y = training.plan.data.split("train")
    training.model.fit(x, y, epochs=index + 1, verbose=0)
    batches = evaluation._batches(training.plan.data, "test", 4)
    metrics = training.model.evaluate(**batches, verbose=0, return_dict=True)
    outputs = training.model.predict(**evaluation._batches(training.plan.data, "test", 4), verbose=0)
    alone.append([{key: float(value) for key, value in metrics.items()}, np.asarray(outputs).tolist()])
    copies.append(stacked.Copy(training, None, 0, None, None))
together = [[metrics, outputs.tolist()] for metrics, outputs in stacked.evaluate_together(copies)]
print("RESULT " + json.dumps({"alone": alone, "together": together}))
"""


@pytest.mark.slow
def test_trials_evaluated_together_get_each_its_own_evaluate_and_predict():
    # test splits of 8 and 11 samples: batches of 4, the last padded, one copy a whole step shorter than the other
    found = script_result(EVALUATE, json.dumps([[1, 40], [2, 55]]))
    for (metrics, outputs), (expected_metrics, expected_outputs) in zip(found["together"], found["alone"], strict=True):
        assert metrics.keys() == expected_metrics.keys() == {"loss", "accuracy"}
        _assert_close(metrics, expected_metrics)
        np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-5, atol=1e-7)
    assert len(found["together"][0][1]) == 8 and len(found["together"][1][1]) == 11
    assert found["alone"][0][0] != found["alone"][1][0]  # two different models: a mix-up would show
