import pytest

from dlrun import config, data as data_registry, errors
from dlrun.config import loading, overrides, schema, search
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
    loaded = config.validate(
        {"data": "digits", "model": "convnet", "compile": {"optimizer": "adam"}, "train": {"callbacks": ["early_stopping"]}}
    )
    assert loaded.model.architecture == "convnet"
    assert loaded.compile.optimizer.learning_rate == 0.001
    assert loaded.train.callbacks[0].patience == 3


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            {**MINIMAL, "train": {"epoch": 3}},
            f"train.epoch: received unknown key 'epoch'; expected one of the keys {', '.join(schema.TrainConfig.model_fields)} (did you mean 'epochs'?)",
        ),
        ({**MINIMAL, "model": {"architecture": "mlp", "unitz": [3]}}, "model.unitz: received unknown key 'unitz'"),
        ({**MINIMAL, "train": {"batch_size": "64x"}}, 'train.batch_size: received "64x"; expected an integer'),
        ({**MINIMAL, "train": {"epochs": [1]}}, "train.epochs: received [1]; expected an integer"),
        ({**MINIMAL, "train": {"epochs": 0}}, "train.epochs: received 0; expected a number >= 1"),
        ({**MINIMAL, "model": {"architecture": "mlp", "dropout": 1.0}}, "model.dropout: received 1.0; expected a number < 1"),
        (
            {**MINIMAL, "compile": {"optimizer": {"name": "sgd", "learning_rate": -0.1}}},
            "compile.optimizer.learning_rate: received -0.1; expected a number > 0",
        ),
        (
            {**MINIMAL, "data": {"name": "digitz"}},
            f"data.name: received 'digitz'; expected one of {', '.join(data_registry.DATASETS)} (did you mean 'digits'?)",
        ),
        ({**MINIMAL, "model": {"architecture": "convnett"}}, "(did you mean 'convnet'?)"),
        ({**MINIMAL, "compile": {"optimizer": "rmsprob"}}, "compile.optimizer.name: received 'rmsprob'"),
        ({**MINIMAL, "compile": {"loss": "mse2"}}, 'compile.loss: received "mse2"; expected one of auto,'),
        ({**MINIMAL, "train": {"shuffle": "no"}}, 'train.shuffle: received "no"; expected true or false'),
        (
            {**MINIMAL, "train": {"callbacks": [{"name": "early_stopping", "patiense": 2}]}},
            "train.callbacks.0.patiense: received unknown key 'patiense'",
        ),
        ({"model": {"architecture": "mlp"}}, "data: received nothing; expected this required key"),
        ({**MINIMAL, "name": "../escape"}, 'name: received "../escape"; expected a name of 1-64 letters'),
        (
            {**MINIMAL, "train": {"callbacks": [{"name": "checkpoint", "monitor": "val_acuracy"}]}},
            "train.callbacks.0.monitor: received 'val_acuracy'; expected a value this run computes: loss, accuracy, val_loss, val_accuracy (did you mean 'val_accuracy'?)",
        ),
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
        ("- a\n- b\n", 'top level: received ["a", "b"]; expected a mapping of sections'),
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


@pytest.mark.parametrize(
    "item, where, found",
    [
        ("data.name.x=1", "data.name", '"digits"'),  # a scalar on the way
        ("train.callbacks.1=x", "train.callbacks.1", '[{"name": "early_stopping"}]'),  # an index past the list's end
        ("train.callbacks.1.patience=3", "train.callbacks.1", '[{"name": "early_stopping"}]'),  # the same on the way
        ("train.callbacks.name=x", "train.callbacks.name", '[{"name": "early_stopping"}]'),  # a key into a list
    ],
    ids=["scalar on the way", "index past the end", "index past the end on the way", "key into a list"],
)
def test_an_override_that_cannot_be_set_names_the_item_the_path_and_what_is_there(item, where, found):
    data = {"data": {"name": "digits"}, "train": {"callbacks": [{"name": "early_stopping"}]}}
    with pytest.raises(errors.ConfigError) as caught:
        overrides.apply(data, [item])
    assert caught.value.problems == [
        f"--set {item!r}: {where}: received {found} at that path; expected a mapping (or a list and an index within it) to set a key in"
    ]


def test_override_messages_and_values_in_full():
    with pytest.raises(errors.ConfigError) as caught:
        overrides.apply(MINIMAL, ["train.epochs"])
    assert caught.value.problems == [
        "--set 'train.epochs': received no KEY=VALUE; expected a dotted key path, '=', a YAML value (for example --set train.epochs=3)"
    ]
    data = overrides.apply({"train": {"callbacks": [{"name": "early_stopping"}]}}, ["name=a=b", "train.callbacks.0={name: checkpoint}"])
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


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            {"data": {"path": "x.npz"}, "model": "mlp"},  # no name: the tag that picks the section is missing
            f"data.name: received nothing; expected one of {', '.join(data_registry.DATASETS)}",
        ),
        ({**MINIMAL, "train": {"epochs": {"a": 1}}}, "train.epochs: received a mapping; expected an integer"),
        ({**MINIMAL, "train": {"epochs": {}}}, "train.epochs: received an empty mapping; expected an integer"),
        ({**MINIMAL, "model": {"architecture": "convnet", "filters": []}}, "model.filters: received []; expected at least 1 item(s)"),
        (
            {"data": {"name": "image_directory", "path": "d", "image_size": [1, 2, 3]}, "model": "mlp"},
            "data.image_size: received [1, 2, 3]; expected at most 2 item(s)",
        ),
        ({**MINIMAL, "train": {"loop": 5}}, "train.loop: received 5; expected one of fit, custom"),
        (
            {**MINIMAL, "train": {"loop": ["custom"]}},  # no did-you-mean for a value that is not text
            'train.loop: received ["custom"]; expected one of fit, custom',
        ),
        ({**MINIMAL, "compile": {"metrics": "x"}}, 'compile.metrics: received "x"; expected one of auto, or a list'),
        (
            {**MINIMAL, "search": {"zzz": 1}},  # an optional section lists its keys (it said "no such key")
            f"search.zzz: received unknown key 'zzz'; expected one of the keys {', '.join(search.SearchConfig.model_fields)}",
        ),
        ({**MINIMAL, "compile": {"metrics": {"a": 1}}}, "compile.metrics: received a mapping; expected one of auto, or a list"),
        (
            {**MINIMAL, "compile": {"metrics": ["accuracy", 5]}},  # the union member that got further says more
            "compile.metrics.1: received 5; expected one of accuracy, auc, precision, recall, mae, mse",
        ),
        (
            {**MINIMAL, "search": {"space": {"train.epochs": {"int": [1, 3], "zzz": 1}}}},
            f"search.space.train.epochs.zzz: received unknown key 'zzz'; expected one of the keys "
            f"{', '.join(search.Dimension.model_fields)}",
        ),
        (
            {**MINIMAL, "search": {"space": {"train.epochs": {"int": {"a": 1}}}}},
            "search.space.train.epochs.int: received a mapping; expected a list",
        ),
    ],
    ids=[
        "tag missing",
        "mapping",
        "empty mapping",
        "too short",
        "too long",
        "literal",
        "literal not text",
        "union",
        "optional section",
        "union of a mapping",
        "deeper union member",
        "search space entry",
        "range",
    ],
)
def test_problems_in_full(data, expected):
    assert problems_of(data) == [expected]


def test_a_dataset_s_own_validation_split_allows_val_monitors():
    imdb = {"data": {"name": "imdb"}, "model": "mlp", "train": {"callbacks": ["early_stopping"]}}  # monitors val_loss
    config.validate(imdb)  # imdb holds out validation_count reviews (it has no validation_split)
    assert problems_of({**imdb, "data": {"name": "imdb", "validation_count": 0}}) == [
        "train.callbacks.0.monitor: received 'val_loss'; expected a value this run computes: loss, accuracy (did you mean 'loss'?)"
    ]


def test_consistency_with_the_task_and_validation_known_once_the_data_is_read():
    npz = config.validate(
        {
            "data": {"name": "npz", "path": "x.npz"},
            "model": "mlp",
            "train": {"callbacks": [{"name": "early_stopping", "monitor": "val_mae"}]},
        }
    )  # task unknown yet
    assert config.consistency_problems(npz, "regression") == []  # validation_split 0.2: val_mae is computed
    assert config.consistency_problems(npz, "regression", validating=False) == [
        "train.callbacks.0.monitor: received 'val_mae'; expected a value this run computes: loss, mae (did you mean 'mae'?)"
    ]
    assert config.consistency_problems(npz, "binary") == [
        "train.callbacks.0.monitor: received 'val_mae'; expected a value this run computes: loss, accuracy, val_loss, val_accuracy"
    ]


def test_a_cross_section_problem_from_a_base_file_names_that_file(write_config):
    base = write_config("data: digits\nmodel: mlp\ntrain: {callbacks: [{name: checkpoint, monitor: val_acuracy}]}\n", name="base.yaml")
    child = write_config("extends: base.yaml\nname: child\n", name="child.yaml")
    with pytest.raises(errors.ConfigError) as caught:
        config.load(child)
    assert caught.value.problems == [
        "train.callbacks.0.monitor: received 'val_acuracy'; expected a value this run computes: loss, accuracy, val_loss, "
        f"val_accuracy (did you mean 'val_accuracy'?) (from {base})"
    ]


def test_to_data_keeps_search_only_in_a_sweep_s_config():
    assert "search" not in config.to_data(config.validate(MINIMAL))
    sweep = config.to_data(config.validate({**MINIMAL, "search": {"space": {"train.epochs": {"int": [1, 3]}}}}))
    assert sweep["search"]["space"] == {"train.epochs": {"int": [1, 3]}} and sweep["search"]["metric"] == "val_loss"


def test_an_error_kind_without_its_own_wording_keeps_pydantic_s_message_lowercased():
    assert loading._expected("url_parsing", {}, "Input should be a valid URL") == "input should be a valid URL"
