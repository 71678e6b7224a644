"""Malformed input through the real CLI: exit code 2, one clear message, no traceback, nothing written.

Each case is a config text (and optional --set items) with the text the error must contain. Cases
that need a dataset or command another module owns live next to that module's tests.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dlrun.config import yaml_strict
from tests.conftest import invoke

VALID = """\
name: ok
data: {name: synthetic, num_samples: 40, input_shape: [4]}
model: {architecture: mlp, units: [4]}
compile: {optimizer: {name: rmsprop, learning_rate: 0.01}}
train: {epochs: 1, batch_size: 8, callbacks: [{name: early_stopping}]}
"""

CASES = {
    "empty file": ("", [], "the file is empty"),
    "only comments": ("# nothing\n", [], "the file is empty"),
    "top level is a list": ("- data\n- model\n", [], "top level: received"),
    "top level is a string": ("just text\n", [], 'top level: received "just text"; expected a mapping'),
    "yaml syntax error": ("data: {name: synthetic\nmodel: mlp\n", [], "YAML error at line"),
    "tab indentation": ("data:\n\tname: synthetic\n", [], "YAML error at line 2"),
    "duplicate key": (VALID + "seed: 1\nseed: 2\n", [], "duplicate key 'seed'"),
    "python tag": ("name: !!python/object/apply:os.system ['true']\n" + VALID.split("\n", 1)[1], [], "is not allowed"),
    "unknown top-level key": (VALID + "trian: {}\n", [], "trian: received unknown key 'trian'; expected one of the keys name, seed, "),
    "unknown top-level key suggestion": (VALID + "trian: {}\n", [], "(did you mean 'train'?)"),
    "unknown data key": (VALID.replace("input_shape", "input_shap"), [], "data.input_shap: received unknown key"),
    "unknown model key": (VALID.replace("units: [4]", "unit: [4]"), [], "model.unit: received unknown key 'unit'"),
    "unknown head key": (VALID.replace("units: [4]", "units: [4], head: {unit: 3}"), [], "model.head.unit: received unknown key"),
    "unknown compile key": (
        VALID.replace("{optimizer:", "{optimiser: rmsprop, optimizer:"),
        [],
        "compile.optimiser: received unknown key 'optimiser'",
    ),
    "unknown optimizer key": (VALID.replace("learning_rate", "lr"), [], "compile.optimizer.lr: received unknown key 'lr'"),
    "unknown train key": (VALID.replace("epochs:", "epoch:"), [], "train.epoch: received unknown key 'epoch'"),
    "unknown callback key": (
        VALID.replace("{name: early_stopping}", "{name: early_stopping, patiance: 3}"),
        [],
        "train.callbacks.0.patiance: received unknown key",
    ),
    "unknown output key": (VALID + "output: {root: x}\n", [], "output.root: received unknown key 'root'"),
    "batch size not a number": (
        VALID.replace("batch_size: 8", "batch_size: '64x'"),
        [],
        'train.batch_size: received "64x"; expected an integer',
    ),
    "epochs as a list": (VALID.replace("epochs: 1", "epochs: [1]"), [], "train.epochs: received [1]; expected an integer"),
    "epochs fractional": (VALID.replace("epochs: 1", "epochs: 1.5"), [], "train.epochs: received 1.5; expected a whole number"),
    "zero epochs": (VALID.replace("epochs: 1", "epochs: 0"), [], "train.epochs: received 0; expected a number >= 1"),
    "negative epochs": (VALID.replace("epochs: 1", "epochs: -3"), [], "train.epochs: received -3; expected a number >= 1"),
    "zero batch size": (VALID.replace("batch_size: 8", "batch_size: 0"), [], "train.batch_size: received 0"),
    "negative learning rate": (
        VALID.replace("0.01", "-0.01"),
        [],
        "compile.optimizer.learning_rate: received -0.01; expected a number > 0",
    ),
    "zero learning rate": (VALID.replace("0.01", "0"), [], "compile.optimizer.learning_rate: received 0; expected a number > 0"),
    "learning rate as text": (VALID.replace("0.01", "fast"), [], 'compile.optimizer.learning_rate: received "fast"; expected a number'),
    "dropout of one": (VALID.replace("units: [4]", "units: [4], dropout: 1"), [], "model.dropout: received 1; expected a number < 1"),
    "negative dropout": (
        VALID.replace("units: [4]", "units: [4], dropout: -0.1"),
        [],
        "model.dropout: received -0.1; expected a number >= 0",
    ),
    "yaml 1.1 boolean trap": (
        VALID.replace("batch_size: 8", "batch_size: 8, shuffle: no"),
        [],
        'train.shuffle: received "no"; expected true or false',
    ),
    "number where a flag goes": (
        VALID.replace("batch_size: 8", "batch_size: 8, shuffle: 1"),
        [],
        "train.shuffle: received 1; expected true or false",
    ),
    "unknown dataset": (VALID.replace("name: synthetic", "name: synthetik"), [], "data.name: received 'synthetik'; expected one of"),
    "unknown architecture": (
        VALID.replace("architecture: mlp", "architecture: mpl"),
        [],
        "model.architecture: received 'mpl'; expected one of mlp, convnet",
    ),
    "unknown optimizer": (
        VALID.replace("name: rmsprop", "name: adamw"),
        [],
        "compile.optimizer.name: received 'adamw'; expected one of rmsprop, adam, sgd (did you mean 'adam'?)",
    ),
    "unknown loss": (VALID.replace("compile: {", "compile: {loss: crossentropy, "), [], 'compile.loss: received "crossentropy"'),
    "unknown metric": (
        VALID.replace("compile: {", "compile: {metrics: [acuracy], "),
        [],
        'compile.metrics.0: received "acuracy"; expected one of accuracy',
    ),
    "unknown callback": (
        VALID.replace("{name: early_stopping}", "{name: earlystopping}"),
        [],
        "train.callbacks.0.name: received 'earlystopping'; expected one of early_stopping, checkpoint, reduce_lr_on_plateau (did you mean 'early_stopping'?)",
    ),
    "monitor never computed": (
        VALID.replace("{name: early_stopping}", "{name: early_stopping, monitor: val_auc}"),
        [],
        "train.callbacks.0.monitor: received 'val_auc'; expected a value this run computes",
    ),
    "missing data section": ("model: mlp\n", [], "data: received nothing; expected this required key"),
    "missing model section": ("data: synthetic\n", [], "model: received nothing; expected this required key"),
    "path in run name": (VALID.replace("name: ok", "name: ../../etc"), [], 'name: received "../../etc"; expected a name of 1-64 letters'),
    "control character in run name": (VALID.replace("name: ok", 'name: "a\\u0007b"'), [], "name: received"),
    "list as a key": (VALID + "[1, 2]: 3\n", [], "a list cannot be a key"),
    "number as a key": (VALID + "7: x\n", [], "7: received 7; expected text keys only"),
    "infinite learning rate": (
        VALID.replace("0.01", ".inf"),
        [],
        "compile.optimizer.learning_rate: received Infinity; expected a finite number",
    ),
    "seed too large": (VALID + "seed: 99999999999\n", [], "seed: received 99999999999; expected a number <= 4294967295"),
    "--set without value": (VALID, ["train.epochs"], "--set 'train.epochs': received no KEY=VALUE"),
    "--set bad path": (VALID, ["train.epoch=3"], "train.epoch: received unknown key 'epoch'"),
    "--set into a scalar": (VALID, ["train.epochs.value=3"], "--set 'train.epochs.value=3': train.epochs: received 1 at that path"),
    "--set bad value": (VALID, ["train.epochs=-1"], "train.epochs: received -1; expected a number >= 1"),
    "--set broken yaml": (VALID, ["train.epochs=[1"], "--set 'train.epochs=[1'"),
    "unknown precision": (
        VALID,
        ["train.precision=float16"],
        'train.precision: received "float16"; expected one of float32, mixed_float16',
    ),
    "data_parallel on tensorflow": (
        VALID + "backend: tensorflow\n",
        ["train.distribute=data_parallel"],
        "train.distribute: received 'data_parallel' with backend 'tensorflow'; expected backend: jax",
    ),
}


# The whole message of each case, as `config validate` and `train` print it (one line each: exact, so a
# changed key path, value or expectation fails).
FULL = {
    "--set bad path": "invalid config config.yaml: train.epoch: received unknown key 'epoch'; expected one of the keys epochs, batch_size, shuffle, loop, steps_per_execution, tensorboard, precision, distribute, devices, callbacks (did you mean 'epochs'?) (from --set train.epoch=3)",
    "--set bad value": "invalid config config.yaml: train.epochs: received -1; expected a number >= 1 (from --set train.epochs=-1)",
    "--set broken yaml": "invalid config --set 'train.epochs=[1': YAML error at line 1, column 3: while parsing a flow sequence started on line 1, expected ',' or ']', but got '<stream end>'",
    "--set into a scalar": "invalid config: --set 'train.epochs.value=3': train.epochs: received 1 at that path; expected a mapping (or a list and an index within it) to set a key in",
    "--set without value": "invalid config: --set 'train.epochs': received no KEY=VALUE; expected a dotted key path, '=', a YAML value (for example --set train.epochs=3)",
    "batch size not a number": 'invalid config config.yaml: train.batch_size: received "64x"; expected an integer',
    "control character in run name": "invalid config config.yaml: name: received \"a\\u0007b\"; expected a name of 1-64 letters, digits, '.', '_' or '-' that starts with a letter or digit",
    "dropout of one": "invalid config config.yaml: model.dropout: received 1; expected a number < 1.0",
    "duplicate key": "invalid config config.yaml: YAML error at line 7, column 1: duplicate key 'seed' (first defined on line 6)",
    "empty file": "invalid config config.yaml: the file is empty; expected a mapping with at least `data:` and `model:`",
    "epochs as a list": "invalid config config.yaml: train.epochs: received [1]; expected an integer",
    "epochs fractional": "invalid config config.yaml: train.epochs: received 1.5; expected a whole number",
    "infinite learning rate": "invalid config config.yaml: compile.optimizer.learning_rate: received Infinity; expected a finite number",
    "learning rate as text": 'invalid config config.yaml: compile.optimizer.learning_rate: received "fast"; expected a number',
    "list as a key": "invalid config config.yaml: YAML error at line 6, column 1: a list cannot be a key; expected a plain key such as `epochs`",
    "missing data section": "invalid config config.yaml: data: received nothing; expected this required key",
    "missing model section": "invalid config config.yaml: model: received nothing; expected this required key",
    "monitor never computed": "invalid config config.yaml: train.callbacks.0.monitor: received 'val_auc'; expected a value this run computes: loss, accuracy, val_loss, val_accuracy (did you mean 'val_accuracy'?)",
    "negative dropout": "invalid config config.yaml: model.dropout: received -0.1; expected a number >= 0.0",
    "negative epochs": "invalid config config.yaml: train.epochs: received -3; expected a number >= 1",
    "negative learning rate": "invalid config config.yaml: compile.optimizer.learning_rate: received -0.01; expected a number > 0.0",
    "number as a key": "invalid config config.yaml: 7: received 7; expected text keys only",
    "number where a flag goes": "invalid config config.yaml: train.shuffle: received 1; expected true or false",
    "only comments": "invalid config config.yaml: the file is empty; expected a mapping with at least `data:` and `model:`",
    "path in run name": "invalid config config.yaml: name: received \"../../etc\"; expected a name of 1-64 letters, digits, '.', '_' or '-' that starts with a letter or digit",
    "python tag": "invalid config config.yaml: YAML error at line 1, column 7: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed (configs are plain YAML data)",
    "seed too large": "invalid config config.yaml: seed: received 99999999999; expected a number <= 4294967295",
    "tab indentation": "invalid config config.yaml: YAML error at line 2, column 1: while scanning for the next token, found character '\\t' that cannot start any token",
    "top level is a list": 'invalid config config.yaml: top level: received ["data", "model"]; expected a mapping of sections (name, seed, backend, data, model, compile, train, output, search)',
    "top level is a string": 'invalid config config.yaml: top level: received "just text"; expected a mapping of sections (name, seed, backend, data, model, compile, train, output, search)',
    "unknown architecture": "invalid config config.yaml: model.architecture: received 'mpl'; expected one of mlp, convnet, pretrained (did you mean 'mlp'?)",
    "unknown callback": "invalid config config.yaml: train.callbacks.0.name: received 'earlystopping'; expected one of early_stopping, checkpoint, reduce_lr_on_plateau (did you mean 'early_stopping'?)",
    "unknown callback key": "invalid config config.yaml: train.callbacks.0.patiance: received unknown key 'patiance'; expected one of the keys name, monitor, patience, min_delta, mode, restore_best_weights (did you mean 'patience'?)",
    "unknown compile key": "invalid config config.yaml: compile.optimiser: received unknown key 'optimiser'; expected one of the keys optimizer, loss, metrics (did you mean 'optimizer'?)",
    "unknown data key": "invalid config config.yaml: data.input_shap: received unknown key 'input_shap'; expected one of the keys name, task, num_samples, input_shape, num_classes, noise, test_split, validation_split (did you mean 'input_shape'?)",
    "unknown dataset": "invalid config config.yaml: data.name: received 'synthetik'; expected one of digits, synthetic, imdb, reuters, boston_housing, mnist, fashion_mnist, image_directory, npz, hdf5 (did you mean 'synthetic'?)",
    "unknown head key": "invalid config config.yaml: model.head.unit: received unknown key 'unit'; expected one of the keys units, activation (did you mean 'units'?)",
    "unknown loss": "invalid config config.yaml: compile.loss: received \"crossentropy\"; expected one of auto, binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy, mse, mae, huber (did you mean 'binary_crossentropy'?)",
    "unknown metric": "invalid config config.yaml: compile.metrics.0: received \"acuracy\"; expected one of accuracy, auc, precision, recall, mae, mse (did you mean 'accuracy'?)",
    "unknown model key": "invalid config config.yaml: model.unit: received unknown key 'unit'; expected one of the keys architecture, units, activation, dropout, l1, l2, kernel_initializer, bias_initializer, head (did you mean 'units'?)",
    "unknown optimizer": "invalid config config.yaml: compile.optimizer.name: received 'adamw'; expected one of rmsprop, adam, sgd (did you mean 'adam'?)",
    "unknown optimizer key": "invalid config config.yaml: compile.optimizer.lr: received unknown key 'lr'; expected one of the keys name, learning_rate, rho, momentum, epsilon",
    "unknown output key": "invalid config config.yaml: output.root: received unknown key 'root'; expected one of the keys runs_root, save_model, plots, resume_checkpoints, keep_checkpoints (did you mean 'runs_root'?)",
    "unknown top-level key": "invalid config config.yaml: trian: received unknown key 'trian'; expected one of the keys name, seed, backend, data, model, compile, train, output, search (did you mean 'train'?)",
    "unknown top-level key suggestion": "invalid config config.yaml: trian: received unknown key 'trian'; expected one of the keys name, seed, backend, data, model, compile, train, output, search (did you mean 'train'?)",
    "unknown precision": "invalid config config.yaml: train.precision: received \"float16\"; expected one of float32, mixed_float16, mixed_bfloat16 (did you mean 'float32'?) (from --set train.precision=float16)",
    "data_parallel on tensorflow": "invalid config config.yaml: train.distribute: received 'data_parallel' with backend 'tensorflow'; expected backend: jax (or auto), since only JAX runs train.distribute: data_parallel (from --set train.distribute=data_parallel)",
    "unknown train key": "invalid config config.yaml: train.epoch: received unknown key 'epoch'; expected one of the keys epochs, batch_size, shuffle, loop, steps_per_execution, tensorboard, precision, distribute, devices, callbacks (did you mean 'epochs'?)",
    "yaml 1.1 boolean trap": 'invalid config config.yaml: train.shuffle: received "no"; expected true or false',
    "yaml syntax error": "invalid config config.yaml: YAML error at line 2, column 6: while parsing a flow mapping started on line 1, expected ',' or '}', but got ':'",
    "zero batch size": "invalid config config.yaml: train.batch_size: received 0; expected a number >= 1",
    "zero epochs": "invalid config config.yaml: train.epochs: received 0; expected a number >= 1",
    "zero learning rate": "invalid config config.yaml: compile.optimizer.learning_rate: received 0; expected a number > 0.0",
}


@pytest.mark.parametrize("command", ["validate", "train"])
@pytest.mark.parametrize("case", sorted(CASES), ids=str)
def test_bad_config_exits_2_with_one_clear_message_and_writes_nothing(case, command, tmp_path, monkeypatch):
    text, set_items, expected = CASES[case]
    monkeypatch.chdir(tmp_path)  # the default runs root, `runs`, would be created here
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    args = ["config", "validate"] if command == "validate" else ["train"]
    result = invoke(*args, "config.yaml", *[part for item in set_items for part in ("--set", item)])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert result.stderr == f"error: {FULL[case]}\n"
    assert sorted(os.listdir(tmp_path)) == ["config.yaml"]


def test_missing_config_file_exits_2(tmp_path):
    result = invoke("train", tmp_path / "absent.yaml")
    assert result.exit_code == 2
    assert "absent.yaml: no such file; expected a YAML config file" in result.stderr


def test_config_path_is_a_directory(tmp_path):
    result = invoke("config", "validate", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.stderr


# --- property: whatever a config file says, the CLI answers with 0 or 2 and a message, never a traceback ---

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_keys = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans(), st.none())
_values = st.recursive(
    _scalars, lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_keys, children, max_size=3)), max_leaves=6
)
_PATHS = [
    ("name",),
    ("seed",),
    ("data",),
    ("data", "name"),
    ("data", "num_samples"),
    ("data", "input_shape"),
    ("model",),
    ("model", "architecture"),
    ("model", "units"),
    ("model", "dropout"),
    ("model", "head"),
    ("compile",),
    ("compile", "optimizer"),
    ("compile", "optimizer", "learning_rate"),
    ("compile", "metrics"),
    ("train",),
    ("train", "epochs"),
    ("train", "callbacks"),
    ("output",),
    ("output", "runs_root"),
    ("extra",),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_PATHS), value=_values, delete=st.booleans())
def test_random_mutations_never_crash_the_cli(tmp_path, path, value, delete):
    data = yaml_strict.loads(VALID)
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    config_path = tmp_path / "fuzz.yaml"
    config_path.write_text(yaml_strict.dumps(data), encoding="utf-8")
    result = invoke("config", "validate", config_path)
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
