"""`dlrun train --seeds N`: a group of runs over seeds, their spread (mean +- std), its place in `dlrun runs`,
`runs compare` and the report, and `--resume` of a group that was killed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlrun import errors, runs
from dlrun.runs import history
from dlrun.trials import seeds, spread
from tests.conftest import invoke, record_trained_epochs, run_folders, write_completed_run

TINY = """\
name: tiny
seed: {seed}
data: {{name: synthetic, task: regression, num_samples: {samples}, input_shape: [5], noise: 1.0}}
model: {{architecture: mlp, units: [8], dropout: 0.3}}
train: {{epochs: {epochs}, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
"""


def write_tiny(tmp_path, seed=11, epochs=2, samples=80, name="tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(TINY.format(seed=seed, epochs=epochs, samples=samples, root=json.dumps(str(tmp_path / "runs"))))
    return path


# --- the spread: one function, checked against numpy -------------------------------------------------


def test_aggregate_is_numpy_s_mean_std_min_max_per_metric():
    results = [
        {"test": {"mae": 2.3, "loss": 9.0}, "validation": {"val_mae": 2.5}},
        {"test": {"mae": 2.6, "loss": 11.0}, "validation": {"val_mae": 2.4}},
        {"test": {"mae": 2.2}, "validation": {"val_mae": 2.9}},
    ]
    found = spread.aggregate(results)
    mae = np.array([2.3, 2.6, 2.2])
    assert found["test"]["mae"] == pytest.approx({"mean": mae.mean(), "std": mae.std(), "min": 2.2, "max": 2.6, "n": 3})
    assert found["test"]["loss"] == pytest.approx({"mean": 10.0, "std": 1.0, "min": 9.0, "max": 11.0, "n": 2})  # who recorded it
    assert found["validation"]["val_mae"]["std"] == pytest.approx(np.std([2.5, 2.4, 2.9]))
    assert spread.lines(found)[1] == "test loss 10.0000 +- 1.0000 (n=2)"
    assert spread.lines(found)[0] == f"test mae {mae.mean():.4f} +- {mae.std():.4f} (n=3)"
    assert spread.lines(found)[2].startswith("best val_mae ")


def test_run_metrics_are_the_test_metrics_and_each_validation_value_s_best_epoch(tmp_path):
    run = write_completed_run(tmp_path / "run")
    assert spread.run_metrics(run) == {"test": {"accuracy": 0.83, "loss": 0.65}, "validation": {"val_loss": 0.6, "val_accuracy": 0.85}}


# --- refusals: exit 2, nothing written -----------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--seeds", "0"], "--seeds: received 0; expected a number of seeds >= 1"),
        (["--seeds", "2", "--track", "mlflow"], "--track: received with --seeds"),
        (["--seeds", "2", "--set", "seed=4294967295"], "invalid config for --seeds (seed 4294967296): seed: received 4294967296"),
    ],
)
def test_bad_seeds_options_exit_2_and_write_nothing(tmp_path, arguments, message):
    result = invoke("train", write_tiny(tmp_path), *arguments)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert run_folders(tmp_path / "runs") == []


def test_resume_with_seeds_needs_a_seeds_group_and_only_the_group(tmp_path):
    run = write_completed_run(tmp_path / "runs" / "single")
    result = invoke("train", "--resume", run, "--seeds", "3")
    assert result.exit_code == 2 and "which is not a seeds group" in result.output, result.output
    group = write_group(tmp_path / "runs" / "group", status="interrupted")
    result = invoke("train", write_tiny(tmp_path), "--resume", group)
    assert result.exit_code == 2 and "expected only the group folder" in result.output, result.output
    result = invoke("train", "--resume", group, "--seeds", "5")
    assert result.exit_code == 2 and "--seeds: received 5 with --resume" in result.output, result.output
    assert json.loads((group / "run.json").read_text())["status"] == "interrupted"  # untouched


# --- a seeds group in `dlrun runs`, `runs compare` and the report (a group written by hand) -------------


def write_group(path: Path, status: str = "completed") -> Path:
    values = [2.2, 2.4, 2.8]
    path.mkdir(parents=True)
    children = [
        {
            "index": index,
            "seed": 5 + index,
            "status": "completed",
            "run": str(path / "runs" / f"r{index}"),
            "metrics": {"test": {"mae": value}, "validation": {"val_mae": value + 0.1}},
        }
        for index, value in enumerate(values)
    ]
    aggregate = spread.aggregate([child["metrics"] for child in children])
    (path / "seeds.json").write_text(json.dumps({"format": 1, "count": 3, "children": children, "aggregate": aggregate}))
    (path / "run.json").write_text(
        json.dumps(
            {
                "name": "boston-seeds",
                "kind": "seeds",
                "status": status,
                "metrics": ["mae"],
                "started_at": "2026-01-02T10:00:00Z",
                "duration_s": 12.0,
            }
        )
    )
    (path / "config.yaml").write_text("name: boston\nseed: 5\n")
    return path


def test_runs_compare_and_the_report_show_a_group_s_mean_and_std(tmp_path):
    group = write_group(tmp_path / "runs" / "20260102T100000Z_boston-seeds")
    single = write_completed_run(tmp_path / "runs" / "20260101T100000Z_digits")
    expected_test = f"mae {np.mean([2.2, 2.4, 2.8]):.4f} +- {np.std([2.2, 2.4, 2.8]):.4f} (n=3)"
    result = invoke("runs", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.replace("│", " ").split())
    assert "2.4667" in flat and "0.2494" in flat and "(n=3)" in flat  # the table wraps cells: their parts are there
    result = invoke("runs", "compare", group, single)
    assert result.exit_code == 0, result.output
    assert expected_test.removeprefix("mae ") in result.output
    assert f"{np.mean([2.3, 2.5, 2.9]):.4f} +- {np.std([2.3, 2.5, 2.9]):.4f} (n=3)" in result.output  # best val_mae
    result = invoke("report", group, single, "--out", tmp_path / "report.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert expected_test in page and "<h3>Seeds</h3>" in page


# --- real training (tiny) ----------------------------------------------------------------------------


@pytest.mark.slow
def test_seeds_3_trains_three_runs_with_consecutive_seeds_and_their_spread(tmp_path):
    config_path = write_tiny(tmp_path)
    result = invoke("train", config_path, "--seeds", "3")
    assert result.exit_code == 0, result.output
    (group,) = run_folders(tmp_path / "runs")  # `dlrun runs` lists the group; the seeds' runs are inside it
    record = json.loads((group / "run.json").read_text())
    assert group.name.endswith("_tiny-seeds") and record["kind"] == "seeds" and record["status"] == "completed"
    state = json.loads((group / "seeds.json").read_text())
    children = [Path(child["run"]) for child in state["children"]]
    assert run_folders(group / "runs") == sorted(children)
    assert [json.loads((child / "run.json").read_text())["seed"] for child in children] == [11, 12, 13]
    assert all(json.loads((child / "run.json").read_text())["status"] == "completed" for child in children)
    maes = [json.loads((child / "metrics.json").read_text())["metrics"]["mae"] for child in children]
    best_val = [min(history.load(child / "history.json")["val_mae"]) for child in children]
    assert state["aggregate"]["test"]["mae"] == pytest.approx(
        {"mean": np.mean(maes), "std": np.std(maes), "min": min(maes), "max": max(maes), "n": 3}
    )
    assert state["aggregate"]["validation"]["val_mae"]["mean"] == pytest.approx(np.mean(best_val))
    assert record["aggregate"] == state["aggregate"]
    tail = result.output.strip().splitlines()[-4:]
    assert f"test mae {np.mean(maes):.4f} +- {np.std(maes):.4f} (n=3)" in tail
    listed = invoke("runs", tmp_path / "runs")
    assert listed.exit_code == 0 and "(n=3)" in listed.output

    # a seed's run is the run `dlrun train` makes with that seed: the same numbers
    result = invoke("train", config_path, "--set", "seed=12", "--set", f"output.runs_root={json.dumps(str(tmp_path / 'single'))}")
    assert result.exit_code == 0, result.output
    (single,) = run_folders(tmp_path / "single")
    assert history.load(single / "history.json") == history.load(children[1] / "history.json")


@pytest.mark.slow
def test_a_killed_group_resumed_trains_only_what_was_missing(tmp_path, monkeypatch):
    """kill -9 while seed 2 of 3 trains: --resume keeps seed 1, continues seed 2's own run after the epoch its
    checkpoint holds, and trains seed 3 whole."""
    from tests.conftest import checkpoint_epochs, sigkill_when

    epochs = 5  # about 0.2 s each: the kill lands inside seed 2
    config_path = write_tiny(tmp_path, seed=7, epochs=epochs, samples=6000)

    def child(index):
        folders = run_folders(tmp_path / "runs")
        try:
            found = json.loads((folders[0] / "seeds.json").read_text())["children"][index].get("run")
        except (IndexError, OSError, ValueError):
            return None
        return Path(found) if found else None

    def seed_2_has_epoch_2():
        second = child(1)
        return second is not None and (checkpoint_epochs(second) or 0) >= 2

    sigkill_when(["train", config_path, "--seeds", "3"], seed_2_has_epoch_2)
    (group,) = run_folders(tmp_path / "runs")
    second = child(1)
    killed_after = checkpoint_epochs(second)
    assert 2 <= killed_after < epochs, f"the kill landed after seed 2's epoch {killed_after}, not inside it"
    state = json.loads((group / "seeds.json").read_text())
    assert [entry["status"] for entry in state["children"]] == ["completed", "running", "pending"]
    assert json.loads((group / "run.json").read_text())["status"] == "running"  # nothing ran after the kill
    first = child(0)

    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        result = invoke("train", "--resume", group)
    assert result.exit_code == 0, result.output
    assert "1 of 3 seeds already completed" in result.output
    assert f"resuming after epoch {killed_after}" in result.output
    third = child(2)
    assert trained == [(second.name, epoch) for epoch in range(killed_after + 1, epochs + 1)] + [
        (third.name, epoch) for epoch in range(1, epochs + 1)
    ]
    assert run_folders(group / "runs") == sorted([first, second, third])  # seed 2 went on in its own folder
    resumed = json.loads((group / "seeds.json").read_text())
    assert [entry["status"] for entry in resumed["children"]] == ["completed"] * 3
    assert [entry["seed"] for entry in resumed["children"]] == [7, 8, 9]
    assert history.load(second / "history.json")["epoch"] == list(range(1, epochs + 1))
    record = json.loads((group / "run.json").read_text())
    assert record["status"] == "completed" and record["resumes"][0]["previous"]["status"] == "running"
    maes = [entry["metrics"]["test"]["mae"] for entry in resumed["children"]]
    assert resumed["aggregate"]["test"]["mae"]["std"] == pytest.approx(np.std(maes))
    assert invoke("train", "--resume", group).output.strip().endswith("already completed; nothing to do")


def test_is_group_is_false_for_a_folder_without_run_json(tmp_path):
    assert seeds.is_group(tmp_path) is False
    with pytest.raises(errors.UsageError):
        seeds.check_count(-1)
    assert runs.RUN_FILE == "run.json"


def fake_train(failing_seed: int | None = None):
    """A stand-in for the one training function: a completed run folder whose test mae is seed / 10, made
    without Keras (the group's bookkeeping is under test, not training); `failing_seed` fails after its
    run folder exists, as a NaN stop does."""

    def train(config, console, command=None, resume_run=None, on_start=None, **_):
        run = runs.Run.create(config.output.runs_root, config.name)
        run.start(command, config.seed, {}, extra={"metrics": ["mae"]})
        on_start(run)
        if config.seed == failing_seed:
            run.finish("failed", error="training stopped: loss is nan")
            raise errors.TrainingFailed("training stopped: loss is nan")
        run.write_json("metrics.json", {"metrics": {"mae": config.seed / 10}})
        run.write_json("history.json", {"epoch": [1, 2], "val_mae": [config.seed / 5, config.seed / 20]})
        run.finish("completed")
        return run

    return train


def test_a_failed_seed_fails_the_group_after_the_others_trained(tmp_path, monkeypatch):
    from dlrun.training import trainer

    monkeypatch.setattr(trainer, "train", fake_train(failing_seed=12))
    result = invoke("train", write_tiny(tmp_path), "--seeds", "3")
    assert result.exit_code == 1, result.output
    (group,) = run_folders(tmp_path / "runs")
    assert f"1 of 3 seed(s) failed (seed 12: training stopped: loss is nan); continue with: dlrun train --resume {group}" in result.output
    state = json.loads((group / "seeds.json").read_text())
    assert [child["status"] for child in state["children"]] == ["completed", "failed", "completed"]
    assert state["aggregate"]["test"]["mae"] == pytest.approx({"mean": 1.2, "std": 0.1, "min": 1.1, "max": 1.3, "n": 2})
    assert state["aggregate"]["validation"]["val_mae"]["mean"] == pytest.approx(np.mean([11 / 20, 13 / 20]))  # each one's best
    record = json.loads((group / "run.json").read_text())
    assert record["status"] == "failed" and record["aggregate"] == state["aggregate"]


def test_a_seed_that_fails_before_its_run_folder_stops_the_group_at_once(tmp_path, monkeypatch):
    """A failure before any run folder exists (missing data, say) would repeat for every seed: the group stops."""
    from dlrun.training import trainer

    calls = []

    def missing_data(config, console, **_):
        calls.append(config.seed)
        raise errors.DataError("data.path: received 'gone.npz'; no such file")

    monkeypatch.setattr(trainer, "train", missing_data)
    result = invoke("train", write_tiny(tmp_path), "--seeds", "3")
    assert result.exit_code == 2 and "no such file" in result.output, result.output
    assert calls == [11]
    (group,) = run_folders(tmp_path / "runs")
    assert json.loads((group / "run.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_ctrl_c_in_a_seed_marks_the_group_interrupted_and_resume_finishes_it(tmp_path, monkeypatch):
    from tests.conftest import interrupt_after

    config_path = write_tiny(tmp_path, epochs=3)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        result = invoke("train", config_path, "--seeds", "2")
    assert result.exit_code == 130, result.output
    (group,) = run_folders(tmp_path / "runs")
    assert f"continue with: dlrun train --resume {group}" in result.output
    assert json.loads((group / "run.json").read_text())["status"] == "interrupted"
    assert [child["status"] for child in json.loads((group / "seeds.json").read_text())["children"]] == ["interrupted", "pending"]
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        result = invoke("train", "--resume", group)
    assert result.exit_code == 0, result.output
    assert [epoch for _, epoch in trained] == [3, 1, 2, 3]
    assert json.loads((group / "run.json").read_text())["status"] == "completed"


def test_report_with_seeds_writes_the_group_s_report(tmp_path, monkeypatch):
    from dlrun.training import trainer

    monkeypatch.setattr(trainer, "train", fake_train())
    result = invoke("train", write_tiny(tmp_path), "--seeds", "2", "--report")
    assert result.exit_code == 0, result.output
    (group,) = run_folders(tmp_path / "runs")
    assert result.output.strip().splitlines()[-1] == f"report: {group / 'report.html'}"
    page = (group / "report.html").read_text()
    assert "<td>test mae</td><td>1.1500 +- 0.0500 (n=2)</td>" in page and "<h3>Seeds</h3>" in page
    assert "test mae 1.1500 +- 0.0500 (n=2)" in result.output
