"""`dlrun sweep`: grid and random planning, up-front validation, child runs, the ranking, resume."""

import json
from pathlib import Path

import pytest

from dlrun.runs import history
from dlrun.trials import sweep, sweep_study
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


def draw(search, trials: int) -> list[dict]:
    """`trials` values drawn as the sweep draws them (a fresh seeded sampler before each ask), told 0."""
    import optuna

    from dlrun.trials import search as search_engine

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=search.direction)
    drawn = []
    for asked in range(trials):
        study.sampler = search_engine.sampler(search, asked)
        trial = study.ask()
        drawn.append(search_engine.suggest(trial, search))
        study.tell(trial, 0.0)
    return drawn


def test_grid_is_every_combination_with_yaml_values(tmp_path):
    from dlrun import config
    from dlrun.trials import search as search_engine

    grid = sweep.parse_grid(["train.batch_size=16,64", "compile.optimizer.learning_rate=1e-3,1e-4"])
    assert grid == {"train.batch_size": [16, 64], "compile.optimizer.learning_rate": [0.001, 0.0001]}
    search = sweep.plan(
        config.load(write(tmp_path)), sweep.Options(grid=("train.batch_size=16,64", "compile.optimizer.learning_rate=1e-3,1e-4"))
    )
    assert search.sampler == "grid" and search_engine.trial_count(search) == 4
    trials = draw(search, 4)
    assert all(list(trial) == ["train.batch_size", "compile.optimizer.learning_rate"] for trial in trials)
    assert sorted(tuple(trial.values()) for trial in trials) == [(16, 0.0001), (16, 0.001), (64, 0.0001), (64, 0.001)]  # each once
    assert sweep_study.set_items({"train.batch_size": 16, "model.units": [8, 8]}) == ["train.batch_size=16", "model.units=[8, 8]"]


def test_random_search_is_seeded_and_stays_in_its_ranges(tmp_path):
    from dlrun import config

    base = config.load(write(tmp_path))
    options = sweep.Options(
        ranges=("compile.optimizer.learning_rate=1e-5:1e-2:log", "train.batch_size=8:64"), grid=("model.units=[4],[8, 8]",), random=20
    )
    search = sweep.plan(base, options)
    assert search.sampler == "random" and search.trials == 20 and search.seed == 5  # the config's seed
    first = draw(search, 20)
    assert first == draw(search, 20)
    assert first != draw(search.model_copy(update={"seed": 6}), 20)
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
        ([], "--grid: received nothing; expected at least one --grid KEY=V1,V2 (or --random N with --range, or a search: section"),
        (["--grid", "train.batch_size"], "--grid 'train.batch_size': received no KEY=V1,V2,...; expected"),
        (
            ["--grid", "train.batchsize=16,64"],
            "search.space.train.batchsize: received 16, which the config refuses (train.batchsize: received unknown key 'batchsize'",
        ),
        (
            ["--grid", "train.batch_size=16,abc"],
            'search.space.train.batch_size: received "abc", which the config refuses (train.batch_size: received "abc"; expected an integer',
        ),
        (["--grid", "train.epochs=1", "--grid", "train.epochs=2"], "received train.epochs a second time"),
        (["--range", "train.epochs=1:3"], "--range: received ranges without --random N"),
        (["--random", "2", "--range", "train.epochs=5:1"], "received low 5 and high 1; expected low < high"),
        (["--random", "2", "--range", "compile.optimizer.learning_rate=0:1:log"], "received low 0 with log; expected low > 0"),
        (["--random", "2", "--range", "train.epochs=a:b"], "--range 'train.epochs=a:b': received 'a:b'; expected KEY=LOW:HIGH"),
        (["--random", "0", "--range", "train.epochs=1:3"], "--random: received 0; expected a number of trials >= 1"),
        (
            ["--grid", "train.epochs=1,2", "--metric", "val_acc"],
            "--metric: received 'val_acc'; expected one of loss, mae, val_loss, val_mae",
        ),
        (["--grid", "train.epochs=1,2", "--workers", "0"], "--workers: received 0"),
    ],
    ids=[
        "no-grid",
        "no-equals",
        "unknown-key",
        "bad-value",
        "key-twice",
        "range-without-random",
        "low>high",
        "log-from-0",
        "not-numbers",
        "random<1",
        "metric",
        "workers",
    ],
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
def test_a_2x2_grid_makes_four_child_runs_a_ranked_table_and_plots(tmp_path):
    result = invoke("sweep", write(tmp_path), "--grid", "train.batch_size=8,16", "--grid", "compile.optimizer.learning_rate=1e-3,1e-2")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    assert folder.name.endswith("_sw-sweep")
    state = json.loads((folder / "sweep.json").read_text())
    assert state["status"] == "completed" and state["search"]["metric"] == "val_loss" and state["search"]["direction"] == "minimize"
    assert state["search"]["sampler"] == "grid" and state["trials_total"] == 4 and (folder / "study.db").is_file()
    children = run_folders(folder / "trials")
    assert len(children) == 4
    assert sorted(
        (trial["overrides"]["train.batch_size"], trial["overrides"]["compile.optimizer.learning_rate"]) for trial in state["trials"]
    ) == [(8, 0.001), (8, 0.01), (16, 0.001), (16, 0.01)]  # every point once
    for trial in state["trials"]:
        child = folder / "trials" / trial["run"].rsplit("/", 1)[-1]
        assert child in children
        assert json.loads((child / "run.json").read_text())["status"] == "completed"
        stored = (child / "config.yaml").read_text()
        assert f"batch_size: {trial['overrides']['train.batch_size']}" in stored
        assert "search:" not in stored  # a trial's run is a plain training run
        assert "backend: tensorflow\n" in stored  # each trial's `auto`, resolved by the one trainer
        child_history = history.load(child / "history.json")
        assert trial["best"]["value"] == min(child_history["val_loss"])
    values = [state["trials"][number]["best"]["value"] for number in state["ranking"]]
    assert values == sorted(values) and sorted(state["ranking"]) == [0, 1, 2, 3]
    assert "sweep ranked by val_loss (lower is better)" in result.output
    table_rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [int(row.split("│")[2]) for row in table_rows] == state["ranking"]  # the table lists trials best first
    record = json.loads((folder / "run.json").read_text())
    assert record["kind"] == "sweep" and record["status"] == "completed"
    assert record["best_trial"]["number"] == state["ranking"][0]
    plots = sorted((folder / "plots").iterdir())
    assert [path.name for path in plots] == [
        "intermediate_values.png",
        "optimization_history.png",
        "parallel_coordinate.png",
        "param_importances.png",
    ]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in plots) and record["plots"] == [
        "optimization_history.png",
        "parallel_coordinate.png",
        "intermediate_values.png",
        "param_importances.png",
    ]


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_only_the_unfinished_trials(tmp_path, monkeypatch):
    from dlrun.training import recorders

    original = recorders.RunRecorder.on_epoch_end
    epochs_seen = []

    def interrupt_in_trial_1(self, epoch, logs=None):
        original(self, epoch, logs)  # history and checkpoint written
        epochs_seen.append(epoch)
        if len(epochs_seen) == 3:  # trial 0's two epochs, then trial 1's first
            raise KeyboardInterrupt

    config_path = write(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(recorders.RunRecorder, "on_epoch_end", interrupt_in_trial_1)
        result = invoke("sweep", config_path, "--grid", "train.batch_size=8,16,32")
    assert result.exit_code == 130
    assert "interrupted after 1 of 3 trial(s); what was written so far is in" in result.stderr
    assert "(continue with: dlrun sweep --resume" in result.stderr
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["completed", "running"]  # trial 2 was never asked
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    first_child, second_child = state["trials"][0]["run"], state["trials"][1]["run"]
    assert json.loads((Path(second_child) / "run.json").read_text())["status"] == "interrupted"

    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("sweep", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "1 of 3 trials already completed" in result.output
    assert "resuming trial 1 after epoch 1" in result.output
    # trial 1 continued in its own run folder from its checkpoint: only its second epoch trained again
    third_child = json.loads((folder / "sweep.json").read_text())["trials"][2]["run"]
    assert epochs_seen == [(Path(second_child).name, 2), (Path(third_child).name, 1), (Path(third_child).name, 2)]
    assert "trial 0/3 (" not in result.output and "trial 1/3 (" in result.output and "trial 2/3 (" in result.output
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["completed"] * 3
    assert state["trials"][0]["run"] == first_child  # not trained again
    assert state["trials"][1]["run"] == second_child  # continued, not started again in a new folder
    assert [trial["number"] for trial in state["trials"]] == [0, 1, 2]  # no number reused, none skipped
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
    by_point = [{json.dumps(trial["overrides"]): trial["best"] for trial in state["trials"]} for state in (one, two)]
    assert by_point[0] == by_point[1] and len(by_point[0]) == 2
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
def test_sigkill_in_trial_3_then_resume_continues_its_run_and_ends_with_exactly_n_trials(tmp_path, monkeypatch):
    """A real kill -9 in trial 3 of 5: --resume continues that trial's own run folder after the epoch its
    checkpoint holds, trains only the epochs after it, asks the last trial, and ends as a sweep never killed does."""
    from tests.conftest import checkpoint_epochs, sigkill_when

    epochs = 5  # about 0.2 s each: the kill lands inside trial 3
    config_path = tmp_path / "killed.yaml"
    config_path.write_text(KILLED.format(root=json.dumps(str(tmp_path / "runs"))))
    search = ["--random", "5", "--range", "compile.optimizer.learning_rate=1e-3:1e-2:log", "--pruner", "none"]

    def trial_3_child():
        folders = run_folders(tmp_path / "runs")
        try:
            trials = json.loads((folders[0] / "sweep.json").read_text())["trials"]
        except (IndexError, OSError, ValueError):
            return None
        return Path(trials[3]["run"]) if len(trials) > 3 and trials[3].get("run") else None

    def trial_3_has_epoch_2():
        child = trial_3_child()
        return child is not None and (checkpoint_epochs(child) or 0) >= 2

    sigkill_when(["sweep", config_path, *search], trial_3_has_epoch_2)
    (folder,) = run_folders(tmp_path / "runs")
    child = trial_3_child()
    killed_after = checkpoint_epochs(child)
    assert 2 <= killed_after < epochs, f"the kill landed after trial 3's epoch {killed_after}, not inside the trial"
    assert json.loads((folder / "run.json").read_text())["status"] == "running"  # nothing ran after the kill
    assert json.loads((child / "run.json").read_text())["status"] == "running"
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["completed"] * 3 + ["running"]
    earlier = [trial["run"] for trial in state["trials"][:3]]

    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("sweep", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "3 of 5 trials already completed" in result.output
    assert f"resuming trial 3 after epoch {killed_after} ({child})" in result.output
    resumed = json.loads((folder / "sweep.json").read_text())
    assert [trial["number"] for trial in resumed["trials"]] == [0, 1, 2, 3, 4]  # exactly 5, none reused
    assert [trial["status"] for trial in resumed["trials"]] == ["completed"] * 5
    last = Path(resumed["trials"][4]["run"])
    # trial 3 went on in its own run folder from its checkpoint (only the epochs after it), then trial 4 trained
    assert epochs_seen == [(child.name, epoch) for epoch in range(killed_after + 1, epochs + 1)] + [
        (last.name, epoch) for epoch in range(1, epochs + 1)
    ]
    assert [trial["run"] for trial in resumed["trials"][:4]] == [*earlier, str(child)]
    assert len(run_folders(folder / "trials")) == 5  # no second folder for trial 3
    child_record = json.loads((child / "run.json").read_text())
    assert child_record["status"] == "completed"
    (entry,) = child_record["resumes"]
    assert entry["after_epoch"] == killed_after and entry["previous"]["status"] == "running"
    assert history.load(child / "history.json")["epoch"] == list(range(1, epochs + 1))
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["resumes"][0]["previous"]["status"] == "running"

    result = invoke("sweep", config_path, *search, "--set", f"output.runs_root={json.dumps(str(tmp_path / 'straight'))}")
    assert result.exit_code == 0, result.output
    (straight,) = run_folders(tmp_path / "straight")
    uninterrupted = json.loads((straight / "sweep.json").read_text())
    assert [trial["overrides"] for trial in resumed["trials"]] == [trial["overrides"] for trial in uninterrupted["trials"]]
    assert resumed["ranking"] == uninterrupted["ranking"]
    assert [trial["best"] for trial in resumed["trials"]] == [trial["best"] for trial in uninterrupted["trials"]]
    assert record["best_trial"] == json.loads((straight / "run.json").read_text())["best_trial"]
    straight_child = Path(uninterrupted["trials"][3]["run"])
    assert history.load(child / "history.json") == history.load(straight_child / "history.json")
