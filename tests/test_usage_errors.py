"""Command-line mistakes are usage errors (exit 2, `error: ...`, never "invalid config"); config mistakes stay config errors."""

from __future__ import annotations

import pytest

from dlrun import errors, registry
from tests.conftest import CONFIGS, invoke, write_completed_run

QUICKSTART = str(CONFIGS / "quickstart.yaml")


def _usage_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {expected}"), result.stderr
    assert "invalid config" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list", "dataset"], "KIND: received 'dataset'; expected one of datasets, architectures"),
        (["train"], "CONFIG: received nothing; expected a config file (or --resume RUN_DIR)"),
        (["kfold"], "CONFIG: received nothing; expected a YAML config file (or --resume RUN_DIR)"),
        (["kfold", QUICKSTART, "--resume", "runs/x"], "--resume: received a CONFIG or --set too"),
        (["sweep", "--resume", "sweeps/x", "--grid", "train.epochs=1,2"], "--resume: received a CONFIG or a search option too"),
        (["kfold", QUICKSTART, "--k", "1"], "--k: received 1; expected a number of folds >= 2"),
        (["kfold", QUICKSTART, "--repeats", "2", "--no-shuffle"], "--repeats: received 2 with --no-shuffle"),
        (["kfold", QUICKSTART, "--workers", "0"], "--workers: received 0; expected a number of worker processes >= 1"),
        (["kfold", QUICKSTART, "--executor", "cloud"], "--executor: received 'cloud'; expected one of"),
        (["eval", "runs/x", "--split", "dev"], "--split: received 'dev'; expected one of test, validation, train"),
        (["runs", "--status", "done"], "--status: received 'done'; expected one of"),
        (["train", QUICKSTART, "--track", "wandb"], "--track: received 'wandb'; expected one of"),
        (["init", "x", "--dataset", "digit", "--architecture", "mlp"], "--dataset: received 'digit'; expected one of"),
        (["init", "bad name", "--dataset", "digits", "--architecture", "mlp"], "NAME: received 'bad name'"),
        (
            ["visualize", "activations", "--image", "cat.png", "--run", "runs/x", "--model", "vgg16"],
            "--run and --model: received both; expected one",
        ),
        (["config", "schema", "--out", "no/such/folder/schema.json"], "--out: received 'no/such/folder/schema.json'"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_command_line_mistakes_are_usage_errors(argv, expected):
    _usage_error(invoke(*argv), expected)


def test_init_onto_an_existing_file_is_a_usage_error_and_keeps_the_file(tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("my own notes\n")
    result = invoke("init", "mine", "--dataset", "digits", "--architecture", "mlp", "--out", target)
    _usage_error(result, f"--out: {target} already exists; expected a new file")
    assert target.read_text() == "my own notes\n"


def test_report_of_two_runs_without_out_is_a_usage_error_and_writes_nothing(tmp_path):
    first, second = write_completed_run(tmp_path / "a"), write_completed_run(tmp_path / "b")
    before = sorted(path.name for path in tmp_path.rglob("*"))
    _usage_error(invoke("report", first, second), "--out: received nothing; expected an output file when reporting 2 runs")
    assert sorted(path.name for path in tmp_path.rglob("*")) == before


def test_compare_with_one_run_and_a_bad_export_format_are_usage_errors(tmp_path):
    run = write_completed_run(tmp_path / "a")
    _usage_error(invoke("runs", "compare", run), "RUN_DIR: received 1 run folder(s); expected two or more to compare")
    _usage_error(invoke("export", run, "--format", "onxx"), "--format: Could not interpret export format identifier: 'onxx'")
    assert not (run / "export").exists()


def test_config_mistakes_stay_config_errors(tmp_path):
    result = invoke("config", "validate", QUICKSTART, "--set", "train.epochs=-1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid config --set 'train.epochs=-1'") or "invalid config" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {name: digits}\nmodel: {architecture: mlp}\ntrain: {epochs: 2, epocs: 3}\n")
    result = invoke("config", "validate", bad)
    assert result.exit_code == 2 and "invalid config" in result.stderr and "train.epocs" in result.stderr


def test_usage_error_is_not_a_config_error_and_lookup_picks_by_where_the_name_came_from():
    assert not issubclass(errors.UsageError, errors.ConfigError)
    assert errors.UsageError.exit_code == 2 and issubclass(errors.UsageError, ValueError)
    with pytest.raises(errors.UsageError, match="--format: Could not interpret"):
        registry.lookup({"keras": 1}, "kera", "export format", option="--format")
    with pytest.raises(errors.ConfigError, match="compile.optimizer.name: Could not interpret"):
        registry.lookup({"adam": 1}, "adma", "optimizer", option="compile.optimizer.name")
