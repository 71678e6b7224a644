"""`dlrun init`: a complete, commented starter config that validates and trains; never replaces a file."""

import pytest

from dlrun.config import schema, starter, yaml_strict
from tests.conftest import invoke, run_folders


def test_init_writes_every_key_with_a_comment_and_it_validates(tmp_path):
    target = tmp_path / "exp.yaml"
    result = invoke("init", "exp", "--dataset", "synthetic", "--architecture", "mlp", "--out", target)
    assert result.exit_code == 0, result.output
    text = target.read_text()
    loaded = yaml_strict.loads(text, source=str(target))
    assert set(loaded) == set(schema.Config.model_fields)
    assert set(loaded["data"]) == set(schema.SyntheticData.model_fields)
    assert set(loaded["model"]) == set(schema.MLPModel.model_fields)
    assert set(loaded["compile"]["optimizer"]) == set(schema.RMSpropOptimizer.model_fields)
    key_lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert all("  # " in line for line in key_lines), [line for line in key_lines if "  # " not in line]
    assert "  num_samples: 200  # samples before the test/validation splits" in text
    assert invoke("config", "validate", target).exit_code == 0


@pytest.mark.parametrize("dataset", ["digits", "synthetic", "image_directory", "npz", "hdf5"])
@pytest.mark.parametrize("architecture", ["mlp", "convnet", "pretrained"])
def test_every_dataset_and_architecture_gives_a_valid_config(dataset, architecture):
    text = starter.render("exp", dataset, architecture)  # render validates before returning
    assert f"\n  name: {dataset}  # one of digits, " in text and f"\n  architecture: {architecture}  # one of mlp, " in text


def test_required_keys_get_a_placeholder():
    text = starter.render("exp", "npz", "mlp")
    assert f"  path: {starter.PLACEHOLDER}  # required: the .npz file" in text


def test_the_written_config_trains(tmp_path):
    target = tmp_path / "exp.yaml"
    assert invoke("init", "exp", "--dataset", "synthetic", "--architecture", "mlp", "--out", target).exit_code == 0
    root = tmp_path / "runs"
    result = invoke("train", target, "--set", "train.epochs=1", "--set", f"output.runs_root={root}", "--set", "output.plots=false")
    assert result.exit_code == 0, result.output
    (run,) = run_folders(root)
    assert (run / "model.keras").is_file()


def test_unknown_names_and_an_existing_file_exit_2(tmp_path):
    result = invoke("init", "exp", "--dataset", "digit", "--architecture", "mlp", "--out", tmp_path / "a.yaml")
    assert result.exit_code == 2
    assert "--dataset: received 'digit'; expected one of digits, synthetic" in result.stderr and "(did you mean 'digits'?)" in result.stderr
    result = invoke("init", "exp", "--dataset", "digits", "--architecture", "conv", "--out", tmp_path / "a.yaml")
    assert result.exit_code == 2 and "(did you mean 'convnet'?)" in result.stderr
    assert not (tmp_path / "a.yaml").exists()
    existing = tmp_path / "b.yaml"
    existing.write_text("keep: me\n")
    result = invoke("init", "exp", "--dataset", "digits", "--architecture", "mlp", "--out", existing)
    assert result.exit_code == 2 and "already exists; expected a new file" in result.stderr
    assert existing.read_text() == "keep: me\n"
    result = invoke("init", "bad name", "--dataset", "digits", "--architecture", "mlp", "--out", tmp_path / "c.yaml")
    assert result.exit_code == 2 and "NAME: received 'bad name'" in result.stderr
