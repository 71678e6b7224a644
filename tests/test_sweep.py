"""`dlrun sweep`: grid and random planning, up-front validation, child runs, the ranking, resume."""

import json
from pathlib import Path

import pytest

from dlrun.runs import history
from dlrun.trials import sweep
from tests.conftest import invoke, record_trained_epochs, run_folders

CONFIG = """\
name: sw
seed: 5
data: {{name: synthetic, task: regression, num_samples: 60, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [4]}}
train: {{epochs: 2, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
"""


def write(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(CONFIG.format(root=json.dumps(str(tmp_path / "runs"))))
    return path


# --- planning (no training) ---------------------------------------------------------------------


def test_grid_is_every_combination_with_yaml_values():
    grid = sweep.parse_grid(["train.batch_size=16,64", "compile.optimizer.learning_rate=1e-3,1e-4"])
    assert grid == {"train.batch_size": [16, 64], "compile.optimizer.learning_rate": [0.001, 0.0001]}
    trials = sweep.plan_trials(grid, {}, None, seed=0)
    assert trials == [
        {"train.batch_size": 16, "compile.optimizer.learning_rate": 0.001},
        {"train.batch_size": 16, "compile.optimizer.learning_rate": 0.0001},
        {"train.batch_size": 64, "compile.optimizer.learning_rate": 0.001},
        {"train.batch_size": 64, "compile.optimizer.learning_rate": 0.0001},
    ]
    assert sweep.set_items(trials[1]) == ["train.batch_size=16", "compile.optimizer.learning_rate=0.0001"]


def test_random_search_is_seeded_and_stays_in_its_ranges():
    ranges = sweep.parse_ranges(["compile.optimizer.learning_rate=1e-5:1e-2:log", "train.batch_size=8:64"])
    grid = sweep.parse_grid(["model.units=[4],[8, 8]"])
    first = sweep.plan_trials(grid, ranges, 20, seed=1)
    assert first == sweep.plan_trials(grid, ranges, 20, seed=1)
    assert first != sweep.plan_trials(grid, ranges, 20, seed=2)
    for trial in first:
        assert 1e-5 <= trial["compile.optimizer.learning_rate"] <= 1e-2
        assert isinstance(trial["train.batch_size"], int) and 8 <= trial["train.batch_size"] <= 64
        assert trial["model.units"] in ([4], [8, 8])
    rates = sorted(trial["compile.optimizer.learning_rate"] for trial in first)
    assert rates[0] < 1e-4 and rates[-1] > 1e-3  # log-uniform: several decades covered, not bunched at the top


# --- bad inputs: exit 2, a clear message, no folder ---------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ([], "--grid: received nothing; expected at least one --grid KEY=V1,V2"),
        (["--grid", "train.batch_size"], "--grid 'train.batch_size': received no KEY=V1,V2,...; expected"),
        (["--grid", "train.batchsize=16,64"], "train.batchsize: received unknown key 'batchsize'"),
        (["--grid", "train.batch_size=16,abc"], "train.batch_size: received \"abc\"; expected an integer"),
        (["--grid", "train.epochs=1", "--grid", "train.epochs=2"], "received train.epochs a second time"),
        (["--range", "train.epochs=1:3"], "--range: received ranges without --random N"),
        (["--random", "2", "--range", "train.epochs=5:1"], "received low 5 and high 1; expected low < high"),
        (["--random", "2", "--range", "compile.optimizer.learning_rate=0:1:log"], "received low 0 with log; expected low > 0"),
        (["--random", "2", "--range", "train.epochs=a:b"], "--range 'train.epochs=a:b': received 'a:b'; expected KEY=LOW:HIGH"),
        (["--random", "0", "--range", "train.epochs=1:3"], "--random: received 0; expected a number of trials >= 1"),
        (["--grid", "train.epochs=1,2", "--metric", "val_acc"], "--metric: received 'val_acc'; expected one of loss, mae, val_loss, val_mae"),
        (["--grid", "train.epochs=1,2", "--workers", "0"], "--workers: received 0"),
    ],
    ids=["no-grid", "no-equals", "unknown-key", "bad-value", "key-twice", "range-without-random", "low>high",
         "log-from-0", "not-numbers", "random<1", "metric", "workers"],
)
def test_bad_sweep_inputs_exit_2_before_anything_trains(tmp_path, options, message):
    result = invoke("sweep", write(tmp_path), *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert run_folders(tmp_path / "runs") == []


def test_ray_without_ray_installed_exits_2_with_the_install_command(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # hides Ray, installed or not: `import ray` raises ImportError
    for command in (["sweep", write(tmp_path), "--grid", "train.epochs=1,2"], ["kfold", write(tmp_path)]):
        result = invoke(*command, "--executor", "ray")
        assert result.exit_code == 2, result.output
        assert "--executor ray: received a Python without Ray Tune; expected it installed: pip install 'dlrun[ray]'" in result.stderr
        assert run_folders(tmp_path / "runs") == []


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_2x2_grid_makes_four_child_runs_and_a_ranked_table(tmp_path):
    result = invoke("sweep", write(tmp_path), "--grid", "train.batch_size=8,16",
                    "--grid", "compile.optimizer.learning_rate=1e-3,1e-2")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    assert folder.name.endswith("_sw-sweep")
    state = json.loads((folder / "sweep.json").read_text())
    assert state["status"] == "completed" and state["metric"] == "val_loss" and state["direction"] == "min"
    children = run_folders(folder / "trials")
    assert len(children) == 4
    for trial in state["trials"]:
        child = folder / "trials" / trial["run"].rsplit("/", 1)[-1]
        assert child in children
        assert json.loads((child / "run.json").read_text())["status"] == "completed"
        stored = (child / "config.yaml").read_text()
        assert f"batch_size: {trial['overrides']['train.batch_size']}" in stored
        assert "backend: tensorflow\n" in stored  # each trial's `auto`, resolved by the one trainer
        child_history = history.load(child / "history.json")
        assert trial["best"]["value"] == min(child_history["val_loss"])
    values = [state["trials"][index - 1]["best"]["value"] for index in state["ranking"]]
    assert values == sorted(values) and sorted(state["ranking"]) == [1, 2, 3, 4]
    assert "sweep ranked by val_loss (lower is better)" in result.output
    table_rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [int(row.split("│")[2]) for row in table_rows] == state["ranking"]  # the table lists trials best first
    record = json.loads((folder / "run.json").read_text())
    assert record["kind"] == "sweep" and record["status"] == "completed"
    assert record["best_trial"]["index"] == state["ranking"][0]


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_only_the_unfinished_trials(tmp_path, monkeypatch):
    from dlrun.training import recorders

    original = recorders.RunRecorder.on_epoch_end
    epochs_seen = []

    def interrupt_in_trial_2(self, epoch, logs=None):
        original(self, epoch, logs)  # history and checkpoint written
        epochs_seen.append(epoch)
        if len(epochs_seen) == 3:  # trial 1's two epochs, then trial 2's first
            raise KeyboardInterrupt

    config_path = write(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(recorders.RunRecorder, "on_epoch_end", interrupt_in_trial_2)
        result = invoke("sweep", config_path, "--grid", "train.batch_size=8,16,32")
    assert result.exit_code == 130
    assert "interrupted after 1 of 3 trial(s); what was written so far is in" in result.stderr
    assert "(continue with: dlrun sweep --resume" in result.stderr
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["completed", "pending", "pending"]
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    first_child, second_child = state["trials"][0]["run"], state["trials"][1]["run"]
    assert json.loads((Path(second_child) / "run.json").read_text())["status"] == "interrupted"

    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("sweep", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "1 of 3 trials already completed" in result.output
    assert "resuming trial 2 after epoch 1" in result.output
    # trial 2 continued in its own run folder from its checkpoint: only its second epoch trained again
    third_child = json.loads((folder / "sweep.json").read_text())["trials"][2]["run"]
    assert epochs_seen == [(Path(second_child).name, 2), (Path(third_child).name, 1), (Path(third_child).name, 2)]
    assert "trial 1/3 (" not in result.output and "trial 2/3 (" in result.output and "trial 3/3 (" in result.output
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["completed"] * 3
    assert state["trials"][0]["run"] == first_child  # not trained again
    assert state["trials"][1]["run"] == second_child  # continued, not started again in a new folder
    statuses = sorted(json.loads((child / "run.json").read_text())["status"] for child in run_folders(folder / "trials"))
    assert statuses == ["completed", "completed", "completed"]
    assert json.loads((Path(second_child) / "run.json").read_text())["resumes"][0]["after_epoch"] == 1
    assert invoke("sweep", "--resume", folder).exit_code == 2  # a completed sweep is not resumed again


@pytest.mark.slow
def test_a_sweep_on_a_pool_of_two_gives_the_sequential_numbers(tmp_path):
    config_path = write(tmp_path)
    grid = ["--grid", "train.batch_size=8,16"]
    assert invoke("sweep", config_path, *grid).exit_code == 0
    result = invoke("sweep", config_path, *grid, "--workers", "2", "--set", f"output.runs_root={json.dumps(str(tmp_path / 'pooled'))}")
    assert result.exit_code == 0, result.output
    (first,), (second,) = run_folders(tmp_path / "runs"), run_folders(tmp_path / "pooled")
    one, two = (json.loads((folder / "sweep.json").read_text()) for folder in (first, second))
    assert two["executor"] == {"executor": "pool", "workers": 2, "cpus_per_trial": 1.0}
    assert [trial["best"] for trial in one["trials"]] == [trial["best"] for trial in two["trials"]]
    assert len(run_folders(second / "trials")) == 2


KILLED = """\
name: sw-killed
seed: 7
data: {{name: synthetic, task: regression, num_samples: 6000, input_shape: [5], noise: 1.0}}
model: {{architecture: mlp, units: [8], dropout: 0.3}}
train: {{epochs: 5, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
"""


@pytest.mark.slow
def test_sigkill_in_trial_2_then_resume_continues_its_run_from_its_checkpoint(tmp_path, monkeypatch):
    """A real kill -9 in trial 2 of 2: --resume continues that trial's own run folder after the epoch its
    checkpoint holds, trains only the epochs after it, and ranks the trials as a sweep never killed does."""
    from tests.conftest import checkpoint_epochs, sigkill_when

    epochs = 5  # about 0.2 s each in trial 2: the kill lands before the trial ends
    config_path = tmp_path / "killed.yaml"
    config_path.write_text(KILLED.format(root=json.dumps(str(tmp_path / "runs"))))
    grid = ["--grid", "train.batch_size=8,16"]

    def trial_2_child():
        folders = run_folders(tmp_path / "runs")
        try:
            child = json.loads((folders[0] / "sweep.json").read_text())["trials"][1].get("run")
        except (IndexError, OSError, ValueError):
            return None
        return Path(child) if child else None

    def trial_2_has_epoch_2():
        child = trial_2_child()
        return child is not None and (checkpoint_epochs(child) or 0) >= 2

    sigkill_when(["sweep", config_path, *grid], trial_2_has_epoch_2)
    (folder,) = run_folders(tmp_path / "runs")
    child = trial_2_child()
    killed_after = checkpoint_epochs(child)
    assert 2 <= killed_after < epochs, f"the kill landed after trial 2's epoch {killed_after}, not inside the trial"
    assert json.loads((folder / "run.json").read_text())["status"] == "running"  # nothing ran after the kill
    assert json.loads((child / "run.json").read_text())["status"] == "running"
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["completed", "pending"]
    first_child = state["trials"][0]["run"]

    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("sweep", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "1 of 2 trials already completed" in result.output
    assert f"resuming trial 2 after epoch {killed_after} ({child})" in result.output
    # trial 2 went on in its own run folder from its checkpoint: only the epochs after it trained
    assert epochs_seen == [(child.name, epoch) for epoch in range(killed_after + 1, epochs + 1)]
    resumed = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in resumed["trials"]] == ["completed", "completed"]
    assert [trial["run"] for trial in resumed["trials"]] == [first_child, str(child)]
    assert run_folders(folder / "trials") == sorted([Path(first_child), child])  # no new child run
    child_record = json.loads((child / "run.json").read_text())
    assert child_record["status"] == "completed"
    (entry,) = child_record["resumes"]
    assert entry["after_epoch"] == killed_after and entry["previous"]["status"] == "running"
    assert history.load(child / "history.json")["epoch"] == list(range(1, epochs + 1))
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["resumes"][0]["previous"]["status"] == "running"

    result = invoke("sweep", config_path, *grid, "--set", f"output.runs_root={json.dumps(str(tmp_path / 'straight'))}")
    assert result.exit_code == 0, result.output
    (straight,) = run_folders(tmp_path / "straight")
    uninterrupted = json.loads((straight / "sweep.json").read_text())
    assert resumed["ranking"] == uninterrupted["ranking"]
    assert [trial["best"] for trial in resumed["trials"]] == [trial["best"] for trial in uninterrupted["trials"]]
    assert record["best_trial"] == json.loads((straight / "run.json").read_text())["best_trial"]
    straight_child = Path(uninterrupted["trials"][1]["run"])
    assert history.load(child / "history.json") == history.load(straight_child / "history.json")
