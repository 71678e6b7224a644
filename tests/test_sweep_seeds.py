"""`dlrun sweep --seeds N`: each trial point trained N times as a `dlrun train --seeds` group, scored by the
mean, with mean +- std in the table and sweep.json."""

import json
from pathlib import Path

import numpy as np
import pytest

from dlrun.runs import table as runs_table
from tests.conftest import invoke, run_folders

CONFIG = """\
name: sd
seed: 5
data: {{name: synthetic, task: regression, num_samples: 60, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [4]}}
train: {{epochs: 2, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
search:
  sampler: grid
  pruner: none
  metric: val_mae
  space:
    compile.optimizer.learning_rate: {{choice: [0.05, 0.01]}}
"""


def write(tmp_path, extra: str = "") -> Path:
    path = tmp_path / "sd.yaml"
    path.write_text(CONFIG.format(root=json.dumps(str(tmp_path / "runs"))) + extra)
    return path


@pytest.mark.parametrize(
    "options, extra, message",
    [
        (["--seeds", "0"], "", "--seeds: received 0; expected a number of seeds >= 1"),
        ([], "  seeds: 0\n", "search.seeds: received 0; expected a number >= 1"),
        (["--seeds", "2", "--kfold", "3"], "", "--seeds: received 2 with K-fold trials (kfold 3); expected one of seeds or kfold"),
        ([], "  seeds: 2\n  kfold: 3\n", "search.seeds: received 2 with K-fold trials (kfold 3); expected one of seeds or kfold"),
    ],
    ids=["flag-0", "section-0", "flag-with-kfold", "section-with-kfold"],
)
def test_bad_seeds_exit_2_before_any_folder(tmp_path, options, extra, message):
    result = invoke("sweep", write(tmp_path, extra), *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert run_folders(tmp_path / "runs") == []


@pytest.mark.slow
def test_two_points_over_two_seeds_score_the_mean_and_show_the_spread_of_their_children(tmp_path):
    result = invoke("sweep", write(tmp_path), "--seeds", "2")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert state["search"]["seeds"] == 2 and [trial["status"] for trial in state["trials"]] == ["completed"] * 2
    for trial in state["trials"]:
        group = Path(trial["run"])
        record = json.loads((group / "run.json").read_text())
        assert record["kind"] == "seeds" and record["status"] == "completed" and record["seeds"] == [5, 6]
        children = [Path(child["run"]) for child in json.loads((group / "seeds.json").read_text())["children"]]
        assert len(children) == 2
        best = np.array([min(json.loads((child / "history.json").read_text())["val_mae"]) for child in children])
        tests = np.array([json.loads((child / "metrics.json").read_text())["metrics"]["mae"] for child in children])
        assert trial["best"]["value"] == pytest.approx(best.mean(), rel=1e-12)  # the objective: the mean over seeds
        assert trial["spread"]["validation"]["val_mae"]["mean"] == pytest.approx(best.mean(), rel=1e-12)
        assert trial["spread"]["validation"]["val_mae"]["std"] == pytest.approx(best.std(), rel=1e-9)
        assert trial["spread"]["test"]["mae"]["std"] == pytest.approx(tests.std(), rel=1e-9)
        assert f"{best.mean():.4f} +- {best.std():.4f} (n=2)" in result.output  # the table's cell
        assert f"test mae {tests.mean():.4f} +- {tests.std():.4f} (n=2)" in result.output
    assert state["ranking"] == [trial["number"] for trial in sorted(state["trials"], key=lambda trial: trial["best"]["value"])]
    assert "best val_mae over 2 seeds" in result.output
    result = invoke("report", folder)  # the sweep's section of the report: the same mean +- std per trial
    assert result.exit_code == 0, result.output
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<h3>Sweep</h3>" in page and "2 of 2 trials: 2 completed." in page
    for trial in state["trials"]:
        assert runs_table.spread_text(trial["spread"]["validation"]["val_mae"]) in page
