"""The config's JSON Schema (for editors) and docs/config.md: generated, current, and agreeing with the models."""

import json
import re

import jsonschema
import pytest

from dlrun import config
from dlrun.config import comments as schema_comments, docs as config_docs, json_schema, schema, yaml_strict
from tests.conftest import CONFIGS, ROOT, invoke

SHIPPED = sorted(CONFIGS.rglob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    document = json_schema.build()
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_shipped_schema_file_is_current():
    shipped = (ROOT / json_schema.SCHEMA_FILE).read_text(encoding="utf-8")
    assert shipped == json_schema.text(), "run `make docs` (dlrun config schema --out schema/dlrun-config.schema.json)"


def test_shipped_config_reference_is_current():
    shipped = (ROOT / config_docs.DOCS_FILE).read_text(encoding="utf-8")
    assert shipped == config_docs.render(), "run `make docs` (dlrun config docs --out docs/config.md)"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: str(path.relative_to(CONFIGS)))
def test_every_shipped_config_names_the_schema_and_validates(path, validator):
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, f"{path}: the first line must be `# yaml-language-server: $schema=...`"
    assert (path.parent / match.group(1)).resolve() == (ROOT / json_schema.SCHEMA_FILE).resolve()
    problems = [error.message for error in validator.iter_errors(yaml_strict.loads(text, source=str(path)))]
    assert problems == []


def _errors(validator, data):
    return list(validator.iter_errors(data))


def test_schema_rejects_a_typo_d_key_the_models_reject(validator):
    data = {"data": {"name": "digits", "test_splt": 0.2}, "model": "mlp"}
    with pytest.raises(Exception):
        config.validate(data)
    assert _errors(validator, data)
    assert _errors(validator, {"data": "digits", "model": "mlp", "trian": {"epochs": 3}})
    assert _errors(validator, {"data": "digits", "model": {"architecture": "mlp", "unit": [4]}})


@pytest.mark.parametrize(
    "data",
    [
        {"data": "digits", "model": "mlp", "train": {"epochs": 0}},  # below the minimum
        {"data": "digitz", "model": "mlp"},  # an unknown shorthand name
        {"data": {"name": "digits"}, "model": {"architecture": "mlp"}, "compile": {"optimizer": "adamw"}},
        {"data": {"name": "digits", "test_split": 1.0}, "model": "mlp"},  # a share must be < 1
        {"data": "digits", "model": "mlp", "train": {"shuffle": "yes"}},  # a Flag is true/false only
        {"model": "mlp"},  # data is required
    ],
)
def test_schema_rejects_what_the_models_reject(validator, data):
    with pytest.raises(Exception):
        config.validate(data)
    assert _errors(validator, data)


def test_schema_accepts_the_shorthands_the_models_accept(validator):
    data = {
        "data": "digits",
        "model": "mlp",
        "compile": {"optimizer": "adam"},
        "train": {"callbacks": ["early_stopping", {"name": "checkpoint", "monitor": "val_accuracy"}]},
    }
    config.validate(data)
    assert _errors(validator, data) == []


def test_shorthand_table_matches_the_models():
    for model_name, key, is_list in json_schema.SHORTHANDS:
        model = getattr(schema, model_name)
        validators = [name for name in dir(model) if name.endswith("_shorthand")]
        assert any(key in name for name in validators), (model_name, key, validators)


def test_keys_carry_their_schema_py_comment_as_description():
    document = json_schema.build()
    epochs = document["$defs"]["SyntheticData"]["properties"]["num_samples"]
    assert epochs["description"] == "samples before the test/validation splits"
    assert epochs["default"] == 200 and epochs["minimum"] == 10
    assert document["properties"]["seed"]["description"].startswith("seeds Python, NumPy and TensorFlow")
    assert schema_comments.field_comments()["TrainConfig"]["loop"].startswith("custom:")


def test_docs_list_every_key_of_every_section():
    text = config_docs.render()
    for definition in json_schema.build()["$defs"].values():
        for key in definition.get("properties", {}):
            assert f"| `{key}` |" in text
    assert "| `test_split` | number | `0.25` | >= 0 and < 1 | share of all images held out as the test split (stratified) |" in text
    assert "## compile.optimizer (name: adam)" in text


def test_config_schema_command_prints_the_schema():
    result = invoke("config", "schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema.build()


def test_config_docs_command_writes_the_reference(tmp_path):
    target = tmp_path / "config.md"
    result = invoke("config", "docs", "--out", target)
    assert result.exit_code == 0
    assert target.read_text(encoding="utf-8") == config_docs.render()
    bad = invoke("config", "docs", "--out", tmp_path / "missing" / "config.md")
    assert bad.exit_code == 2
    assert "--out: received" in bad.stderr and "expected a file in an existing folder" in bad.stderr
