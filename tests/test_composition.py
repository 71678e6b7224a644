"""Config composition: `extends:` chains, deep merge with lists replaced, `config show --origin`, and every
error naming the file it is in (exit 2, no run folder)."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from dlrun import config, errors
from dlrun.config import composition, json_schema, starter, yaml_strict
from tests.conftest import invoke, run_folders

BASE = """\
name: base
seed: 3
data: {name: synthetic, task: regression, num_samples: 60, input_shape: [4]}
model: {architecture: mlp, units: [8, 8]}
compile: {optimizer: {name: adam, learning_rate: 0.01}}
train: {epochs: 2, batch_size: 16, callbacks: [early_stopping, {name: checkpoint}]}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """bases/base.yaml, extended by experiments/small.yaml (another folder: `../bases/base.yaml`); cwd tmp_path."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bases" / "base.yaml", BASE)
    return write(
        Path("experiments") / "small.yaml",
        """\
        extends: ../bases/base.yaml
        model: {units: [4]}
        train: {epochs: 3, callbacks: [{name: early_stopping, patience: 7}]}
        output: {runs_root: runs, plots: false}
        """,
    )


def origins_printed(output: str) -> dict[str, tuple[str, str]]:
    """`config show --origin`'s rows as {key: (value, source)}, after checking the header."""
    lines = output.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["key", "value", "source"]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert all(len(row) == 3 for row in rows), rows
    return {key: (value, source) for key, value, source in rows}


def test_origin_names_the_source_of_every_value_of_a_two_file_chain_and_set(chain):
    result = invoke("config", "show", chain, "--origin", "--set", "train.batch_size=8", "--set", "model.dropout=0.25")
    assert result.exit_code == 0, result.output
    printed = origins_printed(result.output)
    base, small = str(Path("bases/base.yaml")), str(Path("experiments/small.yaml"))
    expected = {
        "name": ('"base"', base),
        "seed": ("3", base),
        "data.name": ('"synthetic"', base),
        "data.task": ('"regression"', base),
        "data.num_samples": ("60", base),
        "data.input_shape.0": ("4", base),
        "model.architecture": ('"mlp"', base),
        "model.units.0": ("4", small),
        "model.dropout": ("0.25", "--set model.dropout=0.25"),
        "compile.optimizer.name": ('"adam"', base),
        "compile.optimizer.learning_rate": ("0.01", base),
        "train.epochs": ("3", small),
        "train.batch_size": ("8", "--set train.batch_size=8"),
        "train.callbacks.0.name": ('"early_stopping"', small),
        "train.callbacks.0.patience": ("7", small),
        "output.runs_root": ('"runs"', small),
        "output.plots": ("false", small),
    }
    for key, value_and_source in expected.items():
        assert printed[key] == value_and_source, key
    others = {key: source for key, (_, source) in printed.items() if key not in expected}
    assert others and set(others.values()) == {"default"}, others  # every other value is a default
    assert "train.callbacks.1.name" not in printed  # the base's second callback: the list was replaced


def test_lists_are_replaced_mappings_merged_and_bases_applied_in_order(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "first.yaml", "train: {epochs: 5, shuffle: false}\nmodel: {dropout: 0.1}\n")
    write(tmp_path / "second.yaml", "train: {epochs: 6}\n")
    top = write(tmp_path / "top.yaml", "extends: [base.yaml, first.yaml, second.yaml]\nmodel: {units: [2]}\n")
    loaded = config.load(top)
    assert loaded.model.units == [2]  # replaced, not merged into [2, 8]
    assert loaded.model.dropout == 0.1  # first.yaml's, merged into base.yaml's model
    assert loaded.train.epochs == 6  # later bases win
    assert loaded.train.shuffle is False and loaded.train.batch_size == 16  # mappings merge key by key
    assert [callback.name for callback in loaded.train.callbacks] == ["early_stopping", "checkpoint"]
    assert loaded.compile.optimizer.learning_rate == 0.01


def test_a_file_value_wins_over_its_base_and_set_over_both(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    top = write(tmp_path / "top.yaml", "extends: base.yaml\ntrain: {epochs: 9}\n")
    assert config.load(top).train.epochs == 9
    assert config.load(top, ["train.epochs=4"]).train.epochs == 4


def test_a_bare_name_in_a_base_merges_with_a_mapping_over_it(tmp_path):
    write(tmp_path / "base.yaml", "data: digits\nmodel: mlp\n")
    top = write(tmp_path / "top.yaml", "extends: base.yaml\ndata: {validation_split: 0.3}\nmodel: {units: [5]}\n")
    loaded = config.load(top)
    assert (loaded.data.name, loaded.data.validation_split) == ("digits", 0.3)
    assert (loaded.model.architecture, loaded.model.units) == ("mlp", [5])
    origins = composition.override(composition.compose(top), []).origins
    assert composition.origin(origins, ("data", "name")) == str(tmp_path / "base.yaml")
    assert composition.origin(origins, ("data", "validation_split")) == str(tmp_path / "top.yaml")
    assert composition.origin(origins, ("data", "test_split")) == "default"


def test_chains_of_any_depth(tmp_path):
    write(tmp_path / "level0.yaml", BASE)
    for level in range(1, 41):
        write(tmp_path / f"level{level}.yaml", f"extends: level{level - 1}.yaml\nseed: {level}\n")
    loaded, composed = config.load_composed(tmp_path / "level40.yaml")
    assert loaded.seed == 40 and loaded.model.units == [8, 8]
    assert len(composed.files) == 41


def test_the_resolved_config_has_no_extends(chain):
    text = config.to_yaml(config.load(chain))
    assert "extends" not in yaml_strict.loads(text)
    assert config.load_composed(chain)[1].data.get("extends") is None


# --- errors: the message names the file and the key, exit 2, nothing is written ---------------------


def refused(tmp_path, config_file, *expected: str, command=("train",)):
    result = invoke(*command, config_file)
    assert result.exit_code == 2, result.output
    for part in expected:
        assert part in result.output, result.output
    assert "Traceback" not in result.output
    assert run_folders(tmp_path / "runs") == []
    return result.output


def with_root(tmp_path, text: str) -> str:
    return text + f"output: {{runs_root: {json.dumps(str(tmp_path / 'runs'))}}}\n"


def test_a_cycle_exits_2_naming_both_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", with_root(tmp_path, "extends: b.yaml\n") + BASE)
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    output = refused(
        tmp_path, "a.yaml", "invalid config b.yaml: extends: received 'a.yaml', which makes a cycle (a.yaml -> b.yaml -> a.yaml)"
    )
    write(tmp_path / "self.yaml", "extends: self.yaml\n")
    assert "(self.yaml -> self.yaml)" in refused(tmp_path, "self.yaml", "cycle")
    assert output


def test_two_bases_that_share_a_base_are_not_a_cycle(tmp_path):
    write(tmp_path / "root.yaml", BASE)
    write(tmp_path / "left.yaml", "extends: root.yaml\nseed: 1\n")
    write(tmp_path / "right.yaml", "extends: root.yaml\ntrain: {epochs: 4}\n")
    loaded = config.load(write(tmp_path / "top.yaml", "extends: [left.yaml, right.yaml]\n"))
    assert (loaded.seed, loaded.train.epochs) == (3, 4)  # right.yaml brings root.yaml's seed again, after left's


def test_a_missing_base_exits_2_naming_the_file_and_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: [base.yaml, nowhere/missing.yaml]\n"))
    refused(
        tmp_path,
        "top.yaml",
        f"invalid config top.yaml: extends.1: received 'nowhere/missing.yaml', but there is no such file ({Path('nowhere/missing.yaml')})",
    )


@pytest.mark.parametrize(
    "value, shown",
    [
        ("3", "extends: received 3"),
        ("{a: b.yaml}", "extends: received a mapping"),
        ("[base.yaml, 7]", "extends.1: received 7"),
        ("''", 'extends: received ""'),
        ("null", "extends: received null"),
    ],
)
def test_extends_of_a_wrong_type_exits_2_naming_the_file_and_key(tmp_path, monkeypatch, value, shown):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "top.yaml", with_root(tmp_path, f"extends: {value}\n"))
    refused(tmp_path, "top.yaml", f"invalid config top.yaml: {shown}; expected a file name or a list of file names")


def test_a_base_that_is_not_a_mapping_exits_2_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "list.yaml", "- 1\n- 2\n")
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: list.yaml\n"))
    refused(tmp_path, "top.yaml", "invalid config list.yaml: top level: received [1, 2] (extended by top.yaml); expected a mapping")
    write(tmp_path / "empty.yaml", "")
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: empty.yaml\n"))
    refused(tmp_path, "top.yaml", "invalid config empty.yaml: the file is empty (extended by top.yaml)")


def test_every_file_is_read_strictly_and_errors_name_the_file_of_the_bad_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "dup.yaml", "seed: 1\nseed: 2\n")
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: dup.yaml\n") + BASE)
    refused(tmp_path, "top.yaml", "invalid config dup.yaml: YAML error at line 2, column 1: duplicate key 'seed'")
    write(
        tmp_path / "bomb.yaml",
        "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    )
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: bomb.yaml\n") + BASE)
    refused(tmp_path, "top.yaml", "invalid config bomb.yaml: YAML error", "aliases expand to more than")
    write(tmp_path / "bad.yaml", BASE.replace("epochs: 2", "epochs: 0"))
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: bad.yaml\ntrain: {batch_size: 8}\n"))
    output = refused(tmp_path, "top.yaml", "invalid config top.yaml: train.epochs: received 0; expected a number >= 1 (from bad.yaml)")
    assert "batch_size" not in output
    result = invoke("train", "top.yaml", "--set", "train.batch_size=-1")
    assert result.exit_code == 2
    assert "train.batch_size: received -1; expected a number >= 1 (from --set train.batch_size=-1)" in result.output


def test_a_value_from_the_named_file_is_not_annotated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "top.yaml", with_root(tmp_path, "extends: base.yaml\ntrain: {epochs: 0}\n"))
    output = refused(tmp_path, "top.yaml", "invalid config top.yaml: train.epochs: received 0; expected a number >= 1")
    assert "(from" not in output


@pytest.mark.parametrize(
    "command",
    [
        ["train", "CONFIG"],
        ["kfold", "CONFIG"],
        ["sweep", "CONFIG", "--grid", "train.epochs=1,2"],
        ["train", "CONFIG", "--seeds", "2"],
        ["config", "show", "CONFIG"],
        ["config", "validate", "CONFIG"],
    ],
)
def test_every_command_that_reads_a_config_composes_it(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", with_root(tmp_path, "extends: b.yaml\n") + BASE)
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    result = invoke(*["a.yaml" if word == "CONFIG" else word for word in command])
    assert result.exit_code == 2, result.output
    assert "(a.yaml -> b.yaml -> a.yaml)" in result.output
    assert run_folders(tmp_path / "runs") == []


def test_resume_compares_a_composed_config_with_the_run_s_own(tmp_path, monkeypatch):
    """`train --resume RUN CONFIG` reads CONFIG through composition: the same chain is no change, a base's
    change is listed (the run folder is a hand-made, stopped run with the resolved config)."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", BASE)
    top = write(tmp_path / "top.yaml", with_root(tmp_path, "extends: base.yaml\n"))
    run = tmp_path / "runs" / "20260101T000000Z_base"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(config.to_yaml(config.load(top)))
    (run / "run.json").write_text(json.dumps({"name": "base", "status": "completed", "started_at": "2026-01-01T00:00:00Z"}))
    result = invoke("train", "--resume", run, top)
    assert result.exit_code == 0 and "already completed; nothing to do" in result.output, result.output
    write(tmp_path / "base.yaml", BASE.replace("seed: 3", "seed: 4"))
    result = invoke("train", "--resume", run, top)
    assert result.exit_code == 2 and "seed: run has 3, now 4" in result.output, result.output


# --- the schema and the starter accept extends ----------------------------------------------------------


def test_the_json_schema_accepts_extends_as_a_name_or_a_list():
    jsonschema = pytest.importorskip("jsonschema")
    document = json_schema.build()
    for value in ("base.yaml", ["a.yaml", "b.yaml"]):
        jsonschema.validate({"extends": value, "data": "digits", "model": "mlp"}, document)
        jsonschema.validate({"extends": value, "train": {"epochs": 3}}, document)  # data and model may come from the bases
    for wrong in ({"extends": 3, "data": "digits", "model": "mlp"}, {"train": {"epochs": 3}}):  # without extends: required
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, document)


def test_the_starter_s_extends_line_works_once_uncommented(tmp_path):
    write(tmp_path / "base.yaml", "train: {epochs: 7}\n")
    text = starter.render("exp", "digits", "mlp")
    assert "\n# extends: base.yaml  " in text
    path = write(tmp_path / "exp.yaml", text.replace("\n# extends: base.yaml  ", "\nextends: base.yaml  #"))
    composed = composition.compose(path)
    assert composition.origin(composed.origins, ("data", "name")) == str(path)
    assert config.load(path).train.epochs == 10  # the starter states every key: its own epochs win over the base's


def test_composition_imports_nothing_heavy():
    """The loader stays light: composing and validating never import Keras (checked in a fresh process)."""
    import subprocess
    import sys

    probe = (
        "import sys; from dlrun import config; from dlrun.config import composition; "
        "print(sorted(name for name in ('keras', 'tensorflow', 'matplotlib') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_config_error_is_raised_for_a_directory_base(tmp_path):
    (tmp_path / "folder.yaml").mkdir()
    top = write(tmp_path / "top.yaml", "extends: folder.yaml\n")
    with pytest.raises(errors.ConfigError, match=r"folder.yaml: is a directory \(extended by .*top.yaml\)"):
        config.load(top)
    shutil.rmtree(tmp_path / "folder.yaml")


@pytest.mark.slow
def test_the_run_folder_config_has_no_extends_and_retrains_identically_anywhere(chain, tmp_path):
    result = invoke("train", chain, "--set", "train.epochs=2")
    assert result.exit_code == 0, result.output
    (run,) = run_folders(tmp_path / "runs")
    stored = yaml_strict.loads((run / "config.yaml").read_text())
    assert "extends" not in stored and stored["train"]["epochs"] == 2 and stored["model"]["units"] == [4]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(run / "config.yaml", elsewhere / "config.yaml")
    shutil.rmtree(tmp_path / "bases")  # the bases are gone: the stored config needs none of them
    result = invoke("train", elsewhere / "config.yaml", "--set", f"output.runs_root={json.dumps(str(tmp_path / 'again'))}")
    assert result.exit_code == 0, result.output
    (again,) = run_folders(tmp_path / "again")
    assert json.loads((again / "history.json").read_text()) == json.loads((run / "history.json").read_text())
    assert json.loads((again / "metrics.json").read_text())["metrics"] == json.loads((run / "metrics.json").read_text())["metrics"]
