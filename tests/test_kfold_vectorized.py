"""`dlrun kfold --executor vectorized`: the folds as one JAX program give every fold the numbers, files and
outcome the sequential executor gives it (bit for bit), fall back with one line where they cannot apply, fail
a NaN copy alone, and resume each fold from its own checkpoint.

The suite runs on TensorFlow (Keras cannot switch backends in a process), so the JAX runs happen in fresh
processes (as tests/test_backends.py does): `_kfold_on_jax` runs the CLI in one and reports its output and
the epochs each fold trained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlrun import atomic
from dlrun.trials import stacked, vectorized
from tests.conftest import checkpoint_epochs, invoke, run_folders, script_result, sigkill_when

# 62 samples: 13 test, 49 pooled in 3 folds of 17/16/16, so the folds train on 32/33/33 samples: with
# batches of 16 one copy has 2 steps per epoch where the others have 3 (the last of 1 sample), and the
# validation parts differ in size. Dropout on: each copy draws its own masks.
CONFIG = """\
name: vec
seed: 5
backend: jax
data: {{name: synthetic, task: {task}, num_samples: 62, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [6], dropout: 0.25}}
train: {{epochs: {epochs}, batch_size: 16{extra}}}
output: {{runs_root: {root}, plots: false}}
"""

# Runs `dlrun ARGS` in this fresh process on JAX, recording the epochs each fit trained; INJECT_NAN
# poisons copy 1's (the second fold's) weights as the vectorized program takes them.
SCRIPT = """\
import json, os, sys
import pytest
from typer.testing import CliRunner
from tests.conftest import record_trained_epochs
os.environ["KERAS_BACKEND"] = "jax"  # tests.conftest pins TensorFlow for the suite's own process
from dlrun import cli
from dlrun.trials import stacked

if os.environ.get("INJECT_NAN"):
    state_of, models = stacked._state_of, []

    def poisoned(model):
        trainable, *rest = state_of(model)
        models.append(model)
        if len(models) == 2:
            trainable = [trainable[0] * float("nan"), *trainable[1:]]
        return (trainable, *rest)

    stacked._state_of = poisoned
if os.environ.get("BATCH_NORM"):  # a BatchNormalization layer after the inputs: its moving statistics train too
    from dlrun import backend, models

    mlp = models.ARCHITECTURES["mlp"]

    def with_batch_norm(config, stem, *rest):
        print("model built with a BatchNormalization layer")
        return mlp(config, [*stem, backend.import_keras().layers.BatchNormalization()], *rest)

    models.ARCHITECTURES["mlp"] = with_batch_norm
if os.environ.get("BREAK_PROGRAM"):
    def broken(model):
        raise RuntimeError("the program broke")

    stacked._programs = broken
with pytest.MonkeyPatch.context() as patch:
    seen = record_trained_epochs(patch)
    result = CliRunner().invoke(cli.app, sys.argv[1:])
print("RESULT " + json.dumps({"exit": result.exit_code, "output": result.output, "seen": seen}))
"""


def _write(tmp_path, name: str, task: str = "regression", epochs: int = 3, extra: str = ""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(CONFIG.format(task=task, epochs=epochs, extra=extra, root=json.dumps(str(tmp_path / name))))
    return path


def _kfold_on_jax(*args, env: dict | None = None) -> dict:
    return script_result(SCRIPT, "kfold", *args, env=env)


def _histories(folder) -> list[dict]:
    state = json.loads((folder / "kfold.json").read_text())
    return [json.loads((folder / "folds" / str(fold["index"]) / "history.json").read_text()) for fold in state["folds"]]


def _resumes_after(folder) -> int:
    """The epoch a fold continues after: its latest checkpoint's, else (a kill while it was being replaced,
    or lost) the previous one's."""
    for name in ("last.npz", "previous.npz"):
        if (folder / "checkpoints" / name).exists():
            with np.load(folder / "checkpoints" / name) as stored:
                return int(stored["epochs_completed"])
    raise AssertionError(f"{folder}: no checkpoint")


def _assert_equal(found: dict, expected: dict) -> None:
    """Bit for bit: a copy runs the very operations of its sequential fit (stacked._programs)."""
    assert found.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(np.array(found[key], dtype=float), np.array(expected[key], dtype=float), err_msg=key)


# --- where it applies, said before anything trains --------------------------------------------------------


def test_sequential_takes_no_workers(tmp_path):
    path = _write(tmp_path, "refused")
    result = invoke("kfold", path, "--executor", "sequential", "--workers", "2")
    assert result.exit_code == 2
    assert "--workers: received 2 with --executor sequential; expected 1 (or --executor pool)" in result.output
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["vectorized", "auto"])
def test_where_vectorized_does_not_apply_workers_make_a_pool(tmp_path, monkeypatch, executor):
    """`--workers 2` with vectorized or auto: where the folds cannot train as one program (here TensorFlow),
    they train on a pool of 2 processes, and the console and kfold.json say so; none trains in this process."""
    from dlrun.trials import executors

    in_this_process = []
    monkeypatch.setattr(executors, "_sequential", lambda *args: in_this_process.append(args))
    path = _write(tmp_path, "pooled").read_text().replace("backend: jax", "backend: tensorflow")
    (tmp_path / "pooled.yaml").write_text(path)
    result = invoke("kfold", tmp_path / "pooled.yaml", "--k", "3", "--no-final", "--executor", executor, "--workers", "2")
    assert result.exit_code == 0, result.output
    reason = "backend: tensorflow; it needs jax"
    line = {
        "auto": f"executor: a pool of 2 worker processes (vectorized does not apply: {reason})",
        "vectorized": f"vectorized: not applicable ({reason}), running folds on a pool of 2 worker processes",
    }[executor]
    assert result.output.count(line) == 1, result.output
    (folder,) = run_folders(tmp_path / "pooled")
    state = json.loads((folder / "kfold.json").read_text())
    assert state["executor"] == {"executor": executor, "workers": 2, "cpus_per_trial": 1.0, "chosen": "pool", "reason": reason}
    assert [fold["status"] for fold in state["folds"]] == ["completed"] * 3
    assert in_this_process == []  # no fold trained in this process: each did in a worker


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (", loop: custom", "train.loop: custom"),
        (", callbacks: [{name: reduce_lr_on_plateau, patience: 2}]", "train.callbacks: reduce_lr_on_plateau"),
        (", tensorboard: true", "train.tensorboard: true"),
        ("", None),
    ],
)
def test_what_the_config_must_not_have(tmp_path, monkeypatch, extra, reason):
    from dlrun import backend, config as config_module

    monkeypatch.setattr(backend, "loaded", lambda: "jax")
    data = config_module.to_data(config_module.load(_write(tmp_path, "reasons", extra=extra)))
    assert vectorized.config_reason([data]) == reason
    monkeypatch.setattr(backend, "loaded", lambda: "tensorflow")
    assert vectorized.config_reason([data]) == "backend: tensorflow; it needs jax"


def _training(phases: int = 1, split=None, outputs: int = 1, layers=("Dense",)):
    """A stand-in for a fold's `Training`, with what `_model_reason` reads."""
    import types

    arrays = (np.zeros((4, 2)), np.zeros(4))
    data = types.SimpleNamespace(split=lambda name: arrays if split is None or name == "validation" else split)
    layer_objects = [type(name, (), {})() for name in layers]
    model = types.SimpleNamespace(outputs=[None] * outputs, _flatten_layers=lambda: layer_objects)
    return types.SimpleNamespace(plan=types.SimpleNamespace(phases=[None] * phases, data=data), model=model)


@pytest.mark.parametrize(
    ("training", "reason"),
    [
        (_training(), None),
        (_training(phases=2), "2 training phases (model.fine_tune)"),
        (_training(split=object()), "a streamed or multi-input split; it needs in-memory arrays"),
        (_training(split=({"a": np.zeros(4)}, np.zeros(4))), "a streamed or multi-input split; it needs in-memory arrays"),
        (_training(outputs=2), "a model with 2 outputs; it needs one"),
        (_training(layers=("Dense", "BatchNormalization")), None),  # nothing is padded: its batches are fit's
    ],
    ids=["applies", "phases", "streamed", "multi-input", "outputs", "batch-norm"],
)
def test_what_the_model_and_data_must_not_have(training, reason):
    assert stacked.model_reason(training) == reason


def test_batches_are_the_ones_fit_trains_on_and_nothing_is_padded():
    inputs = np.arange(10, dtype="float32").reshape(5, 2)
    targets = np.arange(5, dtype="float32")
    (full_inputs, full_targets), last = stacked._batches(inputs, targets, np.array([4, 0, 2, 1, 3]), batch_size=2)
    assert full_inputs.shape == (2, 2, 2)
    np.testing.assert_array_equal(full_targets, [[4, 0], [2, 1]])
    np.testing.assert_array_equal(full_inputs[1], inputs[[2, 1]])
    assert last is not None
    np.testing.assert_array_equal(last[0], inputs[[3]])  # the last batch keeps its own size: 1 sample
    np.testing.assert_array_equal(last[1], [3])
    (_full_inputs, even_targets), none = stacked._batches(inputs[:4], targets[:4], np.arange(4), batch_size=2)
    assert none is None and even_targets.shape == (2, 2)
    (few_inputs, _few_targets), only = stacked._batches(inputs, targets, np.arange(3), batch_size=4)
    assert few_inputs.shape == (0, 4, 2) and only is not None and len(only[1]) == 3


def test_a_copy_s_checkpoint_written_from_its_values_is_what_checkpoints_save_writes(keras, tmp_path):
    """A copy's checkpoint comes from its slice of the stacked values, not from its model: the same arrays in the
    order of `model.variables` (per layer, BatchNormalization's statistics among them), not the stacked order."""
    import types

    from dlrun.training import checkpoints

    keras.utils.set_random_seed(0)
    layers = [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dropout(0.5), keras.layers.Dense(1)]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 3)), np.arange(8.0), epochs=1, verbose=0)
    layout = stacked._layout(model)
    assert layout is not None and layout != sorted(layout)  # trainable first, then the rest: another order
    values = tuple([variable.numpy() for variable in part] for part in (model.trainable_variables, model.non_trainable_variables))
    copy = types.SimpleNamespace(
        values=(*values, [variable.numpy() for variable in model.optimizer.variables]),
        layout=layout,
        folder=tmp_path / "copy",
        training=types.SimpleNamespace(model=model),
    )
    stacked._save_checkpoint(copy, 3)
    checkpoints.save(tmp_path / "model", model, epochs_completed=3)
    with np.load(tmp_path / "copy" / checkpoints.LATEST) as found, np.load(tmp_path / "model" / checkpoints.LATEST) as expected:
        assert found.files == expected.files
        for key in expected.files:
            np.testing.assert_array_equal(found[key], expected[key], err_msg=key)


# --- on JAX, in fresh processes -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("task", "batch_norm"), [("regression", False), ("multiclass", False), ("regression", True)])
def test_every_fold_has_the_sequential_numbers_bit_for_bit(tmp_path, task, batch_norm):
    outcomes = {}
    env = {"BATCH_NORM": "1"} if batch_norm else None
    for executor in ("sequential", "vectorized"):
        outcome = _kfold_on_jax(_write(tmp_path, executor, task), "--k", "3", "--executor", executor, env=env)
        assert outcome["exit"] == 0, outcome["output"]
        outcomes[executor] = outcome
    assert "executor: vectorized: the folds as one JAX program in this process" in outcomes["vectorized"]["output"]
    assert "not applicable" not in outcomes["vectorized"]["output"]
    if batch_norm:  # every fold's model had the layer (its moving statistics are what the validation uses)
        assert all(outcome["output"].count("with a BatchNormalization layer") >= 3 for outcome in outcomes.values())
    (sequential,), (together,) = run_folders(tmp_path / "sequential"), run_folders(tmp_path / "vectorized")
    sequential_folds, together_folds = _histories(sequential), _histories(together)
    assert [len(fold["epoch"]) for fold in together_folds] == [3, 3, 3]
    for found, expected in zip(together_folds, sequential_folds):
        _assert_equal(found, expected)
    states = [json.loads((folder / "kfold.json").read_text()) for folder in (together, sequential)]
    assert states[0]["recommended_epochs"] == states[1]["recommended_epochs"]
    assert [fold["train_samples"] for fold in states[0]["folds"]] == [32, 33, 33]
    for key, statistics in states[1]["summary"].items():
        _assert_equal(states[0]["summary"][key], statistics)
    # the final refit runs on the normal path either way: the same epochs, the same test metrics
    metrics = [json.loads((folder / "metrics.json").read_text())["metrics"] for folder in (together, sequential)]
    _assert_equal(metrics[0], metrics[1])
    for folder in (together, sequential):
        assert checkpoint_epochs(folder / "folds" / "2") == 3
        # each fit's history.json spare (atomic.swap_in) is removed at its end, on either path
        assert not [path for path in folder.rglob("*") if atomic.is_temp_name(path.name)]


@pytest.mark.slow
def test_a_config_it_cannot_run_falls_back_with_one_line(tmp_path):
    path = _write(tmp_path, "fallback", extra=", callbacks: [{name: reduce_lr_on_plateau, patience: 2}]")
    outcome = _kfold_on_jax(path, "--k", "3", "--no-final", "--executor", "vectorized")
    assert outcome["exit"] == 0, outcome["output"]
    line = "vectorized: not applicable (train.callbacks: reduce_lr_on_plateau), running folds one by one"
    assert outcome["output"].count(line) == 1
    assert outcome["seen"] == [[str(fold), epoch] for fold in (1, 2, 3) for epoch in (1, 2, 3)]  # one by one


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "line", "chosen"),
    [
        ("", "executor: vectorized (the folds as one JAX program)", {"chosen": "vectorized"}),
        (
            ", callbacks: [{name: reduce_lr_on_plateau, patience: 2}]",
            "executor: sequential (vectorized does not apply: train.callbacks: reduce_lr_on_plateau)",
            {"chosen": "sequential", "reason": "train.callbacks: reduce_lr_on_plateau"},
        ),
    ],
    ids=["vectorized", "sequential"],
)
def test_auto_says_and_records_what_it_chose(tmp_path, extra, line, chosen):
    outcome = _kfold_on_jax(_write(tmp_path, "auto", extra=extra), "--k", "3", "--no-final", "--executor", "auto")
    assert outcome["exit"] == 0, outcome["output"]
    assert outcome["output"].count(line) == 1 and outcome["output"].count("executor:") == 1
    (folder,) = run_folders(tmp_path / "auto")
    state = json.loads((folder / "kfold.json").read_text())
    assert state["executor"] == {"executor": "auto", "workers": 1, "cpus_per_trial": 1.0, **chosen}
    assert "--executor=auto" in json.loads((folder / "run.json").read_text())["command"]
    assert [fold["status"] for fold in state["folds"]] == ["completed"] * 3


@pytest.mark.slow
def test_a_copy_that_goes_nan_fails_alone(tmp_path):
    path = _write(tmp_path, "nan")
    outcome = _kfold_on_jax(path, "--k", "3", "--no-final", "--executor", "vectorized", env={"INJECT_NAN": "1"})
    assert outcome["exit"] != 0
    assert "fold 2/3 failed" in outcome["output"] and "1 of 3 fold(s) failed" in outcome["output"]
    (folder,) = run_folders(tmp_path / "nan")
    state = json.loads((folder / "kfold.json").read_text())
    assert [fold["status"] for fold in state["folds"]] == ["completed", "failed", "completed"]
    assert state["folds"][1]["error"] == ("training stopped: loss became nan at epoch 1, batch 1; no epoch completed: no state was kept")
    assert [len(json.loads((folder / "folds" / fold / "history.json").read_text())["epoch"]) for fold in "13"] == [3, 3]
    assert checkpoint_epochs(folder / "folds" / "2") is None and not (folder / "folds" / "2" / "history.json").exists()
    assert sorted(set(map(tuple, outcome["seen"]))) == [(fold, epoch) for fold in ("1", "3") for epoch in (1, 2, 3)]


@pytest.mark.slow
def test_when_the_one_program_fails_every_fold_in_it_fails_and_the_run_says_so(tmp_path):
    outcome = _kfold_on_jax(_write(tmp_path, "broken"), "--k", "3", "--no-final", "--executor", "vectorized", env={"BREAK_PROGRAM": "1"})
    assert outcome["exit"] != 0 and "3 of 3 fold(s) failed" in outcome["output"]
    (folder,) = run_folders(tmp_path / "broken")
    state = json.loads((folder / "kfold.json").read_text())
    assert [(fold["status"], fold["error"]) for fold in state["folds"]] == [("failed", "RuntimeError: the program broke")] * 3
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_a_killed_vectorized_kfold_resumes_each_fold_from_its_checkpoint(tmp_path):
    epochs = 40  # a few ms each: the kill lands well inside the run
    killed, straight = _write(tmp_path, "killed", epochs=epochs), _write(tmp_path, "straight", epochs=epochs)
    arguments = ["--k", "3", "--no-final", "--executor", "vectorized"]

    def fold_1_has_epoch_5():
        folders = run_folders(tmp_path / "killed")
        return bool(folders) and (checkpoint_epochs(folders[0] / "folds" / "1") or 0) >= 5

    sigkill_when(["kfold", killed, *arguments], fold_1_has_epoch_5)
    (folder,) = run_folders(tmp_path / "killed")
    # Fold 3 one epoch behind the others (its latest checkpoint lost: it continues from the previous one),
    # so copies resume at different epochs and the ones ahead must wait, unchanged.
    (folder / "folds" / "3" / "checkpoints" / "last.npz").unlink(missing_ok=True)
    after = {fold: _resumes_after(folder / "folds" / str(fold)) for fold in (1, 2, 3)}
    # the kill can land between two folds' epoch ends: fold 3 may then be two epochs behind (3)
    assert all(3 <= after[fold] < epochs for fold in after), after
    outcome = _kfold_on_jax("--resume", folder, "--executor", "vectorized")
    assert outcome["exit"] == 0, outcome["output"]
    for fold, epoch in after.items():
        assert f"resuming fold {fold} after epoch {epoch} (fold {fold}/3; state from {fold}/checkpoints/" in outcome["output"]
    # each fold trained only the epochs after its own checkpoint
    assert sorted(map(tuple, outcome["seen"])) == sorted(
        (str(fold), epoch) for fold in after for epoch in range(after[fold] + 1, epochs + 1)
    )
    straight_outcome = _kfold_on_jax(straight, *arguments)
    assert straight_outcome["exit"] == 0, straight_outcome["output"]
    (uninterrupted,) = run_folders(tmp_path / "straight")
    for found, expected in zip(_histories(folder), _histories(uninterrupted)):
        assert len(found["epoch"]) == epochs
        _assert_equal(found, expected)
