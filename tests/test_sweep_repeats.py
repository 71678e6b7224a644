"""A sweep's repeated points (`search.repeats`) and ASHA's reduction factor (`search.reduction_factor`)."""

import json
from pathlib import Path

import pytest

from tests.conftest import invoke, record_trained_epochs, run_folders
from tests.test_search import write  # the same tiny regression config

# --- the section --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "search, message",
    [
        (
            "search: {pruner: asha, reduction_factor: 1, space: {train.batch_size: {choice: [16]}}}",
            "search.reduction_factor: received 1; expected a number >= 2",
        ),
        (
            "search: {repeats: again, space: {train.batch_size: {choice: [16]}}}",
            'search.repeats: received "again"; expected one of reuse, train',
        ),
    ],
    ids=["reduction-factor", "repeats"],
)
def test_a_bad_reduction_factor_or_repeats_exits_2_naming_the_key_before_any_folder(tmp_path, search, message):
    result = invoke("sweep", write(tmp_path, search))
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists() or run_folders(tmp_path / "runs") == []


def test_config_show_prints_the_reduction_factor_and_the_repeat_policy(tmp_path):
    shown = invoke("config", "show", write(tmp_path, "search: {pruner: asha, space: {train.batch_size: {choice: [16]}}}"))
    assert shown.exit_code == 0, shown.output
    assert "reduction_factor: 4" in shown.output and "repeats: reuse" in shown.output


@pytest.mark.parametrize("name", ["asha", "hyperband"])
def test_asha_and_hyperband_use_the_section_s_reduction_factor(name):
    from dlrun.config import search as search_config
    from dlrun.trials import search as search_engine

    section = search_config.SearchConfig.model_validate({"pruner": name, "reduction_factor": 2, "warmup_epochs": 2})
    pruner = search_engine.pruner(section)
    assert pruner._reduction_factor == 2 and pruner._min_resource == 3


def test_a_repeat_is_ranked_once_and_says_whose_result_it_took():
    from rich.console import Console

    from dlrun.trials import sweep_results

    search = {"metric": "val_loss", "direction": "minimize", "space": {"train.batch_size": {"choice": [8, 16]}}}
    best = {"epoch": 2, "value": 0.5}
    state = {
        "search": search,
        "trials": [
            {"number": 0, "overrides": {"train.batch_size": 8}, "status": "completed", "best": best, "epochs": 2},
            {"number": 1, "overrides": {"train.batch_size": 16}, "status": "pruned", "pruned": {"epoch": 1, "reason": "r"}, "epochs": 1},
            {"number": 2, "overrides": {"train.batch_size": 8}, "status": "completed", "best": best, "epochs": 0, "repeat_of": 0},
            {"number": 3, "overrides": {"train.batch_size": 16}, "status": "pruned", "pruned": {"epoch": 1}, "epochs": 0, "repeat_of": 1},
        ],
    }
    assert [trial["number"] for trial in sweep_results.rank(state)] == [0]
    assert sweep_results.describe(state["trials"][2]) == "repeat of trial 0"
    assert sweep_results.describe(state["trials"][3]) == "repeat of trial 1, pruned at epoch 1"
    console = Console(width=200, record=True)
    console.print(sweep_results.table(state))
    rows = [line for line in console.export_text().splitlines() if "repeat of" in line]
    assert len(rows) == 2 and all(line.split("│")[1].strip() == "-" for line in rows)  # no rank of its own


# --- sweeps that train ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_repeated_point_takes_the_finished_trial_s_result_and_is_not_trained_again(tmp_path, monkeypatch):
    search = "search: {sampler: random, pruner: none, trials: 3, space: {train.batch_size: {choice: [16]}}}\n"
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        result = invoke("sweep", write(tmp_path, search))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    first, *repeats = state["trials"]
    assert len({name for name, _ in trained}) == 1 and len(run_folders(folder / "trials")) == 1  # trained once
    assert [trial["repeat_of"] for trial in repeats] == [0, 0] and "repeat_of" not in first
    for trial in repeats:
        assert trial["status"] == "completed" and trial["best"] == first["best"] and trial["epochs"] == 0 and "run" not in trial
    assert state["ranking"] == [0]  # the point is ranked once
    assert (
        f"trial 1/3 (batch_size=16): repeat of trial 0, not trained again: its best val_loss {first['best']['value']:.4f}" in result.output
    )
    assert result.output.count("repeat of trial 0") == 4  # two console lines, two table rows
    record = json.loads((folder / "run.json").read_text())
    assert record["trials_completed"] == 3 and record["trials_repeated"] == 2 and record["best_trial"]["number"] == 0
    report = invoke("report", folder)
    assert report.exit_code == 0, report.output
    assert (folder / "report.html").read_text().count("repeat of trial 0, not trained again") == 2


@pytest.mark.slow
def test_with_repeats_train_each_repeat_trains_again_to_the_same_numbers(tmp_path):
    # the promise `reuse` stands on: the same config and seed train to the same numbers
    search = "search: {sampler: random, pruner: none, trials: 2, repeats: train, space: {train.batch_size: {choice: [16]}}}\n"
    result = invoke("sweep", write(tmp_path, search))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert len(run_folders(folder / "trials")) == 2 and not any("repeat_of" in trial for trial in state["trials"])
    histories = [json.loads((Path(trial["run"]) / "history.json").read_text()) for trial in state["trials"]]
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_a_repeat_of_a_pruned_trial_is_pruned_too_without_training(tmp_path, monkeypatch):
    # sampler seed 15 draws 0.05, 1e-9, 1e-9, 0.05: the hopeless rate is pruned, then drawn again
    search = """\
search:
  sampler: random
  seed: 15
  trials: 4
  pruner: median
  startup_trials: 1
  warmup_epochs: 0
  space:
    compile.optimizer.learning_rate: {choice: [0.05, 1.0e-9]}
"""
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        result = invoke("sweep", write(tmp_path, search, epochs=4))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    good, hopeless, again, good_again = json.loads((folder / "sweep.json").read_text())["trials"]
    assert [trial["overrides"]["compile.optimizer.learning_rate"] for trial in (good, hopeless, again, good_again)] == [
        0.05,
        1e-9,
        1e-9,
        0.05,
    ]
    assert hopeless["status"] == "pruned" and again["status"] == "pruned" and again["repeat_of"] == 1
    assert again["pruned"] == hopeless["pruned"] and good_again["repeat_of"] == 0 and good_again["status"] == "completed"
    assert len({name for name, _ in trained}) == 2  # the repeats trained nothing
    epoch = hopeless["pruned"]["epoch"]
    assert f"repeat of trial 1, not trained again: pruned too (it was pruned after epoch {epoch})" in result.output
    assert result.output.count("repeat of trial 1") == 2  # its console line and its table row


def test_a_failed_trial_is_not_a_finished_one_to_repeat():
    import optuna

    from dlrun.trials import search as search_engine

    study = optuna.create_study()
    values = {"train.batch_size": 16}
    for state in (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE):
        trial = study.ask()
        trial.set_user_attr("overrides", values)
        study.tell(trial, 1.0 if state == optuna.trial.TrialState.COMPLETE else None, state=state)
    repeat = study.ask()
    repeat.set_user_attr("overrides", values)
    repeat.set_user_attr("repeat_of", 1)
    study.tell(repeat, 1.0)
    found = search_engine.finished_with(study, values)
    assert found is not None and found.number == 1  # not the failed trial 0, not the repeat 2
    assert search_engine.finished_with(study, {"train.batch_size": 32}) is None
