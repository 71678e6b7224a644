import pytest

from dlrun import config, data as data_registry, errors
from dlrun.config import overrides, schema
from tests.conftest import CONFIGS

MINIMAL = {"data": {"name": "digits"}, "model": {"architecture": "mlp"}}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(errors.ConfigError) as caught:
        config.validate(data, source="c.yaml")
    return caught.value.problems


def test_minimal_config_takes_visible_defaults():
    loaded = config.validate(MINIMAL)
    assert loaded.train.epochs == schema.TrainConfig().epochs == 10
    assert loaded.compile.optimizer.name == "rmsprop"
    assert loaded.output.runs_root == "runs"


def test_shorthands():
    loaded = config.validate({"data": "digits", "model": "convnet", "compile": {"optimizer": "adam"},
                              "train": {"callbacks": ["early_stopping"]}})
    assert loaded.model.architecture == "convnet"
    assert loaded.compile.optimizer.learning_rate == 0.001
    assert loaded.train.callbacks[0].patience == 3


@pytest.mark.parametrize(
    "data, expected",
    [
        ({**MINIMAL, "train": {"epoch": 3}},
         f"train.epoch: received unknown key 'epoch'; expected one of the keys {', '.join(schema.TrainConfig.model_fields)} (did you mean 'epochs'?)"),
        ({**MINIMAL, "model": {"architecture": "mlp", "unitz": [3]}}, "model.unitz: received unknown key 'unitz'"),
        ({**MINIMAL, "train": {"batch_size": "64x"}}, 'train.batch_size: received "64x"; expected an integer'),
        ({**MINIMAL, "train": {"epochs": [1]}}, "train.epochs: received [1]; expected an integer"),
        ({**MINIMAL, "train": {"epochs": 0}}, "train.epochs: received 0; expected a number >= 1"),
        ({**MINIMAL, "model": {"architecture": "mlp", "dropout": 1.0}}, "model.dropout: received 1.0; expected a number < 1"),
        ({**MINIMAL, "compile": {"optimizer": {"name": "sgd", "learning_rate": -0.1}}},
         "compile.optimizer.learning_rate: received -0.1; expected a number > 0"),
        ({**MINIMAL, "data": {"name": "digitz"}},
         f"data.name: received 'digitz'; expected one of {', '.join(data_registry.DATASETS)} (did you mean 'digits'?)"),
        ({**MINIMAL, "model": {"architecture": "convnett"}}, "(did you mean 'convnet'?)"),
        ({**MINIMAL, "compile": {"optimizer": "rmsprob"}}, "compile.optimizer.name: received 'rmsprob'"),
        ({**MINIMAL, "compile": {"loss": "mse2"}}, "compile.loss: received \"mse2\"; expected one of auto,"),
        ({**MINIMAL, "train": {"shuffle": "no"}}, 'train.shuffle: received "no"; expected true or false'),
        ({**MINIMAL, "train": {"callbacks": [{"name": "early_stopping", "patiense": 2}]}},
         "train.callbacks.0.patiense: received unknown key 'patiense'"),
        ({"model": {"architecture": "mlp"}}, "data: received nothing; expected this required key"),
        ({**MINIMAL, "name": "../escape"}, "name: received \"../escape\"; expected a name of 1-64 letters"),
        ({**MINIMAL, "train": {"callbacks": [{"name": "checkpoint", "monitor": "val_acuracy"}]}},
         "train.callbacks.0.monitor: received 'val_acuracy'; expected a value this run computes: loss, accuracy, val_loss, val_accuracy (did you mean 'val_accuracy'?)"),
    ],
)
def test_each_problem_names_path_received_and_expected(data, expected):
    assert any(expected in problem for problem in problems_of(data)), problems_of(data)


def test_every_problem_is_reported_at_once():
    problems = problems_of({**MINIMAL, "seed": -1, "train": {"epochs": 0, "batch_size": 0}})
    assert [problem.split(":")[0] for problem in problems] == ["seed", "train.epochs", "train.batch_size"]


def test_monitoring_validation_without_a_validation_split_is_refused():
    data = {"data": {"name": "digits", "validation_split": 0}, "model": "mlp", "train": {"callbacks": ["early_stopping"]}}
    assert "expected a value this run computes: loss, accuracy" in problems_of(data)[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "top level: received [\"a\", \"b\"]; expected a mapping of sections"),
        ("data: {name: digits}\ndata: {name: digits}\n", "duplicate key 'data'"),
    ],
)
def test_bad_files(write_config, text, expected):
    with pytest.raises(errors.ConfigError, match=None) as caught:
        config.load(write_config(text))
    assert expected in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(errors.ConfigError, match="no such file"):
        config.load(tmp_path / "absent.yaml")


def test_overrides_parse_yaml_values_and_create_paths():
    data = overrides.apply(MINIMAL, ["train.epochs=3", "compile.optimizer.learning_rate=1e-4", "data.name=synthetic"])
    assert data["train"] == {"epochs": 3}
    assert data["compile"]["optimizer"]["learning_rate"] == 1e-4
    assert MINIMAL["data"]["name"] == "digits"  # the input is not modified


def test_override_into_list_by_index():
    data = overrides.apply({"train": {"callbacks": [{"name": "early_stopping"}]}}, ["train.callbacks.0.patience=9"])
    assert data["train"]["callbacks"][0] == {"name": "early_stopping", "patience": 9}


@pytest.mark.parametrize(
    "item, expected",
    [
        ("train.epochs", "received no KEY=VALUE"),
        ("=3", "received no KEY=VALUE"),
        ("train..epochs=3", "received no KEY=VALUE"),
        ("data.name.x=1", 'data.name: received "digits" at that path; expected a mapping'),
        ("train.epochs=[1", "YAML error"),
    ],
)
def test_bad_overrides(item, expected):
    with pytest.raises(errors.ConfigError) as caught:
        overrides.apply(MINIMAL, [item])
    assert expected in str(caught.value)


def test_override_to_unknown_key_names_the_path(write_config):
    path = write_config("data: digits\nmodel: mlp\n")
    with pytest.raises(errors.ConfigError, match="train.epoch: received unknown key"):
        config.load(path, ["train.epoch=3"])


# Shipped configs whose dataset is not on this branch yet: skipped, with the reason, until it is merged.
@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda path: path.name)
def test_every_shipped_config_validates_and_round_trips(path, tmp_path):
    loaded = config.load(path)
    stored = tmp_path / "config.yaml"
    stored.write_text(config.to_yaml(loaded), encoding="utf-8")
    assert config.load(stored) == loaded


@pytest.mark.parametrize("item, where, found", [
    ("data.name.x=1", "data.name", '"digits"'),  # a scalar on the way
    ("train.callbacks.1=x", "train.callbacks.1", '[{"name": "early_stopping"}]'),  # an index past the list's end
    ("train.callbacks.1.patience=3", "train.callbacks.1", '[{"name": "early_stopping"}]'),  # the same on the way
    ("train.callbacks.name=x", "train.callbacks.name", '[{"name": "early_stopping"}]'),  # a key into a list
], ids=["scalar on the way", "index past the end", "index past the end on the way", "key into a list"])
def test_an_override_that_cannot_be_set_names_the_item_the_path_and_what_is_there(item, where, found):
    data = {"data": {"name": "digits"}, "train": {"callbacks": [{"name": "early_stopping"}]}}
    with pytest.raises(errors.ConfigError) as caught:
        overrides.apply(data, [item])
    assert caught.value.problems == [f"--set {item!r}: {where}: received {found} at that path; expected a mapping "
                                     "(or a list and an index within it) to set a key in"]


def test_override_messages_and_values_in_full():
    with pytest.raises(errors.ConfigError) as caught:
        overrides.apply(MINIMAL, ["train.epochs"])
    assert caught.value.problems == ["--set 'train.epochs': received no KEY=VALUE; expected a dotted key path, '=', "
                                     "a YAML value (for example --set train.epochs=3)"]
    data = overrides.apply({"train": {"callbacks": [{"name": "early_stopping"}]}},
                           ["name=a=b", "train.callbacks.0={name: checkpoint}"])
    assert data["name"] == "a=b"  # the first '=' splits key and value
    assert data["train"]["callbacks"] == [{"name": "checkpoint"}]


def test_metric_names_come_from_the_task_given_or_the_data_s_own(write_config):
    synthetic = config.load(write_config("data: {name: synthetic, task: regression}\nmodel: mlp\n"))
    assert config.metric_names(synthetic) == ["mae"]  # the data says its task
    assert config.metric_names(synthetic, "binary") == ["accuracy"]  # the task given wins
    npz = config.load(write_config("data: {name: npz, path: x.npz}\nmodel: mlp\n", name="npz.yaml"))
    assert config.metric_names(npz) == []  # known only once the file is read
    assert config.monitor_names(npz, "multiclass", validating=False) == ["loss", "accuracy"]
    assert config.monitor_names(npz, "multiclass") == ["loss", "accuracy", "val_loss", "val_accuracy"]  # split 0.2


def test_load_with_a_backend_replaces_the_config_s(write_config):
    path = write_config("data: digits\nmodel: mlp\nbackend: tensorflow\n")
    assert config.load(path).backend == "tensorflow" and config.load(path, backend="jax").backend == "jax"


def test_a_key_of_digits_that_int_refuses_is_a_key_not_an_index(write_config):
    """str.isdigit is true of "¹", which int() refuses: such a key, in the file or in --set, is named in the error
    like any unknown key (found by test_bad_input's fuzzing; it was a ValueError traceback)."""
    expected = f"train.¹: received unknown key '¹'; expected one of the keys {', '.join(schema.TrainConfig.model_fields)}"
    path = write_config("data: digits\nmodel: mlp\ntrain: {¹: 1}\n")
    with pytest.raises(errors.ConfigError) as caught:
        config.load(path)
    assert caught.value.problems == [expected]
    with pytest.raises(errors.ConfigError) as caught:
        config.load(path, ["train.¹=2"])
    assert caught.value.problems == [f"{expected} (from --set train.¹=2)"]
    assert overrides.apply(MINIMAL, ["train.¹=2"])["train"] == {"¹": 2}
