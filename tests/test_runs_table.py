"""`dlrun runs` and `dlrun runs compare`: exact tables from hand-made run folders (no TensorFlow)."""

import datetime
import io
import json

import pytest
from rich import console as rich_console
from typer.testing import CliRunner

from dlrun import cli
from dlrun.runs import compare as comparison, table as runs_table
from tests.conftest import invoke

NOW = datetime.datetime(2026, 1, 2, 12, 0, 0, tzinfo=datetime.UTC)


def make_run(root, folder, record, history=None, metrics=None, config=None):
    path = root / folder
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps(record))
    if history is not None:
        (path / "history.json").write_text(json.dumps(history))
    if metrics is not None:
        (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "config.yaml").write_text(config or "name: x\n")
    return path


@pytest.fixture
def root(tmp_path):
    make_run(
        tmp_path,
        "20260102T100000Z_digits",
        {"name": "digits", "status": "completed", "started_at": "2026-01-02T10:00:00Z", "duration_s": 75.4, "metrics": ["accuracy"]},
        history={
            "epoch": [1, 2, 3],
            "loss": [1.0, 0.5, 0.4],
            "val_loss": [0.9, 0.6, 0.7],
            "accuracy": [0.5, 0.8, 0.9],
            "val_accuracy": [0.6, 0.85, 0.8],
        },
        metrics={"metrics": {"loss": 0.65, "accuracy": 0.83}, "baseline": {"majority_class_accuracy": 0.1, "random_guess_accuracy": 0.1}},
        config="name: digits\nseed: 1\ntrain: {epochs: 3, batch_size: 32}\nmodel: {units: [64, 64]}\n",
    )
    make_run(
        tmp_path,
        "20260102T110000Z_boston",
        {"name": "boston", "status": "completed", "started_at": "2026-01-02T11:00:00Z", "duration_s": 12.0, "metrics": ["mae"]},
        history={"epoch": [1, 2], "loss": [30.0, 10.0], "val_loss": [20.0, 12.0], "mae": [4.0, 3.0], "val_mae": [3.5, 2.9]},
        metrics={"metrics": {"loss": 11.0, "mae": 2.7}, "baseline": {"mean_prediction": 22.0, "mean_predictor_mae": 6.5}},
        config="name: boston\nseed: 1\ntrain: {epochs: 2, batch_size: 16}\nmodel: {units: [64]}\n",
    )
    make_run(  # running, heartbeat 2 hours ago, epochs took 1 minute each: crashed
        tmp_path,
        "20260102T090000Z_stuck",
        {
            "name": "stuck",
            "status": "running",
            "started_at": "2026-01-02T09:00:00Z",
            "heartbeat_at": "2026-01-02T10:00:00Z",
            "epochs_completed": 60,
        },
    )
    make_run(  # running, heartbeat a minute ago: alive
        tmp_path,
        "20260102T115000Z_live",
        {
            "name": "live",
            "status": "running",
            "started_at": "2026-01-02T11:50:00Z",
            "heartbeat_at": "2026-01-02T11:59:00Z",
            "epochs_completed": 9,
        },
    )
    (tmp_path / "not_a_run").mkdir()
    return tmp_path


def render(root, **filters) -> str:
    console = rich_console.Console(file=io.StringIO(), width=200, color_system=None)
    runs_table.show(root, console, now=NOW, **filters)
    return console.file.getvalue()


def test_table_lists_runs_newest_first_with_metrics_and_baselines(root):
    lines = render(root).splitlines()
    assert [line.split()[0] for line in lines[1:]] == [
        "20260102T115000Z_live",
        "20260102T110000Z_boston",
        "20260102T100000Z_digits",
        "20260102T090000Z_stuck",
    ]
    columns = ["run", "status", "started", "duration", "epochs", "best validation", "test", "baseline"]
    starts = [lines[0].index(column) for column in columns]
    assert starts == sorted(starts) and lines[0].split() == "run status started duration epochs best validation test baseline".split()

    def cells(line):
        return [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None])]

    assert cells(lines[1]) == ["20260102T115000Z_live", "running", "2026-01-02 11:50", "10m 00s", "9", "", "", ""]
    assert cells(lines[2]) == [
        "20260102T110000Z_boston",
        "completed",
        "2026-01-02 11:00",
        "12.0s",
        "2",
        "val_mae 2.9 at 2",
        "mae 2.7",
        "mean 6.5",
    ]
    assert cells(lines[3]) == [
        "20260102T100000Z_digits",
        "completed",
        "2026-01-02 10:00",
        "1m 15s",
        "3",
        "val_accuracy 0.85 at 2",
        "accuracy 0.83",
        "majority 0.1",
    ]
    assert cells(lines[4])[:5] == ["20260102T090000Z_stuck", "crashed", "2026-01-02 09:00", "", "60"]


def test_filters(root):
    assert "boston" in render(root, name="bost") and "digits" not in render(root, name="bost")
    assert "digits" in render(root, name="d*") and "boston" not in render(root, name="d*")
    only_crashed = render(root, status="crashed")
    assert "stuck" in only_crashed and "live" not in only_crashed
    assert render(root, status="failed") == f"no runs under {root} match the filters\n"


def test_staleness_uses_epoch_time_or_a_generous_limit():
    record = {"status": "running", "started_at": "2026-01-02T11:00:00Z", "heartbeat_at": "2026-01-02T11:40:00Z", "epochs_completed": 2}
    assert runs_table.effective_status(record, NOW) == "running"  # 20 min per epoch: 5 epochs' time not passed
    record["epochs_completed"] = 40  # 1 min per epoch: 20 minutes of silence is too long
    assert runs_table.effective_status(record, NOW) == "crashed"
    unknown = {"status": "running", "started_at": "2026-01-02T11:00:00Z", "heartbeat_at": "2026-01-02T11:30:00Z"}
    assert runs_table.effective_status(unknown, NOW) == "running"
    unknown["heartbeat_at"] = "2026-01-02T10:30:00Z"
    assert runs_table.effective_status(unknown, NOW) == "crashed"
    assert runs_table.effective_status({"status": "failed"}, NOW) == "failed"


def test_cli_runs_lists_and_rejects_bad_input(root, tmp_path):
    result = CliRunner().invoke(cli.app, ["runs", str(root), "--name", "boston"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "20260102T110000Z_boston" in result.output and "digits" not in result.output
    assert "val_mae 2.9 at 2" in result.output
    result = invoke("runs", root, "--status", "done")
    assert result.exit_code == 2
    assert "--status: received 'done'; expected one of running, completed, failed, interrupted, pruned, crashed" in result.stderr
    result = invoke("runs", tmp_path / "missing")
    assert result.exit_code == 2 and "missing: no such folder; expected a folder of runs" in result.stderr


def test_flatten_and_differences():
    assert comparison.flatten({"a": {"b": [1, {"c": 2}]}, "d": [], "e": None}) == {"a.b.0": 1, "a.b.1.c": 2, "d": [], "e": None}
    found = comparison.differences([{"x": 1, "y": {"z": 2}}, {"x": 1, "y": {"z": 3}, "w": True}])
    assert found == {"y.z": [2, 3], "w": ["-", True]}


def test_compare_prints_differences_and_metrics_side_by_side(root, tmp_path):
    console = rich_console.Console(file=io.StringIO(), width=200, color_system=None)
    found = comparison.show([root / "20260102T100000Z_digits", root / "20260102T110000Z_boston"], console, plot=tmp_path / "c.png")
    assert found["differences"] == {
        "name": ["digits", "boston"],
        "train.epochs": [3, 2],
        "train.batch_size": [32, 16],
        "model.units.1": [64, "-"],
    }
    assert found["metrics"]["best val_accuracy"] == ["0.8500 @2", "-"]
    assert found["metrics"]["best val_mae"] == ["-", "2.9000 @2"]
    assert found["metrics"]["test mae"] == ["-", "2.7000"]
    assert found["metrics"]["baseline mean_predictor_mae"] == ["-", "6.5000"]
    text = console.file.getvalue()
    assert "│ train.batch_size │ 32" in text and "│ test accuracy" in text
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_compare_needs_two_runs(root):
    result = invoke("runs", "compare", root / "20260102T100000Z_digits")
    assert result.exit_code == 2
    assert "RUN_DIR: received 1 run folder(s); expected two or more to compare" in result.stderr


def test_runs_with_tensorboard_logs_show_the_command(root):
    events = root / "20260102T110000Z_boston" / "tensorboard" / "train"
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1767351600.host.1.0.v2").write_bytes(b"x")
    text = render(root)
    assert f"20260102T110000Z_boston: TensorBoard logs: tensorboard --logdir {root / '20260102T110000Z_boston' / 'tensorboard'}" in text
    assert text.count("TensorBoard logs") == 1  # only the run that has logs


DAMAGE = [
    ("run.json", "null", "run.json: received a JSON null; expected an object"),
    ("run.json", "[]", "run.json: received a JSON array; expected an object"),
    ("run.json", '"x"', "run.json: received a JSON string; expected an object"),
    ("history.json", "[1, 2]", "history.json: received a JSON array; expected a JSON object"),
    ("history.json", '{"epoch": [1, 2], "loss": "x"}', "history.json: 'loss' is a JSON string; expected"),
    ("history.json", '{"epoch": [1, 2], "loss": [0.5]}', "history.json: 'loss' has 1 value(s) for 2 epochs"),
    ("history.json", '{"epoch": [1, 2], "loss": [0.5, "x"]}', "history.json: 'loss' holds \"x\"; expected"),
    ("history.json", "", "history.json: empty; expected"),
    ("metrics.json", "[1]", "metrics.json: received a JSON array; expected an object"),
]


@pytest.mark.parametrize("name, text, message", DAMAGE, ids=[f"{name}={text or 'empty'}" for name, text, message in DAMAGE])
def test_a_damaged_run_file_shows_its_folder_as_damaged_and_hides_no_other(root, name, text, message):
    from tests.conftest import write_completed_run

    damaged = write_completed_run(root / "20260102T100000Z_damaged")
    (damaged / name).write_text(text)
    before = {path.name: path.read_bytes() for path in damaged.iterdir()}
    result = invoke("runs", root)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    text = render(root)
    for folder in ("20260102T100000Z_digits", "20260102T110000Z_boston", "20260102T115000Z_live", "20260102T100000Z_damaged"):
        assert folder in text
    assert "damaged" in text and message in text.replace("\n", " "), text
    for command in (["runs", "compare", damaged, root / "20260102T100000Z_digits"], ["report", damaged, "--out", root / "r.html"]):
        result = invoke(*command)
        assert result.exit_code == 2 and message in result.stderr.replace("\n", " ") and "Traceback" not in result.output, result.output
    if name == "history.json":
        result = invoke("visualize", "curves", damaged)
        assert result.exit_code == 2 and message in result.stderr.replace("\n", " "), result.output
    assert {path.name: path.read_bytes() for path in damaged.iterdir()} == before  # nothing written, nothing lost


@pytest.mark.parametrize(
    "text, message",
    [(None, "history.json: missing"), ("", "history.json: empty"), ('{"epoch": [1], "loss": []}', "'loss' has 0 value(s) for 1 epochs")],
)
def test_resume_with_a_damaged_history_is_a_clean_error_before_keras(tmp_path, text, message):
    from tests.conftest import write_completed_run

    run = write_completed_run(tmp_path / "run", config="name: digits\nseed: 1\ndata: {name: digits}\nmodel: mlp\n")
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.npz").write_bytes(b"state")
    if text is None:
        (run / "history.json").unlink()
    else:
        (run / "history.json").write_text(text)
    result = invoke("train", "--resume", run)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
    assert "importing Keras" not in result.stdout
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
