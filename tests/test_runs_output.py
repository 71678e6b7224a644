"""`dlrun runs` at 80 and 200 columns, in a pipe, `--wide` and `--json`; sweep and K-fold rows show their best."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich import console as rich_console

from dlrun.runs import table as runs_table
from tests.test_runs_table import NOW, make_run

LONG = "20260102T120000Z_cats_dogs_augmented"


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
        metrics={"metrics": {"loss": 0.65, "accuracy": 0.83}, "baseline": {"majority_class_accuracy": 0.1}},
    )
    make_run(
        tmp_path,
        LONG,
        {
            "name": "cats_dogs_augmented",
            "status": "interrupted",
            "started_at": "2026-01-02T12:00:00Z",
            "duration_s": 7512.0,
            "metrics": ["accuracy"],
        },
        history={
            "epoch": list(range(1, 101)),
            "loss": [0.5] * 100,
            "val_loss": [0.4] * 100,
            "accuracy": [0.8] * 100,
            "val_accuracy": [0.8234] * 100,
        },
        metrics={"metrics": {"loss": 0.4, "accuracy": 0.8312}, "baseline": {"majority_class_accuracy": 0.5}},
    )
    _sweep(tmp_path)
    _kfold(tmp_path)
    return tmp_path


def _sweep(root, best_in_record=True):
    sweep = root / "20260102T090000Z_digits-sweep"
    for index, best in ((1, 0.52), (2, 0.41)):
        make_run(
            sweep / "trials",
            f"20260102T09000{index}Z_digits",
            {
                "name": "digits",
                "status": "completed",
                "started_at": f"2026-01-02T09:00:0{index}Z",
                "duration_s": 10.0,
                "metrics": ["accuracy"],
            },
            history={
                "epoch": [1, 2, 3, 4],
                "loss": [1, 1, 1, 1],
                "val_loss": [0.9, best, 0.7, 0.8],
                "accuracy": [0.5] * 4,
                "val_accuracy": [0.6] * 4,
            },
            metrics={"metrics": {"loss": 0.5, "accuracy": 0.8 + index / 100}, "baseline": {"majority_class_accuracy": 0.1}},
        )
    trials = [
        {
            "index": index,
            "overrides": {"train.batch_size": size},
            "status": "completed",
            "run": str(sweep / "trials" / f"20260102T09000{index}Z_digits"),
            "best": {"epoch": 2, "value": best},
        }
        for index, size, best in ((1, 16, 0.52), (2, 64, 0.41))
    ]
    record = {
        "name": "digits",
        "kind": "sweep",
        "status": "completed",
        "started_at": "2026-01-02T09:00:00Z",
        "duration_s": 30.0,
        "metric": "val_loss",
        "trials": 2,
    }
    if best_in_record:
        record["best_trial"] = {"index": 2, "overrides": {"train.batch_size": 64}, "epoch": 2, "value": 0.41}
    (sweep / "run.json").write_text(json.dumps(record))
    (sweep / "sweep.json").write_text(json.dumps({"metric": "val_loss", "direction": "min", "trials": trials}))
    return sweep


def _kfold(root):
    mean = {
        "epoch": [1, 2, 3],
        "loss": [30.0, 12.0, 11.0],
        "val_loss": [20.0, 12.0, 13.0],
        "mae": [4.0, 3.0, 2.8],
        "val_mae": [3.5, 2.9, 3.1],
    }
    kfold = make_run(
        root,
        "20260102T080000Z_boston-kfold",
        {"name": "boston", "kind": "kfold", "status": "completed", "started_at": "2026-01-02T08:00:00Z", "duration_s": 50.0},
        history=mean,
        metrics={"metrics": {"loss": 11.0, "mae": 2.7}, "baseline": {"mean_predictor_mae": 6.5}},
    )
    (kfold / "kfold.json").write_text(
        json.dumps(
            {
                "monitor": "val_mae",
                "recommended_epochs": 2,
                "mean_best": {"epoch": 2, "value": 2.9},
                "folds": [{"index": index, "status": "completed"} for index in range(4)],
            }
        )
    )
    return kfold


def render(root, width, **options) -> str:
    console = rich_console.Console(file=io.StringIO(), width=width, color_system=None)
    runs_table.show(root, console, now=NOW, **options)
    return console.file.getvalue()


def _run_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("2026")]


def test_at_80_columns_every_run_is_one_line_with_its_status_and_the_columns_that_fit(root):
    text = render(root, 80)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    lines = _run_lines(text)
    assert len(lines) == 4, text  # one line per run: no name wrapped onto a second line
    assert lines[0].split()[:2] == [LONG, "interrupted"]
    assert [line.split()[0] for line in lines] == [
        LONG,
        "20260102T100000Z_digits",
        "20260102T090000Z_digits-sweep",
        "20260102T080000Z_boston-kfold",
    ]
    assert "…" not in text  # nothing cut: columns that do not fit are left out instead
    header = text.splitlines()[0].split()
    assert header[:2] == ["run", "status"] and "test" in header and "started" not in header


def test_at_200_columns_every_column_shows(root):
    text = render(root, 200)
    assert text.splitlines()[0].split() == "run status started duration epochs best validation test baseline".split()
    assert len(_run_lines(text)) == 4


def test_wide_shows_every_column_on_one_line_even_when_narrow(root):
    text = render(root, 60, wide=True)
    assert text.splitlines()[0].split() == "run status started duration epochs best validation test baseline".split()
    lines = _run_lines(text)
    assert len(lines) == 4 and "…" not in text
    assert "val_accuracy 0.8234 at 1" in lines[0] and "majority 0.5" in lines[0]


def test_a_sweep_row_shows_its_best_trial_and_a_kfold_row_its_mean_curve(root):
    lines = {line.split()[0]: line for line in _run_lines(render(root, 200))}
    sweep = lines["20260102T090000Z_digits-sweep"]
    assert "val_loss 0.41 at 2 (trial 2)" in sweep
    assert "accuracy 0.82" in sweep and "majority 0.1" in sweep  # the best trial's own test score and baseline
    kfold = lines["20260102T080000Z_boston-kfold"]
    assert "val_mae 2.9 at 2 (mean of 4 folds)" in kfold and "mae 2.7" in kfold and "mean 6.5" in kfold


def test_a_running_sweep_shows_its_best_trial_so_far(tmp_path):
    _sweep(tmp_path, best_in_record=False)
    rows = runs_table.collect(tmp_path, NOW)
    assert rows[0]["best"] == {"monitor": "val_loss", "epoch": 2, "value": 0.41, "trial": 2}


def test_json_is_a_list_of_objects_with_stable_keys(root):
    result = subprocess.run([sys.executable, "-m", "dlrun", "runs", str(root), "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["run"] for row in rows] == [
        LONG,
        "20260102T100000Z_digits",
        "20260102T090000Z_digits-sweep",
        "20260102T080000Z_boston-kfold",
    ]
    assert all(list(row) == list(runs_table.KEYS) for row in rows)
    digits = rows[1]
    assert digits["best"] == {"monitor": "val_accuracy", "epoch": 2, "value": 0.85}
    assert digits["test"] == {"metric": "accuracy", "value": 0.83}
    assert digits["baseline"] == {"name": "majority_class_accuracy", "label": "majority", "value": 0.1}
    assert digits["status"] == "completed" and digits["duration_s"] == 75.4 and digits["kind"] == "train"
    assert rows[2]["best"]["trial"] == 2 and rows[3]["best"]["mean_of_folds"] == 4


def test_json_turns_non_finite_numbers_into_null(tmp_path):
    make_run(
        tmp_path,
        "20260102T100000Z_nan",
        {"name": "nan", "status": "completed", "started_at": "2026-01-02T10:00:00Z", "metrics": ["accuracy"]},
        history={"epoch": [1], "loss": [1.0], "val_loss": [1.0], "accuracy": [0.5], "val_accuracy": [0.5]},
    )
    (tmp_path / "20260102T100000Z_nan" / "metrics.json").write_text('{"metrics": {"accuracy": NaN}}')
    rows = json.loads(runs_table.to_json(runs_table.collect(tmp_path, NOW)))
    assert rows[0]["test"] == {"metric": "accuracy", "value": None}


def test_in_a_pipe_at_80_columns_every_run_is_one_line(root):
    """`COLUMNS=80 dlrun runs | cat`: stdout is a pipe, not a terminal."""
    result = subprocess.run(
        f"{sys.executable} -m dlrun runs {root} | cat",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    lines = _run_lines(result.stdout)
    assert len(lines) == 4 and all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe
    assert {line.split()[1] for line in lines} == {"interrupted", "completed"}
